"""One process at a time per workdir: an OS lock on the workdir folder,
which dies with its process and which no file deletion can hand over."""

import contextlib
import fcntl
import logging
import os
import socket
from typing import Optional

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
  """Holds an exclusive OS lock (``flock``) on the ``workdir`` folder itself.

  One process at a time may train, evaluate or sample in a workdir. The
  folder, not a file in it, is locked: a file can be deleted and created
  anew under a running owner, and a second process would lock the new one.
  ``workdir/.lock`` names the owner (pid, host) while the lock is held, for
  the message of a process refused; it is removed on release, and so is the
  workdir if this call created it and it is still empty (a run refused
  before writing anything leaves nothing). The lock dies with its process,
  so a SIGKILLed owner never blocks a rerun. The same process may re-enter
  (nested calls share one lock). A file system that cannot lock a folder
  (NFS) locks ``.lock`` instead, checking that the file locked is the one
  at that path. Object stores (``gs://``) have no such lock: there nothing
  is locked, with a warning, and keeping to one job per workdir is the
  user's part.

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
  _check_not_a_file(workdir)
  created = not os.path.isdir(workdir)
  try:
    os.makedirs(workdir, exist_ok=True)
    fd = _lock(workdir)
    try:
      note = _write_owner(workdir)
    except BaseException:
      os.close(fd)  # and with it the lock
      raise
  except BaseException:
    if created:
      _remove_if_empty(workdir)
    raise
  _HELD[key] = [fd, 1]
  try:
    yield
  finally:
    del _HELD[key]
    with contextlib.suppress(OSError):  # gone or unwritable: nothing to do
      os.remove(note)
    if created:
      _remove_if_empty(workdir)
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def _cannot_write(workdir: str, error: OSError) -> errors.WorkdirError:
  return errors.WorkdirError(
      f'Cannot write to workdir {workdir!r} ({error.strerror or error}). '
      'Choose a directory on a writable disk with free space (--workdir=DIR), '
      'or fix its permissions.')


def _lock(workdir: str) -> int:
  """An open descriptor of ``workdir`` (or, where folders cannot be locked,
  of its ``.lock``) holding an exclusive ``flock``.

  Raises:
    errors.WorkdirError: another process holds it, or it cannot be opened.
  """
  fd = _flock(workdir, workdir, os.O_RDONLY | os.O_DIRECTORY)
  if fd is None:  # NFS emulates flock with write locks: not on a folder
    fd = _flock(workdir, os.path.join(workdir, LOCK_FILE),
                os.O_RDWR | os.O_CREAT)
  if fd is None:
    raise errors.WorkdirError(
        f'Cannot lock workdir {workdir!r}: its file system supports no '
        'flock. Use a workdir on a local disk or a bucket (gs://).')
  return fd


def _flock(workdir: str, path: str, flags: int) -> Optional[int]:
  """``path`` opened with ``flags`` and locked, checked to be what ``path``
  names once locked (a releasing owner may have removed it); None where the
  file system cannot lock it."""
  while True:
    try:
      fd = os.open(path, flags, 0o644)
    except OSError as e:
      raise _cannot_write(workdir, e) from e
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as e:
      os.close(fd)
      raise _taken(workdir) from e
    except OSError:
      os.close(fd)
      return None
    try:
      if os.path.samestat(os.fstat(fd), os.stat(path)):
        return fd
    except FileNotFoundError:
      pass
    os.close(fd)  # locked what is no longer at path: again


def _taken(workdir: str) -> errors.WorkdirError:
  try:
    with open(os.path.join(workdir, LOCK_FILE), errors='replace') as f:
      owner = f.read(200).strip()
  except OSError:
    owner = ''
  return errors.WorkdirError(
      f'Another evae_jax process (pid, host: {owner or "unknown"}) is using '
      f'workdir {workdir!r}. Wait for it to finish (or stop it), or use '
      'another --workdir; two processes writing one workdir would mix their '
      'checkpoints and metrics.')


def _write_owner(workdir: str) -> str:
  """Writes ``workdir/.lock``: this process's pid and host. Returns its path.

  Raises:
    errors.WorkdirError: it cannot be written.
  """
  path = os.path.join(workdir, LOCK_FILE)
  try:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
      os.ftruncate(fd, 0)
      os.pwrite(fd, f'{os.getpid()} {socket.gethostname()}\n'.encode(), 0)
    finally:
      os.close(fd)
  except OSError as e:
    raise _cannot_write(workdir, e) from e
  return path


def _remove_if_empty(workdir: str) -> None:
  with contextlib.suppress(OSError):  # not empty (or gone): kept
    os.rmdir(workdir)
