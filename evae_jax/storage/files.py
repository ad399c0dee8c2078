"""One path layer for every file evae_jax reads or writes in a workdir.

A workdir is a local folder or a URI that ``etils.epath`` opens:
``gs://bucket/run`` (the TPU-VM convention), ``s3://...``. Every file evae_jax
writes in it (config.json, metrics.jsonl, TensorBoard events, PNGs,
eval.json, report.md, the .npz files, checkpoint checksums) goes through the
functions below; checkpoints themselves go through orbax, which takes the
same paths.

Local folders and object stores differ in three ways, all handled here:

* Whole files. Locally a file is written to ``NAME.tmp`` and renamed into
  place, so a kill mid-write never leaves a torn file under its final name. An
  object store's upload is already all or nothing, so it is written directly.
* Appends. Object stores cannot append: `append_text` rewrites the object.
* Locks. ``fcntl`` locks exist only on local disks (see `workdirs.locked`).

Paths are plain strings in and out. Remote paths need a filesystem for their
scheme: ``gcsfs`` for ``gs://`` (``pip install 'evae_jax[gcs]'``) or TensorFlow.
Every function below that opens a remote path raises `errors.WorkdirError`
when that filesystem is not installed, the scheme is not one of gs://,
s3:// and az://, or a gs:// server cannot be reached; other failures are the
filesystem's own errors (``OSError`` locally).
"""

import contextlib
import errno
import importlib.util
import io
import os
import posixpath
import socket
import urllib.parse
from typing import List, Union

from etils import epath

from evae_jax import errors

TMP_SUFFIX = '.tmp'
# The fsspec package that serves each scheme when TensorFlow is absent.
_FSSPEC_PACKAGES = {'gs': 'gcsfs', 's3': 's3fs', 'az': 'adlfs'}


def is_remote(path: str) -> bool:
  """Whether ``path`` is a URI rather than a local path.

  Args:
    path: a local path or a URI.

  Returns:
    True for a URI (``scheme://...``), False for a local path.
  """
  return '://' in str(path)


def absolute(path: str) -> str:
  """A local path made absolute and normalised; a URI unchanged but for
  trailing slashes (``os.path`` would turn ``gs://b`` into ``gs:/b``).

  Args:
    path: a local path (or path-like) or a URI.

  Returns:
    The absolute path, or the normalised URI.
  """
  path = os.fspath(path)
  if is_remote(path):
    scheme, rest = path.split('://', 1)
    return f'{scheme}://{posixpath.normpath(rest) if rest else rest}'
  return os.path.abspath(path)


def join(path: str, *names: str) -> str:
  """``path/name/...``; ``/`` separators inside a URI on every OS.

  Args:
    path: a local path or a URI.
    *names: the components to append.

  Returns:
    The joined path.
  """
  if is_remote(path):
    return posixpath.join(os.fspath(path), *names)
  return os.path.join(path, *names)


def _path(path: str) -> epath.Path:
  """The ``epath.Path`` of ``path``, after checking that its scheme can be
  opened here.

  Raises:
    errors.WorkdirError: a URI whose filesystem package is not installed.
  """
  if is_remote(path):
    scheme = str(path).split('://', 1)[0]
    package = _FSSPEC_PACKAGES.get(scheme)
    if package is None:
      raise errors.WorkdirError(
          f'{path}: evae_jax reads and writes local paths and gs://, s3:// '
          f'and az:// URIs, not {scheme}://. Use one of those.')
    if (package and importlib.util.find_spec(package) is None and
        importlib.util.find_spec('tensorflow') is None):
      raise errors.WorkdirError(
          f'{path} is a {scheme}:// path, which needs the {package} package '
          f'(or TensorFlow). Install it (pip install {package}; for gs:// '
          "also pip install 'evae_jax[gcs]') and rerun the same command.")
    if scheme == 'gs':
      _check_reachable(path)
  return epath.Path(path)


_REACHABLE = {}  # host:port -> '' (reached) or why not, once per process
_GCS_HOST = 'https://storage.googleapis.com'


def _check_reachable(path: str, timeout: float = 5.0) -> None:
  """Refuses a gs:// path whose storage server cannot be reached at all (no
  network, no DNS): gcsfs would retry each call for about a minute, print
  the tracebacks, and then answer "does not exist".

  Raises:
    errors.WorkdirError: naming the server, the reason and the fix.
  """
  if any(os.environ.get(v) for v in ('HTTPS_PROXY', 'https_proxy')):
    return  # the server is reached through the proxy, not directly
  url = urllib.parse.urlsplit(os.environ.get('STORAGE_EMULATOR_HOST') or
                              _GCS_HOST)
  host = url.hostname or ''
  port = url.port or (443 if url.scheme == 'https' else 80)
  key = f'{host}:{port}'
  if key not in _REACHABLE:
    try:
      socket.create_connection((host, port), timeout=timeout).close()
      _REACHABLE[key] = ''
    except OSError as e:
      _REACHABLE[key] = e.strerror or str(e) or type(e).__name__
  if _REACHABLE[key]:
    raise errors.WorkdirError(
        f'{path}: cannot reach the storage server {key} '
        f'({_REACHABLE[key]}), so whether it exists is unknown. Check the '
        'network (and proxy) of this machine, or use a local --workdir; '
        'nothing was changed.')


def exists(path: str) -> bool:
  """Whether ``path`` exists.

  Args:
    path: a local path or a URI.

  Returns:
    True for an existing file or folder (in a bucket: an object, or a prefix
    of objects).
  """
  return _path(path).exists()


def isdir(path: str) -> bool:
  """Whether ``path`` is a folder.

  Args:
    path: a local path or a URI.

  Returns:
    True for a folder (in a bucket: a prefix of objects).
  """
  return _path(path).is_dir()


def isfile(path: str) -> bool:
  """Whether ``path`` is a file.

  Args:
    path: a local path or a URI.

  Returns:
    True for a file (in a bucket: an object).
  """
  return _path(path).is_file()


def makedirs(path: str) -> None:
  """Creates ``path`` and its parents (a no-op inside a bucket).

  Args:
    path: a local path or a URI; an existing folder is fine.
  """
  _path(path).mkdir(parents=True, exist_ok=True)


def listdir(path: str) -> List[str]:
  """The names (not paths) in folder ``path``.

  Args:
    path: a folder (local path or URI).

  Returns:
    The names of its entries, sorted.
  """
  return sorted(p.name for p in _path(path).iterdir())


def remove(path: str) -> None:
  """Deletes the file ``path``.

  Args:
    path: a file (local path or URI).
  """
  _path(path).unlink()


def remove_dir(path: str) -> None:
  """Removes the empty folder ``path`` (a no-op inside a bucket, where an
  empty folder does not exist).

  Args:
    path: an empty folder.
  """
  if is_remote(path):
    return
  os.rmdir(path)


def rename(source: str, target: str) -> None:
  """Moves a file or folder to a new name that does not exist yet.

  In an object store, where a folder is only a prefix of object names, every
  object is copied to the new prefix and the originals are deleted once all
  copies exist (a kill in between leaves both, never neither).

  Args:
    source: the file or folder to move.
    target: its new name, on the same filesystem.
  """
  if not is_remote(source):
    os.rename(source, target)
    return
  src = _path(source)
  if not src.is_dir():
    src.copy(_path(target))
    src.unlink()
    return
  scheme, root = absolute(source).split('://', 1)
  for folder, _, names in src.walk():
    # fsspec names folders without the scheme (bucket/path), TensorFlow with.
    below = posixpath.relpath(os.fspath(folder).split('://')[-1], root)
    for name in names:
      origin = f'{scheme}://{posixpath.join(root, below, name)}'
      _path(origin).copy(_path(absolute(join(target, below, name))))
  src.rmtree()


def read_text(path: str) -> str:
  """The contents of a text file.

  Args:
    path: a file (local path or URI).

  Returns:
    Its text.
  """
  return _path(path).read_text()


def read_bytes(path: str) -> bytes:
  """The contents of a file.

  Args:
    path: a file (local path or URI).

  Returns:
    Its bytes.
  """
  return _path(path).read_bytes()


def write_bytes(path: str, data: bytes) -> None:
  """Writes ``path`` whole: never a torn file under its final name.

  Locally the bytes go to ``path + TMP_SUFFIX``, are flushed to disk and
  renamed into place (``os.replace`` is atomic on POSIX); an object store's
  upload is atomic by itself.

  Args:
    path: the file (local path or URI); replaced if it exists.
    data: its new contents.

  Raises:
    errors.WorkdirError: a local disk is full (or over quota); the
      temporary file is removed and ``path`` is unchanged.
  """
  if is_remote(path):
    _path(path).write_bytes(data)
    return
  tmp = path + TMP_SUFFIX
  try:
    with open(tmp, 'wb') as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except OSError as e:
    with contextlib.suppress(OSError):
      os.remove(tmp)  # no partial file left behind
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
      raise errors.WorkdirError(
          f'No space left to write {path} ({e.strerror}). Free disk space '
          'and rerun the same command; the files already there were not '
          'changed.') from e
    raise


def write_text(path: str, text: str) -> None:
  """`write_bytes` of ``text`` encoded as UTF-8.

  Args:
    path: the file (local path or URI); replaced if it exists.
    text: its new contents.
  """
  write_bytes(path, text.encode('utf-8'))


def append_text(path: str, text: str) -> None:
  """Appends ``text`` to ``path`` (created if missing). Object stores cannot
  append: there the object is read and written back whole.

  Args:
    path: the file (local path or URI).
    text: what to append.
  """
  if is_remote(path):
    p = _path(path)
    old = p.read_bytes() if p.exists() else b''
    p.write_bytes(old + text.encode('utf-8'))
    return
  with open(path, 'a') as f:
    f.write(text)


def probe(folder: str, size: int = 0) -> None:
  """Writes ``size`` bytes to a fresh file in ``folder`` and removes it.

  Args:
    folder: an existing folder (local path or URI).
    size: bytes to write (0: an empty file); locally they are synced to
      disk, so a full disk fails here.

  Raises:
    Exception: whatever the filesystem raises when ``folder`` cannot be
      written (``OSError`` locally; object stores raise their own types).
  """
  # Host and pid: processes on several hosts may probe one bucket at once.
  path = join(folder, f'.write_test-{socket.gethostname()}-{os.getpid()}')
  if is_remote(folder):
    _path(path).write_bytes(b'x' * size)
  else:
    with open(path, 'wb') as f:
      f.write(b'x' * size)
      f.flush()
      os.fsync(f.fileno())
  remove(path)


class ObjectWriter:
  """A write-only binary file for a path that may be remote.

  Bytes collect in memory; each `flush` uploads everything written so far,
  whole (an object store cannot append). For files that stay small, like
  TensorBoard event files of scalars. (No ``fileno``: there is nothing to
  fsync.)

  Args:
    path: the file (local path or URI); written at the first `flush`.

  Attributes:
    closed: whether `close` was called.
  """

  def __init__(self, path: str):
    self._path = path
    self._buffer = io.BytesIO()
    self.closed = False

  def write(self, data: Union[bytes, bytearray]) -> int:
    """Appends ``data`` to the bytes in memory.

    Args:
      data: the bytes.

    Returns:
      How many bytes were taken (all of them).
    """
    return self._buffer.write(data)

  def flush(self) -> None:
    """Writes everything written so far to the path, whole (`write_bytes`);
    a no-op once closed."""
    if not self.closed:
      write_bytes(self._path, self._buffer.getvalue())

  def close(self) -> None:
    """Flushes, then refuses nothing more: later flushes are no-ops."""
    if not self.closed:

      self.flush()
      self.closed = True
