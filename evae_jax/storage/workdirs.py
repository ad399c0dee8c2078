"""A run's workdir: writable, tied to one config, earlier results never lost.

Its lock is `evae_jax.storage.locks` (``locked`` and ``LOCK_FILE`` are
imported here, where callers have always found them).
"""

import json
import logging
import os
import time
from typing import Any, Dict, List, Optional


import ml_collections

from evae_jax.storage import checkpoints
from evae_jax.storage import records
from evae_jax import configuration
from evae_jax.configuration import defaults
from evae_jax import errors
from evae_jax.storage import files
from evae_jax.runtime import sharding
from evae_jax.storage.locks import LOCK_FILE
from evae_jax.storage.locks import locked  # pylint: disable=unused-import

# The suffix of the staging folder of an overwrite in progress.
_MOVING = '.moving'
CONFIG_FILE = 'config.json'
# Written last by a run that trained to its budget: its step and the files
# the end of the run wrote, so that a run killed among those files is
# finished by its rerun, not taken as done.
FINISHED_FILE = 'finished.json'
# Fields that say how a run is carried out, not which run it is: they may
# change between runs in one workdir without invalidating its checkpoints
# (more epochs, another device count or checkpoint interval, the same data
# found at another path, evaluation settings, cosmetics). A resume logs the
# change; every other field defines the run and a change is refused.
RESUMABLE_CHANGES = ('train.num_epochs', 'train.burda_stages',
                     'train.progress_bar', 'train.overwrite',
                     'train.keep_checkpoints', 'train.eval_every_epochs',
                     'train.max_chunk_steps', 'train.checkpoint_every_steps',
                     'train.num_devices', 'train.distributed',
                     'train.coordinator_address', 'train.num_processes',
                     'train.process_id', 'train.initialization_timeout',
                     'data.path', 'data.data_dir',
                     'data.download_timeout', 'model.dtype', 'eval.')
# Fields that decide which model a checkpoint holds and what it is scored on:
# evaluating or sampling with another value would score a different model.
# 'seed': eval.json records it and the tables pair points by it.
EVALUATION_PINNED = ('model.', 'data.name', 'data.binarization',
                     'data.valid_from', 'train.num_seeds', 'train.kl_weights',
                     'seed')


def _resumable(key: str) -> bool:
  return any(key == r or (r.endswith('.') and key.startswith(r))
             for r in RESUMABLE_CHANGES)


def _saved_fields(saved: Dict[str, Any]) -> Dict[str, Any]:
  """The flattened saved config, with the default of every field added
  after it was saved (a new field's default keeps the old behaviour, so a
  run of an earlier version resumes and evaluates as it was)."""
  return {**configuration.flatten(
      configuration.config_as_dict(defaults.get_config())),
          **configuration.flatten(saved)}


def config_changes(saved: Dict[str, Any],
                   requested: Dict[str, Any]) -> List[str]:
  """The flattened fields that differ, except those in RESUMABLE_CHANGES.

  Args:
    saved: the workdir's saved config, nested {section: {field: value}}
      (fields added since take their defaults).
    requested: the config of this run, nested the same way.

  Returns:
    The sorted 'section.field' names that differ and define the run.
  """
  a, b = _saved_fields(saved), configuration.flatten(requested)
  return sorted(k for k in set(a) | set(b)
                if a.get(k) != b.get(k) and not _resumable(k))


def resumable_changes(saved: Dict[str, Any],
                      requested: Dict[str, Any]) -> List[str]:
  """'field: old -> new' for each field of RESUMABLE_CHANGES that differs.

  Args:
    saved, requested: as in `config_changes`.

  Returns:
    One 'section.field: old -> new' line per differing resumable field,
    sorted by field.
  """
  a, b = _saved_fields(saved), configuration.flatten(requested)
  return [f'{k}: {a.get(k)!r} -> {b.get(k)!r}' for k in sorted(set(a) | set(b))
          if a.get(k) != b.get(k) and _resumable(k)]


def check_path(workdir: str) -> None:
  """Refuses a workdir whose checkpoints could never be restored (see
  `checkpoints.check_path`), before anything is created.

  Args:
    workdir: the workdir (local path or object-store URI).

  Raises:
    errors.CheckpointError: naming the character and the fix.
  """
  checkpoints.check_path(files.join(workdir, 'checkpoints'))


def load_saved_config(workdir: str) -> Optional[Dict[str, Any]]:
  """The config a workdir was trained with, or None for a fresh workdir.

  Without config.json, the config saved with the newest checkpoint that has
  one stands in for it (with a warning), so that deleting config.json does
  not let another config resume the run.

  Args:
    workdir: the workdir (local path or object-store URI).

  Returns:
    The saved config, nested {section: {field: value}} as in config.json,
    or None if the workdir has neither config.json nor a checkpoint that
    stores one.

  Raises:
    errors.ConfigError: config.json is damaged or unreadable, or does not
      hold a config (a JSON object with data, model and train sections).
  """
  path = files.join(workdir, CONFIG_FILE)
  if files.is_remote(path):
    missing = not files.exists(path)
  else:
    missing = not os.path.lexists(path)  # a dangling link is a damaged file
  if missing:
    stored, step = records.stored_config(workdir)
    if stored is not None:
      logging.warning('%s is missing: checking the config against the one '
                      'saved with the checkpoint of step %d.', path, step)
    return stored
  try:
    saved = json.loads(files.read_text(path))
  except (OSError, ValueError) as e:
    raise errors.ConfigError(
        f'{path} is damaged or unreadable ({e}). It records the config this '
        'workdir was trained with; restore it from a backup or rewrite it '
        'from the training command, or start afresh in a new --workdir. '
        'Nothing was changed.') from e
  if not isinstance(saved, dict) or not all(
      isinstance(saved.get(k), dict) for k in ('data', 'model', 'train')):
    raise errors.ConfigError(
        f'{path} does not hold a config (a JSON object with data, model and '
        'train sections). Restore it from a backup, or start afresh in a new '
        '--workdir. Nothing was changed.')
  return saved


def record_finished(workdir: str, step: int, outputs: List[str]) -> None:
  """Records that the run in ``workdir`` ended at ``step`` with ``outputs``
  written (`FINISHED_FILE`); to be written after them, last.

  Args:
    workdir: the run's folder (local or remote).
    step: the step it trained to.
    outputs: names, under ``workdir``, of the files the end of the run wrote.
  """
  files.write_text(files.join(workdir, FINISHED_FILE),
                   json.dumps({'step': int(step), 'outputs': sorted(outputs)}))


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


def check_against_checkpoints(saved: Dict[str, Any], workdir: str) -> None:
  """Refuses a config.json that says another run than the config recorded
  with the newest checkpoint (config.json edited after training): the
  checkpoint's weights are a model of the config they were trained with.

  Fields of `RESUMABLE_CHANGES` (how a run is carried out or scored:
  eval.*, data.path, ...) may differ; config.json's value holds for them.

  Args:
    saved: config.json's config, nested {section: {field: value}}.
    workdir: the trained run's workdir.

  Raises:
    errors.ConfigError: naming each field that differs, both values, and
      the fix.
  """
  stored, step = records.stored_config(workdir)
  if stored is None:  # no checkpoint, or one of an earlier version
    return
  # Fields that either lacks (an earlier version's) count at their default.
  trained, written = _saved_fields(stored), _saved_fields(saved)
  changed = sorted(k for k in set(trained) | set(written)
                   if trained.get(k) != written.get(k) and not _resumable(k))
  if changed:
    path = files.join(workdir, CONFIG_FILE)
    raise errors.ConfigError(
        f'{path} was edited after training: it says ' + ', '.join(
            f'{k}={written.get(k)!r}' for k in changed) +
        f', but the checkpoint of step {step} was trained with ' + ', '.join(
            f'{k}={trained.get(k)!r}' for k in changed) +
        ', and its weights are a model of that config. Put those values back '
        f'into {CONFIG_FILE} (or delete it: the config recorded with the '
        'checkpoints then stands in for it); only fields that say how a run '
        'is carried out or scored (eval.*, data.path, ...) may be changed '
        'there. Nothing was changed.')


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


def saved_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a workdir was trained with, typed as `defaults.get_config`.

  Fields added to the library after the run was saved take their defaults
  (as on resume); JSON lists go back to tuples where the default is one.

  Args:
    workdir: a trained run's workdir (local or object-store URI).

  Returns:
    The run's config.

  Raises:
    errors.ConfigError: no run in ``workdir`` (no config.json and no
      checkpoint that stores a config), a damaged config.json, or one
      edited after training (`check_against_checkpoints`).
  """
  saved = load_saved_config(workdir)
  if saved is None:
    raise errors.ConfigError(
        f'{workdir} holds no trained run ({CONFIG_FILE} and checkpoints are '
        'missing): train it first (--mode=train with --config=FILE), or '
        'check --workdir.')
  check_against_checkpoints(saved, workdir)
  return configuration.config_from_dict(saved)


def run_config(workdir: str,
               overrides: Dict[str, Any]) -> ml_collections.ConfigDict:
  """The config a workdir was trained with (`saved_config`), for evaluating
  or sampling it without retyping the training command.

  ``overrides`` may only set fields that say how a run is carried out or
  scored (`RESUMABLE_CHANGES`: eval.*, data.path, device counts, ...), never
  what model was trained.

  Args:
    workdir: a trained run's workdir (local or object-store URI).
    overrides: flat {'section.field': value}, e.g. the command line's
      ``--config.eval.iw_samples=100``.

  Returns:
    The run's config with the overrides applied.

  Raises:
    errors.ConfigError: no run in ``workdir``, or an override of a
      field that defines the trained model.
  """
  pinned = sorted(k for k in overrides if not _resumable(k))
  if pinned:
    raise errors.ConfigError(
        f'--config.{pinned[0]} cannot be set when evaluating or sampling '
        f'{workdir} with its own config: it defines the trained model. Only '
        'evaluation fields (eval.*) and how the run is carried out (data.path, '
        'train.num_devices, ...) may differ. To check a config file against '
        'the run instead, pass it as --config=FILE.')
  config = saved_config(workdir)
  for field, value in overrides.items():
    section, _, name = field.rpartition('.')
    (config[section] if section else config)[name] = value
  return config


def check_evaluation_config(config: ml_collections.ConfigDict,
                            workdir: str) -> None:
  """Refuses to evaluate or sample a workdir as a model it was not trained as.

  A workdir without a saved config is let through with a warning.

  Args:
    config: the config given for evaluating or sampling.
    workdir: the trained run's workdir.

  Raises:
    errors.ConfigError: a field of `EVALUATION_PINNED` differs from
      the workdir's config.json (evaluation-only fields may differ), or
      config.json was edited after training (`check_against_checkpoints`).
  """
  saved = load_saved_config(workdir)
  if saved is None:
    logging.warning('%s has no %s: cannot check that --config describes the '
                    'trained model.', workdir, CONFIG_FILE)
    return
  check_against_checkpoints(saved, workdir)
  flat_saved = _saved_fields(saved)
  flat = configuration.flatten(configuration.config_as_dict(config))
  changed = sorted(k for k in set(flat) | set(flat_saved)
                   if any(k.startswith(p) for p in EVALUATION_PINNED)
                   and flat.get(k) != flat_saved.get(k))
  if changed:
    raise errors.ConfigError(
        f'--config describes a different model from the one trained in '
        f'{workdir}: ' + ', '.join(f'{k}={flat.get(k)!r} (trained: '
                                   f'{flat_saved.get(k)!r})' for k in changed) +
        '. Evaluating would score the checkpoint as another model. Pass '
        f'the same --config and overrides as for training (they are in '
        f'{files.join(workdir, CONFIG_FILE)}); evaluation '
        'fields (eval.*) may differ.')


def _check_config_unchanged(config: ml_collections.ConfigDict,
                            workdir: str) -> list:
  """The fields in which ``config`` differs from the workdir's saved config
  (none if there is none yet), unless resumable.

  Raises:
    errors.ConfigError: they differ and ``train.overwrite`` is off.
  """
  saved = load_saved_config(workdir)
  if saved is None:
    return []
  requested = configuration.config_as_dict(config)
  changes = config_changes(saved, requested)
  if not changes:
    harmless = resumable_changes(saved, requested)
    if harmless:
      logging.info('Resuming %s with changed settings that do not change '
                   'the run: %s.', workdir, '; '.join(harmless))
  if changes and not config.train.overwrite:
    raise errors.ConfigError(
        f'Workdir {workdir} holds a run with a different config '
        f'(changed: {", ".join(changes)}). Use a new --workdir, or pass '
        '--config.train.overwrite=True to move the earlier run into '
        f'{workdir}/previous-<time>/ and start afresh.')
  return changes


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
