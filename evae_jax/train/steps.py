"""The compiled computation of training: one Adam step, a chunk of steps in
one ``lax.scan``, M models at once under ``vmap``, and Algorithm 1's
assignment pass. Pure, jitted functions of the train state; the loop that
calls them (checkpoints, metrics, signals) is `evae_jax.train`.

Every setting that selects code (the objective, its sample count, the
over-pruning remedies, the assignment scheme, ...) travels in one
`StepOptions`, a static argument of every compiled function here: a new
setting of the loss is a field of `evae_jax.objectives.LossSettings`, which
`StepOptions` holds whole and passes to the loss as it is; a new setting of
the loop is a field of `StepOptions` (and a line of its ``from_config``).
Neither is an argument threaded through each signature. Equal options share one
compiled program; changed options compile another.

RNG keys derive from (seed, step) and data order from (seed, epoch) with
``fold_in``, so a run resumed from a checkpoint continues exactly as the
uninterrupted run would have.
"""

import dataclasses
import functools
from typing import Dict, Optional

import jax
import jax.numpy as jnp
import ml_collections
import optax
from jax.sharding import Mesh

from evae_jax import errors
from evae_jax import elbo
from evae_jax import data as input_pipeline
from evae_jax import objectives
from evae_jax.state import schedules
from evae_jax.runtime import seeds
from evae_jax.runtime import sharding
from evae_jax.state import TrainState


@dataclasses.dataclass(frozen=True)
class StepOptions:
  """Static settings of the compiled training loop.

  Frozen and hashable: the whole object is one static argument of
  `train_step`, `train_chunk`, `train_chunks` and `assign_dataset`. The
  defaults train the plain objective with every remedy off.

  Attributes:
    batch_size: B of the batches that `train_chunk`, `train_chunks` and
      `assign_dataset` draw from the training set (they need it set);
      `train_step` takes its batch whole and does not read it.
    binarization: see `evae_jax.data.preprocess`.
    objective: a name of `evae_jax.objectives.REGISTRY`: 'point' (eq. 7),
      'logsumexp', 'iwae' or 'iwae_marginal'.
    loss: the static settings of the objective (z dropout, k, free bits),
      `evae_jax.objectives.LossSettings`, passed to the loss as they are.
    per_epoch_assignment: Algorithm 1 (y* fixed for the epoch) instead of
      choosing y* at every step.
    assignment_samples: noise draws averaged per example by Algorithm 1's
      assignment (a less noisy argmax of ELBO_y).
    kl_warmup_steps: KL warm-up length in steps
      (`evae_jax.state.schedules.kl_warmup_factor`); 0 off.
    kl_warmup_start: the KL weight's fraction at step 0 of the warm-up.
  """
  batch_size: Optional[int] = None
  binarization: str = 'none'
  objective: str = 'point'
  loss: objectives.LossSettings = objectives.LossSettings()
  per_epoch_assignment: bool = False
  assignment_samples: int = 1
  kl_warmup_steps: int = 0
  kl_warmup_start: float = 0.0

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict) -> 'StepOptions':
    """The options of a run.

    Args:
      config: a configuration (see ``evae_jax/configuration/defaults.py``);
        reads ``config.data.binarization`` and the ``config.train`` fields named
        like the attributes (``train.assignment == 'epoch'`` for
        ``per_epoch_assignment``).

    Returns:
      The `StepOptions` of ``config``.
    """
    t = config.train
    return cls(batch_size=t.batch_size,
               binarization=config.data.binarization,
               objective=t.objective,
               loss=objectives.LossSettings.from_config(t),
               per_epoch_assignment=t.assignment == 'epoch',
               assignment_samples=t.assignment_samples,
               kl_warmup_steps=t.kl_warmup_steps,
               kl_warmup_start=t.kl_warmup_start)


def _warmed_up(kl_weight, step, options):
  """The KL weight at ``step``: ``kl_weight`` itself without warm-up."""
  if not options.kl_warmup_steps:
    return kl_weight
  return kl_weight * schedules.kl_warmup_factor(step, options.kl_warmup_steps,
                                                options.kl_warmup_start)


def _batch_size(options):
  """``options.batch_size``, which the functions that draw batches need."""
  if options.batch_size is None:
    raise ValueError('StepOptions.batch_size is needed to draw batches; '
                     'build the options with StepOptions.from_config(config).')
  return options.batch_size


@functools.partial(jax.jit, static_argnames=('options',))
def train_step(state: TrainState, batch: jax.Array, rng: jax.Array,
               kl_weight: float | jax.Array = 1.0,
               assignments: Optional[jax.Array] = None, *,
               options: StepOptions = StepOptions()
               ) -> tuple[TrainState, Dict[str, jax.Array]]:
  """One Adam step on the model's loss for ``options.objective``.

  The loss is the model's ``loss`` (`evae_jax.objectives.loss`): by default
  the negative bound of eq. 7, with y* chosen on one noise draw and only the
  chosen epitome computed with gradients, on an independent draw
  (`evae_jax.objectives.point.point_loss`). KL warm-up scales ``kl_weight`` by
  `evae_jax.state.schedules.kl_warmup_factor` of the state's (global) step.

  Args:
    state: parameters and optimizer state.
    batch: (B, N) float32 inputs in [0, 1].
    rng: PRNG key for this step.
    kl_weight: () lambda of paper §3.1.
    assignments: optional (B,) int32 epitome per example fixed in advance
      (Algorithm 1); by default y* is chosen in the step.
    options: the objective and the remedies (``objective``, ``loss``,
      ``kl_warmup_steps``, ``kl_warmup_start``); static.

  Returns:
    (new_state, metrics): metrics of shape () 'loss', 'elbo', 'bound',
    'log_lik', 'kl' (batch means of the true terms, scored on a draw
    independent of y*), 'logsumexp_bound' for that objective,
    'free_bits_kl' with free bits, 'kl_weight' with warm-up, and
    'grad_norm'.

  Raises:
    errors.ObjectiveError: KL warm-up for an objective without a KL term, or
      options the objective does not support.
  """
  if objectives.get(options.objective).kl_settings_given(
      {'kl_warmup_steps': options.kl_warmup_steps}):
    raise errors.ObjectiveError(
        f'The objective {options.objective!r} has no KL term to warm up; set '
        'kl_warmup_steps=0.')
  weight = _warmed_up(kl_weight, state.step, options)

  def loss_fn(params):
    return state.model.loss(params, batch, rng, kl_weight=weight,
                            objective=options.objective,
                            assignments=assignments,
                            **options.loss._asdict())

  (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  metrics = {k: jnp.mean(v) for k, v in aux.present().items()
             if k != 'assignments'}
  metrics['loss'] = loss
  if options.kl_warmup_steps:
    metrics['kl_weight'] = jnp.asarray(weight, jnp.float32)
  metrics['grad_norm'] = optax.tree.norm(grads)
  return state.apply_gradients(grads=grads), metrics


def _keys(rng):
  """(step key, data key) of a run's base key."""
  return (jax.random.fold_in(rng, seeds.STEPS),
          jax.random.fold_in(rng, seeds.DATA))


def _chunk(state, images, assignments, rng, kl_weight, epoch,
           first_step_in_epoch, num_steps, options, mesh):
  """`train_chunk` of one model (the body that `train_chunks` vmaps)."""
  step_rng, data_rng = _keys(rng)
  epoch_rng = jax.random.fold_in(data_rng, epoch)
  if options.per_epoch_assignment:
    order = schedules.stratified_order(epoch_rng, assignments,
                                       state.model.masks.shape[0])
  else:
    order = schedules.permutation(epoch_rng, images.shape[0])
  b = _batch_size(options)
  indices = jax.lax.dynamic_slice_in_dim(order, first_step_in_epoch * b,
                                         num_steps * b).reshape(num_steps, b)

  def body(state, idx):
    key = jax.random.fold_in(step_rng, state.step)
    bin_key, key = jax.random.split(key)
    x = input_pipeline.preprocess(images[idx], bin_key, options.binarization)
    x = sharding.shard_batch(x, mesh)
    fixed = assignments[idx] if options.per_epoch_assignment else None
    return train_step(state, x, key, kl_weight, fixed, options=options)

  return jax.lax.scan(body, state, indices)


@functools.partial(jax.jit, donate_argnames=('state',),
                   static_argnames=('num_steps', 'options', 'mesh'))
def train_chunk(state: TrainState, images: jax.Array, assignments: jax.Array,
                rng: jax.Array, kl_weight: float | jax.Array,
                epoch: int | jax.Array, first_step_in_epoch: int | jax.Array,
                *, num_steps: int, options: StepOptions,
                mesh: Optional[Mesh] = None
                ) -> tuple[TrainState, Dict[str, jax.Array]]:
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
    kl_weight: () lambda.
    epoch: () index of the epoch.
    first_step_in_epoch: () step within the epoch at which the chunk starts.
    num_steps: steps in this chunk; static.
    options: `StepOptions` with ``batch_size`` set; static.
    mesh: optional device mesh; the batch is split over its 'data' axis.

  Returns:
    (state, metrics): the state after the chunk, and each metric of
    `train_step` stacked to shape (num_steps,).
  """
  return _chunk(state, images, assignments, rng, kl_weight, epoch,
                first_step_in_epoch, num_steps, options, mesh)


@functools.partial(jax.jit, donate_argnames=('states',),
                   static_argnames=('num_steps', 'options', 'mesh'))
def train_chunks(states: TrainState, images: jax.Array,
                 assignments: jax.Array, rngs: jax.Array,
                 kl_weights: jax.Array, epoch: int | jax.Array,
                 first_step_in_epoch: int | jax.Array, *,
                 num_steps: int, options: StepOptions,
                 mesh: Optional[Mesh] = None
                 ) -> tuple[TrainState, Dict[str, jax.Array]]:
  """`train_chunk` for M independent models in one program (``jax.vmap``).

  Args:
    states: train states stacked on a leading axis of size M; donated.
    images: (n, N) uint8, shared.
    assignments: (M, n) int32.
    rngs: (M,) keys, one per model (e.g. one per seed).
    kl_weights: (M,) lambda per model.
    epoch: () index of the epoch, shared.
    first_step_in_epoch: () as in `train_chunk`, shared.
    num_steps: steps in this chunk; static.
    options: `StepOptions` with ``batch_size`` set, shared; static.
    mesh: as in `train_chunk`.

  Returns:
    (states, metrics): the M states after the chunk, and each metric of
    `train_step` of shape (M, num_steps).
  """
  return jax.vmap(
      lambda s, a, r, w: _chunk(s, images, a, r, w, epoch,
                                first_step_in_epoch, num_steps, options, mesh)
  )(states, assignments, rngs, kl_weights)


def _assign(state, images, rng, kl_weight, epoch, options):
  """`assign_dataset` of one model: (n,) int32."""
  _, data_rng = _keys(rng)
  key = jax.random.fold_in(jax.random.fold_in(data_rng, epoch), seeds.ASSIGN)
  kl_weight = _warmed_up(kl_weight, state.step, options)
  b = _batch_size(options)
  n = images.shape[0]
  padded = jnp.concatenate([images, images[:(-n) % b]])

  def one(args):
    i, pixels = args
    bin_key, eps_key = jax.random.split(jax.random.fold_in(key, i))
    x = input_pipeline.preprocess(pixels, bin_key, options.binarization)

    def weighted(draw):
      terms, _, _ = state.model.elbo_terms(
          state.params, x, jax.random.fold_in(eps_key, draw))
      return terms.log_lik - kl_weight * terms.kl
    mean = jax.lax.map(weighted, jnp.arange(options.assignment_samples))
    return elbo.assign_epitomes(jnp.mean(mean, axis=0))

  batches = padded.reshape((-1, b) + images.shape[1:])
  y = jax.lax.map(one, (jnp.arange(batches.shape[0]), batches))
  return y.reshape(-1)[:n]


@functools.partial(jax.jit, static_argnames=('options',))
def assign_dataset(states: TrainState, images: jax.Array, rngs: jax.Array,
                   kl_weights: jax.Array, epoch: int | jax.Array, *,
                   options: StepOptions) -> jax.Array:
  """Algorithm 1, line 3: y* of every training example under the current
  parameters, with the objective being optimised (lambda-weighted ELBO;
  with KL warm-up, lambda at the state's step).

  Args:
    states: train states of M models stacked on a leading axis.
    images: (n, N) uint8 training pixels.
    rngs: (M,) base keys.
    kl_weights: (M,) lambda per model.
    epoch: () index of the epoch about to start.
    options: `StepOptions` with ``batch_size`` set; static.

  Returns:
    (M, n) int32 assignments.
  """
  if states.model.masks.shape[0] == 1:  # a VAE: nothing to choose.
    return jnp.zeros((rngs.shape[0], images.shape[0]), jnp.int32)
  return jax.vmap(lambda s, r, w: _assign(s, images, r, w, epoch,
                                          options))(states, rngs, kl_weights)
