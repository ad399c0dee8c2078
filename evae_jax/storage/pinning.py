"""Which config a workdir is tied to: the config it was trained with
(config.json, or the one recorded with its checkpoints), what may change on
a resume or an evaluation and what may not, and the refusals with their fix.
"""

import json
import logging
import os
from typing import Any, Dict, List, Optional

import ml_collections

from evae_jax import configuration
from evae_jax.configuration import defaults
from evae_jax import errors
from evae_jax.storage import files
from evae_jax.storage import records

CONFIG_FILE = 'config.json'



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
