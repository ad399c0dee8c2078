"""Nothing lost in a checkpoint: each step is read back once written, its
checksum and its step travel inside its own folder, and a folder's name,
a deleted checksums.json or a deleted config.json cannot make a damaged or
foreign checkpoint restore silently."""

import json
import logging
import os
import shutil

import jax
import jax.numpy as jnp
import pytest

import configs.test as test_config
from evae_jax import errors
from evae_jax.storage import checkpoints
from evae_jax import configuration
from evae_jax.train import loop as train
from evae_jax.storage import workdirs
from evae_jax import state as state_lib
from tests.conftest import cli

STEPS = 26  # steps per epoch of configs/test.py


@pytest.fixture(scope='module')
def two_epochs(tmp_path_factory):
  """A workdir of configs/test.py trained for two epochs (steps 26, 52)."""
  workdir = str(tmp_path_factory.mktemp('two_epochs') / 'run')
  train.train_and_evaluate(test_config.get_config(), workdir)
  return workdir


@pytest.fixture
def workdir(two_epochs, tmp_path):
  """A copy of ``two_epochs`` that a test may damage."""
  copy = str(tmp_path / 'run')
  shutil.copytree(two_epochs, copy)
  return copy


def _restore(workdir):
  config = test_config.get_config()
  state = state_lib.create_train_state(config, 64, jax.random.PRNGKey(0))
  ckpts = checkpoints.Checkpoints(workdir, 3)
  try:
    state, _, step = state_lib.restore(ckpts, state, 1300)
  finally:
    ckpts.close()
  return state, step


def _flip_a_byte_in_every_data_file(step_dir):
  """Flips one bit in each chunk of array data: files that orbax reads
  without complaint (only the checksum can tell)."""
  data_dir = os.path.join(step_dir, 'default', 'ocdbt.process_0', 'd')
  assert os.listdir(data_dir)
  for name in os.listdir(data_dir):
    path = os.path.join(data_dir, name)
    data = bytearray(open(path, 'rb').read())
    data[len(data) // 2] ^= 0x40
    open(path, 'wb').write(bytes(data))


# 1. Paths that orbax globs.

@pytest.mark.parametrize('name', ['exp[1]', 'lr[1e-3]', 'back\\slash'])
def test_a_path_orbax_would_glob_is_refused_before_anything_is_written(
    tmp_path, name):
  workdir = str(tmp_path / 'runs' / name)
  with pytest.raises(errors.CheckpointError, match='character'):
    workdirs.prepare(test_config.get_config(), workdir)
  assert not os.path.exists(workdir)
  with pytest.raises(errors.CheckpointError, match='character'):
    checkpoints.Checkpoints(workdir, 3)  # evaluate and sample open it too


def test_a_bracket_in_the_workdir_exits_2_in_one_paragraph(tmp_path):
  workdir = str(tmp_path / 'runs' / 'exp[1]')
  result = cli(workdir, '--config.train.num_epochs=1', timeout=300)
  assert result.returncode == 2, result.stderr[-3000:]
  assert 'Traceback' not in result.stderr
  errors = [l for l in result.stderr.splitlines() if l.startswith('error:')]
  assert len(errors) == 1 and '[' in errors[0] and '--workdir' in errors[0]
  assert not os.path.exists(workdir)


def test_a_checkpoint_that_does_not_read_back_fails_its_save(tmp_path,
                                                             monkeypatch):
  """The class of failure above on any path: orbax skips its merge and the
  step has no root manifest. The save itself must fail, not a later resume."""
  from orbax.checkpoint._src.serialization import ocdbt_utils
  ckpts = checkpoints.Checkpoints(str(tmp_path / 'run'), 3)
  tree = {'w': jnp.arange(6.0), 'step': jnp.asarray(1, jnp.int32)}
  ckpts.save(1, tree)

  async def skip_merge(*args, **kwargs):
    del args, kwargs
  monkeypatch.setattr(ocdbt_utils, 'merge_ocdbt_per_process_files', skip_merge)
  with pytest.raises(errors.CheckpointError, match='read back'):
    ckpts.save(2, {**tree, 'step': jnp.asarray(2, jnp.int32)})
  monkeypatch.undo()
  restored, step = ckpts.restore_latest(tree)
  ckpts.close()
  assert step == 1 and int(restored['step']) == 1


# 2. A step folder's name against its contents.

def test_a_renamed_step_folder_is_not_trusted(workdir, caplog):
  folder = os.path.join(workdir, 'checkpoints')
  os.rename(os.path.join(folder, str(2 * STEPS)), os.path.join(folder, '1000'))
  with caplog.at_level(logging.WARNING):
    state, step = _restore(workdir)
  assert step == int(state.step) == STEPS  # the folder named 1000 holds 52
  assert 'step 52' in caplog.text and '1000' in caplog.text
  assert not os.path.exists(os.path.join(folder, '1000'))  # moved aside
  assert [n for n in os.listdir(folder) if n.startswith('1000.')]


# 3. Checksums kept with each step.

def test_bit_flips_are_caught_without_checksums_json(workdir, caplog):
  folder = os.path.join(workdir, 'checkpoints')
  if os.path.exists(os.path.join(folder, checkpoints.CHECKSUMS_FILE)):
    os.remove(os.path.join(folder, checkpoints.CHECKSUMS_FILE))  # lost
  _flip_a_byte_in_every_data_file(os.path.join(folder, str(2 * STEPS)))
  with caplog.at_level(logging.WARNING):
    _, step = _restore(workdir)
  assert step == STEPS  # the flipped step did not restore silently
  # Usually only the checksum can tell; where the chunk order puts the flip
  # in a compressed block, orbax's reader refuses the step first. Either
  # way the step is named as damaged and moved aside.
  assert ('checksum' in caplog.text
          or 'is unreadable or damaged' in caplog.text), caplog.text


def test_a_save_after_losing_checksums_json_keeps_earlier_steps_verified(
    workdir):
  folder = os.path.join(workdir, 'checkpoints')
  open(os.path.join(folder, checkpoints.CHECKSUMS_FILE), 'w').write('{garb')
  config = test_config.get_config()
  config.train.num_epochs = 3
  train.train_and_evaluate(config, workdir)
  _flip_a_byte_in_every_data_file(os.path.join(folder, str(3 * STEPS)))
  _flip_a_byte_in_every_data_file(os.path.join(folder, str(2 * STEPS)))
  _, step = _restore(workdir)
  assert step == STEPS


def _as_written_by_the_earlier_layout(workdir):
  """Step folders without the evae_jax item, their checksums in
  checkpoints/checksums.json: what earlier versions wrote."""
  folder = os.path.join(workdir, 'checkpoints')
  sums = {}
  for name in os.listdir(folder):
    meta = os.path.join(folder, name, checkpoints.META_ITEM)
    if os.path.isdir(meta):
      sums[name] = json.load(open(os.path.join(meta, 'metadata')))['checksum']
      shutil.rmtree(meta)
  with open(os.path.join(folder, checkpoints.CHECKSUMS_FILE), 'w') as f:
    json.dump(sums, f)
  return folder


def test_checkpoints_of_the_earlier_layout_still_restore(workdir, caplog):
  folder = _as_written_by_the_earlier_layout(workdir)
  _flip_a_byte_in_every_data_file(os.path.join(folder, str(2 * STEPS)))
  _, step = _restore(workdir)
  assert step == STEPS  # checksums.json still verifies them
  os.remove(os.path.join(folder, checkpoints.CHECKSUMS_FILE))
  with caplog.at_level(logging.WARNING):
    _, step = _restore(workdir)
  assert step == STEPS and 'unverified' in caplog.text


def test_a_verified_step_is_preferred_to_a_newer_unverified_one(workdir,
                                                                 caplog):
  folder = os.path.join(workdir, 'checkpoints')
  # Step 52 as an earlier version wrote it, its entry in checksums.json lost.
  shutil.rmtree(os.path.join(folder, str(2 * STEPS), checkpoints.META_ITEM))
  os.remove(os.path.join(folder, checkpoints.CHECKSUMS_FILE))
  with caplog.at_level(logging.WARNING):
    _, step = _restore(workdir)
  assert step == STEPS
  assert 'unverified' in caplog.text
  assert [n for n in os.listdir(folder)
          if n.startswith(f'{2 * STEPS}.unverified-')]  # set aside, kept


# 6. A deleted config.json.

@pytest.mark.parametrize('field,value', [('seed', 7),
                                         ('train.learning_rate', 5e-4)])
def test_a_deleted_config_json_does_not_let_another_config_resume(
    workdir, field, value):
  os.remove(os.path.join(workdir, workdirs.CONFIG_FILE))
  config = test_config.get_config()
  config.train.num_epochs = 3
  if '.' in field:
    section, name = field.split('.')
    config[section][name] = value
  else:
    config[field] = value
  with pytest.raises(errors.ConfigError, match=field.replace('.', r'\.')):
    train.train_and_evaluate(config, workdir)
  steps = checkpoints.Checkpoints(workdir, 3).steps()
  assert steps == [STEPS, 2 * STEPS]  # nothing trained
  config.train.overwrite = True  # the earlier run is moved aside, as always
  config.train.num_epochs = 1
  train.train_and_evaluate(config, workdir)
  previous = [n for n in os.listdir(workdir) if n.startswith('previous-')]
  assert len(previous) == 1
  assert sorted(os.listdir(os.path.join(workdir, previous[0], 'checkpoints'))
                )[:2] == [str(STEPS), str(2 * STEPS)]


# 5. Another data.path is accepted for the same images only.

def test_another_data_path_resumes_only_with_the_same_images(tmp_path):
  from tests.test_input_pipeline import write_idx_dir
  same, copy, other = (str(tmp_path / n) for n in ('a', 'copy', 'other'))
  write_idx_dir(same)
  shutil.copytree(same, copy)
  write_idx_dir(other, seed=1)
  workdir = str(tmp_path / 'run')
  config = test_config.get_config()
  config.data.name, config.data.path = 'idx', same
  config.data.num_valid, config.train.batch_size = 5, 5
  config.train.num_epochs = 1
  train.train_and_evaluate(config, workdir)
  config.data.path, config.train.num_epochs = copy, 2  # the same files
  train.train_and_evaluate(config, workdir)
  steps = checkpoints.Checkpoints(workdir, 3).steps()
  assert steps == [5, 10]
  config.data.path, config.train.num_epochs = other, 3
  with pytest.raises(errors.ConfigError, match='data.path'):
    train.train_and_evaluate(config, workdir)
  assert checkpoints.Checkpoints(workdir, 3).steps() == steps


def test_a_config_json_rewritten_by_hand_does_not_let_another_config_resume(
    workdir):
  path = os.path.join(workdir, workdirs.CONFIG_FILE)
  saved = json.load(open(path))
  saved['train']['learning_rate'] = 5e-4
  json.dump(saved, open(path, 'w'))
  config = test_config.get_config()
  config.train.num_epochs = 3
  config.train.learning_rate = 5e-4
  with pytest.raises(errors.ConfigError, match=r'train\.learning_rate'):
    train.train_and_evaluate(config, workdir)
  assert checkpoints.Checkpoints(workdir, 3).steps() == [STEPS, 2 * STEPS]
