"""The training step, the training loop, resume, and the CLI end to end."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import test as test_config
from evae_jax import errors
from evae_jax.storage import checkpoints
from evae_jax import data as input_pipeline
from evae_jax.train import metric_writers
from evae_jax.train import loop as train
from evae_jax import state as state_lib
from evae_jax.train import steps
from tests.conftest import ROOT


def _tiny_state(kind='evae', likelihood='bernoulli'):
  config = test_config.get_config()
  config.model.kind = kind
  config.model.likelihood = likelihood
  state = state_lib.create_train_state(config, 64, jax.random.PRNGKey(0))
  return config, state


@pytest.mark.parametrize('kind,likelihood', [('evae', 'bernoulli'),
                                             ('vae', 'bernoulli'),
                                             ('evae', 'gaussian')])
def test_train_step_lowers_the_loss(kind, likelihood):
  config, state = _tiny_state(kind, likelihood)
  splits = input_pipeline.load(config.data)
  batch = input_pipeline.preprocess(jnp.asarray(splits.train[:50]), None,
                                    'none')
  rng = jax.random.PRNGKey(1)
  _, first = steps.train_step(state, batch, rng)
  for _ in range(30):
    state, metrics = steps.train_step(state, batch, rng)
  assert metrics['loss'] < first['loss'] - 1.0
  assert int(state.step) == 30
  for value in metrics.values():
    assert np.isfinite(value)


def _run_cli(workdir, *overrides, config='configs/test.py'):
  return subprocess.run(
      [sys.executable, '-m', 'evae_jax.main', f'--config={config}',
       f'--workdir={workdir}', *overrides],
      cwd=ROOT, capture_output=True, text=True, timeout=300)


def _tensorboard_tags(directory):
  """Scalar and image tags in the TFRecord event files of a directory."""
  import struct
  from tensorboardX.proto import event_pb2
  tags = {'scalar': set(), 'image': set()}
  for name in os.listdir(directory):
    raw = open(os.path.join(directory, name), 'rb').read()
    offset = 0
    while offset < len(raw):
      (length,) = struct.unpack('<Q', raw[offset:offset + 8])
      event = event_pb2.Event.FromString(raw[offset + 12:offset + 12 + length])
      offset += 16 + length
      for value in event.summary.value:
        tags['image' if value.HasField('image') else 'scalar'].add(value.tag)
  return tags


def test_cli_end_to_end_and_resume(tmp_path):
  workdir = str(tmp_path / 'run')
  result = _run_cli(workdir)
  assert result.returncode == 0, result.stderr[-3000:]
  for name in ('samples.png', 'reconstructions.png', 'metrics.jsonl',
               'config.json'):
    assert os.path.getsize(os.path.join(workdir, name)) > 0, name
  steps_per_epoch = 1300 // 50
  assert checkpoints.Checkpoints(workdir, 3).steps() == [steps_per_epoch,
                                                         2 * steps_per_epoch]
  records = metric_writers.read_metrics(workdir)
  assert [r['step'] for r in records] == [26, 52]
  assert all('valid_bound' in r for r in records)
  tags = _tensorboard_tags(os.path.join(workdir, 'tensorboard'))
  assert {'valid_bound', 'train_loss'} <= tags['scalar']
  assert {'samples', 'reconstructions'} <= tags['image']
  # One event file per run: a second writer opened within the same second
  # would truncate the first (the file name holds the time in seconds).
  assert len(os.listdir(os.path.join(workdir, 'tensorboard'))) == 1

  # Rerunning with more epochs resumes from step 52 instead of starting over.
  result = _run_cli(workdir, '--config.train.num_epochs=3')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'Resumed from the checkpoint at step 52' in result.stderr
  assert [r['step'] for r in metric_writers.read_metrics(workdir)] == [26, 52, 78]
  assert len(os.listdir(os.path.join(workdir, 'tensorboard'))) == 2

  # A different model in the same workdir is refused, and nothing is touched.
  before = open(os.path.join(workdir, 'metrics.jsonl')).read()
  result = _run_cli(workdir, '--config.model.latent_dim=8')
  assert result.returncode == 2
  assert 'model.latent_dim' in result.stderr and 'Traceback' not in result.stderr
  assert open(os.path.join(workdir, 'metrics.jsonl')).read() == before


def test_cli_rejects_invalid_epitomes(tmp_path):
  result = _run_cli(str(tmp_path / 'bad'), '--config.model.epitome_size=9')
  assert result.returncode == 2
  assert 'K must satisfy 1 <= K <= D' in result.stderr
  assert 'epitome_size=6' in result.stderr
  assert 'Traceback' not in result.stderr


def _params_after(config, workdir):
  train.train_and_evaluate(config, workdir)
  state = state_lib.create_train_state(config, 64, jax.random.PRNGKey(0))
  state, _, _ = state_lib.restore(checkpoints.Checkpoints(workdir, 3), state, 1300)
  return {'params': state.params, 'opt_state': state.opt_state,
          'step': state.step}


def test_resume_is_bit_identical(tmp_path):
  config = test_config.get_config()
  config.train.checkpoint_every_steps = 10
  straight = _params_after(config, str(tmp_path / 'straight'))

  interrupted = str(tmp_path / 'interrupted')
  config.train.num_epochs = 1
  _params_after(config, interrupted)
  config.train.num_epochs = 2
  resumed = _params_after(config, interrupted)
  assert int(resumed['step']) == int(straight['step']) == 52
  for a, b in zip(jax.tree_util.tree_leaves(straight),
                  jax.tree_util.tree_leaves(resumed)):
    np.testing.assert_array_equal(a, b)


def test_validation_bound_improves(tmp_path):
  config = test_config.get_config()
  config.train.num_epochs = 6
  train.train_and_evaluate(config, str(tmp_path))
  bounds = [r['valid_bound'] for r in metric_writers.read_metrics(str(tmp_path))]
  assert bounds[-1] > bounds[0] + 1.0


def test_metric_writers_do_not_import_torch(tmp_path):
  """tensorboardX imports PyTorch wherever it is installed (seconds of
  start-up for nothing here): a stand-in torch package must stay unloaded."""
  import subprocess
  import sys
  fake = tmp_path / 'torch'
  fake.mkdir()
  (fake / '__init__.py').write_text('LOADED = True\n')
  code = ('import sys, evae_jax.train.metric_writers as m; '
          'assert "torch" not in sys.modules, "torch was imported"; '
          'm.SummaryWriter(sys.argv[1]).close()')
  run = subprocess.run([sys.executable, '-c', code, str(tmp_path / 'tb')],
                       env={**os.environ, 'PYTHONPATH': str(tmp_path)},
                       capture_output=True, text=True, timeout=120)
  assert run.returncode == 0, run.stderr[-2000:]


def test_training_ends_with_a_summary_and_the_next_command(tmp_path):
  from tests.conftest import cli
  run = cli(str(tmp_path / 'run'), '--config.train.num_epochs=1')
  assert run.returncode == 0, run.stderr[-2000:]
  assert 'validation bound' in run.stdout and 'metrics.jsonl' in run.stdout
  assert '--mode=evaluate' in run.stdout
  assert '\r' not in run.stderr  # no progress bar redraws in a log file


def _files_and_times(directory):
  return {os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns
          for d, _, names in os.walk(directory) for f in names
          if f != '.lock'}


def test_rerunning_a_finished_run_says_so_and_touches_nothing(tmp_path,
                                                              capsys):
  workdir = str(tmp_path / 'run')
  config = test_config.get_config()
  config.train.num_epochs = 1
  first = train.train_and_evaluate(config, workdir)
  before = _files_and_times(workdir)
  capsys.readouterr()
  again = train.train_and_evaluate(config, workdir)
  out = capsys.readouterr().out
  assert 'already finished at epoch 1' in out
  assert 'train.num_epochs' in out
  assert _files_and_times(workdir) == before  # no PNG, event file or record
  assert again['valid_bound'] == pytest.approx(first['valid_bound'])


def test_a_run_that_fails_before_training_pins_no_config(tmp_path):
  """Its corrected rerun (what the error message suggests) must not be
  refused as "a run with a different config"."""
  workdir = str(tmp_path / 'run')
  config = test_config.get_config()
  config.train.num_epochs = 1
  config.data.num_valid = 10 ** 6  # more than the digits have
  with pytest.raises(errors.DataError):
    train.train_and_evaluate(config, workdir)
  assert not os.path.exists(os.path.join(workdir, 'config.json'))
  config.data.num_valid = 200
  assert np.isfinite(train.train_and_evaluate(config, workdir)['valid_bound'])


def test_a_run_stopped_before_its_final_figures_gets_them_on_rerun(
    tmp_path, capsys):
  """Stopped between the last checkpoint and the figures (SIGTERM there
  says "rerun"): the rerun writes them instead of calling the run done."""
  workdir = str(tmp_path / 'run')
  config = test_config.get_config()
  config.train.num_epochs = 1
  train.train_and_evaluate(config, workdir)
  os.remove(os.path.join(workdir, 'samples.png'))
  capsys.readouterr()
  train.train_and_evaluate(config, workdir)
  assert 'already finished' not in capsys.readouterr().out
  assert os.path.exists(os.path.join(workdir, 'samples.png'))
