"""Shared fixtures: paths, the command line on configs/test.py, a trained
workdir, a local Cloud Storage server, a guard that no test can start a
tfds download, and one XLA compilation cache for the session."""

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

# One persistent XLA compilation cache for the whole session, which the
# processes the tests start (the command line, sweep points, two-process
# runs) inherit through the environment: the same tiny models compile once
# instead of once per process (a CLI run of configs/test.py here: 32 s cold,
# 11 s warm). A cached executable is the one XLA compiled, so results are
# bit-identical with or without it. Set before any test imports JAX; a fresh
# folder each session, removed at exit.
if 'JAX_COMPILATION_CACHE_DIR' not in os.environ:
  _XLA_CACHE = tempfile.mkdtemp(prefix='evae_jax-tests-xla-cache-')
  atexit.register(shutil.rmtree, _XLA_CACHE, ignore_errors=True)
  os.environ.update(JAX_COMPILATION_CACHE_DIR=_XLA_CACHE,
                    JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0',
                    JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES='-1')

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FASHION_MNIST = os.path.join(os.path.dirname(ROOT), 'shared', 'data',
                             'fashion-mnist')


@pytest.fixture(autouse=True)
def _no_network_downloads(monkeypatch):
  from evae_jax.data import tfds_source
  monkeypatch.setattr(tfds_source, '_network_reachable',
                      lambda *a, **k: False)


def free_port() -> int:
  """A TCP port on the loopback that nothing listens on now."""
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


GCS_BUCKET = 'evae-test'


@pytest.fixture(scope='session')
def gcs():
  """``gs://evae-test``, served on the loopback by tests/gcs_emulator.py.

  Sets the variables through which gcsfs (``STORAGE_EMULATOR_HOST``) and
  tensorstore (``TENSORSTORE_GCS_HTTP_URL``, a test token) reach it, in this
  process and in the subprocesses it starts. Yields the bucket's URI.
  """
  port = free_port()
  server = subprocess.Popen(
      [sys.executable, os.path.join(ROOT, 'tests', 'gcs_emulator.py'),
       str(port), GCS_BUCKET], stdout=subprocess.DEVNULL,
      stderr=subprocess.DEVNULL)
  url = f'http://127.0.0.1:{port}'
  for _ in range(100):
    try:
      urllib.request.urlopen(url + '/', timeout=1)
      break
    except OSError:
      time.sleep(0.1)
  else:
    server.kill()
    pytest.fail('the local GCS emulator did not start')
  env = {'STORAGE_EMULATOR_HOST': url, 'TENSORSTORE_GCS_HTTP_URL': url,
         'GOOGLE_AUTH_TOKEN_FOR_TESTING': 'test-token',
         # gcsfs otherwise first asks for the bucket's type over gRPC,
         # which the emulator does not serve (a 60 s timeout).
         'GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT': 'false'}
  saved = {k: os.environ.get(k) for k in env}
  os.environ.update(env)
  try:
    yield f'gs://{GCS_BUCKET}'
  finally:
    for k, v in saved.items():
      if v is None:
        os.environ.pop(k, None)
      else:
        os.environ[k] = v
    server.kill()
    server.wait()


def cli(workdir, *flags, mode='train', timeout=600):
  """``python -m evae_jax.main --config=configs/test.py`` in a subprocess."""
  return subprocess.run(
      [sys.executable, '-m', 'evae_jax.main', '--config=configs/test.py',
       f'--workdir={workdir}', f'--mode={mode}', *flags], cwd=ROOT,
      capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope='module')
def one_epoch_workdir(tmp_path_factory):
  """A workdir of configs/test.py trained for one epoch (per test module)."""
  from configs import test as test_config
  from evae_jax.train import loop as train
  workdir = str(tmp_path_factory.mktemp('one_epoch') / 'run')
  config = test_config.get_config()
  config.train.num_epochs = 1
  train.train_and_evaluate(config, workdir)
  return workdir


# The smoke tier (`python -m pytest -m smoke`, a minute or two): the maths
# against its independent computations, the config checks and the layout,
# and one command line run end to end (train, resume). The default suite
# runs these too; `slow` (reproduction runs) is opt-in.
SMOKE_FILES = frozenset((
    'test_bounds.py', 'test_elbo.py', 'test_epitomes.py',
    'test_likelihoods.py', 'test_marginal.py', 'test_objectives.py',
    'test_mutual_information.py', 'test_verdicts.py', 'test_defaults.py',
    'test_configuration.py', 'test_errors.py', 'test_layout.py',
    'test_schedules.py', 'test_seeds.py', 'test_provenance.py'))
SMOKE_TESTS = frozenset(('test_train.py::test_cli_end_to_end_and_resume',))


def pytest_collection_modifyitems(config, items):
  del config
  for item in items:
    name = os.path.basename(str(item.fspath))
    if (name in SMOKE_FILES
        or f'{name}::{item.originalname}' in SMOKE_TESTS):
      item.add_marker(pytest.mark.smoke)
