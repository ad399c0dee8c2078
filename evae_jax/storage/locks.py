"""One process at a time per workdir: an OS lock on the workdir folder,
which dies with its process and which no file deletion can hand over."""

import contextlib
import fcntl
import logging
import os
import socket
from evae_jax import errors
from evae_jax.storage import files

# Names the owner (pid, host) while a lock is held.
LOCK_FILE = '.lock'
_HELD = {}  # realpath -> [fd, depth]: the locks this process holds
_WARNED = set()  # remote workdirs already warned about (no lock)


def _check_not_a_file(workdir: str) -> None:
  """Refuses a local workdir that is, or lies under, a file (os.makedirs
  would only say "File exists" or "Not a directory").

  Raises:
    errors.WorkdirError: naming the file and the fix.
  """
  path = os.path.abspath(workdir)
  while not os.path.lexists(path) and os.path.dirname(path) != path:
    path = os.path.dirname(path)
  if os.path.lexists(path) and not os.path.isdir(path):
    where = ('is a file' if path == os.path.abspath(workdir) else
             f'lies under {path}, which is a file')
    raise errors.WorkdirError(
        f'--workdir={workdir} {where}, not a directory. Pass a directory '
        '(it is created if missing), e.g. --workdir=runs/NAME; nothing was '
        'written.')


@contextlib.contextmanager
def locked(workdir: str):
  """Holds an exclusive OS lock (``flock``) on ``workdir/.lock``.

  One process at a time may train, evaluate or sample in a workdir. The lock
  dies with its process, so a SIGKILLed owner never blocks a rerun. The same
  process may re-enter (nested calls share one lock). Object stores
  (``gs://``) have no such lock: there nothing is locked, with a warning,
  and keeping to one job per workdir is the user's part.

  Args:
    workdir: the workdir; a local one is created if missing.

  Yields:
    None, while the lock is held (released on leaving the ``with`` block).

  Raises:
    errors.WorkdirError: another process holds the lock, or the workdir
      cannot be created or written.
  """
  if files.is_remote(workdir):
    if workdir not in _WARNED:
      _WARNED.add(workdir)
      logging.warning('%s is in an object store, where evae_jax cannot lock '
                      'a workdir: do not run two jobs in it at once.', workdir)
    yield
    return
  key = os.path.realpath(workdir)
  if key in _HELD:
    _HELD[key][1] += 1
    try:
      yield
    finally:
      _HELD[key][1] -= 1
    return
  path = os.path.join(workdir, LOCK_FILE)
  _check_not_a_file(workdir)
  try:
    os.makedirs(workdir, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  except OSError as e:
    raise errors.WorkdirError(
        f'Cannot write to workdir {workdir!r} ({e.strerror or e}). Choose a '
        'directory on a writable disk with free space (--workdir=DIR), or '
        'fix its permissions.') from e
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except OSError as e:
    owner = os.pread(fd, 200, 0).decode(errors='replace').strip() or 'unknown'
    os.close(fd)
    raise errors.WorkdirError(
        f'Another evae_jax process (pid, host: {owner}) is using workdir '
        f'{workdir!r}. Wait for it to finish (or stop it), or use another '
        '--workdir; two processes writing one workdir would mix their '
        'checkpoints and metrics.') from e
  os.ftruncate(fd, 0)
  os.pwrite(fd, f'{os.getpid()} {socket.gethostname()}\n'.encode(), 0)
  _HELD[key] = [fd, 1]
  try:
    yield
  finally:
    del _HELD[key]
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
