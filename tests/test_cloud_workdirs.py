"""A workdir in a bucket (``gs://``, served on the loopback by
tests/gcs_emulator.py through the real gcsfs and tensorstore clients): the
run writes every file there, resumes from there, and gives what the same run
gives in a local folder."""

import json
import math
import os
import uuid

import pytest

from configs import test as test_config
from evae_jax.storage import files
from evae_jax.train import loop as train
from evae_jax.storage import workdirs
from tests.conftest import cli

def _metrics(workdir):
  """The records of metrics.jsonl without the wall-clock speed."""
  text = files.read_text(files.join(workdir, 'metrics.jsonl'))
  return [{k: v for k, v in json.loads(line).items()
           if k != 'examples_per_sec'} for line in text.splitlines()]


def _bucket_files(workdir):
  """Paths under ``workdir`` (a gs:// URI), relative to it, read straight
  from the bucket (not through evae_jax)."""
  import gcsfs  # pylint: disable=g-import-not-at-top
  # (imported here: the gcs fixture first sets its environment variables)
  fs = gcsfs.GCSFileSystem(token='anon')
  root = workdir[len('gs://'):]
  return {p[len(root) + 1:] for p in fs.find(root)}


def test_training_resuming_and_evaluating_in_a_bucket(gcs, tmp_path):
  remote = f'{gcs}/{uuid.uuid4().hex}/run'
  local = str(tmp_path / 'run')
  config = test_config.get_config()
  config.train.num_epochs = 1
  train.train_and_evaluate(config, remote)
  config.train.num_epochs = 2
  train.train_and_evaluate(config, remote)  # resumed from the bucket
  train.train_and_evaluate(config, local)   # the same 2 epochs in one go

  # Same numbers: the bucket's run resumed exactly where it stopped (equal
  # checksums: bit-identical parameters).
  assert _metrics(remote) == _metrics(local)
  for name in ('samples.png', os.path.join('checkpoints', 'checksums.json')):
    assert files.read_bytes(files.join(remote, name)) == \
        open(os.path.join(local, name), 'rb').read(), name

  # Every file the local run wrote is in the bucket (the lock excepted:
  # object stores have none), each checkpoint complete.
  in_bucket = _bucket_files(remote)
  for folder, _, names in os.walk(local):
    for name in names:
      relative = os.path.relpath(os.path.join(folder, name), local)
      if name == workdirs.LOCK_FILE or relative.startswith(
          ('tensorboard', 'checkpoints' + os.sep)):
        continue  # event file names hold a time; checked below
      assert relative in in_bucket, relative
  steps = sorted({p.split('/')[1] for p in in_bucket
                  if p.startswith('checkpoints/') and p.split('/')[1].isdigit()})
  assert steps == sorted(os.listdir(os.path.join(local, 'checkpoints')))[:-1]
  for step in steps:
    assert f'checkpoints/{step}/commit_success.txt' in in_bucket
  events = [p for p in in_bucket if p.startswith('tensorboard/events.')]
  assert len(events) == 2  # one per training run
  tag = next(k for k in _metrics(local)[-1] if k != 'step').encode()
  assert any(tag in files.read_bytes(files.join(remote, e)) for e in events)
  assert not any(p.endswith(files.TMP_SUFFIX) for p in in_bucket)

  # The command line evaluates the bucket's workdir (its own process).
  run = cli(remote, '--config.train.num_epochs=2', mode='evaluate')
  assert run.returncode == 0, run.stderr[-2000:]
  results = json.loads(files.read_text(files.join(remote, 'eval.json')))
  assert results['step'] == 2 * 1300 // config.train.batch_size
  assert math.isfinite(results['iw_log_likelihood']['marginal']['mean'])
  assert {'report.md', 'eval_examples.npz', 'activity.png'} <= \
      _bucket_files(remote)


def test_a_changed_config_moves_the_bucket_run_aside(gcs):
  workdir = f'{gcs}/{uuid.uuid4().hex}/run'
  workdirs.prepare(test_config.get_config(), workdir)
  files.write_text(files.join(workdir, 'metrics.jsonl'), '{"step": 1}\n')
  other = test_config.get_config()
  other.model.latent_dim += 2
  other.train.overwrite = True
  workdirs.prepare(other, workdir)
  names = files.listdir(workdir)
  previous = [n for n in names if n.startswith('previous-')]
  assert sorted(names) == sorted(previous + [workdirs.CONFIG_FILE])
  moved = files.join(workdir, previous[0])
  assert files.read_text(files.join(moved, 'metrics.jsonl')) == '{"step": 1}\n'
  assert json.loads(files.read_text(files.join(
      workdir, workdirs.CONFIG_FILE)))['model']['latent_dim'] == \
      other.model.latent_dim


def test_an_unreachable_bucket_is_one_paragraph_in_every_mode(monkeypatch):
  """No credentials or no network: the object store's own exception becomes
  a WorkdirError (exit status 2, one paragraph) in evaluate and sample modes
  too, not a traceback."""
  from evae_jax import errors
  from evae_jax.evaluate import report

  def unreachable(*_):
    raise RuntimeError('Your default credentials were not found.')
  monkeypatch.setattr(files, 'isdir', unreachable)
  config = test_config.get_config()
  for call in (lambda: report.evaluate_workdir(config, 'gs://b/run'),
               lambda: report.sample_workdir(config, 'gs://b/run', 4)):
    with pytest.raises(errors.WorkdirError, match='credentials'):
      call()
