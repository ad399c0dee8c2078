"""evae_jax/checkpoints.py: workdirs written by earlier versions still
restore, and a save that fails in orbax's background thread is an error,
not a hang.

``tests/fixtures/workdir-orbax-0.12.8`` is what this command wrote with
orbax-checkpoint 0.12.8 (evae_jax before it moved off orbax's deprecated
``ocp.utils.to_shape_dtype_struct`` and ``max_to_keep``), less its figures,
TensorBoard events and lock::

  python -m evae_jax.main --config=configs/test.py --workdir=W \\
      --config.train.num_epochs=2 --config.train.keep_checkpoints=1
"""

import json
import os
import shutil

import jax
import numpy as np
import pytest

from configs import test as test_config
from evae_jax import checkpoints
from evae_jax import report
from evae_jax import state as state_lib
from evae_jax import train

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       'fixtures', 'workdir-orbax-0.12.8')
FIXTURE_STEP = 52  # 2 epochs of 26 steps


def _fixture_config(num_epochs=2):
  config = test_config.get_config()
  config.train.num_epochs = num_epochs
  config.train.keep_checkpoints = 1
  return config


def _copy_fixture(tmp_path):
  workdir = str(tmp_path / 'workdir')
  shutil.copytree(FIXTURE, workdir)
  return workdir


def test_a_checkpoint_written_by_orbax_0_12_8_restores_verified(tmp_path):
  workdir = _copy_fixture(tmp_path)
  config = _fixture_config()
  template = state_lib.create_train_state(config, 64, jax.random.PRNGKey(0))
  ckpts = checkpoints.Checkpoints(workdir, 1)
  try:
    tree, step = ckpts.restore_latest(state_lib.state_tree(
        template, np.full((1300,), -1, np.int32)))
    record = ckpts.record(FIXTURE_STEP)
  finally:
    ckpts.close()
  assert step == FIXTURE_STEP and int(tree['step']) == FIXTURE_STEP
  assert checkpoints.tree_checksum(tree) == record['checksum']
  assert record['config']['model']['hidden_dim'] == 16
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == [
      str(FIXTURE_STEP), checkpoints.CHECKSUMS_FILE]  # nothing moved aside


# A minute and more on two busy cores (compiling training, figures and the
# evaluation); the restore above is the quick check of the format.
@pytest.mark.slow
def test_a_checkpoint_written_by_orbax_0_12_8_resumes_and_evaluates(tmp_path):
  workdir = _copy_fixture(tmp_path)
  train.train_and_evaluate(_fixture_config(num_epochs=3), workdir)
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    steps = [json.loads(line)['step'] for line in f]
  assert steps == [26, 52, 78]  # resumed at 52, not retrained from 0
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == [
      '78', checkpoints.CHECKSUMS_FILE]
  results = report.evaluate_workdir(_fixture_config(num_epochs=3), workdir)
  assert np.isfinite(results['bound']['mean'])
