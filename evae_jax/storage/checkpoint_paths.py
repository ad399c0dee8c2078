"""Whether orbax can write, and later restore, checkpoints under a path:
checked before anything is created, so that a bad --workdir fails in a
second, not after an epoch of training."""

import os

from evae_jax import errors
from evae_jax.storage import files

# Characters that orbax (through epath's glob) reads as a pattern when it
# gathers the parts of a checkpoint: under such a path it skips the merge
# of the parts and writes a checkpoint that never restores.
_GLOB_CHARACTERS = '[\\'
# The longest path orbax writes below the checkpoints folder, with room to
# spare: '/<step>.orbax-checkpoint-tmp-<time>/default.orbax-checkpoint-tmp-
# <time>/ocdbt.process_<i>/d/<32 hex digits>' (the time only in some orbax
# versions), 121 characters at step 123456 with orbax 0.12.8, 157 with a
# 10-digit step and the times.
_DEEPEST_BELOW = 160


def check_path(path: str) -> None:
  """Refuses a checkpoints folder under which orbax would write checkpoints
  that never restore (a character it reads as a glob pattern), or that it
  could not write at all (a local path too long for the file system).

  Args:
    path: the checkpoints folder (``workdir/checkpoints``; local path or
      object-store URI, which is not length-checked).

  Raises:
    errors.CheckpointError: naming the character and the fix.
    errors.WorkdirError: the path is too long, saying by how much.
  """
  path = files.absolute(path)
  found = sorted({c for c in path if c in _GLOB_CHARACTERS})
  if found:
    shown = ' and '.join(f"'{c}'" for c in found)
    raise errors.CheckpointError(
        f'The path {path} contains {shown}, a character that orbax (which '
        'writes the checkpoints) reads as a file-name pattern: checkpoints '
        'written there could never be restored. Use a --workdir without '
        "'[' or '\\' anywhere in its path (e.g. runs/exp-1 or "
        'runs/lr=1e-3); nothing was written.')
  if not files.is_remote(path):
    _check_length(path)


def _check_length(path: str) -> None:
  """Refuses a local ``path`` whose deepest checkpoint file would pass the
  file system's limits: orbax would fail in a background thread at the
  first save, after a whole epoch of training."""
  existing = path
  while not os.path.isdir(existing) and os.path.dirname(existing) != existing:
    existing = os.path.dirname(existing)
  name_max = _pathconf(existing, 'PC_NAME_MAX', 255)
  path_max = _pathconf(existing, 'PC_PATH_MAX', 4096) - 1  # with its NUL
  long_names = [n for n in path.split(os.sep) if len(n.encode()) > name_max]
  if long_names:
    raise errors.WorkdirError(
        f'The workdir path {path} has a folder name of '
        f'{len(long_names[0].encode())} bytes ({long_names[0][:40]}...), '
        f'over the {name_max} bytes that this file system allows in one '
        'name. Use a --workdir with shorter folder names; nothing was '
        'written.')
  length = len(path.encode()) + _DEEPEST_BELOW
  if length > path_max:
    raise errors.WorkdirError(
        f'The workdir path is too long: the checkpoints folder {path[:80]}... '
        f'is {len(path.encode())} bytes, and the files orbax writes inside '
        f'it need up to {_DEEPEST_BELOW} more, over the {path_max} bytes this '
        f'file system allows in a path. Use a --workdir at least '
        f'{length - path_max} bytes shorter (or a link to it from a shorter '
        'path); nothing was written.')


def _pathconf(path: str, name: str, default: int) -> int:
  try:
    return os.pathconf(path, name)
  except (OSError, ValueError):  # not reported by this file system
    return default
