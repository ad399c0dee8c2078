"""Orbax checkpoints in ``workdir/checkpoints``: save, keep the last N, restore safely.

Orbax writes each checkpoint to a temporary folder and renames it when
complete, so a crash mid-save never leaves a half-written latest step. A
checkpoint that is unreadable all the same (disk fault, manual damage) is
moved aside, not deleted, and the previous one is used with a warning.
"""

import logging
import os
import time
from typing import Any, Optional, Tuple

import jax
import orbax.checkpoint as ocp


class CheckpointError(RuntimeError):
  """No checkpoint in a non-empty checkpoint folder can be restored."""


class Checkpoints:
  """Restore-or-initialise checkpointing of one pytree per step."""

  def __init__(self, workdir: str, keep: int):
    self.directory = os.path.abspath(os.path.join(workdir, 'checkpoints'))
    self._keep = keep
    self._manager = self._open()

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
      self._manager.save(step, args=ocp.args.StandardSave(tree), force=True)
      self._manager.wait_until_finished()
    except OSError as e:
      raise CheckpointError(
          f'Could not write the checkpoint of step {step} to {self.directory} '
          f'({e.strerror or e}). Earlier checkpoints are intact ({self.steps()}'
          '); free disk space (or fix permissions) and rerun the same command '
          'to resume.') from e

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
        tree = self._manager.restore(step,
                                     args=ocp.args.StandardRestore(abstract))
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

  def _move_aside(self, step: int) -> str:
    source = os.path.join(self.directory, str(step))
    target = f'{source}.corrupt-{int(time.time())}'
    os.rename(source, target)
    self._manager = self._open()
    return target

  def close(self):
    self._manager.close()
