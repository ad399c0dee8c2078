"""Orbax checkpoints in ``workdir/checkpoints``: save, keep the last N, restore safely.

Orbax writes each checkpoint to a temporary folder and renames it when
complete, so a crash mid-save never leaves a half-written latest step. A
checkpoint that is unreadable all the same (disk fault, manual damage) is
moved aside, not deleted, and the previous one is used with a warning.
"""

import hashlib
import json
import logging
import time
from typing import Any, Optional, Tuple

import jax
import numpy as np
import orbax.checkpoint as ocp

from evae_jax import files
from evae_jax import sharding

CHECKSUMS_FILE = 'checksums.json'
_ITEM = 'default'  # the item folder of a single-item orbax checkpoint


def tree_checksum(tree: Any) -> str:
  """sha256 over the shapes, dtypes and bytes of every leaf, in tree order."""
  digest = hashlib.sha256()
  for leaf in jax.tree_util.tree_leaves(tree):
    array = np.asarray(leaf)
    digest.update(f'{array.dtype}{array.shape}'.encode())
    digest.update(np.ascontiguousarray(array).tobytes())
  return digest.hexdigest()


class CheckpointError(RuntimeError):
  """No checkpoint in a non-empty checkpoint folder can be restored."""


class Checkpoints:
  """Restore-or-initialise checkpointing of one pytree per step."""

  def __init__(self, workdir: str, keep: int):
    self.directory = files.absolute(files.join(workdir, 'checkpoints'))
    self._keep = keep
    self._manager = self._open()
    self._checksums_path = files.join(self.directory, CHECKSUMS_FILE)

  def _open(self):
    return ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=self._keep,
                                             create=True))

  def steps(self):
    return sorted(self._manager.all_steps())

  def save(self, step: int, tree: Any) -> None:
    """Saves ``tree`` as step ``step`` and waits until it is on disk.

    Raises:
      CheckpointError: the disk is full or read-only; earlier checkpoints
        are untouched (orbax only renames a complete checkpoint into place).
    """
    try:
      # A folder that cannot be written fails here, before orbax starts
      # background threads that would wait forever for the failed save.
      files.probe(self.directory)
    except Exception as e:  # pylint: disable=broad-except
      # OSError locally; object stores raise their own types.
      raise self._write_error(step, e) from e
    try:
      self._manager.save(step, args=ocp.args.StandardSave(tree), force=True)
      self._manager.wait_until_finished()
      if sharding.is_lead():  # one writer; every process saved its part
        self._write_checksum(step, tree_checksum(sharding.local_copy(tree)))
    except (OSError, ValueError) as e:  # tensorstore reports ENOSPC as ValueError
      raise self._write_error(step, e) from e

  def _write_error(self, step: int, error: Exception) -> 'CheckpointError':
    return CheckpointError(
        f'Could not write the checkpoint of step {step} to {self.directory} '
        f'({getattr(error, "strerror", None) or error}). Earlier checkpoints '
        f'are intact ({self.steps()}); free disk space (or fix permissions) '
        'and rerun the same command to resume.')

  def _read_checksums(self) -> dict:
    try:
      sums = json.loads(files.read_text(self._checksums_path))
      return sums if isinstance(sums, dict) else {}
    except (OSError, ValueError):
      return {}

  def _write_checksum(self, step: int, checksum: str) -> None:
    """Records the step's checksum and forgets those of deleted steps."""
    kept = {str(s) for s in self.steps()}
    sums = {k: v for k, v in self._read_checksums().items() if k in kept}
    sums[str(step)] = checksum
    files.write_text(self._checksums_path, json.dumps(sums))

  def _restore_step(self, step: int, abstract: Any) -> Any:
    """One step, read by path (a stray or empty step folder cannot confuse
    orbax's manager about the others), verified against its checksum."""
    path = files.join(self.directory, str(step))
    if not files.isfile(files.join(path, _ITEM, 'manifest.ocdbt')) and \
        not files.isfile(files.join(path, _ITEM, '_METADATA')):
      raise CheckpointError(f'{path} holds no complete checkpoint')
    with ocp.StandardCheckpointer() as checkpointer:
      tree = checkpointer.restore(files.join(path, _ITEM), abstract)
    expected = self._read_checksums().get(str(step))
    if expected is not None and tree_checksum(tree) != expected:
      raise CheckpointError('its arrays do not match the checksum saved with '
                            'them (bit flips or partial overwrite)')
    return tree

  def restore_latest(self, target: Any, max_step: Optional[int] = None
                     ) -> Tuple[Optional[Any], Optional[int]]:
    """Restores the newest readable checkpoint into the structure of ``target``.

    Args:
      target: a pytree with the shapes and dtypes of the saved one.
      max_step: ignore checkpoints after this step (None: no limit).

    Returns:
      (tree, step), or (None, None) if there is no checkpoint yet.

    Raises:
      CheckpointError: checkpoints exist but none can be read.
    """
    steps = [s for s in self.steps() if max_step is None or s <= max_step]
    if not steps:
      return None, None
    abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, target)
    failures = []
    for step in reversed(steps):
      try:
        tree = self._restore_step(step, abstract)
      except Exception as e:  # orbax/tensorstore raise many types.
        failures.append((step, f'{type(e).__name__}: {e}'[:300]))
        logging.warning('Checkpoint at step %d is unreadable (%s); trying '
                        'the previous one.', step, failures[-1][1])
        continue
      # Only newer checkpoints that failed while an older one reads are
      # damaged: move them aside (never delete) so that new saves can reuse
      # their step numbers.
      for bad_step, _ in failures:
        logging.warning('Moved the unreadable checkpoint of step %d to %s; '
                        'falling back to step %d.', bad_step,
                        self._move_aside(bad_step), step)
      return tree, step
    raise CheckpointError(
        f'None of the checkpoints in {self.directory} can be restored '
        f'({"; ".join(f"step {s}: {m}" for s, m in failures)}). Either they '
        'are damaged or they were written by a different model or version. '
        'Nothing was changed: move the checkpoints folder away (or use a new '
        '--workdir) to start afresh, or restore it from a backup.')

  def set_aside_after(self, step: Optional[int]) -> None:
    """Moves steps newer than ``step`` (None: all) out of the way, renamed,
    never deleted: a team of models resumes from a step every member holds,
    and those members that saved later steps will write them again."""
    for later in [s for s in self.steps() if step is None or s > step]:
      logging.warning('Set aside the checkpoint of step %d (newer than the '
                      'step every model holds) as %s.', later,
                      self._move_aside(later, 'superseded'))

  def _move_aside(self, step: int, why: str = 'corrupt') -> str:
    source = files.join(self.directory, str(step))
    target = f'{source}.{why}-{time.time_ns()}'
    if sharding.is_lead():  # the others skip the step as process 0 does
      files.rename(source, target)
    self._manager.close()
    self._manager = self._open()
    return target

  def close(self):
    self._manager.close()
