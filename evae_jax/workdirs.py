"""A run's workdir: writable, tied to one config, earlier results never lost."""

import logging
import os
import shutil
import time

import ml_collections

from evae_jax import configuration


class WorkdirError(RuntimeError):
  """The workdir cannot be written."""


def prepare(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Creates ``workdir``, checks it is writable, and records the config.

  A workdir that already holds a run with a different config is refused
  unless ``train.overwrite`` is set, in which case the earlier run's files
  are moved to ``workdir/previous-<time>/``, never deleted. Changes listed in
  `configuration.RESUMABLE_CHANGES` (more epochs, evaluation settings) are
  allowed and resume the run.

  Raises:
    WorkdirError: the directory cannot be created or written (read-only or
      full disk).
    configuration.ConfigError: the saved config differs.
  """
  try:
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, '.write_test')
    with open(probe, 'w') as f:
      f.write('x' * 4096)
      f.flush()
      os.fsync(f.fileno())
    os.remove(probe)
  except OSError as e:
    raise WorkdirError(
        f'Cannot write to workdir {workdir!r} ({e.strerror or e}). Choose a '
        'directory on a writable disk with free space (--workdir=DIR).') from e
  requested = configuration.config_as_dict(config)
  saved = configuration.load_saved_config(workdir)
  if saved is not None:
    changes = configuration.config_changes(saved, requested)
    if changes and not config.train.overwrite:
      raise configuration.ConfigError(
          f'Workdir {workdir} holds a run with a different config '
          f'(changed: {", ".join(changes)}). Use a new --workdir, or pass '
          '--config.train.overwrite=True to move the earlier run into '
          f'{workdir}/previous-<time>/ and start afresh.')
    if changes:
      backup = os.path.join(workdir,
                            f'previous-{time.strftime("%Y%m%d-%H%M%S")}')
      os.makedirs(backup)
      for name in os.listdir(workdir):
        if not name.startswith('previous-'):
          shutil.move(os.path.join(workdir, name), backup)
      logging.warning('Config changed (%s): moved the earlier run to %s.',
                      ', '.join(changes), backup)
  tmp = os.path.join(workdir, configuration.CONFIG_FILE + '.tmp')
  with open(tmp, 'w') as f:
    f.write(config.to_json(indent=2))
  os.replace(tmp, os.path.join(workdir, configuration.CONFIG_FILE))
