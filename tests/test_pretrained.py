"""Model files: export a trained run to one file, load it with no data,
workdir or orbax (from a path, a local HTTP server with its SHA-256, and
the shipped pretrained models), and refuse damaged, edited or mismatched
files with a message."""

import functools
import hashlib
import http.server
import os
import shutil
import threading

import jax
import numpy as np
import pytest

import evae_jax
from evae_jax import errors
from evae_jax import pretrained
from evae_jax.storage import model_file
from tests.conftest import cli


@pytest.fixture(scope='module')
def exported(one_epoch_workdir, tmp_path_factory):
  path = str(tmp_path_factory.mktemp('export') / 'model.npz')
  digest = evae_jax.export(one_epoch_workdir, path)
  return path, digest


def _same_model(a, b, x):
  np.testing.assert_array_equal(np.asarray(a.encode(x)[0]),
                                np.asarray(b.encode(x)[0]))
  np.testing.assert_array_equal(np.asarray(a.sample(3, 5)),
                                np.asarray(b.sample(3, 5)))
  np.testing.assert_array_equal(np.asarray(a.bound(x, 1)),
                                np.asarray(b.bound(x, 1)))


def test_a_model_file_loads_the_same_model_without_the_workdir(
    one_epoch_workdir, exported, tmp_path):
  path, digest = exported
  with open(path, 'rb') as f:
    assert hashlib.sha256(f.read()).hexdigest() == digest
  original = evae_jax.load(one_epoch_workdir)
  alone = str(tmp_path / 'elsewhere.npz')
  shutil.copy(path, alone)
  loaded = evae_jax.load(alone)
  assert loaded.image_shape == original.image_shape
  assert loaded.step == original.step
  assert loaded.config.to_dict() == original.config.to_dict()
  x = original.splits.test[:7]
  _same_model(original, loaded, x)
  jax.tree_util.tree_map(np.testing.assert_array_equal, original.params,
                         loaded.params)
  assert loaded.meta['trained_with'], 'the code that trained it'
  assert loaded.meta['evaluation'] == {}  # trained, never evaluated


def test_export_carries_the_evaluation_of_the_same_step(one_epoch_workdir,
                                                        tmp_path):
  import json  # pylint: disable=g-import-not-at-top
  workdir = tmp_path / 'run'
  shutil.copytree(one_epoch_workdir, workdir)
  step = evae_jax.load(str(workdir)).step
  numbers = {'iw_log_likelihood': {'marginal': {'mean': -91.5}},
             'active_units': {'count': 7, 'activity': [0.1] * 8,
                              'sorted_activity': [0.1] * 8}}
  for at, expected in ((step - 1, {}), (step, numbers)):
    (workdir / 'eval.json').write_text(json.dumps(dict(numbers, step=at)))
    evae_jax.export(str(workdir), str(tmp_path / 'm.npz'))
    evaluation = evae_jax.load(str(tmp_path / 'm.npz')).meta['evaluation']
    if expected:
      assert evaluation['iw_log_likelihood'] == numbers['iw_log_likelihood']
      # The per-unit activity, not its sorted copy (the notebook plots it).
      assert evaluation['active_units'] == {'count': 7,
                                            'activity': [0.1] * 8}
    else:
      assert evaluation == {}  # another step's numbers are not this model's


def test_a_model_file_needs_no_data(exported, tmp_path):
  path, _ = exported
  loaded = evae_jax.load(path, overrides={'data.path': str(tmp_path / 'no')})
  assert loaded.sample(0, 2).shape == (2,) + loaded.image_shape


def test_mode_export_writes_the_file_from_the_command_line(
    one_epoch_workdir, tmp_path):
  path = tmp_path / 'cli.npz'
  result = cli(one_epoch_workdir, f'--export_path={path}', mode='export')
  assert result.returncode == 0, result.stderr
  assert 'sha256' in result.stdout and path.is_file()
  assert evae_jax.load(str(path)).step > 0


def test_a_damaged_or_foreign_file_is_refused(exported, tmp_path):
  path, _ = exported
  raw = bytearray(open(path, 'rb').read())
  meta, params = model_file.read(bytes(raw))
  flat = model_file.flatten(params)
  key = sorted(flat)[0]
  flat[key] = flat[key] + 1.0  # an edited weight, checksum left as it was
  arrays = {model_file.PREFIX + k: v for k, v in flat.items()}
  import json  # pylint: disable=g-import-not-at-top
  arrays[model_file.META] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
  edited = tmp_path / 'edited.npz'
  np.savez(edited, **arrays)
  with pytest.raises(errors.ConfigError, match='checksum'):
    evae_jax.load(str(edited))
  foreign = tmp_path / 'foreign.npz'
  np.savez(foreign, train=np.zeros((2, 3)))
  with pytest.raises(errors.ConfigError, match='not an evae_jax model file'):
    evae_jax.load(str(foreign))
  with pytest.raises(errors.ConfigError, match='SHA-256'):
    evae_jax.load(path, sha256='0' * 64)


def test_overrides_of_the_model_are_refused(exported):
  with pytest.raises(errors.ConfigError, match='cannot change'):
    evae_jax.load(exported[0], overrides={'model.hidden_dim': 3})


@pytest.fixture
def http_server(exported):
  folder = os.path.dirname(exported[0])
  handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                              directory=folder)
  handler.log_message = lambda *a: None
  server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  yield f'http://127.0.0.1:{server.server_address[1]}'
  server.shutdown()
  server.server_close()


def test_a_url_loads_with_its_sha256_and_is_cached(exported, http_server,
                                                   tmp_path, monkeypatch):
  path, digest = exported
  monkeypatch.setenv('EVAE_JAX_CACHE', str(tmp_path / 'cache'))
  url = f'{http_server}/{os.path.basename(path)}'
  with pytest.raises(errors.ConfigError, match='needs its SHA-256'):
    evae_jax.load(url)
  with pytest.raises(errors.ConfigError, match='not the'):
    evae_jax.load(url, sha256='f' * 64)
  assert not os.path.exists(tmp_path / 'cache' / f'{"f" * 64}.npz')
  m = evae_jax.load(url, sha256=digest)
  assert (tmp_path / 'cache' / f'{digest}.npz').is_file()
  assert m.step == evae_jax.load(path).step


@pytest.mark.parametrize('name', pretrained.available())
def test_every_shipped_model_loads_offline_with_its_card(name, tmp_path):
  m = evae_jax.load(f'pretrained:{name}',
                    overrides={'data.path': str(tmp_path / 'nothing')})
  card = pretrained.card(name)
  assert 'Licence' in card or 'License' in card
  evaluation = m.meta['evaluation']
  nll = -evaluation['iw_log_likelihood']['marginal']['mean']
  assert f'{nll:.2f}' in card, 'the card quotes the file\'s test number'
  images = np.asarray(m.sample(0, 4))
  assert images.shape == (4,) + m.image_shape
  assert np.isfinite(images).all()


def test_an_unknown_pretrained_name_lists_the_shipped_ones():
  with pytest.raises(errors.ConfigError, match='shipped'):
    evae_jax.load('pretrained:no-such-model')


def test_the_model_card_is_written_from_the_file_it_describes(
    one_epoch_workdir, tmp_path):
  import json  # pylint: disable=g-import-not-at-top
  from experiments import pretrained as ship  # pylint: disable=g-import-not-at-top
  workdir = tmp_path / 'run'
  shutil.copytree(one_epoch_workdir, workdir)
  step = evae_jax.load(str(workdir)).step
  numbers = {
      'step': step, 'num_examples': 297,
      'iw_log_likelihood': {'marginal': {'mean': -41.234, 'stderr': 0.5},
                            'num_samples': 8, 'num_examples': 40},
      'bound': {'mean': -45.678, 'stderr': 0.4},
      'parzen': {'mean': -12.34, 'stderr': 1.0},
      'active_units': {'count': 5, 'threshold': 0.02}}
  (workdir / 'eval.json').write_text(json.dumps(numbers))
  digest = evae_jax.export(str(workdir), str(tmp_path / 'm.npz'))
  meta = evae_jax.load(str(tmp_path / 'm.npz')).meta
  text = ship.card('tiny', meta, digest, 'CMD', note='Context.')
  config = meta['config']
  for expected in ('41.23', '-45.68', '-12.3 nats', '5 active units',
                   f'step {step}', digest, '`CMD`', '- Context.',
                   f'seed {config["seed"]}', "evae_jax.load('pretrained:tiny')",
                   f'D = {config["model"]["latent_dim"]}'):
    assert expected in text, (expected, text)


def test_the_pretrained_module_is_reached_from_the_package_alone():
  """`import evae_jax; evae_jax.pretrained.available()`, as the README and
  the quickstart write it, in a fresh interpreter."""
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  result = subprocess.run(
      [sys.executable, '-c', 'import evae_jax; '
       'print(evae_jax.pretrained.available())'],
      capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  assert 'mnist-evae' in result.stdout
