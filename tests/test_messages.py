"""One paragraph, the right words, exit 2: what the command line says when the user got
something wrong, and that a NaN stop tells the truth about the checkpoint
and the learning rate."""

import os
import subprocess
import sys

import numpy as np
import pytest

import configs.test as test_config
from evae_jax import errors
from evae_jax import data as input_pipeline
from evae_jax.train import loop as train
from evae_jax import state as state_lib
from evae_jax.train import steps
from tests.conftest import ROOT
from tests.test_input_pipeline import write_idx_dir


def _cli(*args):
  return subprocess.run([sys.executable, '-m', 'evae_jax.main', *args],
                        cwd=ROOT, capture_output=True, text=True, timeout=300)


def _one_paragraph(stderr: str) -> str:
  assert 'Traceback' not in stderr
  lines = [l for l in stderr.strip().splitlines() if l.startswith('error:')]
  assert len(lines) == 1, stderr[-3000:]
  return lines[0]


def test_stray_positional_argument_is_one_line_exit_2(tmp_path):
  result = _cli('--config=configs/test.py', f'--workdir={tmp_path}/w', 'stray')
  assert result.returncode == 2, result.stderr[-2000:]
  line = _one_paragraph(result.stderr)
  assert "'stray'" in line
  assert '--workdir: Directory' not in result.stderr  # no full flag help
  assert not os.path.exists(tmp_path / 'w')


def test_unknown_field_message_is_not_mangled(tmp_path):
  result = _cli('--config=configs/test.py', f'--workdir={tmp_path}/w',
                '--config.model.hiden_dim=3')
  assert result.returncode == 2
  line = _one_paragraph(result.stderr)
  assert 'model.hiden_dim' in line and 'Did you mean "hidden_dim"' in line
  assert '\\' not in line and '?.' not in line


def test_a_bug_inside_a_config_file_is_not_called_a_typo(tmp_path):
  path = tmp_path / 'my_config.py'
  path.write_text('import ml_collections\n\n\ndef get_config():\n'
                  '  config = ml_collections.ConfigDict()\n'
                  '  return config.no_such_field\n')
  result = _cli(f'--config={path}', f'--workdir={tmp_path}/w')
  assert result.returncode == 2
  line = _one_paragraph(result.stderr)
  assert str(path) in line and 'line 6' in line and 'no_such_field' in line
  assert 'spelling' not in line


def test_a_missing_config_file_is_named(tmp_path):
  result = _cli(f'--config={tmp_path}/nope.py', f'--workdir={tmp_path}/w')
  assert result.returncode == 2
  assert 'nope.py' in _one_paragraph(result.stderr)


def test_a_config_path_that_is_a_directory_is_called_one(tmp_path):
  result = _cli(f'--config={tmp_path}', f'--workdir={tmp_path}/w')
  assert result.returncode == 2
  line = _one_paragraph(result.stderr)
  assert 'is a directory' in line and 'does not exist' not in line


def test_a_missing_workdir_is_named_without_the_config_spelling_hint():
  result = _cli('--config=configs/test.py')
  assert result.returncode == 2
  line = _one_paragraph(result.stderr)
  assert '--workdir=DIR is missing' in line and 'spelling' not in line


@pytest.mark.parametrize('below', ['', 'sub'])
def test_a_workdir_that_is_a_file_is_called_one(tmp_path, below):
  path = tmp_path / 'a_file'
  path.write_text('mine')
  result = _cli('--config=configs/test.py', f'--workdir={path / below}')
  assert result.returncode == 2
  line = _one_paragraph(result.stderr)
  assert ('is a file' if not below else f'lies under {path}') in line
  assert 'File exists' not in line and path.read_text() == 'mine'


def test_zero_training_images_says_so(tmp_path):
  write_idx_dir(str(tmp_path), num_train=0, num_test=10)
  config = test_config.get_config()
  config.data.name, config.data.path, config.data.num_valid = (
      'idx', str(tmp_path), 5)
  with pytest.raises(errors.DataError) as info:
    input_pipeline.load(config.data)
  assert 'no images' in str(info.value) and '-1' not in str(info.value)


def _nan_message(learning_rate, checkpoint_finite):
  config = test_config.get_config()
  config.train.learning_rate = learning_rate
  metrics = {'loss': np.array([1.0, np.nan]), 'grad_norm': np.ones(2)}
  with pytest.raises(train.NonFiniteLossError) as info:
    train._check_finite(metrics, 10, config, 5,
                        checkpoint_finite=checkpoint_finite)
  return str(info.value)


def test_nan_stop_blames_the_learning_rate_only_when_it_is_high():
  assert 'step 12' in _nan_message(1.0, True)
  assert 'too high' in _nan_message(1.0, True)
  usual = _nan_message(1e-3, True)
  assert 'too high' not in usual and 'usual range' in usual


def test_nan_stop_calls_a_checkpoint_good_only_when_its_parameters_are():
  assert 'good checkpoint (step 5)' in _nan_message(1e-3, True)
  message = _nan_message(1e-3, False)
  assert 'good' not in message and 'NaN/inf parameters' in message


def test_parameters_that_became_nan_are_never_saved(tmp_path, monkeypatch):
  """Finite losses but non-finite parameters after the chunk's last update:
  training stops before a checkpoint would hold them."""
  import jax
  from evae_jax.storage import checkpoints
  original, calls = steps.train_chunks, []

  def poisoned(*args, **kwargs):
    states, metrics = original(*args, **kwargs)
    calls.append(1)
    if len(calls) == 2:  # the second epoch ends with NaN parameters
      states = states.replace(params=jax.tree_util.tree_map(
          lambda a: a * np.nan, states.params))
    return states, metrics

  monkeypatch.setattr(steps, 'train_chunks', poisoned)
  config = test_config.get_config()
  config.train.num_epochs = 3
  workdir = str(tmp_path / 'run')
  with pytest.raises(train.NonFiniteLossError, match='The parameters'):
    train.train_and_evaluate(config, workdir)
  ckpts = checkpoints.Checkpoints(workdir, 3)
  saved = ckpts.steps()
  template = state_lib.create_train_state(config, 64, jax.random.PRNGKey(0))
  restored, _, step = state_lib.restore(ckpts, template, 1300)
  ckpts.close()
  assert saved == [step] == [26]
  assert all(np.isfinite(np.asarray(leaf)).all()
             for leaf in jax.tree_util.tree_leaves(restored.params))


@pytest.mark.parametrize('mode,when,sig', [
    ('evaluate', 'start-up', 'SIGINT'), ('evaluate', 'working', 'SIGINT'),
    ('sample', 'working', 'SIGINT'), ('train', 'start-up', 'SIGINT'),
    ('evaluate', 'working', 'SIGTERM'), ('sample', 'start-up', 'SIGTERM'),
    ('train', 'working', 'SIGTERM')])
def test_ctrl_c_at_any_moment_is_one_line_and_exit_75(one_epoch_workdir, mode,
                                                      when, sig):
  """Ctrl-C (or SIGTERM, what a scheduler sends) during start-up (1 s in:
  JAX still importing) or in the middle of evaluate / sample / training's
  set-up (right after main logs the devices, before the data are loaded):
  one line, status 75 (interrupted), no traceback. The second moment is
  found from the log, not a delay: with a warm compilation cache
  evaluation can finish within any fixed delay."""
  import signal
  import time
  proc = subprocess.Popen(
      [sys.executable, '-m', 'evae_jax.main', '--config=configs/test.py',
       f'--workdir={one_epoch_workdir}', f'--mode={mode}',
       '--config.train.num_epochs=1'],
      cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  seen = ''
  if when == 'start-up':
    time.sleep(1.0)
  else:
    for line in proc.stderr:
      seen += line
      if 'JAX process 0/1' in line:
        break
  proc.send_signal(getattr(signal, sig))
  _, stderr = proc.communicate(timeout=120)
  stderr = seen + stderr
  assert proc.returncode == 75, stderr[-3000:]
  assert 'Traceback' not in stderr and 'KeyboardInterrupt' not in stderr
  assert stderr.strip().splitlines()[-1].startswith('interrupted:')


@pytest.mark.parametrize('sig', ['SIGINT', 'SIGTERM'])
def test_an_impatient_ctrl_c_burst_is_still_one_line_and_exit_75(
    one_epoch_workdir, sig):
  """Ctrl-C pressed several times (or SIGTERM sent again while the process
  shuts down): the first interrupts, the rest must not kill the process by
  the signal (status -2 or -15) while it reports and exits."""
  import signal
  import time
  proc = subprocess.Popen(
      [sys.executable, '-m', 'evae_jax.main', '--config=configs/test.py',
       f'--workdir={one_epoch_workdir}', '--mode=sample',
       '--config.train.num_epochs=1'],
      cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  for line in proc.stderr:
    if 'JAX process 0/1' in line:
      break
  for _ in range(20):
    if proc.poll() is not None:
      break
    proc.send_signal(getattr(signal, sig))
    time.sleep(0.01)
  _, stderr = proc.communicate(timeout=120)
  assert proc.returncode == 75, stderr[-3000:]
  assert 'Traceback' not in stderr
  assert stderr.strip().splitlines()[-1].startswith('interrupted:')


def test_two_overwrites_in_the_same_second_keep_both_earlier_runs(
    tmp_path, monkeypatch):
  from evae_jax.storage import workdirs
  monkeypatch.setattr(workdirs.time, 'strftime', lambda *a: '20260101-000000')
  workdir = str(tmp_path / 'run')
  for latent_dim in (6, 8, 10):  # three configs: two overwrites, one second
    config = test_config.get_config()
    config.model.latent_dim = latent_dim
    config.train.overwrite = True
    workdirs.prepare(config, workdir)
    with open(os.path.join(workdir, 'marker'), 'w') as f:
      f.write(str(latent_dim))
  backups = sorted(n for n in os.listdir(workdir) if n.startswith('previous-'))
  assert len(backups) == 2
  assert sorted(open(os.path.join(workdir, b, 'marker')).read()
                for b in backups) == ['6', '8']


@pytest.mark.parametrize('flag,meant', [
    ('--epochs=5', '--config.train.num_epochs=5'),
    ('--hidden_dim=64', '--config.model.hidden_dim=64')])
def test_a_config_field_given_as_a_flag_gets_its_spelling(tmp_path, flag,
                                                          meant):
  result = _cli('--config=configs/test.py', f'--workdir={tmp_path}/w', flag)
  assert result.returncode == 2
  line = _one_paragraph(result.stderr)
  assert f'did you mean {meant}?' in line
  assert not os.path.exists(tmp_path / 'w')


class _Finished:
  workdir = '/runs/w'
  valid_metrics = {'valid_bound': -90.0}


@pytest.mark.parametrize('installed', [True, False])
def test_the_end_of_run_line_suggests_tensorboard_only_where_installed(
    capsys, monkeypatch, installed):
  """No dependency installs TensorBoard (tensorboardX writes the events)."""
  import importlib.util
  real = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, 'find_spec', lambda name, *a: (
      (object() if installed else None) if name == 'tensorboard'
      else real(name, *a)))
  train._print_summary(_Finished(), 10)
  line = capsys.readouterr().out
  assert ('tensorboard --logdir /runs/w/tensorboard' in line) == installed
  assert ('pip install tensorboard' in line) != installed
  assert '--config.eval.quick=True' in line and 'iw_samples' not in line
