"""A run's workdir: writable, tied to one config, earlier results never lost.

Its lock is `evae_jax.storage.locks` and the config it is tied to
`evae_jax.storage.pinning` (their names are imported here, where callers
have always found them); this module creates, checks, finishes and moves
workdirs.
"""

import json
import logging
import time
from typing import Any, Dict, List, Optional


import ml_collections

from evae_jax.storage import checkpoints
from evae_jax import errors
from evae_jax.storage import files
from evae_jax.runtime import sharding
from evae_jax.storage.locks import LOCK_FILE
from evae_jax.storage.locks import locked  # pylint: disable=unused-import
# The config pinning (`evae_jax.storage.pinning`), imported here where
# callers have always found it.
from evae_jax.storage.pinning import (  # pylint: disable=unused-import
    CONFIG_FILE, EVALUATION_PINNED, RESUMABLE_CHANGES, _check_config_unchanged,
    check_against_checkpoints, check_evaluation_config, config_changes,
    load_saved_config, resumable_changes, run_config, saved_config)

# The suffix of the staging folder of an overwrite in progress.
_MOVING = '.moving'
# Written last by a run that trained to its budget: its step and the files
# the end of the run wrote, so that a run killed among those files is
# finished by its rerun, not taken as done.
FINISHED_FILE = 'finished.json'
def check_path(workdir: str) -> None:
  """Refuses a workdir whose checkpoints could never be restored (see
  `checkpoints.check_path`), before anything is created.

  Args:
    workdir: the workdir (local path or object-store URI).

  Raises:
    errors.CheckpointError: naming the character and the fix.
  """
  checkpoints.check_path(files.join(workdir, 'checkpoints'))


def record_finished(workdir: str, step: int, outputs: List[str],
                    figures: Optional[Dict[str, Any]] = None) -> None:
  """Records that the run in ``workdir`` ended at ``step`` with ``outputs``
  written (`FINISHED_FILE`); to be written after them, last.

  Args:
    workdir: the run's folder (local or remote).
    step: the step it trained to.
    outputs: names, under ``workdir``, of the files the end of the run wrote.
    figures: the settings its sample figures were drawn with
      (`evae_jax.figures.figure_settings`), so that an evaluation of the
      same checkpoint with the same settings need not draw them again.
  """
  record = {'step': int(step), 'outputs': sorted(outputs)}
  if figures is not None:
    record['figures'] = figures
  files.write_text(files.join(workdir, FINISHED_FILE), json.dumps(record))


def update_finished_figures(workdir: str, step: int,
                            figures: Dict[str, Any]) -> None:
  """After an evaluation drew the sample figures again, records the settings
  it drew them with in the run's `FINISHED_FILE`, where that record is of
  ``step`` (otherwise nothing is written: only the end of training records
  that a run finished).

  Args:
    workdir: the run's folder (local or remote).
    step: the step of the checkpoint the figures were drawn from.
    figures: `evae_jax.figures.figure_settings` of the new drawing.
  """
  path = files.join(workdir, FINISHED_FILE)
  try:
    record = json.loads(files.read_text(path))
    if record['step'] != step:
      return
  except Exception:  # pylint: disable=broad-except
    return
  record['figures'] = figures
  files.write_text(path, json.dumps(record))


def finished_figures(workdir: str, step: int) -> Optional[Dict[str, Any]]:
  """The settings the end of the run drew its sample figures with, if it
  ended at ``step`` and every file it wrote is still there.

  Args:
    workdir: the run's folder (local or remote).
    step: the step of the checkpoint in hand.

  Returns:
    The ``figures`` of `record_finished`, or None (no such record, another
    step, a file missing, or a record without them).
  """
  if not is_finished(workdir, step):
    return None
  try:
    return json.loads(files.read_text(
        files.join(workdir, FINISHED_FILE))).get('figures')
  except Exception:  # pylint: disable=broad-except
    return None


def is_finished(workdir: str, step: int) -> bool:
  """Whether the run in ``workdir`` ended at ``step`` and every file its end
  wrote is still there (`record_finished`).

  Args:
    workdir: the run's folder (local or remote).
    step: the step of its newest checkpoint.

  Returns:
    False too when the record is missing or unreadable (a run killed before
    it, or trained by an earlier version): its end is then run again.
  """
  try:
    record = json.loads(files.read_text(files.join(workdir, FINISHED_FILE)))
    outputs = record['outputs']
    ended = record['step'] == step
  except Exception:  # pylint: disable=broad-except
    return False
  return ended and all(files.exists(files.join(workdir, name))
                       for name in outputs)


def check_writable(workdir: str, names=('.', 'checkpoints', 'metrics.jsonl',
                                         'tensorboard')) -> None:
  """Checks, before anything is written, that each existing ``name`` under
  ``workdir`` can be written (a folder: a probe file is created and
  removed; a file: opened for appending, unchanged).

  Args:
    workdir: the workdir (local path or object-store URI).
    names: entries of ``workdir`` to check; missing ones are skipped.

  Raises:
    errors.WorkdirError: naming the first path that cannot be written.
  """
  for name in names:
    path = files.absolute(files.join(workdir, name))
    try:
      if files.isdir(path):
        files.probe(path)
      elif files.exists(path) and not files.is_remote(path):
        with open(path, 'a'):  # objects are replaced whole, not appended to
          pass
    except errors.WorkdirError:
      raise
    except Exception as e:  # pylint: disable=broad-except
      raise errors.WorkdirError(
          f'Cannot write to {path} ({_reason(e)}); evae_jax must write '
          'there to continue. Make it writable (permissions, or a read-write '
          'mount) and rerun the same command; nothing was changed.') from e


def prepare(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Creates ``workdir``, checks it is writable, and records the config.

  A workdir that already holds a run with a different config is refused
  unless ``train.overwrite`` is set, in which case the earlier run's files
  are moved to ``workdir/previous-<time>/``, never deleted. Changes listed in
  `RESUMABLE_CHANGES` (more epochs, evaluation settings) are
  allowed and resume the run.

  Args:
    config: the run's config; written to ``workdir/config.json``.
    workdir: the workdir (local path or object-store URI); created if
      missing. Only process 0 writes; the others only check the config.

  Raises:
    errors.WorkdirError: the directory cannot be created or written
      (read-only or full disk).
    errors.ConfigError: the saved config differs.
  """
  check_path(workdir)
  if not sharding.is_lead():
    _check_config_unchanged(config, workdir)  # process 0 writes; others read
    return
  try:
    files.makedirs(workdir)
    files.probe(workdir, size=4096)
  except errors.WorkdirError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    # OSError locally; object stores raise their own types (no bucket, no
    # credentials, no network).
    raise errors.WorkdirError(
        f'Cannot write to workdir {workdir!r} ({_reason(e)}). Choose a '
        'directory on a writable disk with free space, or a bucket you can '
        'write to (--workdir=DIR).') from e
  check_writable(workdir)
  _undo_an_interrupted_move(workdir)
  changes = _check_config_unchanged(config, workdir)
  if changes:
    backup = _move_earlier_run(workdir)
    logging.warning('Config changed (%s): moved the earlier run to %s.',
                    ', '.join(changes), backup)
  path, text = files.join(workdir, CONFIG_FILE), config.to_json(indent=2)
  if not (files.exists(path) and _read_or_none(path) == text):
    files.write_text(path, text)  # unchanged: not even rewritten


def _read_or_none(path: str):
  try:
    return files.read_text(path)
  except Exception:  # pylint: disable=broad-except
    return None  # unreadable: written anew


def _move_earlier_run(workdir: str) -> str:
  """Moves the earlier run's files into ``workdir/previous-<time>/``.

  They are moved one by one into a staging folder (``.previous-<time>.
  moving``), which is renamed to its final name once it holds them all: a
  ``previous-*`` folder is always a whole run, and a kill half way leaves
  the staging folder, which the next `prepare` moves back first
  (`_undo_an_interrupted_move`).
  """
  stamp = f'previous-{time.strftime("%Y%m%d-%H%M%S")}'
  while (files.exists(files.join(workdir, stamp)) or
         files.exists(files.join(workdir, f'.{stamp}{_MOVING}'))):
    stamp += '-'  # two overwrites within one second
  staging = files.join(workdir, f'.{stamp}{_MOVING}')
  files.makedirs(staging)
  for name in files.listdir(workdir):
    if not _kept_in_place(name):
      files.rename(files.join(workdir, name), files.join(staging, name))
  backup = files.join(workdir, stamp)
  files.rename(staging, backup)
  return backup


def _kept_in_place(name: str) -> bool:
  """Entries of a workdir that an overwrite leaves where they are."""
  return (name.startswith('previous-') or name == LOCK_FILE or
          (name.startswith('.previous-') and name.endswith(_MOVING)))


def _undo_an_interrupted_move(workdir: str) -> None:
  """Moves the files of an overwrite killed half way back into place: the
  workdir is again as it was before, and the command run now decides (the
  same overwrite moves them all again, into one folder)."""
  if not files.isdir(workdir):  # a fresh workdir in a bucket: no objects yet
    return
  for name in files.listdir(workdir):
    if not (name.startswith('.previous-') and name.endswith(_MOVING)):
      continue
    staging = files.join(workdir, name)
    entries = files.listdir(staging)
    clashes = [e for e in entries if files.exists(files.join(workdir, e))]
    if clashes:
      raise errors.WorkdirError(
          f'{staging} holds files of an earlier run whose move aside was '
          f'interrupted, but {", ".join(clashes)} also exist in {workdir}. '
          'Move that folder\'s contents back by hand (or rename it to '
          f'{name[1:-len(_MOVING)]}) and rerun; nothing was changed.')
    for entry in entries:
      files.rename(files.join(staging, entry), files.join(workdir, entry))
    files.remove_dir(staging)
    logging.warning(
        'Moving the earlier run aside into %s was interrupted: '
        'moved its %d entries back into %s first.', name[1:-len(_MOVING)],
        len(entries), workdir)


def _reason(error: Exception) -> str:
  """The short reason of an OS or object-store error."""
  return getattr(error, 'strerror', None) or f'{type(error).__name__}: {error}'
