"""Training: the jitted step, whole chunks of epochs on the device, and the loop.

RNG keys derive from (seed, step) and data order from (seed, epoch) with
``fold_in``, so a run resumed from a checkpoint continues exactly as the
uninterrupted run would have.
"""

import contextlib
import functools
import logging
import os
import shutil
import signal
import time
from typing import Any, Dict

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax.training import train_state
from tqdm import tqdm

from evae_jax import checkpoints
from evae_jax import configuration
from evae_jax import elbo
from evae_jax import evaluate
from evae_jax import figures
from evae_jax import input_pipeline
from evae_jax import metric_writers
from evae_jax import models


class NonFiniteLossError(RuntimeError):
  """The loss or the gradients became NaN or infinite."""


class WorkdirError(RuntimeError):
  """The workdir cannot be written."""


TrainState = train_state.TrainState


def create_train_state(config: ml_collections.ConfigDict, num_pixels: int,
                       rng: jax.Array) -> TrainState:
  """Initial parameters and Adam state for ``config.model`` / ``config.train``."""
  model = models.make_model(config.model, num_pixels)
  params = models.init_params(model, rng)
  tx = optax.adam(config.train.learning_rate)
  return TrainState.create(apply_fn=model.apply, params=params, tx=tx)


@functools.partial(jax.jit, static_argnames=('objective', 'z_dropout_rate'))
def train_step(state: TrainState, batch: jax.Array, rng: jax.Array,
               masks: jax.Array, kl_weight: float | jax.Array = 1.0, *,
               objective: str = 'point',
               z_dropout_rate: float = 0.0) -> tuple[TrainState, Dict]:
  """One Adam step on the negative bound of eq. 7.

  The bound is computed for all epitomes at once, each example is assigned
  y* = argmax_y ELBO_y, and only the chosen epitome is recomputed with
  gradients (`evae_jax.elbo.epitome_loss`).

  Args:
    state: parameters and optimizer state.
    batch: (B, N) float32 inputs in [0, 1].
    rng: PRNG key for this step.
    masks: (E, D) epitome masks.
    kl_weight: lambda of paper §3.1.
    objective: 'point' (eq. 7) or 'logsumexp'.
    z_dropout_rate: dropout on z (dropout VAE); 0 disables it.

  Returns:
    (new_state, metrics): scalar metrics 'loss', 'elbo', 'bound',
    'logsumexp_bound', 'log_lik', 'kl' (batch means) and 'grad_norm'.
  """
  def loss_fn(params):
    encode, decode_log_prob = models.bind(state.apply_fn, params)
    return elbo.epitome_loss(encode, decode_log_prob, batch, masks, rng,
                             kl_weight=kl_weight, objective=objective,
                             z_dropout_rate=z_dropout_rate)

  (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  metrics = {k: jnp.mean(aux[k]) for k in
             ('elbo', 'bound', 'logsumexp_bound', 'log_lik', 'kl')}
  metrics['loss'] = loss
  metrics['grad_norm'] = optax.tree.norm(grads)
  return state.apply_gradients(grads=grads), metrics


@functools.partial(
    jax.jit, donate_argnames=('state',),
    static_argnames=('num_steps', 'batch_size', 'binarization', 'objective',
                     'z_dropout_rate'))
def train_chunk(state: TrainState, images: jax.Array, rng: jax.Array,
                masks: jax.Array, kl_weight, epoch, first_step_in_epoch, *,
                num_steps: int, batch_size: int, binarization: str,
                objective: str, z_dropout_rate: float):
  """``num_steps`` consecutive steps of one epoch inside one ``lax.scan``.

  The epoch's order is a permutation of the training set drawn from
  fold_in(rng, epoch); its batches are gathered on the device, so the host
  does O(1) work per chunk.

  Args:
    state: train state; donated.
    images: (n, N) uint8 training pixels on the device.
    rng: the run's base key.
    masks: (E, D).
    kl_weight: lambda.
    epoch: index of the epoch.
    first_step_in_epoch: step within the epoch at which the chunk starts.
    num_steps: steps in this chunk.
    batch_size: B.
    binarization: see `evae_jax.input_pipeline.preprocess`.
    objective: see `train_step`.
    z_dropout_rate: see `train_step`.

  Returns:
    (state, metrics) with each metric stacked to shape (num_steps,).
  """
  step_rng, data_rng = jax.random.fold_in(rng, 0), jax.random.fold_in(rng, 1)
  order = jax.random.permutation(jax.random.fold_in(data_rng, epoch),
                                 images.shape[0])
  indices = jax.lax.dynamic_slice_in_dim(
      order, first_step_in_epoch * batch_size, num_steps * batch_size)
  indices = indices.reshape(num_steps, batch_size)

  def body(state, idx):
    key = jax.random.fold_in(step_rng, state.step)
    bin_key, key = jax.random.split(key)
    x = input_pipeline.preprocess(images[idx], bin_key, binarization)
    return train_step(state, x, key, masks, kl_weight, objective=objective,
                      z_dropout_rate=z_dropout_rate)

  return jax.lax.scan(body, state, indices)


def state_tree(state: TrainState) -> Dict[str, Any]:
  """The part of the state that is checkpointed (apply_fn and tx are code)."""
  return {'params': state.params, 'opt_state': state.opt_state,
          'step': state.step}


@contextlib.contextmanager
def _stop_on_signals():
  """Yields a dict whose 'signal' is set when SIGTERM or SIGINT arrives."""
  flag = {'signal': None}
  def handler(signum, _):
    flag['signal'] = signal.Signals(signum).name
  previous = {}
  try:
    for sig in (signal.SIGTERM, signal.SIGINT):
      previous[sig] = signal.signal(sig, handler)
  except ValueError:  # not the main thread: leave signals alone.
    pass
  try:
    yield flag
  finally:
    for sig, old in previous.items():
      signal.signal(sig, old)


def prepare_workdir(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Creates ``workdir``, checks it is writable, and records the config.

  A workdir that already holds a run with a different config is refused
  unless ``train.overwrite`` is set, in which case the earlier run's files
  are moved to ``workdir/previous-<time>/``, never deleted.

  Raises:
    WorkdirError: the directory cannot be created or written.
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
      backup = os.path.join(workdir, f'previous-{time.strftime("%Y%m%d-%H%M%S")}')
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


def _check_finite(metrics: Dict[str, np.ndarray], first_step: int,
                  config, last_checkpoint) -> None:
  bad = ~(np.isfinite(metrics['loss']) & np.isfinite(metrics['grad_norm']))
  if not bad.any():
    return
  step = first_step + int(np.argmax(bad)) + 1
  hint = (f'the learning rate (train.learning_rate={config.train.learning_rate}'
          ') is too high for this model')
  if config.model.likelihood == 'gaussian':
    hint += (', or the Gaussian decoder variance is too small for the data '
             f'(raise model.min_logvar={config.model.min_logvar})')
  raise NonFiniteLossError(
      f'The loss or gradients became NaN/inf at step {step}. Likely cause: '
      f'{hint}. ' + (f'The last good checkpoint (step {last_checkpoint}) is '
                     'intact. ' if last_checkpoint else 'No checkpoint had '
                     'been saved yet. ') +
      'Rerun with a lower learning rate in a new workdir (or here with '
      '--config.train.overwrite=True, which keeps the earlier files).')


def _is_boundary(step: int, steps_per_epoch: int, every: int) -> bool:
  return step % (every or steps_per_epoch) == 0


def _next_boundary(step: int, steps_per_epoch: int, every: int) -> int:
  end_of_epoch = (step // steps_per_epoch + 1) * steps_per_epoch
  if not every:
    return end_of_epoch
  return min(end_of_epoch, (step // every + 1) * every)


def train_and_evaluate(config: ml_collections.ConfigDict,
                       workdir: str) -> Dict[str, float]:
  """Trains (or resumes) the model of ``config`` in ``workdir``.

  Writes ``checkpoints/``, ``metrics.jsonl``, TensorBoard events in
  ``tensorboard/``, and at the end ``samples.png`` and
  ``reconstructions.png``. Rerunning on the same workdir resumes from the
  newest readable checkpoint.

  Args:
    config: the configuration (see ``configs/default.py``).
    workdir: output directory.

  Returns:
    The last validation metrics ('valid_bound', 'valid_logsumexp_bound', ...).
  """
  configuration.validate(config)
  prepare_workdir(config, workdir)
  splits = input_pipeline.load(config.data)
  tc = config.train
  num_train = len(splits.train)
  steps_per_epoch = num_train // tc.batch_size
  if steps_per_epoch == 0:
    raise configuration.ConfigError(
        f'train.batch_size={tc.batch_size} exceeds the {num_train} training '
        f'images; use --config.train.batch_size={min(100, num_train)}.')
  total_steps = tc.num_epochs * steps_per_epoch
  masks = jnp.asarray(configuration.masks_from_config(config.model))
  base = jax.random.PRNGKey(config.seed)
  init_rng, train_rng, eval_rng = (jax.random.fold_in(base, i) for i in range(3))

  state = create_train_state(config, splits.num_pixels, init_rng)
  ckpts = checkpoints.Checkpoints(workdir, tc.keep_checkpoints)
  restored, last_saved = ckpts.restore_latest(state_tree(state))
  if restored is not None:
    state = state.replace(**restored)
    logging.info('Resumed from the checkpoint at step %d.', last_saved)
  step = int(state.step)

  images = jnp.asarray(splits.train.reshape(num_train, -1))
  valid = evaluate.eval_inputs(splits.valid, config.data)
  kl_weight = jnp.float32(tc.kl_weight)
  writer = metric_writers.MetricWriter(workdir)
  bar = tqdm(total=total_steps, initial=step, disable=not tc.progress_bar,
             unit='step', dynamic_ncols=True)
  valid_metrics = {}
  try:
    with _stop_on_signals() as stop:
      while step < total_steps:
        epoch, offset = divmod(step, steps_per_epoch)
        end = _next_boundary(step, steps_per_epoch, tc.checkpoint_every_steps)
        start_time = time.perf_counter()
        state, metrics = train_chunk(
            state, images, train_rng, masks, kl_weight, epoch, offset,
            num_steps=end - step, batch_size=tc.batch_size,
            binarization=config.data.binarization, objective=tc.objective,
            z_dropout_rate=tc.z_dropout_rate)
        metrics = jax.device_get(metrics)
        elapsed = time.perf_counter() - start_time
        _check_finite(metrics, step, config, last_saved)
        summary = {f'train_{k}': float(np.mean(v)) for k, v in metrics.items()}
        summary['examples_per_sec'] = (end - step) * tc.batch_size / elapsed
        summary['epoch'] = end / steps_per_epoch
        bar.update(end - step)
        bar.set_postfix(loss=f'{summary["train_loss"]:.2f}',
                        ex_s=f'{summary["examples_per_sec"]:.0f}')
        step = end
        if step % steps_per_epoch == 0 and (
            (step // steps_per_epoch) % tc.eval_every_epochs == 0
            or step == total_steps):
          valid_metrics = {
              f'valid_{k}': v for k, v in evaluate.mean_bounds(
                  state.params, state.apply_fn, valid, masks, eval_rng,
                  config.eval.batch_size).items()}
          summary.update(valid_metrics)
          bar.write(f'epoch {step // steps_per_epoch}: valid bound '
                    f'{valid_metrics["valid_bound"]:.3f} nats')
        writer.write(step, summary)
        if (_is_boundary(step, steps_per_epoch, tc.checkpoint_every_steps)
            or step == total_steps or stop['signal']):
          ckpts.save(step, state_tree(state))
          last_saved = step
        if stop['signal']:
          logging.warning('Received %s: saved a checkpoint at step %d and '
                          'stopped. Rerun the same command to resume.',
                          stop['signal'], step)
          return valid_metrics
  finally:
    bar.close()
    writer.close()
    ckpts.close()
  if not valid_metrics:  # the run had already finished before this call.
    valid_metrics = {f'valid_{k}': v for k, v in evaluate.mean_bounds(
        state.params, state.apply_fn, valid, masks, eval_rng,
        config.eval.batch_size).items()}
  figures.write_sample_figures(state.params, state.apply_fn, masks, splits,
                               config, workdir)
  return valid_metrics
