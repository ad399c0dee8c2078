"""The sweep runner loses nothing: a SIGTERM or Ctrl-C stops its training
children (each saves a checkpoint) and so does a SIGKILL of the runner,
instead of leaving them running and holding their workdirs; a point counts
as finished only when its eval.json was measured at the budget asked for
now; a point another process is using is waited for, not failed; and
runners sharing one root divide its points and keep each other's records."""

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


def _wait_for(predicate, proc, timeout=240, output=None):
  """Waits until ``predicate()``; fails with the end of the output (its
  file, ``output``, or else the pipe) if ``proc`` ends first."""
  deadline = time.time() + timeout
  while time.time() < deadline:
    if predicate():
      return
    assert proc.poll() is None, (
        output.read_text() if output else proc.communicate()[0])[-3000:]
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


def _runner(sweep, root, out_path, *flags):
  """A run_sweep process writing its output to ``out_path``."""
  return subprocess.Popen(
      [sys.executable, '-m', 'experiments.run_sweep', f'--sweep={sweep}',
       f'--root={root}', '--devices=cpu', *flags],
      cwd=ROOT, stdout=open(out_path, 'w'), stderr=subprocess.STDOUT)


def _alive(pid: int) -> bool:
  """Whether ``pid`` runs (a zombie nobody reaped yet does not)."""
  try:
    with open(f'/proc/{pid}/stat') as f:
      return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
  except OSError:
    return False


def _lock_owner(workdir):
  """The pid written in the workdir's lock file, or None."""
  try:
    return int(open(os.path.join(workdir, workdirs.LOCK_FILE)).read().split()[0])
  except (OSError, ValueError, IndexError):
    return None


def _trained_a_step(workdir):
  folder = os.path.join(workdir, 'checkpoints')
  return os.path.isdir(folder) and any(n.isdigit() for n in os.listdir(folder))


@pytest.mark.skipif(not sys.platform.startswith('linux'),
                    reason='children die with the runner on Linux')
def test_killing_the_runner_stops_its_child_and_a_rerun_resumes(tmp_path):
  sweep = tmp_path / 'tiny_sweep.py'
  sweep.write_text(TINY_SWEEP)
  root = str(tmp_path / 'root')
  workdir = os.path.join(root, 'kind=vae')
  flags = ('--set=train.num_epochs=500',)
  children = []
  runner = _runner(sweep, root, tmp_path / 'first.out', *flags)
  rerun = None
  try:
    _wait_for(lambda: _trained_a_step(workdir), runner,
              output=tmp_path / 'first.out')
    children.append(_lock_owner(workdir))
    runner.kill()  # SIGKILL: the runner cannot pass anything on
    runner.wait()
    rerun = _runner(sweep, root, tmp_path / 'rerun.out', *flags)
    deadline = time.time() + 60
    while _alive(children[0]) and time.time() < deadline:
      time.sleep(0.1)
    assert not _alive(children[0]), 'the training child outlived its runner'
    # The rerun trains the point itself (its own child holds the workdir).
    _wait_for(lambda: _lock_owner(workdir) not in (None, children[0]) and
              _alive(_lock_owner(workdir)), rerun,
              output=tmp_path / 'rerun.out')
    children.append(_lock_owner(workdir))
    rerun.send_signal(signal.SIGTERM)
    rerun.wait(timeout=120)
  finally:
    for proc in (runner, rerun):
      if proc and proc.poll() is None:
        proc.kill()
    for child in children:
      if child and _alive(child):
        os.kill(child, signal.SIGKILL)
  out = (tmp_path / 'rerun.out').read_text()
  assert rerun.returncode == sweeps.EXIT_INTERRUPTED, out[-3000:]
  assert 'failed' not in out.replace('0 failed', ''), out[-3000:]
  status = json.load(open(os.path.join(root, sweeps.STATUS_FILE)))
  assert status['kind=vae']['status'] == 'interrupted'


def test_a_point_another_process_is_using_is_waited_for_not_failed(tmp_path):
  sweep = tmp_path / 'tiny_sweep.py'
  sweep.write_text(TINY_SWEEP)
  root = str(tmp_path / 'root')
  workdir = os.path.join(root, 'kind=vae')
  out_path = tmp_path / 'runner.out'
  with workdirs.locked(workdir):  # as an evae_jax run in that workdir would
    runner = _runner(sweep, root, out_path, '--set=train.num_epochs=1')
    try:
      _wait_for(lambda: 'running elsewhere' in out_path.read_text(), runner,
                output=out_path)
      _eval_json(workdir, 1)  # the other process finishes the point
    except BaseException:
      runner.kill()
      raise
  try:
    runner.wait(timeout=60)
  finally:
    if runner.poll() is None:
      runner.kill()
  out = out_path.read_text()
  assert runner.returncode == 0, out[-3000:]
  assert f'pid {os.getpid()} ' in out, out[-3000:]  # who has the point
  status = json.load(open(os.path.join(root, sweeps.STATUS_FILE)))
  assert status['kind=vae']['status'] == 'done'


def test_two_runners_on_one_root_divide_the_points_and_both_succeed(tmp_path):
  sweep = tmp_path / 'tiny_sweep.py'
  sweep.write_text(TINY_SWEEP)
  root = str(tmp_path / 'root')
  flags = ('--set=train.num_epochs=1', '--seeds=2', '--workers=1')
  runners = [_runner(sweep, root, tmp_path / f'{i}.out', *flags)
             for i in range(2)]
  try:
    for runner in runners:
      runner.wait(timeout=240)
  finally:
    for runner in runners:
      if runner.poll() is None:
        runner.kill()
  outs = [(tmp_path / f'{i}.out').read_text() for i in range(2)]
  assert [r.returncode for r in runners] == [0, 0], outs
  names = ['kind=vae,seed=0', 'kind=vae,seed=1']
  for name in names:  # trained by one runner, not both
    assert sum(out.count(f'start {name}\n') for out in outs) == 1, outs
  status = json.load(open(os.path.join(root, sweeps.STATUS_FILE)))
  for name in names:
    assert status[name]['status'] == 'done', status[name]
    assert not {'returncode', 'reason', 'output_tail'} & set(status[name])


def test_runners_sharing_a_status_file_keep_each_others_records(tmp_path):
  first, second = sweeps._Status(str(tmp_path)), sweeps._Status(str(tmp_path))
  first.set('a', {'status': 'done'})
  second.set('b', {'status': 'failed', 'reason': 'error: x'})
  with open(tmp_path / sweeps.STATUS_FILE) as f:
    assert json.load(f) == {'a': {'status': 'done'},
                            'b': {'status': 'failed', 'reason': 'error: x'}}


def test_a_failed_point_found_finished_keeps_no_failure_fields(
    tmp_path, monkeypatch):
  sweep = tmp_path / 'tiny_sweep.py'
  sweep.write_text(TINY_SWEEP)
  root = str(tmp_path / 'root')
  os.makedirs(root)
  with open(os.path.join(root, sweeps.STATUS_FILE), 'w') as f:
    json.dump({'kind=vae': {'status': 'failed', 'mode': 'train',
                            'returncode': 2, 'reason': 'error: busy',
                            'output_tail': '...'}}, f)
  _eval_json(os.path.join(root, 'kind=vae'), 1)  # finished meanwhile
  monkeypatch.setattr(sweeps, 'run_point', None)  # nothing may run
  points = sweeps.run_sweep(str(sweep), root, ['--config.train.num_epochs=1'],
                            devices='cpu')
  assert points == {'kind=vae': {'status': 'done', 'skipped': True}}


def test_a_point_is_running_elsewhere_while_claimed_or_its_workdir_held(
    tmp_path):
  sweep = tmp_path / 'tiny_sweep.py'
  sweep.write_text(TINY_SWEEP)
  root = str(tmp_path / 'root')
  assert sweeps.running_elsewhere(root, 'kind=vae') == ''
  with workdirs.locked(os.path.join(root, 'kind=vae')):  # as evae_jax does
    assert sweeps.running_elsewhere(root, 'kind=vae').startswith(
        f'pid {os.getpid()} on ')
    assert sweeps.plan(str(sweep), root) == [('kind=vae', 'running elsewhere')]
  with sweeps._claimed(root, 'kind=vae') as holder:
    assert holder == ''
    assert sweeps.running_elsewhere(root, 'kind=vae').startswith(
        f'sweep runner pid {os.getpid()} on ')
  assert sweeps.running_elsewhere(root, 'kind=vae') == ''
