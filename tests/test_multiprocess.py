"""Two real JAX processes on this machine (CPU, gloo collectives over the
loopback), launched as a pod's workers are: the same command, each with its
own process id. They train configs/test.py with the global batch split across
them; the results must match one process, every file must be written once,
a SIGKILL of both must resume, and evaluation must work the same way."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from evae_jax.runtime import sharding
from tests.conftest import free_port
from tests.conftest import ROOT

# Epochs of the two-process run: it is killed after its second checkpoint
# (the end of epoch 2), so the rest of the run is what resume must redo.
EPOCHS = 10


def _start(workdir, *flags, mode='train', port):
  """Both processes of one launch (not waited for)."""
  return [subprocess.Popen(
      [sys.executable, '-m', 'evae_jax.main', '--config=configs/test.py',
       f'--workdir={workdir}', f'--mode={mode}', *flags,
       '--config.train.distributed=True', '--config.train.progress_bar=False',
       f'--config.train.coordinator_address=127.0.0.1:{port}',
       '--config.train.num_processes=2', f'--config.train.process_id={i}'],
      cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
          for i in range(2)]


def _two_processes(workdir, *flags, mode='train', timeout=600):
  procs = _start(workdir, *flags, mode=mode, port=free_port())
  try:
    outs = [p.communicate(timeout=timeout)[0] for p in procs]
  finally:
    for p in procs:
      p.kill()
  for p, out in zip(procs, outs):
    assert p.returncode == 0, out[-3000:]
  return outs


def _params(workdir):
  from configs import test as test_config
  from evae_jax.evaluate import report
  import jax
  config = test_config.get_config()
  config.train.num_epochs = EPOCHS  # as trained (evaluation checks it)
  state, _ = report.load_trained(config, workdir)
  return int(state.step), jax.tree_util.tree_leaves(
      jax.device_get(state.params))


def _metric_steps(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line)['step'] for line in f]


def _files(workdir):
  return sorted(os.path.relpath(os.path.join(d, f), workdir)
                for d, _, files in os.walk(workdir) for f in files
                if '/checkpoints/' not in os.path.join(d, f) + '/'
                or d.endswith('checkpoints'))


def _kill_after_two_checkpoints(procs, workdir):
  checkpoints = os.path.join(workdir, 'checkpoints')
  deadline = time.time() + 300
  while time.time() < deadline:
    steps = [n for n in (os.listdir(checkpoints)
                         if os.path.isdir(checkpoints) else []) if n.isdigit()]
    if len(steps) >= 2 or any(p.poll() is not None for p in procs):
      break
    time.sleep(0.1)
  for p in procs:
    p.send_signal(signal.SIGKILL)
    p.wait()
  assert all(p.returncode == -signal.SIGKILL for p in procs), (
      'the run ended before it could be killed')


def test_two_processes_train_resume_and_evaluate_like_one(tmp_path):
  """One launch of two processes is SIGKILLed (both) mid-run and rerun; the
  result must equal one process's uninterrupted run of the same config and
  seed, with each file written once; then both evaluate."""
  from configs import test as test_config
  from evae_jax.evaluate import report
  from evae_jax.train import loop as train
  one, two = str(tmp_path / 'one'), str(tmp_path / 'two')
  epochs = EPOCHS
  config = test_config.get_config()
  config.train.num_epochs = epochs
  config.train.progress_bar = False
  start = time.perf_counter()
  train.train_and_evaluate(config, one)
  one_seconds = time.perf_counter() - start

  flags = (f'--config.train.num_epochs={epochs}',)
  start = time.perf_counter()
  procs = _start(two, *flags, port=free_port())
  try:
    _kill_after_two_checkpoints(procs, two)
  finally:
    for p in procs:
      p.kill()
  killed_at = max(_metric_steps(two))
  outs = _two_processes(two, *flags)
  two_seconds = time.perf_counter() - start
  print(f'wall time: 1 process {one_seconds:.1f} s (in this process), '
        f'2 processes {two_seconds:.1f} s (two launches)')
  assert 'JAX process 1/2' in outs[1]
  assert 'Resumed from the checkpoint' in outs[0]

  # The same model: the 2-process mesh splits each batch over two devices
  # (another summation order), so equal to float tolerance.
  step_one, params_one = _params(one)
  step_two, params_two = _params(two)
  assert step_one == step_two
  error = max(float(np.max(np.abs(a - b)))
              for a, b in zip(params_one, params_two))
  print(f'max |param difference|: {error:.3g}')
  assert error < 1e-4

  # One copy of everything: the files of one process, each metrics record
  # once (those past the last checkpoint before the kill were dropped).
  def named(workdir):  # event file names hold the time and host
    return [f for f in _files(workdir) if 'events.out' not in f]
  assert named(two) == named(one)
  steps = _metric_steps(two)
  assert steps == _metric_steps(one) and max(steps) > killed_at

  # Evaluation in two processes: one eval.json, equal to one process's.
  _two_processes(two, mode='evaluate')
  two_eval = json.load(open(os.path.join(two, 'eval.json')))
  one_eval = report.evaluate_workdir(config, two)
  for key in ('bound', 'logsumexp_bound', 'parzen'):
    np.testing.assert_allclose(two_eval[key]['mean'], one_eval[key]['mean'],
                               rtol=1e-6)


def test_distributed_args_from_config_or_environment():
  assert sharding.distributed_args(environ={}) == {}  # JAX detects the pod
  explicit = {'coordinator_address': '10.0.0.1:1234', 'num_processes': 4,
              'process_id': 3}
  assert sharding.distributed_args(**explicit, environ={}) == explicit
  environ = {'JAX_COORDINATOR_ADDRESS': '10.0.0.1:1234',
             'JAX_NUM_PROCESSES': '4', 'JAX_PROCESS_ID': '3'}
  assert sharding.distributed_args(environ=environ) == explicit
  assert sharding.distributed_args(process_id=1, environ=environ)[
      'process_id'] == 1  # the config wins
  with pytest.raises(ValueError, match='train.process_id'):
    sharding.distributed_args('10.0.0.1:1234', 4, environ={})
  with pytest.raises(ValueError, match=r'not in \[0, 4\)'):
    sharding.distributed_args('10.0.0.1:1234', 4, 4, environ={})
  with pytest.raises(ValueError, match='integers'):
    sharding.distributed_args(environ={'JAX_NUM_PROCESSES': 'two'})


_ALONE = '''
import sys
from evae_jax import errors
from evae_jax.runtime import sharding
try:
  sharding.initialize_distributed(sys.argv[1], 2, int(sys.argv[2]),
                                  initialization_timeout=3)
except errors.ConfigError as e:
  print(e)
  sharding.os._exit(2)  # as main does: JAX would abort at its own deadline
'''


def test_a_process_whose_peers_never_connect_gets_a_clear_error_quickly():
  """Each process of a 2-process launch started alone: JAX alone waited 5
  minutes and aborted with a C++ stack trace."""
  address = f'127.0.0.1:{free_port()}'
  start = time.time()
  procs = [subprocess.Popen(
      [sys.executable, '-c', _ALONE, address if i == 0
       else f'127.0.0.1:{free_port()}', str(i)], cwd=ROOT,
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for i in range(2)]
  try:
    outs = [p.communicate(timeout=60) for p in procs]
  finally:
    for p in procs:
      p.kill()
  assert time.time() - start < 40
  for i, (p, (out, err)) in enumerate(zip(procs, outs)):
    assert p.returncode == 2, err[-2000:]
    assert out.startswith('Not all 2 processes of the launch connected '
                          'within 3 s'), out
    assert 'stack trace' not in err and 'Traceback' not in err
  assert 'this process (0) is the coordinator at ' + address in outs[0][0]
  assert 'not every one of process 1 reached it' in outs[0][0]
  assert 'this process (1) did not register with the coordinator' in (
      outs[1][0])


def test_a_negative_process_count_is_a_config_error():
  with pytest.raises(ValueError, match='at least 1'):
    sharding.distributed_args('10.0.0.1:1234', -2, 0, environ={})


def test_the_command_line_waits_train_initialization_timeout_for_peers(
    tmp_path):
  """Process 0 of a 2-process launch started alone: one paragraph, exit 2,
  after the configured wait (not JAX's 5 minutes), nothing written."""
  start = time.time()
  run = subprocess.run(
      [sys.executable, '-m', 'evae_jax.main', '--config=configs/test.py',
       f'--workdir={tmp_path / "run"}', '--config.train.distributed=True',
       f'--config.train.coordinator_address=127.0.0.1:{free_port()}',
       '--config.train.num_processes=2', '--config.train.process_id=0',
       '--config.train.initialization_timeout=3'], cwd=ROOT,
      capture_output=True, text=True, timeout=120)
  assert run.returncode == 2, run.stderr[-2000:]
  assert time.time() - start < 60
  assert 'Not all 2 processes of the launch connected within 3 s' in (
      run.stderr)
  assert 'Traceback' not in run.stderr
  assert not os.path.exists(tmp_path / 'run')
