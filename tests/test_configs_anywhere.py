"""The shipped configs and a user's own config work from any directory: the
configs live in the installed package ``evae_jax.configs``, and the
checkout's configs/*.py re-export them."""

import importlib
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

SHIPPED = ('default', 'digits', 'mnist', 'binarized_mnist', 'fashion_mnist',
           'tfd', 'test')


def _env():
  """The environment of a user's shell: no PYTHONPATH into the checkout."""
  env = dict(os.environ)
  env.pop('PYTHONPATH', None)
  return env


def _run(cwd, *args):
  return subprocess.run([sys.executable, *args], cwd=cwd, env=_env(),
                        capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize('name', SHIPPED)
def test_checkout_configs_are_the_installed_ones(name):
  installed = importlib.import_module(f'evae_jax.configs.{name}').get_config()
  checkout = importlib.import_module(f'configs.{name}').get_config()
  assert installed.to_dict() == checkout.to_dict()


def test_outside_the_checkout_configs_is_not_importable(tmp_path):
  """What makes the tests below meaningful: from elsewhere only evae_jax is
  importable, not the checkout's top-level configs/."""
  run = _run(tmp_path, '-c', 'import evae_jax.configs.mnist; import configs')
  assert 'No module named \'configs\'' in run.stderr, run.stderr[-2000:]


def test_absolute_config_path_from_another_directory(tmp_path):
  workdir = str(tmp_path / 'run')
  run = _run(tmp_path, '-m', 'evae_jax.main',
             f'--config={os.path.join(ROOT, "configs", "test.py")}',
             f'--workdir={workdir}', '--config.train.num_epochs=1')
  assert run.returncode == 0, run.stderr[-3000:]
  assert os.path.isdir(os.path.join(workdir, 'checkpoints'))


def test_users_own_config_outside_the_checkout(tmp_path):
  (tmp_path / 'my_config.py').write_text(
      'from evae_jax.configs import test\n\n\n'
      'def get_config():\n'
      '  config = test.get_config()\n'
      '  config.model.latent_dim = 4\n'
      '  config.train.num_epochs = 1\n'
      '  return config\n')
  workdir = str(tmp_path / 'mine')
  run = _run(tmp_path, '-m', 'evae_jax.main', '--config=my_config.py',
             f'--workdir={workdir}')
  assert run.returncode == 0, run.stderr[-3000:]
  with open(os.path.join(workdir, 'config.json')) as f:
    assert '"latent_dim": 4' in f.read()
  # The sweeps still import the checkout's configs (they run from it).
  sweep = _run(ROOT, '-c', 'from configs.sweeps import table4; '
               'print(len(table4.sweep()), '
               'table4.get_config().model.latent_dim)')
  assert sweep.returncode == 0, sweep.stderr[-3000:]
  assert sweep.stdout.split() == ['90', '50']
