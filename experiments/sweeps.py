"""Running a sweep: one workdir per grid point, resumable, failure-tolerant.

A sweep file (``configs/sweeps/*.py``) has get_config() and sweep(). Each
point trains and evaluates in its own subprocess (``python -m
evae_jax.main``), so one failing point cannot take the others down and every
point gets the CLI's resume and safety behaviour. Points whose eval.json
says they were measured at the budget asked for (``train.num_epochs``,
``schedule``, ``burda_stages``) are skipped; a rerun with more epochs
trains them on. SIGTERM or Ctrl-C to the runner starts no new point and is
passed on to the running ones, which save a checkpoint and stop; the runner
records them as interrupted and exits 75. ``root/sweep_status.json`` records each point's
outcome, its command and, for a failure, the end of its output.

A point's children die with the runner: on Linux each is started with
PR_SET_PDEATHSIG = SIGTERM, so that a SIGKILL of the runner (or the OOM
killer) makes them save a checkpoint and stop, as a SIGTERM passed on would,
instead of training on as orphans that hold their workdirs.

Several runners may share one root (two terminals, two machines on one
file system with working flock): a runner claims a point (an flock on
``root/.claims/<point name>.lock``) for as long as it trains, evaluates and
keeps it, and a point claimed by another runner, or whose workdir another
evae_jax process holds, is "running elsewhere": skipped, and waited for once
the runner has nothing else to start; when the other process lets go of it,
the point counts as done if it finished, and is run here if not.
``sweep_status.json`` is read, merged and replaced under an flock of
``sweep_status.json.lock`` at every update, so that no runner loses
another's records.

Seeds: ``seeds=S`` runs every point with ``seed`` = 0 .. S-1 as separate
points (``...,seed=1``: separate processes, which is what a CPU wants; on an
accelerator ``train.num_seeds`` vmaps several seeds in one process instead).

Kept results: with ``keep=DIR`` each finished point's eval.json,
eval_examples.npz, metrics.jsonl, report.md and PNGs are copied to
``DIR/<point name>/`` (a folder meant to be committed: the workdirs under
``root`` are scratch), and a point already in ``DIR`` is skipped, so a rerun
on a fresh machine continues where the kept results stop.
"""

import ast
import concurrent.futures
import contextlib
import fcntl
import glob
import importlib.util
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Dict, Iterator, List, Sequence, Tuple

from evae_jax.runtime import signals

STATUS_FILE = 'sweep_status.json'
# evae_jax.main's status for a run stopped by SIGTERM/SIGINT after saving.
EXIT_INTERRUPTED = signals.EXIT_INTERRUPTED


def _load_sweep(sweep_path: str):
  spec = importlib.util.spec_from_file_location('sweep_module', sweep_path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, 'sweep') or not hasattr(module, 'get_config'):
    raise ValueError(f'{sweep_path} needs both get_config() and sweep().')
  return module


def load_points(sweep_path: str) -> List[Dict]:
  """The override dicts of a sweep file's sweep()."""
  return list(_load_sweep(sweep_path).sweep())


def select(points: List[Dict], where: Dict[str, str]) -> List[Dict]:
  """Points whose overrides agree with ``where`` (a key a point does not
  override is taken to agree: e.g. a VAE point has no epitome_size)."""
  return [p for p in points if all(
      key not in p or str(p[key]) == str(value) for key, value in where.items())]


def with_seeds(points: List[Dict], seeds: int) -> List[Dict]:
  """Every point once per training seed 0 .. seeds-1, seed-major (all
  points of seed 0 first, so a sweep cut short has whole seeds).

  ``seeds=0`` leaves the points as they are (the config's own seed, and no
  ``seed=`` in the names, as sweeps run before seeds existed).
  """
  if seeds <= 0:
    return list(points)
  return [{**p, 'seed': s} for s in range(seeds) for p in points]


# What a kept point holds (beside its PNGs): what a paired comparison,
# a table and a reader of the curves need, without the checkpoints.
KEPT_FILES = ('eval.json', 'eval_examples.npz', 'metrics.jsonl', 'report.md')


def keep_results(workdir: str, dest: str) -> None:
  """Copies a finished point's results into ``dest``, replacing it whole
  (written beside it, then renamed); a ``dest`` measured at another number
  of epochs moves to ``.superseded/<name>,epochs=<E>/`` beside it.

  Args:
    workdir: the point's workdir (eval.json, eval_examples.npz, PNGs, ...).
    dest: the kept folder of the point.
  """
  tmp = dest + '.tmp'
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  names = [n for n in os.listdir(workdir)
           if n in KEPT_FILES or n.endswith('.png')]
  for name in sorted(names):
    shutil.copy2(os.path.join(workdir, name), os.path.join(tmp, name))
  old = dest + '.old'
  shutil.rmtree(old, ignore_errors=True)
  if os.path.exists(dest):
    os.replace(dest, old)  # a kill from here on leaves dest or dest.old
  os.replace(tmp, dest)
  if os.path.exists(old):
    epochs = _kept_epochs(old)
    if epochs != _kept_epochs(dest):
      # Results of another budget (a rerun with more epochs) are set aside,
      # not lost: the tables read only the folders without a leading dot.
      aside = os.path.join(os.path.dirname(dest), SUPERSEDED,
                           f'{os.path.basename(dest)},epochs={epochs}')
      shutil.rmtree(aside, ignore_errors=True)
      os.makedirs(os.path.dirname(aside), exist_ok=True)
      os.replace(old, aside)
    shutil.rmtree(old, ignore_errors=True)


SUPERSEDED = '.superseded'


def _kept_epochs(folder: str):
  try:
    with open(os.path.join(folder, 'eval.json')) as f:
      return json.load(f).get('checkpoint_epochs')
  except (OSError, ValueError):
    return None


def is_kept(keep: str, name: str, budget: Dict = None) -> bool:
  """Whether ``keep`` holds the point's results, measured at ``budget``
  (see `finished_at`; None: any budget)."""
  return bool(keep) and finished_at(os.path.join(keep, name), budget)


# The fields that set a point's training budget.
BUDGET_FIELDS = ('train.num_epochs', 'train.schedule', 'train.burda_stages')


def _value(text: str):
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def requested_budget(config, overrides: Dict, extra: Sequence[str]) -> Dict:
  """The values of `BUDGET_FIELDS` a point trains to: the sweep's
  get_config() (``config``), then the point's overrides, then ``extra``
  flags."""
  budget = {}
  for key in BUDGET_FIELDS:
    section, name = key.split('.')
    budget[key] = config[section].get(name)
  budget.update({k: v for k, v in overrides.items() if k in BUDGET_FIELDS})
  for flag in extra:
    key, _, value = flag[len('--config.'):].partition('=')
    if flag.startswith('--config.') and key in BUDGET_FIELDS:
      budget[key] = _value(value)
  return budget


def _total_epochs(budget: Dict) -> float:
  """Epochs of a run to ``budget`` (as `evae_jax.state.schedules.total_epochs`)."""
  if budget.get('train.schedule') == 'burda':
    return float(sum(3 ** i for i in range(budget['train.burda_stages'])))
  return float(budget['train.num_epochs'])


def finished_at(workdir: str, budget: Dict = None) -> bool:
  """Whether ``workdir/eval.json`` exists and says it measured a checkpoint
  trained to ``budget`` (its 'config' and 'checkpoint_epochs'): a rerun
  with more epochs trains and evaluates such a point again instead of
  skipping it. ``budget`` None: any eval.json counts."""
  path = os.path.join(workdir, 'eval.json')
  if not os.path.exists(path):
    return False
  if budget is None:
    return True
  try:
    with open(path) as f:
      results = json.load(f)
    train = results['config']['train']
    stored = {key: train.get(key.split('.')[1]) for key in BUDGET_FIELDS}
    # The schedule and the epochs it runs: train.num_epochs means nothing
    # under 'burda', train.burda_stages nothing under 'constant'.
    return (stored['train.schedule'] == budget['train.schedule'] and
            _total_epochs(stored) == _total_epochs(budget) and
            float(results['checkpoint_epochs']) == _total_epochs(budget))
  except (OSError, ValueError, KeyError, TypeError):
    return False  # unreadable or without the fields: measure again


def point_name(overrides: Dict) -> str:
  """A readable, filesystem-safe directory name for a grid point."""
  parts = [f'{key.split(".")[-1]}={value}' for key, value in overrides.items()]
  return ','.join(parts).replace('/', '_') or 'base'


def _flag(key, value) -> str:
  return f'--config.{key}={value}'


def device_env(devices: str, slot: int, workers: int = 1,
               count: int = 1) -> Dict[str, str]:
  """Environment that pins worker ``slot`` (of ``workers``) to one of the
  ``count`` local accelerators.

  GPUs are shared round robin when there are more workers than GPUs (small
  models leave a GPU mostly idle); sharing processes then allocate GPU
  memory as they need it instead of preallocating most of it. A TPU chip
  belongs to one process, so TPU workers may not outnumber chips.
  """
  if devices == 'gpu':
    env = {'CUDA_VISIBLE_DEVICES': str(slot % count)}
    if workers > count:
      env['XLA_PYTHON_CLIENT_PREALLOCATE'] = 'false'
    return env
  if devices == 'tpu':  # one chip per process on a TPU VM
    if workers > count:
      raise ValueError(f'{workers} workers for {count} TPU chips: a chip '
                       f'serves one process; use --workers={count}.')
    return {'TPU_VISIBLE_CHIPS': str(slot),
            'TPU_CHIPS_PER_PROCESS_BOUNDS': '1,1,1',
            'TPU_PROCESS_BOUNDS': '1,1,1',
            'TPU_PROCESS_PORT': str(8476 + slot),
            'TPU_MESH_CONTROLLER_PORT': str(8476 + slot)}
  return {}


def detect_devices() -> tuple:
  """(kind, count) of local accelerators, without initialising JAX (which
  would lock TPU chips in this process)."""
  if shutil.which('nvidia-smi'):
    out = subprocess.run(['nvidia-smi', '-L'], capture_output=True, text=True)
    count = len([l for l in out.stdout.splitlines() if l.startswith('GPU')])
    if count:
      return 'gpu', count
  chips = glob.glob('/dev/accel*') or glob.glob('/dev/vfio/[0-9]*')
  if chips:
    return 'tpu', len(chips)
  return 'cpu', 1


# evae_jax.storage.workdirs.LOCK_FILE (importing it would load JAX here).
WORKDIR_LOCK = '.lock'
# root/CLAIMS/<point name>.lock: held by the runner working on the point.
CLAIMS = '.claims'


def _is_locked(path: str, flags: int = os.O_RDONLY) -> bool:
  """Whether some open file holds an flock of ``path`` (False where there
  is no such file, or its file system cannot lock it)."""
  try:
    fd = os.open(path, flags)
  except OSError:
    return False
  try:
    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # released on close
    return False
  except BlockingIOError:
    return True
  except OSError:
    return False
  finally:
    os.close(fd)


def _owner(path: str) -> str:
  """The 'pid host' of a lock file, as a message names it."""
  try:
    with open(path, errors='replace') as f:
      owner = f.read(200).strip()
  except OSError:
    owner = ''
  pid, _, host = owner.partition(' ')
  return f'pid {pid} on {host}' if host else owner or 'unknown'


def _workdir_holder(root: str, name: str) -> str:
  """Who holds the point's workdir, as evae_jax locks it (an flock of the
  folder, or of its ``.lock`` where folders cannot be locked), or ''."""
  workdir = os.path.join(root, name)
  lock = os.path.join(workdir, WORKDIR_LOCK)
  if (_is_locked(workdir, os.O_RDONLY | os.O_DIRECTORY) or
      _is_locked(lock)):
    return _owner(lock)
  return ''


def running_elsewhere(root: str, name: str) -> str:
  """Whether a runner claims the point or a process holds its workdir.

  Args:
    root: the sweep's root.
    name: the point's name (`point_name`).

  Returns:
    Who has it, as messages name them ('sweep runner pid P on H', 'pid P
    on H'), or '' if nobody does.
  """
  claim = os.path.join(root, CLAIMS, name + '.lock')
  if _is_locked(claim):
    return 'sweep runner ' + _owner(claim)
  return _workdir_holder(root, name)


@contextlib.contextmanager
def _claimed(root: str, name: str) -> Iterator[str]:
  """Claims a point for this runner meanwhile (see the module docstring).

  Yields:
    '' with the point claimed and its workdir free, else who has it (as
    `running_elsewhere` names them).
  """
  os.makedirs(os.path.join(root, CLAIMS), exist_ok=True)
  path = os.path.join(root, CLAIMS, name + '.lock')
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = 'sweep runner ' + _owner(path)
    else:
      os.ftruncate(fd, 0)
      os.pwrite(fd, f'{os.getpid()} {socket.gethostname()}\n'.encode(), 0)
      holder = _workdir_holder(root, name)
    yield holder
  finally:
    os.close(fd)  # releases the claim


class _Status:
  """sweep_status.json, shared by every runner on its root: each update
  reads the file, replaces one point's record and writes it back (atomic
  rename), all under an flock of ``sweep_status.json.lock``."""

  def __init__(self, root):
    self._path = os.path.join(root, STATUS_FILE)

  def read(self) -> Dict[str, Dict]:
    """The records of the file as it is now."""
    try:
      with open(self._path) as f:
        return json.load(f)
    except FileNotFoundError:
      return {}

  @contextlib.contextmanager
  def _locked(self):
    fd = os.open(self._path + '.lock', os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX)
      yield
    finally:
      os.close(fd)

  def set(self, name: str, record: Dict) -> None:
    """Replaces the point's record whole (no field of an earlier state
    stays behind)."""
    self._update(name, lambda old: record)

  def mark_done(self, name: str, how: str) -> None:
    """Records a point found done (``how``: 'kept' or 'skipped': True): an
    earlier 'done' record keeps its fields (the seconds and command of the
    run that finished it); a record of another state is replaced."""
    self._update(name, lambda old: {
        **(old if old.get('status') == 'done' else {}), 'status': 'done',
        how: True})

  def _update(self, name, change):
    with self._locked():
      points = self.read()
      points[name] = change(points.get(name, {}))
      with open(self._path + '.tmp', 'w') as f:
        json.dump(points, f, indent=1)
      os.replace(self._path + '.tmp', self._path)


# Runs a child's command (argv[2:]) with PR_SET_PDEATHSIG = SIGTERM (on which
# a point saves a checkpoint and stops), set in the child itself and kept
# across exec (same pid), so that the runner needs no preexec_fn, which is
# unsafe in a threaded process. The signal comes when the thread that started
# the child ends: each worker thread waits for its child, so that is when the
# runner dies. Exits 75 if the runner (argv[1]) died before prctl.
_DIE_WITH_RUNNER = """
import ctypes, os, signal, sys
if ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM) != 0:
  sys.stderr.write('warning: this point will not die with its runner\\n')
if os.getppid() != int(sys.argv[1]):
  sys.exit(75)
os.execv(sys.argv[2], sys.argv[2:])
"""


def _dying_with_runner(command: List[str]) -> List[str]:
  """``command`` started through `_DIE_WITH_RUNNER` where Linux has it."""
  if not sys.platform.startswith('linux'):
    return command  # elsewhere a SIGKILLed runner leaves its children on
  return [sys.executable, '-c', _DIE_WITH_RUNNER, str(os.getpid()),
          *command]


class _Stop:
  """SIGTERM / SIGINT to the runner: no new point starts, and the signal is
  passed on to every running child (which saves a checkpoint and exits 75)
  before the runner records them and exits. A SIGKILL cannot be passed on:
  for that the children get SIGTERM when the runner dies
  (`_dying_with_runner`)."""

  def __init__(self):
    self.signal = None  # the name of the signal received, once received
    self._lock = threading.Lock()
    self._children = set()

  def start(self, command, **kwargs) -> subprocess.Popen:
    """Starts a child, unless a stop was asked (then returns None)."""
    with self._lock:
      if self.signal:
        return None
      proc = subprocess.Popen(_dying_with_runner(command), **kwargs)
      self._children.add(proc)
      return proc

  def wait(self, proc: subprocess.Popen) -> int:
    try:
      return proc.wait()
    finally:
      with self._lock:
        self._children.discard(proc)

  def handler(self, signum, _):
    with self._lock:
      self.signal = signal.Signals(signum).name
      for proc in self._children:
        if proc.poll() is None:
          proc.send_signal(signum)

  @contextlib.contextmanager
  def installed(self):
    """Catches SIGTERM and SIGINT in this (the main) thread meanwhile."""
    with signals.handled(self.handler):
      yield self


_STOP = _Stop()


# Points that failed one after another with one reason, before any point
# finished: the sweep starts no more, so that a sweep whose every point
# fails for one reason (no network, a wrong data.path) stops after three.
SAME_FAILURES_TO_STOP = 3


def failure_reason(output: str) -> str:
  """The point's last 'error: ...' line (or its last line), in the sweep's
  own words: ``--set=section.field=value`` where the point said
  ``--config.section.field=value``."""
  lines = [line.strip() for line in output.splitlines() if line.strip()]
  errors = [line for line in lines if line.startswith('error:')]
  reason = (errors or lines or ['(no output)'])[-1]
  return re.sub(r'--config\.(\w)', r'--set=\1', reason)


def run_point(sweep_path: str, root: str, overrides: Dict,
              extra: Sequence[str], env: Dict[str, str]) -> Dict:
  """Trains then evaluates one point; returns its status record."""
  workdir = os.path.join(root, point_name(overrides))
  base = [sys.executable, '-m', 'evae_jax.main', f'--config={sweep_path}',
          f'--workdir={workdir}'] + [_flag(k, v) for k, v in overrides.items()]
  base += list(extra)
  start = time.time()
  log_path = os.path.join(root, point_name(overrides) + '.log')
  with open(log_path, 'a') as log:
    for mode in ('train', 'evaluate'):
      command = base + [f'--mode={mode}']
      proc = _STOP.start(command, stdout=log, stderr=subprocess.STDOUT,
                         env={**os.environ, **env}, text=True)
      returncode = EXIT_INTERRUPTED if proc is None else _STOP.wait(proc)
      if returncode == EXIT_INTERRUPTED or (
          _STOP.signal and returncode < 0):  # preempted: resume later
        return {'status': 'interrupted', 'mode': mode,
                'returncode': returncode,
                'seconds': time.time() - start, 'command': command}
      if returncode != 0:
        with open(log_path) as f:
          tail = f.read()[-3000:]
        return {'status': 'failed', 'mode': mode, 'returncode': returncode,
                'seconds': time.time() - start, 'command': command,
                'output_tail': tail, 'reason': failure_reason(tail)}
  return {'status': 'done', 'seconds': time.time() - start, 'command': base}


def _last_checkpoint_step(workdir: str):
  """The highest step saved under ``workdir/checkpoints``, or None."""
  try:
    steps = [int(n) for n in os.listdir(os.path.join(workdir, 'checkpoints'))
             if n.isdigit()]
  except OSError:
    return None
  return max(steps) if steps else None


def _points(module, extra: Sequence[str], where: Dict[str, str],
            seeds: int) -> List[Dict]:
  """The points a sweep run would train: the sweep file's, selected by
  ``where``, each with its seeds.

  Raises:
    ValueError: a flag of ``extra`` sets what a point sets itself.
  """
  points = with_seeds(select(list(module.sweep()), where or {}), seeds)
  overridden = {key for point in points for key in point}
  clash = [flag for flag in extra
           if flag.split('=', 1)[0][len('--config.'):] in overridden]
  if clash:
    # A flag after a point's own override wins: with --seeds every "seed"
    # would train the same seed, and the between-seed error would be 0.
    raise ValueError(f'{", ".join(clash)} would override what the points '
                     'set themselves (their grid, or --seeds): drop it.')
  return points


def plan(sweep_path: str, root: str, extra: Sequence[str] = (),
         where: Dict[str, str] = None, seeds: int = 0,
         keep: str = '') -> List[Tuple[str, str]]:
  """What `run_sweep` with the same arguments would do, point by point,
  without running anything.

  Args:
    sweep_path, root, extra, where, seeds, keep: as for `run_sweep`.

  Returns:
    [(point name, state)] in run order; state is 'kept' (in ``keep`` at
    the requested budget: skipped), 'running elsewhere' (another runner or
    process has it now: waited for), 'finished' (evaluated in ``root``:
    copied to ``keep`` and skipped), 'resumes from step N' (a checkpoint in
    ``root``) or 'to run'.

  Raises:
    ValueError: as `run_sweep` would, before running anything.
  """
  module = _load_sweep(sweep_path)
  base_config = module.get_config()
  out = []
  for overrides in _points(module, extra, where, seeds):
    name = point_name(overrides)
    budget = requested_budget(base_config, overrides, extra)
    step = _last_checkpoint_step(os.path.join(root, name))
    if is_kept(keep, name, budget):
      state = 'kept'
    elif running_elsewhere(root, name):
      state = RUNNING_ELSEWHERE
    elif finished_at(os.path.join(root, name), budget):
      state = 'finished'
    elif step is not None:
      state = f'resumes from step {step}'
    else:
      state = 'to run'
    out.append((name, state))
  return out


RUNNING_ELSEWHERE = 'running elsewhere'
# Seconds between two looks at the points running elsewhere.
WAIT_SECONDS = 1.0


def run_sweep(sweep_path: str, root: str, extra: Sequence[str] = (),
              workers: int = 0, devices: str = 'auto',
              where: Dict[str, str] = None, seeds: int = 0,
              keep: str = '') -> Dict[str, Dict]:
  """Runs every unfinished point of a sweep into ``root``.

  Args:
    sweep_path: a file in configs/sweeps/.
    root: directory for the workdirs (root/<point name>/).
    extra: flags added to every point, e.g. ['--config.train.num_epochs=10'].
    workers: points run at once; 0 = one per detected accelerator (1 on CPU).
    devices: 'auto', 'cpu', 'gpu' or 'tpu' (how workers are pinned).
    where: run only the points that agree with these overrides (`select`).
    seeds: run every point with seeds 0 .. seeds-1 (`with_seeds`).
    keep: folder of kept results (`keep_results`): points there are skipped,
      points that finish are copied there.

  Returns:
    The status record of every point; a point still running elsewhere when
    a signal stopped the runner has {'status': 'running elsewhere',
    'holder': who} (not written to the status file: the holder writes it).
  """
  global _STOP
  _STOP = _Stop()  # a fresh stop for each sweep run in this process
  os.makedirs(root, exist_ok=True)
  module = _load_sweep(sweep_path)
  base_config = module.get_config()
  points = _points(module, extra, where, seeds)
  detected_kind, detected = detect_devices()
  kind = detected_kind if devices == 'auto' else devices
  count = detected if kind == detected_kind else (workers or 1)
  workers = workers or count
  device_env(kind, workers - 1, workers, count)  # refuse before any point runs
  status = _Status(root)
  slots = queue.Queue()
  for slot in range(workers):
    slots.put(slot)

  failures = {'reasons': [], 'done': 0, 'stopped': ''}
  lock = threading.Lock()

  elsewhere = {}  # name: who has it, for the points another process has now

  def running_elsewhere_now(name, holder) -> str:
    with lock:
      if name not in elsewhere:
        print(f'[{time.strftime("%H:%M:%S")}] {RUNNING_ELSEWHERE} {name} '
              f'({holder}): left to it, waited for once nothing else can '
              'start', flush=True)
      elsewhere[name] = holder
    return holder

  def job(overrides) -> str:
    """Runs or records one point; returns '' or, when another process has
    the point, who (and does nothing)."""
    name = point_name(overrides)
    workdir = os.path.join(root, name)
    budget = requested_budget(base_config, overrides, extra)
    with _claimed(root, name) as holder:
      if holder:
        return running_elsewhere_now(name, holder)
      with lock:
        was_elsewhere = elsewhere.pop(name, None)
      if is_kept(keep, name, budget):
        status.mark_done(name, 'kept')
        return ''
      if finished_at(workdir, budget):
        if keep:
          keep_results(workdir, os.path.join(keep, name))
        status.mark_done(name, 'skipped')
        if was_elsewhere:
          print(f'[{time.strftime("%H:%M:%S")}] done elsewhere {name}',
                flush=True)
        return ''
      slot = slots.get()
      if _STOP.signal or failures['stopped']:  # stopping: start nothing new
        slots.put(slot)
        if failures['stopped']:
          status.set(name, {'status': 'not started',
                            'reason': failures['stopped']})
        return ''
      try:
        print(f'[{time.strftime("%H:%M:%S")}] start {name}', flush=True)
        record = run_point(sweep_path, root, overrides, extra,
                           device_env(kind, slot, workers, count))
        if keep and record['status'] == 'done':
          os.makedirs(keep, exist_ok=True)
          keep_results(workdir, os.path.join(keep, name))
      except Exception as e:  # keep going: record and move on.
        record = {'status': 'failed', 'error': repr(e)}
      finally:
        slots.put(slot)
      # Another process took the workdir between the look and the start.
      holder = record['status'] == 'failed' and _workdir_holder(root, name)
      if holder:
        return running_elsewhere_now(name, holder)
      status.set(name, record)
    reason = record.get('reason') or record.get('error', '')
    print(f'[{time.strftime("%H:%M:%S")}] {record["status"]} {name}'
          + (f': {reason}' if record['status'] == 'failed' else ''),
          flush=True)
    with lock:
      if record['status'] == 'done':
        failures['done'] += 1
      elif record['status'] == 'failed':
        failures['reasons'].append(reason)
        last = failures['reasons'][-SAME_FAILURES_TO_STOP:]
        if (not failures['done'] and not failures['stopped'] and
            len(last) == SAME_FAILURES_TO_STOP and len(set(last)) == 1):
          failures['stopped'] = reason
          print(f'stopping: the first {SAME_FAILURES_TO_STOP} points all '
                f'failed the same way ({reason}); fix that and rerun the same '
                'command (nothing finished is lost).', flush=True)
    return ''

  with _STOP.installed(), concurrent.futures.ThreadPoolExecutor(
      max_workers=workers) as pool:
    pending = points
    while pending:
      futures = [pool.submit(job, p) for p in pending]
      while not all(f.done() for f in futures):
        # Waits in short steps: the signal handler runs between them.
        concurrent.futures.wait(futures, timeout=0.5)
      pending = [p for p, future in zip(pending, futures) if future.result()]
      deadline = time.time() + WAIT_SECONDS
      while pending and time.time() < deadline and not (
          _STOP.signal or failures['stopped']):
        time.sleep(0.1)  # short steps: the signal handler runs between them
      if _STOP.signal or failures['stopped']:
        break
  # This call's points only: the status file of a root shared by several
  # selections (--where) or runners also holds the others'.
  records = status.read()
  out = {point_name(p): records[point_name(p)] for p in points
         if point_name(p) in records}
  out.update({name: {'status': RUNNING_ELSEWHERE, 'holder': holder}
              for name, holder in elsewhere.items()})
  return out


def stopped_by() -> str:
  """The signal (SIGTERM, SIGINT) that stopped the last `run_sweep`, or ''."""
  return _STOP.signal or ''
