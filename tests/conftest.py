"""Shared fixtures: paths, the command line on configs/test.py, a trained
workdir, and a guard that no test can start a tfds download."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FASHION_MNIST = os.path.join(os.path.dirname(ROOT), 'shared', 'data',
                             'fashion-mnist')


@pytest.fixture(autouse=True)
def _no_network_downloads(monkeypatch):
  from evae_jax import input_pipeline
  monkeypatch.setattr(input_pipeline, '_network_reachable',
                      lambda *a, **k: False)


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
  from evae_jax import train
  workdir = str(tmp_path_factory.mktemp('one_epoch') / 'run')
  config = test_config.get_config()
  config.train.num_epochs = 1
  train.train_and_evaluate(config, workdir)
  return workdir
