"""Nothing lost in one workdir: a run is finished only when its last file
is written, a signal is never swallowed, a damaged step record falls back,
the checkpoints' own config outranks an edited config.json, a trained model
loads without its data, and the workdir lock survives its file's deletion."""

import glob
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import evae_jax
from configs import test as test_config
from evae_jax import errors
from evae_jax.storage import checkpoints
from evae_jax.storage import workdirs
from evae_jax.train import loop as train
from tests.conftest import ROOT
from tests.conftest import cli

STEPS = 1300 // 50  # steps per epoch of configs/test.py


def _main(*flags, timeout=300):
  """``python -m evae_jax.main`` with exactly ``flags`` (no --config)."""
  return subprocess.run([sys.executable, '-m', 'evae_jax.main', *flags],
                        cwd=ROOT, capture_output=True, text=True,
                        timeout=timeout)


@pytest.fixture(scope='module')
def finished(tmp_path_factory):
  """A workdir of configs/test.py that the command line trained to the end."""
  workdir = str(tmp_path_factory.mktemp('finished') / 'run')
  result = cli(workdir)
  assert result.returncode == 0, result.stderr[-3000:]
  return workdir


@pytest.fixture
def run(finished, tmp_path):
  """A copy of ``finished`` for one test to change."""
  workdir = str(tmp_path / 'run')
  shutil.copytree(finished, workdir)
  return workdir


def test_a_kill_during_the_end_of_run_figures_is_finished_by_the_rerun(run):
  # A SIGKILL after samples.png, while reconstructions.png was written
  # (figures are renamed into place whole, so they are simply absent).
  for name in ('reconstructions.png', 'manifolds.png'):
    os.remove(os.path.join(run, name))
  metrics = open(os.path.join(run, 'metrics.jsonl')).read()
  steps = checkpoints.Checkpoints(run, 3).steps()
  result = cli(run)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'already finished' not in result.stdout
  for name in ('reconstructions.png', 'manifolds.png'):
    assert os.path.isfile(os.path.join(run, name))
  assert open(os.path.join(run, 'metrics.jsonl')).read() == metrics
  assert checkpoints.Checkpoints(run, 3).steps() == steps  # not retrained
  again = cli(run)
  assert again.returncode == 0 and 'already finished' in again.stdout


_SWALLOWED = textwrap.dedent('''
    import os, signal, sys, time
    sys.argv = ['main', '--workdir=%(workdir)s', '--mode=sample']
    from evae_jax import main as entry
    from evae_jax.evaluate import report

    class DeliversInside:
      def __del__(self):  # as JAX's GC callbacks do: the raise is ignored
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):
          pass

    def sample_workdir(*args):
      DeliversInside()
      deadline = time.time() + 20
      while time.time() < deadline:  # batches of samples
        time.sleep(0.01)
      print('sampled all', flush=True)

    report.sample_workdir = sample_workdir
    entry.app.run(entry.main, flags_parser=entry.command_line.parse_flags)
''')


def test_a_signal_delivered_inside_a_finaliser_still_stops_the_run(
    finished, tmp_path):
  script = tmp_path / 'swallowed.py'
  script.write_text(_SWALLOWED % {'workdir': finished})
  start = time.time()
  result = subprocess.run([sys.executable, str(script)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 75, result.stdout + result.stderr[-3000:]
  assert 'sampled all' not in result.stdout  # stopped, not run to the end
  assert 'interrupted: SIGTERM' in result.stderr
  assert time.time() - start < 60


def _flip_a_bit_in_the_record(workdir, step):
  path = os.path.join(workdir, 'checkpoints', str(step), 'evae_jax',
                      'metadata')
  raw = open(path, 'rb').read()
  assert b'kl_warmup_start' in raw
  open(path, 'wb').write(raw.replace(b'kl_warmup_start', b'kl_warmup_stqrt'))


def test_a_damaged_step_record_is_moved_aside_not_a_config_change(run):
  _flip_a_bit_in_the_record(run, 2 * STEPS)
  result = cli(run, '--config.train.num_epochs=3')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'another config' not in result.stderr
  assert f'Resumed from the checkpoint at step {STEPS}' in result.stderr
  assert glob.glob(os.path.join(run, 'checkpoints', f'{2 * STEPS}.corrupt-*'))
  assert checkpoints.Checkpoints(run, 3).steps()[-1] == 3 * STEPS


def test_a_record_without_its_own_checksum_still_restores(run):
  # As an earlier version wrote it: the checksum of the arrays only.
  path = os.path.join(run, 'checkpoints', str(2 * STEPS), 'evae_jax',
                      'metadata')
  record = json.load(open(path))
  assert record.pop('record_checksum', None)
  json.dump(record, open(path, 'w'))
  m = evae_jax.load(run)
  assert m.step == 2 * STEPS


EDITS = [('model', 'activation', 'tanh'), (None, 'seed', 7),
         ('model', 'hidden_dim', 8)]


def _edit_config_json(workdir, section, field, value):
  path = os.path.join(workdir, workdirs.CONFIG_FILE)
  config = json.load(open(path))
  (config[section] if section else config)[field] = value
  json.dump(config, open(path, 'w'), indent=2)


@pytest.mark.parametrize('section,field,value', EDITS)
def test_a_config_json_edited_after_training_is_refused(run, section, field,
                                                        value):
  _edit_config_json(run, section, field, value)
  name = f'{section}.{field}' if section else field
  with pytest.raises(errors.ConfigError, match=name):
    evae_jax.load(run)
  before = sorted(os.listdir(run))
  for mode in ('evaluate', 'sample'):
    result = _main(f'--workdir={run}', f'--mode={mode}')
    assert result.returncode == 2, result.stderr[-3000:]
    assert name in result.stderr and 'config.json' in result.stderr
    assert 'Traceback' not in result.stderr
    assert 'Requested shape' not in result.stderr
  with_config = cli(run, mode='evaluate')
  assert with_config.returncode == 2, with_config.stderr[-3000:]
  assert name in with_config.stderr and 'config.json' in with_config.stderr
  assert sorted(os.listdir(run)) == before  # no eval.json, no samples


def test_config_json_may_still_change_how_a_run_is_scored(run):
  _edit_config_json(run, 'eval', 'iw_samples', 3)
  assert evae_jax.load(run).config.eval.iw_samples == 3


def test_a_model_loads_after_its_data_moved(tmp_path):
  data = tmp_path / 'images.npz'
  rs = np.random.RandomState(0)
  np.savez(data, train=rs.randint(0, 256, (120, 6, 5)).astype(np.uint8),
           test=rs.randint(0, 256, (20, 6, 5)).astype(np.uint8))
  config = test_config.get_config()
  config.data.name, config.data.path = 'npz', str(data)
  config.data.num_valid = 20
  config.train.batch_size = 20
  config.train.num_epochs = 1
  workdir = str(tmp_path / 'run')
  train.train_and_evaluate(config, workdir)
  os.remove(data)
  m = evae_jax.load(workdir)
  assert m.image_shape == (6, 5)
  x = rs.randint(0, 256, (3, 6, 5)).astype(np.uint8)
  assert m.encode(x)[0].shape == (3, 6)
  assert m.sample(0, 4).shape == (4, 6, 5)
  with pytest.raises(errors.DataError) as raised:
    m.splits  # pylint: disable=pointless-statement
  message = str(raised.value)
  assert 'evae_jax.load(' in message and "overrides={'data.path'" in message
  assert '--config.data.path' not in message


def test_a_deleted_lock_file_does_not_let_a_second_process_in(tmp_path):
  workdir = str(tmp_path / 'w')
  code = ('import sys, time; sys.path.insert(0, %r)\n'
          'from evae_jax.storage import workdirs\n'
          'with workdirs.locked(%r):\n'
          '  print("locked", flush=True); time.sleep(60)\n') % (ROOT, workdir)
  proc = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE,
                          text=True)
  try:
    assert proc.stdout.readline().strip() == 'locked'
    os.remove(os.path.join(workdir, workdirs.LOCK_FILE))
    with pytest.raises(errors.WorkdirError, match='Another evae_jax process'):
      with workdirs.locked(workdir):
        pass
  finally:
    proc.kill()
    proc.wait()
  with workdirs.locked(workdir):
    pass


def test_a_run_refused_for_bad_data_leaves_nothing(tmp_path):
  workdir = str(tmp_path / 'run')
  result = cli(workdir, '--config.data.name=npz',
               f'--config.data.path={tmp_path / "missing.npz"}')
  assert result.returncode == 2, result.stderr[-3000:]
  assert 'is not a file' in result.stderr
  assert not os.path.exists(workdir)


def test_a_run_refused_in_an_existing_empty_workdir_leaves_it_empty(tmp_path):
  workdir = tmp_path / 'run'
  workdir.mkdir()
  result = cli(str(workdir), '--config.data.name=npz',
               f'--config.data.path={tmp_path / "missing.npz"}')
  assert result.returncode == 2, result.stderr[-3000:]
  assert os.listdir(workdir) == []


def test_an_unknown_override_without_config_is_one_paragraph(finished):
  flag = '--config.eval.nonexistent_field=True'
  for given in ([], ['--config=configs/test.py']):
    result = _main(*given, f'--workdir={finished}', '--mode=evaluate', flag)
    assert result.returncode == 2, result.stderr[-3000:]
    assert 'bad value or unknown field' in result.stderr
    assert 'nonexistent_field' in result.stderr
    assert 'Traceback' not in result.stderr


def test_evaluating_under_another_seed_is_refused(finished):
  """eval.json records the config's seed, and the tables pair points by it:
  a --config.seed that is not the trained one would file the model under
  another seed."""
  result = cli(finished, '--config.seed=7', mode='evaluate')
  assert result.returncode == 2, result.stderr[-3000:]
  assert 'seed' in result.stderr and 'Traceback' not in result.stderr


def test_processes_of_one_launch_with_different_configs_are_refused(tmp_path):
  from tests.conftest import free_port  # pylint: disable=g-import-not-at-top
  port = free_port()
  start = time.time()
  procs = [subprocess.Popen(
      [sys.executable, '-m', 'evae_jax.main', '--config=configs/test.py',
       f'--workdir={tmp_path / "run"}', '--config.train.distributed=True',
       f'--config.train.coordinator_address=127.0.0.1:{port}',
       '--config.train.num_processes=2', f'--config.train.process_id={i}',
       f'--config.model.hidden_dim={16 + 8 * i}'],
      cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
           for i in range(2)]
  try:
    outs = [p.communicate(timeout=200)[0] for p in procs]
  finally:
    for p in procs:
      p.kill()
  for p, out in zip(procs, outs):
    assert p.returncode == 2, out[-3000:]
    assert 'different configs' in out and 'process(es) 1' in out
    assert 'Traceback' not in out
  assert time.time() - start < 100
  assert not os.path.exists(tmp_path / 'run')
