"""Orbax checkpoints in ``workdir/checkpoints``: save, keep the last N,
restore safely.

Orbax writes each checkpoint to a temporary folder and renames it when
complete, so a crash mid-save never leaves a half-written latest step. The
step's record (its step, the checksum of its arrays, the config that
trained it, and a checksum of the record itself) is written into the same
temporary folder, so a step never counts as saved without it, and every
step is read back once written. A checkpoint that is unreadable all the
same (disk fault, manual damage), or whose arrays, record or step do not
match its checksums or its folder, is moved aside, not deleted, and the
previous one is used with a warning; so is a newer step without a checksum
(an earlier version's, whose checksums.json is lost) when
an older step is verified.
"""

import errno
import hashlib
import json
import logging
import os
import time
from typing import Any, List, Optional, Tuple


import jax
import numpy as np
import orbax.checkpoint as ocp

from evae_jax import errors
from evae_jax.storage import files
from evae_jax.storage.checkpoint_paths import check_path
from evae_jax.storage import records
from evae_jax.storage.records import META_ITEM
from evae_jax.runtime import sharding

# Every kept step's checksum, rewritten whole after each save: earlier
# versions verify steps through it; this one reads it only for steps that
# lack their own record (written by an earlier version).
CHECKSUMS_FILE = 'checksums.json'
_ITEM = 'default'  # the item folder of the arrays in an orbax checkpoint


def _errno(error: BaseException) -> Optional[int]:
  """The errno of ``error`` or of an error it was raised from (orbax wraps
  some)."""
  while error is not None:
    if isinstance(error, OSError) and error.errno:
      return error.errno
    error = error.__cause__ or error.__context__
  return None


def tree_checksum(tree: Any) -> str:
  """sha256 over the shapes, dtypes and bytes of every leaf, in tree order.

  Args:
    tree: a pytree of arrays (on this host:
      `evae_jax.runtime.sharding.local_copy`).

  Returns:
    The hex digest (64 characters).
  """
  digest = hashlib.sha256()
  for leaf in jax.tree_util.tree_leaves(tree):
    array = np.asarray(leaf)
    digest.update(f'{array.dtype}{array.shape}'.encode())
    digest.update(np.ascontiguousarray(array).tobytes())
  return digest.hexdigest()


def _abstract(tree: Any) -> Any:
  """The shape, dtype (and sharding) of every array of ``tree``: what orbax
  restores into. Our own, since orbax moved its helper from ``ocp.utils``
  (deprecated) to ``ocp.tree`` (absent from orbax 0.11.0, our floor)."""
  def leaf(x):
    if isinstance(x, jax.Array):
      return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
    x = np.asarray(x)
    return jax.ShapeDtypeStruct(x.shape, x.dtype)
  return jax.tree_util.tree_map(leaf, tree)


def _keep_latest(keep: int) -> dict:
  """CheckpointManagerOptions that keep the newest ``keep`` steps: the
  preservation policy where orbax has it (newer than 0.11.0), else the
  ``max_to_keep`` it replaced (deprecated since, the same behaviour)."""
  policies = getattr(getattr(ocp, 'checkpoint_managers', None),
                     'preservation_policy', None)
  if policies is None or not hasattr(policies, 'LatestN'):
    return {'max_to_keep': keep}  # orbax before the preservation policies
  return {'preservation_policy': policies.LatestN(n=keep)}


class Checkpoints:
  """Restore-or-initialise checkpointing of one pytree per step.

  Args:
    workdir: the workdir; checkpoints go to ``workdir/checkpoints``
      (checked by `check_path`, which raises `errors.CheckpointError` or
      `errors.WorkdirError`).
    keep: how many of the newest steps to keep (older ones are deleted).

  Attributes:
    directory: the absolute checkpoints folder.
  """

  def __init__(self, workdir: str, keep: int):
    self.directory = files.absolute(files.join(workdir, 'checkpoints'))
    check_path(self.directory)
    self._keep = keep
    self._manager = self._open()
    self._checksums_path = files.join(self.directory, CHECKSUMS_FILE)

  def _open(self):
    return ocp.CheckpointManager(
        self.directory, options=ocp.CheckpointManagerOptions(
            create=True, **_keep_latest(self._keep)))

  def steps(self) -> List[int]:
    """The saved steps, oldest first.

    Returns:
      The step numbers orbax knows in the checkpoints folder, sorted.
    """
    return sorted(self._manager.all_steps())

  def save(self, step: int, tree: Any, record: Optional[dict] = None) -> None:
    """Saves ``tree`` as step ``step``, with its step, checksum and
    ``record`` (JSON: the config, a digest of the data) in the same folder,
    waits until it is on disk and reads it back.

    Args:
      step: the step number (the folder's name).
      tree: the pytree of arrays to save (`evae_jax.state.state_tree`).
      record: JSON-serialisable fields saved beside the arrays (None:
        only the step and checksum).

    Raises:
      errors.CheckpointError: the disk is full or read-only (earlier checkpoints
        are untouched: orbax only renames a complete checkpoint into place),
        or the checkpoint written does not read back as saved (it is moved
        aside, never deleted).
    """
    try:
      # A folder that cannot be written fails here, before orbax starts
      # background threads that would wait forever for the failed save.
      files.probe(self.directory)
    except Exception as e:  # pylint: disable=broad-except
      # OSError locally; object stores raise their own types.
      raise self._write_error(step, e) from e
    local = sharding.local_copy(tree)
    meta = {**(record or {}), 'step': int(step),
            'checksum': tree_checksum(local)}
    try:
      meta['record_checksum'] = records.checksum(meta)  # JSON, or it fails
      self._manager.save(step, args=ocp.args.Composite(**{
          _ITEM: ocp.args.StandardSave(tree),
          META_ITEM: ocp.args.JsonSave(meta)}), force=True)
      # Re-raises what failed in orbax's background threads.
      self._manager.wait_until_finished()
    except Exception as e:  # pylint: disable=broad-except
      # Whatever the type (OSError, tensorstore's ValueError for ENOSPC,
      # TypeError...), an error: anything else escapes main, whose normal
      # exit then waits forever for orbax's threads of the failed save.
      raise self._write_error(step, e) from e
    self._read_back(step, local)
    if sharding.is_lead():  # one writer
      self._write_index()

  def _write_index(self) -> None:
    """Rewrites checksums.json with the checksum of every kept step, for
    earlier versions (which verify steps through it) and for people: this
    version reads a step's checksum from its own folder."""
    legacy = self._read_checksums()
    sums = {}
    for kept in self.steps():
      checksum = (self.record(kept) or {}).get('checksum') or legacy.get(
          str(kept))
      if checksum:
        sums[str(kept)] = checksum
    try:
      files.write_text(self._checksums_path, json.dumps(sums))
    except Exception as e:  # pylint: disable=broad-except
      # OSError locally; object stores raise their own types.
      raise self._write_error(self.steps()[-1], e) from e

  def record(self, step: int) -> Optional[dict]:
    """What was saved with step ``step`` beside its arrays.

    Args:
      step: a saved step.

    Returns:
      The record: ``save``'s ``record`` plus 'step', 'checksum' and
      'record_checksum'; None for a step of an earlier version, or an
      unreadable or damaged record.
    """
    try:
      return records.read(files.join(self.directory, str(step)))
    except errors.CheckpointError:
      return None

  def _read_back(self, step: int, local: Any) -> None:
    """Restores the step just written and checks it against its record, so
    that a checkpoint that can never be restored fails its save, not a
    resume days later."""
    abstract = _abstract(local)
    try:
      _, verified = self._restore_step(step, abstract)
      if not verified:
        raise errors.CheckpointError(
            'its record (step and checksum) is missing')
    except Exception as e:  # orbax/tensorstore raise many types.
      reason = f'{type(e).__name__}: {e}'[:300]
      aside = self._move_aside(step, 'unreadable')
      raise errors.CheckpointError(
          f'The checkpoint of step {step} was written to {self.directory} '
          f'but does not read back ({reason}); it was moved to {aside}. '
          f'Earlier checkpoints are intact ({self.steps()}). Check the disk '
          '(or the workdir path) and rerun the same command to resume.') from e

  def _write_error(self, step: int, error: Exception) -> RuntimeError:
    """The error to raise for ``error``, met writing step ``step``: a
    errors.WorkdirError for a path the file system refuses, else a
    errors.CheckpointError."""
    if (_errno(error) == errno.ENAMETOOLONG or  # tensorstore: in its text
        os.strerror(errno.ENAMETOOLONG) in str(error)):
      return errors.WorkdirError(
          f'Could not write the checkpoint of step {step} under '
          f'{self.directory}: the file system refused a path as too long '
          f'({error}). Use a shorter --workdir (or a link to it from a '
          f'shorter path); earlier checkpoints are intact ({self.steps()}).')
    reason = (getattr(error, 'strerror', None) or
              f'{type(error).__name__}: {error}'[:500])
    disk = (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM,
            errno.EROFS)
    if _errno(error) in disk or any(  # tensorstore: only in its text
        os.strerror(code) in str(error) for code in disk):
      fix = 'free disk space (or fix permissions)'
    else:  # not the disk: say what failed rather than guess a remedy
      fix = ('this is not a disk or permission error that evae_jax knows; '
             'if it persists, report it with this message')
    return errors.CheckpointError(
        f'Could not write the checkpoint of step {step} to {self.directory} '
        f'({reason}). Earlier checkpoints are intact ({self.steps()}); {fix} '
        'and rerun the same command to resume.')

  def _read_checksums(self) -> dict:
    """checksums.json of earlier versions ({} if missing or unreadable)."""
    try:
      sums = json.loads(files.read_text(self._checksums_path))
      return sums if isinstance(sums, dict) else {}
    except Exception:  # pylint: disable=broad-except
      return {}

  def _restore_step(self, step: int, abstract: Any) -> Tuple[Any, bool]:
    """One step, read by path (a stray or empty step folder cannot confuse
    orbax's manager about the others), checked against the step and the
    checksum saved with it. Returns (tree, whether a checksum verified it).

    Raises:
      errors.CheckpointError (or whatever orbax raises): the step is incomplete,
        damaged, or holds another step than its folder's name says.
    """
    path = files.join(self.directory, str(step))
    item = files.join(path, _ITEM)
    if not files.isfile(files.join(item, 'manifest.ocdbt')) and \
        not files.isfile(files.join(item, '_METADATA')):
      raise errors.CheckpointError(f'{path} holds no complete checkpoint')
    if files.isdir(files.join(item, 'ocdbt.process_0')) and \
        not files.isfile(files.join(item, 'manifest.ocdbt')):
      raise errors.CheckpointError(
          f'{item} has no manifest.ocdbt: its parts were '
          'never merged into one checkpoint')
    meta = records.read(path)
    if meta is not None:
      if meta.get('step') != step:
        raise errors.CheckpointError(
            f'it holds step {meta.get("step")}, not {step}: a step folder '
            'renamed or copied by hand')
      expected = meta.get('checksum')
    else:  # written by an earlier version
      expected = self._read_checksums().get(str(step))
    with ocp.StandardCheckpointer() as checkpointer:
      tree = checkpointer.restore(item, abstract)
    if expected is not None and tree_checksum(tree) != expected:
      raise errors.CheckpointError(
          'its arrays do not match the checksum saved with '
          'them (bit flips or partial overwrite)')
    if isinstance(tree, dict) and 'step' in tree and \
        int(np.asarray(tree['step'])) != step:
      raise errors.CheckpointError(
          f'it holds the state of step {int(np.asarray(tree["step"]))}, not '
          f'{step}: a step folder renamed or copied by hand')
    return tree, expected is not None

  def restore_latest(self, target: Any, max_step: Optional[int] = None
                     ) -> Tuple[Optional[Any], Optional[int]]:
    """Restores the newest verified checkpoint into the structure of
    ``target`` (or, if none is verified, the newest readable one).

    A step is verified when a checksum was saved with it (every step this
    version writes; earlier versions' steps through checksums.json). Newer
    steps that are damaged or unverified are moved aside, never deleted.

    Args:
      target: a pytree with the shapes and dtypes of the saved one.
      max_step: ignore checkpoints after this step (None: no limit).

    Returns:
      (tree, step), or (None, None) if there is no checkpoint yet.

    Raises:
      errors.CheckpointError: checkpoints exist but none can be read.
    """
    steps = [s for s in self.steps() if max_step is None or s <= max_step]
    if not steps:
      return None, None
    abstract = _abstract(target)
    failures, unverified, chosen, newest_unverified = [], [], None, None
    for step in reversed(steps):
      try:
        tree, verified = self._restore_step(step, abstract)
      except Exception as e:  # orbax/tensorstore raise many types.
        failures.append((step, f'{type(e).__name__}: {e}'[:300]))
        logging.warning('Checkpoint at step %d is unreadable or damaged (%s); '
                        'trying the previous one.', step, failures[-1][1])
        continue
      if verified:
        chosen = (tree, step)
        break
      logging.warning(
          'Checkpoint at step %d is unverified: no checksum was saved with '
          'it (an earlier version kept them in %s, now missing or '
          'incomplete); looking for an older, verified one.', step,
          self._checksums_path)
      if newest_unverified is None:
        newest_unverified = (tree, step)
      unverified.append(step)
    if chosen is None and newest_unverified is not None:
      chosen = newest_unverified
      logging.warning('No checkpoint is verified: resuming from the '
                      'unverified step %d, the newest that reads.', chosen[1])
    if chosen is None:
      raise errors.CheckpointError(
          f'None of the checkpoints in {self.directory} can be restored '
          f'({"; ".join(f"step {s}: {m}" for s, m in failures)}). Either '
          'they are damaged or they were written by a different model or '
          'version. Nothing was changed: move the checkpoints folder away (or '
          'use a new --workdir) to start afresh, or restore it from a backup.')
    tree, step = chosen
    # Damaged steps, and newer unverified steps when an older one is
    # verified, are moved aside, never deleted, so that new saves can reuse
    # their step numbers.
    for bad_step, _ in failures:
      logging.warning('Moved the unreadable checkpoint of step %d to %s; '
                        'falling back to step %d.', bad_step,
                        self._move_aside(bad_step), step)
    for later in unverified:
      if later > step:
        logging.warning('Moved the unverified checkpoint of step %d to %s; '
                        'falling back to the verified step %d.', later,
                        self._move_aside(later, 'unverified'), step)
    return tree, step

  def set_aside_after(self, step: Optional[int]) -> None:
    """Moves steps newer than ``step`` (None: all) out of the way, renamed,
    never deleted: a team of models resumes from a step every member holds,
    and those members that saved later steps will write them again.

    Args:
      step: the newest step to keep in place; None sets aside every step.
    """
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

  def close(self) -> None:
    """Waits for orbax's pending work and releases its manager."""
    self._manager.close()
