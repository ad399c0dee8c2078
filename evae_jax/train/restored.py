"""A trained run restored from its checkpoints alone, for `evae_jax.load`:
the loop records the size of the images with every step, so the model
loads, encodes and samples without them (the data are read only when asked
for, and their DataError then names the Python fix)."""

import re
from typing import Optional, Tuple

import jax
import ml_collections

from evae_jax import configuration
from evae_jax import data as input_pipeline
from evae_jax import errors
from evae_jax import models
from evae_jax import state as state_lib
from evae_jax.storage import checkpoints
from evae_jax.storage import files
from evae_jax.storage import records

# A command-line fix in a message: --config.FIELD or --config.FIELD=VALUE.
_OVERRIDE_FLAG = re.compile(r'--config\.([A-Za-z_][\w.]*\w)(?:=(\S*[^\s.,;:)]))?')


def restore(config: ml_collections.ConfigDict, workdir: str
            ) -> Tuple[state_lib.TrainState, Tuple[int, ...],
                       Optional[input_pipeline.Splits]]:
  """The newest checkpoint's state, its model computing in ``eval.dtype``
  (as ``--mode=evaluate`` restores it), sized from the checkpoint's record.

  Args:
    config: the config the workdir was trained with.
    workdir: the trained run's workdir.

  Returns:
    (state, image_shape, splits): the restored `evae_jax.state.TrainState`,
    (H, W) or (H, W, C), and the dataset, read only for checkpoints of an
    earlier version (whose records lack the image size; else None).

  Raises:
    errors.ConfigError: the config is invalid, or the workdir has no
      checkpoint.
    errors.DataError: checkpoints of an earlier version, and the data
      cannot be loaded.
  """
  configuration.validate(config)
  if not files.isdir(files.join(workdir, 'checkpoints')):
    raise errors.ConfigError(
        f'{workdir} has no checkpoints/: train first with the same --config '
        f'and --workdir={workdir} (without --mode).')
  images, _ = records.stored_field(workdir, 'images')
  splits = None
  if images is None:  # an earlier version's: the data tell
    splits = load_data(config, workdir)
    shape, num_train = splits.image_shape, len(splits.train)
  else:
    shape = tuple(int(n) for n in images['shape'])
    num_train = int(images['num_train'])
  configuration.check_memory(config, shape)
  state = state_lib.create_train_state(config, shape,
                                       jax.random.PRNGKey(0))
  ckpts = checkpoints.Checkpoints(workdir, config.train.keep_checkpoints)
  try:
    state, _, step = state_lib.restore(ckpts, state, num_train)
  finally:
    ckpts.close()
  if step is None:
    raise errors.ConfigError(
        f'{workdir}/checkpoints holds no checkpoint: train first.')
  state = state.replace(model=models.evaluation_model(config, shape))
  return state, shape, splits


def load_data(config: ml_collections.ConfigDict,
              workdir: str) -> input_pipeline.Splits:
  """``config.data``'s dataset, its DataError's command-line fix
  (``--config.FIELD=V``) said as Python gives it to `evae_jax.load`
  (``overrides={'FIELD': V}``).

  Args:
    config: the run's config.
    workdir: the run's workdir (for the message).

  Returns:
    The dataset (`evae_jax.data.Splits`).

  Raises:
    errors.DataError: the data cannot be loaded.
  """
  try:
    return input_pipeline.load(config.data)
  except errors.DataError as e:
    message = _OVERRIDE_FLAG.sub(
        lambda m: (f'overrides={{{m[1]!r}: {m[2]!r}}}' if m[2] else
                   f'overrides={{{m[1]!r}: ...}}'), str(e))
    raise errors.DataError(
        f'{message} From Python: evae_jax.load({workdir!r}, '
        "overrides={'data.path': '/where/they/are/now'}).") from e
