"""Training: the jitted step, whole chunks of epochs on the device, and the loop.

RNG keys derive from (seed, step) and data order from (seed, epoch) with
``fold_in``, so a run resumed from a checkpoint continues exactly as the
uninterrupted run would have.
"""

import contextlib
import dataclasses
import functools
import logging
import signal
import time
from typing import Any, Dict, Optional

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
from evae_jax import schedules
from evae_jax import workdirs


class NonFiniteLossError(RuntimeError):
  """The loss or the gradients became NaN or infinite."""


class TrainState(train_state.TrainState):
  """Flax's TrainState; ``apply_fn`` holds the `evae_jax.models.Model`."""

  @property
  def model(self) -> models.Model:
    return self.apply_fn


def create_train_state(config: ml_collections.ConfigDict, num_pixels: int,
                       rng: jax.Array, steps_per_epoch: int = 1) -> TrainState:
  """Initial parameters and Adam state for ``config.model`` / ``config.train``."""
  model = models.make_model(config.model, num_pixels)
  tx = optax.adam(schedules.learning_rate(config.train, steps_per_epoch))
  return TrainState.create(apply_fn=model, params=model.init(rng), tx=tx)


@dataclasses.dataclass(frozen=True)
class StepOptions:
  """Static settings of the compiled training loop.

  Attributes:
    batch_size: B.
    binarization: see `evae_jax.input_pipeline.preprocess`.
    objective: 'point' (eq. 7) or 'logsumexp'.
    z_dropout_rate: dropout on z (dropout VAE); 0 disables it.
    per_epoch_assignment: Algorithm 1 (y* fixed for the epoch) instead of
      choosing y* at every step.
  """
  batch_size: int
  binarization: str = 'none'
  objective: str = 'point'
  z_dropout_rate: float = 0.0
  per_epoch_assignment: bool = False

  @classmethod
  def from_config(cls, config):
    return cls(batch_size=config.train.batch_size,
               binarization=config.data.binarization,
               objective=config.train.objective,
               z_dropout_rate=config.train.z_dropout_rate,
               per_epoch_assignment=config.train.assignment == 'epoch')


@functools.partial(jax.jit, static_argnames=('objective', 'z_dropout_rate'))
def train_step(state: TrainState, batch: jax.Array, rng: jax.Array,
               masks: jax.Array, kl_weight: float | jax.Array = 1.0,
               assignments: Optional[jax.Array] = None, *,
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
    assignments: optional (B,) epitome per example fixed in advance
      (Algorithm 1); by default y* is chosen in the step.
    objective: 'point' (eq. 7) or 'logsumexp'.
    z_dropout_rate: dropout on z (dropout VAE); 0 disables it.

  Returns:
    (new_state, metrics): scalar metrics 'loss', 'elbo', 'bound',
    'logsumexp_bound', 'log_lik', 'kl' (batch means) and 'grad_norm'.
  """
  def loss_fn(params):
    return state.model.loss(params, batch, masks, rng, kl_weight=kl_weight,
                            objective=objective, z_dropout_rate=z_dropout_rate,
                            assignments=assignments)

  (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  metrics = {k: jnp.mean(aux[k]) for k in
             ('elbo', 'bound', 'logsumexp_bound', 'log_lik', 'kl')}
  metrics['loss'] = loss
  metrics['grad_norm'] = optax.tree.norm(grads)
  return state.apply_gradients(grads=grads), metrics


def _keys(rng):
  """(step key, data key) of a run's base key."""
  return jax.random.fold_in(rng, 0), jax.random.fold_in(rng, 1)


@functools.partial(jax.jit, donate_argnames=('state',),
                   static_argnames=('num_steps', 'options'))
def train_chunk(state: TrainState, images: jax.Array, assignments: jax.Array,
                rng: jax.Array, masks: jax.Array, kl_weight, epoch,
                first_step_in_epoch, *, num_steps: int, options: StepOptions):
  """``num_steps`` consecutive steps of one epoch inside one ``lax.scan``.

  The epoch's order is drawn from fold_in(rng, epoch) (a permutation, or for
  Algorithm 1 a stratified shuffle of ``assignments``); its batches are
  gathered on the device, so the host does O(1) work per chunk.

  Args:
    state: train state; donated.
    images: (n, N) uint8 training pixels on the device.
    assignments: (n,) int32 epitome of every training example for this
      epoch (Algorithm 1); ignored unless options.per_epoch_assignment.
    rng: the run's base key.
    masks: (E, D).
    kl_weight: lambda.
    epoch: index of the epoch.
    first_step_in_epoch: step within the epoch at which the chunk starts.
    num_steps: steps in this chunk.
    options: `StepOptions`.

  Returns:
    (state, metrics) with each metric stacked to shape (num_steps,).
  """
  step_rng, data_rng = _keys(rng)
  epoch_rng = jax.random.fold_in(data_rng, epoch)
  if options.per_epoch_assignment:
    order = schedules.stratified_order(epoch_rng, assignments, masks.shape[0])
  else:
    order = schedules.permutation(epoch_rng, images.shape[0])
  b = options.batch_size
  indices = jax.lax.dynamic_slice_in_dim(order, first_step_in_epoch * b,
                                         num_steps * b).reshape(num_steps, b)

  def body(state, idx):
    key = jax.random.fold_in(step_rng, state.step)
    bin_key, key = jax.random.split(key)
    x = input_pipeline.preprocess(images[idx], bin_key, options.binarization)
    fixed = assignments[idx] if options.per_epoch_assignment else None
    return train_step(state, x, key, masks, kl_weight, fixed,
                      objective=options.objective,
                      z_dropout_rate=options.z_dropout_rate)

  return jax.lax.scan(body, state, indices)


@functools.partial(jax.jit, static_argnames=('options',))
def assign_dataset(state: TrainState, images: jax.Array, rng: jax.Array,
                   masks: jax.Array, kl_weight, epoch, *,
                   options: StepOptions) -> jax.Array:
  """Algorithm 1, line 3: y* of every training example under the current
  parameters, with the objective being optimised (lambda-weighted ELBO).

  Args:
    state: train state.
    images: (n, N) uint8 training pixels.
    rng: the run's base key.
    masks: (E, D).
    kl_weight: lambda.
    epoch: index of the epoch about to start.
    options: `StepOptions`.

  Returns:
    (n,) int32 assignments.
  """
  _, data_rng = _keys(rng)
  key = jax.random.fold_in(jax.random.fold_in(data_rng, epoch), 1)
  b = options.batch_size
  n = images.shape[0]
  padded = jnp.concatenate([images, images[:(-n) % b]])

  def one(args):
    i, pixels = args
    bin_key, eps_key = jax.random.split(jax.random.fold_in(key, i))
    x = input_pipeline.preprocess(pixels, bin_key, options.binarization)
    terms, _, _ = state.model.elbo_terms(state.params, x, masks, eps_key)
    return elbo.assign_epitomes(terms.log_lik - kl_weight * terms.kl)

  batches = padded.reshape((-1, b) + images.shape[1:])
  y = jax.lax.map(one, (jnp.arange(batches.shape[0]), batches))
  return y.reshape(-1)[:n]


def state_tree(state: TrainState,
               assignments: Optional[jax.Array] = None) -> Dict[str, Any]:
  """What a checkpoint holds: parameters, optimizer state, step, and the
  epoch's assignments of Algorithm 1 (apply_fn and tx are code)."""
  tree = {'params': state.params, 'opt_state': state.opt_state,
          'step': state.step}
  if assignments is not None:
    tree['assignments'] = assignments
  return tree


def restore(ckpts: checkpoints.Checkpoints, state: TrainState,
            num_train: int):
  """(state, assignments, step) from the newest readable checkpoint, or the
  given state, unassigned examples (-1) and None if there is none yet."""
  assignments = jnp.full((num_train,), -1, jnp.int32)
  tree, step = ckpts.restore_latest(state_tree(state, assignments))
  if tree is None:
    return state, assignments, None
  assignments = tree.pop('assignments')
  return state.replace(**tree), assignments, step


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
  workdirs.prepare(config, workdir)
  splits = input_pipeline.load(config.data)
  tc = config.train
  options = StepOptions.from_config(config)
  num_train = len(splits.train)
  steps_per_epoch = num_train // tc.batch_size
  if steps_per_epoch == 0:
    raise configuration.ConfigError(
        f'train.batch_size={tc.batch_size} exceeds the {num_train} training '
        f'images; use --config.train.batch_size={min(100, num_train)}.')
  total_steps = schedules.total_epochs(tc) * steps_per_epoch
  masks = jnp.asarray(configuration.masks_from_config(config.model))
  base = jax.random.PRNGKey(config.seed)
  init_rng, train_rng, eval_rng = (jax.random.fold_in(base, i) for i in range(3))

  state = create_train_state(config, splits.num_pixels, init_rng,
                             steps_per_epoch)
  ckpts = checkpoints.Checkpoints(workdir, tc.keep_checkpoints)
  state, assignments, last_saved = restore(ckpts, state, num_train)
  if last_saved is not None:
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
        summary = {}
        if options.per_epoch_assignment and offset == 0:
          previous = assignments
          assignments = assign_dataset(state, images, train_rng, masks,
                                       kl_weight, epoch, options=options)
          summary['assignment_changes'] = float(
              jnp.mean(assignments != previous))
        start_time = time.perf_counter()
        state, metrics = train_chunk(
            state, images, assignments, train_rng, masks, kl_weight, epoch,
            offset, num_steps=end - step, options=options)
        metrics = jax.device_get(metrics)
        elapsed = time.perf_counter() - start_time
        _check_finite(metrics, step, config, last_saved)
        summary.update({f'train_{k}': float(np.mean(v))
                        for k, v in metrics.items()})
        summary['examples_per_sec'] = (end - step) * tc.batch_size / elapsed
        summary['epoch'] = end / steps_per_epoch
        summary['learning_rate'] = float(
            schedules.learning_rate(tc, steps_per_epoch)(end - 1))
        bar.update(end - step)
        bar.set_postfix(loss=f'{summary["train_loss"]:.2f}',
                        ex_s=f'{summary["examples_per_sec"]:.0f}')
        step = end
        if step % steps_per_epoch == 0 and (
            (step // steps_per_epoch) % tc.eval_every_epochs == 0
            or step == total_steps):
          valid_metrics = _valid_metrics(state, valid, masks, eval_rng, config)
          summary.update(valid_metrics)
          bar.write(f'epoch {step // steps_per_epoch}: valid bound '
                    f'{valid_metrics["valid_bound"]:.3f} nats')
        writer.write(step, summary)
        if (_is_boundary(step, steps_per_epoch, tc.checkpoint_every_steps)
            or step == total_steps or stop['signal']):
          ckpts.save(step, state_tree(state, assignments))
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
    valid_metrics = _valid_metrics(state, valid, masks, eval_rng, config)
  figures.write_sample_figures(state.params, state.model, masks, splits,
                               config, workdir)
  return valid_metrics


def _valid_metrics(state, valid, masks, rng, config) -> Dict[str, float]:
  return {f'valid_{k}': v for k, v in evaluate.mean_bounds(
      state.params, state.model, valid, masks, rng,
      config.eval.batch_size).items()}
