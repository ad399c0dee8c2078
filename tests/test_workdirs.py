"""evae_jax.storage.workdirs: a workdir is tied to one config, earlier runs are
moved aside rather than lost, and only process 0 writes."""

import json
import os

import pytest

from configs import test as test_config
from evae_jax import errors
from evae_jax import configuration
from evae_jax.runtime import sharding
from evae_jax.storage import workdirs


def test_prepare_records_the_config_and_allows_resumable_changes(tmp_path):
  workdir = str(tmp_path / 'run')
  config = test_config.get_config()
  workdirs.prepare(config, workdir)
  saved = json.load(open(os.path.join(workdir, workdirs.CONFIG_FILE)))
  assert saved['model']['latent_dim'] == config.model.latent_dim
  config.train.num_epochs += 5  # more epochs: the same run, resumed
  config.train.process_id = 1   # a launch detail
  workdirs.prepare(config, workdir)
  saved = json.load(open(os.path.join(workdir, workdirs.CONFIG_FILE)))
  assert saved['train']['num_epochs'] == config.train.num_epochs


def test_a_different_model_is_refused_then_moved_aside_on_request(tmp_path):
  workdir = str(tmp_path / 'run')
  workdirs.prepare(test_config.get_config(), workdir)
  open(os.path.join(workdir, 'metrics.jsonl'), 'w').write('{"step": 1}\n')
  other = test_config.get_config()
  other.model.latent_dim += 2
  with pytest.raises(errors.ConfigError, match='model.latent_dim'):
    workdirs.prepare(other, workdir)
  assert os.path.exists(os.path.join(workdir, 'metrics.jsonl'))  # untouched
  other.train.overwrite = True
  workdirs.prepare(other, workdir)
  previous = [n for n in os.listdir(workdir) if n.startswith('previous-')]
  assert len(previous) == 1
  assert os.path.exists(os.path.join(workdir, previous[0], 'metrics.jsonl'))
  assert not os.path.exists(os.path.join(workdir, 'metrics.jsonl'))


def test_other_processes_check_but_never_write(tmp_path, monkeypatch):
  monkeypatch.setattr(sharding, 'is_lead', lambda: False)
  fresh = str(tmp_path / 'fresh')
  workdirs.prepare(test_config.get_config(), fresh)
  assert not os.path.exists(fresh)  # process 0 creates it
  monkeypatch.undo()
  used = str(tmp_path / 'used')
  workdirs.prepare(test_config.get_config(), used)
  before = sorted(os.listdir(used))
  monkeypatch.setattr(sharding, 'is_lead', lambda: False)
  other = test_config.get_config()
  other.model.latent_dim += 2
  with pytest.raises(errors.ConfigError, match='model.latent_dim'):
    workdirs.prepare(other, used)
  other.train.overwrite = True
  workdirs.prepare(other, used)  # process 0 does the moving
  assert sorted(os.listdir(used)) == before


def test_evaluation_config_may_differ_only_in_evaluation_fields(tmp_path):
  workdir = str(tmp_path / 'run')
  config = test_config.get_config()
  workdirs.prepare(config, workdir)
  config.eval.iw_samples = 7
  workdirs.check_evaluation_config(config, workdir)
  config.model.kind = 'vae'
  with pytest.raises(errors.ConfigError, match='model.kind'):
    workdirs.check_evaluation_config(config, workdir)


@pytest.mark.parametrize('field,value', [
    ('train.num_devices', 1), ('train.checkpoint_every_steps', 13),
    ('train.progress_bar', True), ('data.path', '/elsewhere/the-same-files')])
def test_how_a_run_runs_may_change_on_resume_and_the_change_is_logged(
    tmp_path, caplog, field, value):
  """These fields say how the run is carried out, not which run it is."""
  import logging
  workdir = str(tmp_path / 'run')
  config = test_config.get_config()
  workdirs.prepare(config, workdir)
  section, name = field.split('.')
  before = config[section][name]
  config[section][name] = value
  with caplog.at_level(logging.INFO):
    workdirs.prepare(config, workdir)
  assert field in caplog.text and repr(value) in caplog.text
  assert repr(before) in caplog.text
  saved = json.load(open(os.path.join(workdir, workdirs.CONFIG_FILE)))
  assert saved[section][name] == value
  assert not [n for n in os.listdir(workdir) if n.startswith('previous-')]


def _tree_digest(directory):
  import hashlib
  out = {}
  for base, _, names in os.walk(directory):
    for name in names:
      if name != workdirs.LOCK_FILE:
        path = os.path.join(base, name)
        out[os.path.relpath(path, directory)] = hashlib.sha256(
            open(path, 'rb').read()).hexdigest()
  return out


@pytest.mark.parametrize('killed_at_move', [1, 2, 3, 6])
def test_a_kill_in_the_middle_of_an_overwrite_loses_and_mixes_nothing(
    tmp_path, killed_at_move):
  """train.overwrite=True moves the earlier run aside; SIGKILL the process
  at its n-th move (a real kill, at that exact moment), then rerun the
  same command: the earlier run is whole in one previous-<time>/ and
  nothing of it is left in the workdir to mix with the new run."""
  import subprocess
  import sys
  from tests.conftest import ROOT
  workdir = str(tmp_path / 'run')
  workdirs.prepare(test_config.get_config(), workdir)
  for name, text in (('metrics.jsonl', '{"step": 26}\n'),
                     ('checkpoints/26/data', 'arrays'),
                     ('samples.png', 'png'), ('tensorboard/events', 'ev')):
    os.makedirs(os.path.dirname(os.path.join(workdir, name)), exist_ok=True)
    open(os.path.join(workdir, name), 'w').write(text)
  before = _tree_digest(workdir)
  child = (
      'import os, signal\n'
      'from configs import test\n'
      'from evae_jax.storage import files, workdirs\n'
      'rename, calls = files.rename, []\n'
      'def killed_at_a_move(source, target):\n'
      '  calls.append(source)\n'
      f'  if len(calls) == {killed_at_move}:\n'
      '    os.kill(os.getpid(), signal.SIGKILL)\n'
      '  rename(source, target)\n'
      'files.rename = killed_at_a_move\n'
      'config = test.get_config()\n'
      'config.model.latent_dim += 2\n'
      'config.train.overwrite = True\n'
      f'workdirs.prepare(config, {workdir!r})\n')
  proc = subprocess.run([sys.executable, '-c', child], cwd=ROOT,
                        capture_output=True, text=True, timeout=120)
  assert proc.returncode == -9, proc.stderr[-2000:]
  other = test_config.get_config()
  other.model.latent_dim += 2
  other.train.overwrite = True
  workdirs.prepare(other, workdir)  # the same command, rerun
  previous = [n for n in os.listdir(workdir) if n.startswith('previous-')]
  assert len(previous) == 1, os.listdir(workdir)
  assert _tree_digest(os.path.join(workdir, previous[0])) == before
  assert set(os.listdir(workdir)) - {workdirs.LOCK_FILE} == {
      workdirs.CONFIG_FILE, previous[0]}


def test_a_config_saved_before_a_field_existed_resumes_and_evaluates(tmp_path):
  """A workdir of an earlier version has no entry for a field added since
  (the remedies' train.free_bits, ...): its default is what it ran with,
  so training resumes and evaluation accepts it; a real change still not."""
  workdir = str(tmp_path / 'run')
  config = test_config.get_config()
  workdirs.prepare(config, workdir)
  path = os.path.join(workdir, workdirs.CONFIG_FILE)
  saved = json.load(open(path))
  for field in ('free_bits', 'free_bits_group', 'kl_warmup_steps',
                'kl_warmup_start'):
    del saved['train'][field]
  json.dump(saved, open(path, 'w'))
  workdirs.prepare(test_config.get_config(), workdir)   # no ConfigError
  workdirs.check_evaluation_config(test_config.get_config(), workdir)
  changed = test_config.get_config()
  changed.train.free_bits = 0.5
  with pytest.raises(errors.ConfigError, match='free_bits'):
    workdirs.prepare(changed, workdir)
