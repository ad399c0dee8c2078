"""Fault injection: kills, signals, corrupt checkpoints, NaNs and bad input.

Each test does the fault for real (a real training subprocess, real files)
and checks both the behaviour and that earlier results were not modified.
"""

import glob
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from configs import test as test_config
from evae_jax import errors
from evae_jax.storage import checkpoints
from evae_jax.train import metric_writers
from evae_jax.train import loop as train
from evae_jax import state as state_lib
from tests.conftest import ROOT
from tests.test_input_pipeline import write_idx
from tests.test_input_pipeline import write_idx_dir

STEPS_PER_EPOCH = 1300 // 50


def _cmd(workdir, *overrides):
  return [sys.executable, '-m', 'evae_jax.main', '--config=configs/test.py',
          f'--workdir={workdir}', *overrides]


def _run(workdir, *overrides):
  return subprocess.run(_cmd(workdir, *overrides), cwd=ROOT,
                        capture_output=True, text=True, timeout=300)


def _start(workdir, *overrides):
  return subprocess.Popen(_cmd(workdir, *overrides), cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)


def _wait_for_checkpoint(workdir, proc, timeout=120):
  deadline = time.time() + timeout
  while time.time() < deadline:
    if glob.glob(os.path.join(workdir, 'checkpoints', '[0-9]*')):
      return
    if proc.poll() is not None:
      raise AssertionError('training ended before its first checkpoint')
    time.sleep(0.05)
  raise AssertionError('no checkpoint appeared')


def _digest(workdir):
  """Hashes of every result file except checkpoints and appended logs."""
  out = {}
  for path in sorted(glob.glob(os.path.join(workdir, '**', '*'), recursive=True)):
    if os.path.isfile(path) and '/checkpoints/' not in path:
      out[os.path.relpath(path, workdir)] = hashlib.sha256(
          open(path, 'rb').read()).hexdigest()
  return out


def _final_params(workdir, overrides):
  config = test_config.get_config()
  for key, value in overrides.items():
    section, field = key.split('.')
    config[section][field] = value
  state = state_lib.create_train_state(config, 64, jax.random.PRNGKey(0))
  ckpts = checkpoints.Checkpoints(workdir, 3)
  state, _, step = state_lib.restore(ckpts, state, 1300)
  ckpts.close()
  return (state.params, state.opt_state), step


@pytest.fixture(scope='module')
def trained_run(tmp_path_factory):
  """A finished run of configs/test.py (2 epochs, a checkpoint each) by the
  command line, trained once for the tests that damage a copy of it."""
  workdir = str(tmp_path_factory.mktemp('faults') / 'run')
  result = _run(workdir)
  assert result.returncode == 0, result.stderr[-3000:]
  return workdir


def _copy(trained, tmp_path):
  """A copy of the module's trained run for one test to damage."""
  workdir = str(tmp_path / 'run')
  shutil.copytree(trained, workdir)
  return workdir


LONG = {'train.num_epochs': 6, 'train.checkpoint_every_steps': 13}
LONG_FLAGS = [f'--config.{k}={v}' for k, v in LONG.items()]


def test_sigkill_at_a_random_step_then_resume_is_bit_identical(tmp_path):
  straight, interrupted = str(tmp_path / 'straight'), str(tmp_path / 'killed')
  assert _run(straight, *LONG_FLAGS).returncode == 0
  proc = _start(interrupted, *LONG_FLAGS)
  _wait_for_checkpoint(interrupted, proc)
  time.sleep(random.Random().uniform(0.0, 1.5))
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  killed_at = checkpoints.Checkpoints(interrupted, 3).steps()
  result = _run(interrupted, *LONG_FLAGS)
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
  a, step_a = _final_params(straight, LONG)
  b, step_b = _final_params(interrupted, LONG)
  assert step_a == step_b == 6 * STEPS_PER_EPOCH
  for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
    np.testing.assert_array_equal(x, y)
  if killed_at and killed_at[-1] < step_a:
    assert 'Resumed from the checkpoint at step' in result.stderr


@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_save_a_checkpoint_before_exiting(tmp_path, sig):
  workdir = str(tmp_path / 'run')
  proc = _start(workdir, *LONG_FLAGS)
  _wait_for_checkpoint(workdir, proc)
  proc.send_signal(sig)
  out, _ = proc.communicate(timeout=120)
  steps = checkpoints.Checkpoints(workdir, 3).steps()
  if 'saved a checkpoint at step' not in out:
    pytest.skip('the run finished before the signal arrived')
  assert proc.returncode == 75  # interrupted, not finished: resume later
  stopped_at = int(re.search(r'saved a checkpoint at step (\d+)', out)[1])
  assert steps[-1] == stopped_at < 6 * STEPS_PER_EPOCH
  result = _run(workdir, *LONG_FLAGS)
  assert f'Resumed from the checkpoint at step {stopped_at}' in result.stderr


def test_corrupt_latest_checkpoint_falls_back_to_the_previous(trained_run,
                                                             tmp_path):
  workdir = _copy(trained_run, tmp_path)
  latest = os.path.join(workdir, 'checkpoints', str(2 * STEPS_PER_EPOCH))
  for path in glob.glob(os.path.join(latest, '**', '*'), recursive=True):
    if os.path.isfile(path):
      with open(path, 'r+b') as f:
        f.truncate(max(0, os.path.getsize(path) // 3))
  metrics_before = open(os.path.join(workdir, 'metrics.jsonl')).read()
  result = _run(workdir, '--config.train.num_epochs=3')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'unreadable' in result.stderr and 'falling back' in result.stderr
  assert f'Resumed from the checkpoint at step {STEPS_PER_EPOCH}' in result.stderr
  # The damaged checkpoint was moved aside, not deleted; the log keeps the
  # records up to the restored step and holds every step once.
  assert glob.glob(latest + '.corrupt-*')
  first_epoch = metrics_before.splitlines(keepends=True)[0]
  after = open(os.path.join(workdir, 'metrics.jsonl')).read()
  assert after.startswith(first_epoch)
  steps = [json.loads(line)['step'] for line in after.splitlines()]
  assert steps == [STEPS_PER_EPOCH * i for i in (1, 2, 3)]
  assert checkpoints.Checkpoints(workdir, 3).steps()[-1] == 3 * STEPS_PER_EPOCH


def test_all_checkpoints_corrupt_is_an_error_not_a_fresh_start(trained_run,
                                                               tmp_path):
  workdir = _copy(trained_run, tmp_path)
  for step_dir in glob.glob(os.path.join(workdir, 'checkpoints', '[0-9]*')):
    for path in glob.glob(os.path.join(step_dir, '**', '*'), recursive=True):
      if os.path.isfile(path):
        open(path, 'wb').close()
  before = _digest(workdir)
  result = _run(workdir)
  assert result.returncode == 2
  assert 'None of the checkpoints' in result.stderr
  assert 'Traceback' not in result.stderr
  assert _digest(workdir) == before


def test_nan_stops_with_the_step_and_keeps_the_last_checkpoint(trained_run,
                                                               tmp_path):
  workdir = _copy(trained_run, tmp_path)
  saved = checkpoints.Checkpoints(workdir, 3).steps()
  before = _digest(workdir)
  result = _run(workdir, '--config.train.num_epochs=3',
                '--config.train.learning_rate=1e30')
  # The lr change is refused first: a different config in the same workdir.
  assert result.returncode == 2 and 'train.learning_rate' in result.stderr
  result = _run(str(tmp_path / 'fresh'), '--config.train.learning_rate=1e30',
                '--config.train.checkpoint_every_steps=1')
  assert result.returncode == 3, result.stderr[-2000:]
  assert 'NaN/inf at step' in result.stderr
  assert 'learning rate' in result.stderr and 'Traceback' not in result.stderr
  fresh_steps = checkpoints.Checkpoints(str(tmp_path / 'fresh'), 3).steps()
  bad_step = int(result.stderr.split('NaN/inf at step ')[1].split('.')[0])
  assert all(s < bad_step for s in fresh_steps)
  assert _digest(workdir) == before
  assert checkpoints.Checkpoints(workdir, 3).steps() == saved


def test_gaussian_decoder_log_variance_is_bounded():
  config = test_config.get_config()
  config.model.likelihood = 'gaussian'
  from evae_jax import models
  module = models.make_model(config.model, 64).module
  params = models.init_params(module, jax.random.PRNGKey(0))
  # Blow up the log-variance head: the output must stay inside the bounds.
  params = jax.tree_util.tree_map(lambda p: p * 1e4, params)
  _, logvar = module.apply({'params': params},
                          jax.random.normal(jax.random.PRNGKey(1), (5, 6)),
                          method=models.VAENetwork.decode)
  assert float(logvar.min()) >= config.model.min_logvar
  assert float(logvar.max()) <= config.model.max_logvar


def _bad_idx_dir(tmp_path, kind):
  directory = str(tmp_path / f'idx_{kind}')
  write_idx_dir(directory, num_train=30, num_test=10)
  images = os.path.join(directory, 't10k-images-idx3-ubyte.gz')
  if kind == 'flat':
    write_idx(images, np.zeros((10, 20), np.uint8))
  elif kind == 'empty_test':
    write_idx(images, np.zeros((0, 5, 4), np.uint8))
    write_idx(os.path.join(directory, 't10k-labels-idx1-ubyte.gz'),
              np.zeros(0, np.uint8))
  elif kind == 'not_idx':
    open(images, 'wb').write(b'PK\x03\x04 a zip file')
  elif kind == 'truncated':
    raw = open(images, 'rb').read()
    open(images, 'wb').write(raw[:len(raw) // 2])
  elif kind == 'labels':
    write_idx(os.path.join(directory, 't10k-labels-idx1-ubyte.gz'),
              np.zeros(9, np.uint8))
  return directory


@pytest.mark.parametrize('overrides,needle', [
    (['--config.model.epitome_size=9'], 'K must satisfy'),
    (['--config.model.stride=5'], 's must satisfy'),
    (['--config.model.kind=gan'], 'model.kind'),
    (['--config.model.hiden_dim=3'], 'hiden_dim'),
    (['--config.model.latent_dim=six'], 'latent_dim'),
    (['--config.train.learning_rate=nan'], 'finite'),
    (['--config.train.batch_size=5000'], 'batch_size'),
    (['--config.data.name=idx', '--config.data.path=/nonexistent'],
     'not a directory'),
    (['--config.data.name=tfd', '--config.data.path=/nonexistent.mat'],
     'TFD_48x48.mat'),
    (['--config.data.name=idx', 'IDX:flat'], 'expected uint8 (n, height'),
    (['--config.data.name=idx', 'IDX:empty_test'], 'split'),
    (['--config.data.name=idx', 'IDX:not_idx'], 'not an IDX file'),
    (['--config.data.name=idx', 'IDX:truncated'], 'truncated'),
    (['--config.data.name=idx', 'IDX:labels'], '10 t10k images but 9'),
])
def test_bad_input_exits_2_with_a_clear_message(tmp_path, overrides, needle):
  args = []
  for item in overrides:
    if item.startswith('IDX:'):
      args += [f'--config.data.path={_bad_idx_dir(tmp_path, item[4:])}',
               '--config.data.num_valid=5', '--config.train.batch_size=5']
    else:
      args.append(item)
  result = _run(str(tmp_path / 'run'), *args)
  assert result.returncode == 2, result.stderr[-2000:]
  assert needle in result.stderr
  assert 'Traceback' not in result.stderr
  assert len(result.stderr.strip().splitlines()[-1]) > 40  # says the fix


def test_unwritable_workdir(tmp_path):
  blocker = tmp_path / 'a_file'
  blocker.write_text('not a directory')
  result = _run(str(blocker / 'run'))
  assert result.returncode == 2
  assert f'lies under {blocker}, which is a file' in result.stderr
  assert blocker.read_text() == 'not a directory'


def test_changed_config_is_refused_or_moved_aside_never_deleted(tmp_path):
  workdir = str(tmp_path / 'run')
  assert _run(workdir, '--config.train.num_epochs=1').returncode == 0
  before = _digest(workdir)
  refused = _run(workdir, '--config.model.hidden_dim=8')
  assert refused.returncode == 2 and 'model.hidden_dim' in refused.stderr
  assert _digest(workdir) == before
  moved = _run(workdir, '--config.model.hidden_dim=8',
               '--config.train.num_epochs=1', '--config.train.overwrite=True')
  assert moved.returncode == 0, moved.stderr[-2000:]
  backups = glob.glob(os.path.join(workdir, 'previous-*'))
  assert len(backups) == 1
  assert _digest(backups[0]) == before
  assert metric_writers.read_metrics(workdir)[0]['step'] == STEPS_PER_EPOCH


def test_config_with_missing_field_or_wrong_type():
  import ml_collections
  from evae_jax import configuration
  config = test_config.get_config().to_dict()
  config['model']['hidden_dim'] = '500'
  with pytest.raises(errors.ConfigError, match='model.hidden_dim'):
    configuration.validate(ml_collections.ConfigDict(config))
  del config['model']['hidden_dim']
  with pytest.raises(errors.ConfigError, match='lacks model.hidden_dim'):
    configuration.validate(ml_collections.ConfigDict(config))


def test_full_disk_while_checkpointing_keeps_earlier_checkpoints(
    tmp_path, monkeypatch):
  import errno
  config = test_config.get_config()
  config.train.num_epochs = 1
  workdir = str(tmp_path / 'run')
  train.train_and_evaluate(config, workdir)
  saved = checkpoints.Checkpoints(workdir, 3).steps()
  def full(*args, **kwargs):
    raise OSError(errno.ENOSPC, 'No space left on device')
  monkeypatch.setattr(checkpoints.ocp.CheckpointManager, 'save', full)
  config.train.num_epochs = 2
  with pytest.raises(errors.CheckpointError, match='No space left'):
    train.train_and_evaluate(config, workdir)
  monkeypatch.undo()
  assert checkpoints.Checkpoints(workdir, 3).steps() == saved
