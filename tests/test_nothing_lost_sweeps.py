"""The sweep runner loses nothing: a SIGTERM or Ctrl-C stops its training
children (each saves a checkpoint) instead of leaving them running and
holding their workdirs, and a point counts as finished only when its
eval.json was measured at the budget asked for now."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from evae_jax.storage import workdirs
from experiments import sweeps
from tests.conftest import ROOT

TINY_SWEEP = ('from configs import test\n'
              'def get_config():\n  return test.get_config()\n'
              'def sweep():\n  return [{"model.kind": "vae"}]\n')


def _eval_json(workdir, epochs):
  os.makedirs(workdir, exist_ok=True)
  config = {'seed': 0, 'model': {'kind': 'vae'},
            'train': {'num_epochs': epochs, 'schedule': 'constant',
                      'burda_stages': 8}}
  with open(os.path.join(workdir, 'eval.json'), 'w') as f:
    json.dump({'checkpoint_epochs': float(epochs), 'config': config}, f)


@pytest.mark.parametrize('where', ['root', 'keep'])
def test_a_point_evaluated_at_a_smaller_budget_is_run_again(
    tmp_path, monkeypatch, where):
  sweep = tmp_path / 'tiny_sweep.py'
  sweep.write_text(TINY_SWEEP)
  root, keep = str(tmp_path / 'root'), str(tmp_path / 'kept')
  _eval_json(os.path.join(root if where == 'root' else keep, 'kind=vae'), 1)
  ran = []

  def fake_run_point(sweep_path, root, overrides, extra, env):
    del sweep_path, root, env
    ran.append((overrides, list(extra)))
    return {'status': 'interrupted'}  # nothing to keep
  monkeypatch.setattr(sweeps, 'run_point', fake_run_point)
  sweeps.run_sweep(str(sweep), root, ['--config.train.num_epochs=1'],
                   devices='cpu', keep=keep)
  assert not ran  # finished at the budget asked for: skipped
  sweeps.run_sweep(str(sweep), root, ['--config.train.num_epochs=3'],
                   devices='cpu', keep=keep)
  assert [extra for _, extra in ran] == [['--config.train.num_epochs=3']]


def _wait_for(predicate, proc, timeout=240):
  deadline = time.time() + timeout
  while time.time() < deadline:
    if predicate():
      return
    assert proc.poll() is None, proc.communicate()[0][-3000:]
    time.sleep(0.1)
  raise AssertionError('timed out')


@pytest.mark.parametrize('sig', ['SIGTERM', 'SIGINT'])
def test_stopping_the_runner_stops_its_children_and_records_them(tmp_path,
                                                                 sig):
  sweep = tmp_path / 'tiny_sweep.py'
  sweep.write_text(TINY_SWEEP)
  root = str(tmp_path / 'root')
  workdir = os.path.join(root, 'kind=vae')
  runner = subprocess.Popen(
      [sys.executable, '-m', 'experiments.run_sweep', f'--sweep={sweep}',
       f'--root={root}', '--set=train.num_epochs=500', '--devices=cpu'],
      cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  lock = os.path.join(workdir, workdirs.LOCK_FILE)
  # Training has started when the child has written its first checkpoint.
  _wait_for(lambda: os.path.isdir(os.path.join(workdir, 'checkpoints')) and
            any(n.isdigit() for n in os.listdir(
                os.path.join(workdir, 'checkpoints'))), runner)
  child = int(open(lock).read().split()[0])
  runner.send_signal(getattr(signal, sig))
  try:
    out, _ = runner.communicate(timeout=180)
  finally:
    if runner.poll() is None:
      runner.kill()
    try:
      os.kill(child, 0)
      orphan = True
      os.kill(child, signal.SIGKILL)
    except ProcessLookupError:
      orphan = False
  assert not orphan, 'the training child outlived the runner'
  assert runner.returncode == sweeps.EXIT_INTERRUPTED, out[-3000:]
  assert out.strip().splitlines()[-1].startswith('interrupted:'), out[-3000:]
  assert 'Traceback' not in out
  status = json.load(open(os.path.join(root, sweeps.STATUS_FILE)))
  assert status['kind=vae']['status'] == 'interrupted'
  with workdirs.locked(workdir):  # nobody holds the workdir
    pass
  log = open(os.path.join(root, 'kind=vae.log')).read()
  assert 'saved a checkpoint at step' in log  # the child saved first


def test_a_setting_the_schedule_ignores_does_not_count_as_another_budget(
    tmp_path):
  workdir = tmp_path / 'p'
  workdir.mkdir()
  (workdir / 'eval.json').write_text(json.dumps({
      'config': {'train': {'schedule': 'burda', 'burda_stages': 4,
                           'num_epochs': 100}},
      'checkpoint_epochs': 40.0}))
  burda = {'train.schedule': 'burda', 'train.burda_stages': 4}
  assert sweeps.finished_at(str(workdir), {**burda, 'train.num_epochs': 200})
  assert not sweeps.finished_at(str(workdir), {**burda, 'train.num_epochs': 200,
                                               'train.burda_stages': 5})
  assert not sweeps.finished_at(str(workdir), {
      'train.schedule': 'constant', 'train.burda_stages': 4,
      'train.num_epochs': 40})
