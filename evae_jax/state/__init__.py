"""The train state, how a checkpoint stores it, and which models a config
trains.

Training writes checkpoints and evaluation reads them; both use this module,
so neither imports the other. The state holds its `evae_jax.models.Model`
(``model``) and its optax optimizer (``tx``) as static fields beside the
arrays.
"""

from typing import Any, Dict, List, Optional, Tuple

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import struct

from evae_jax.storage import checkpoints
from evae_jax import models
from evae_jax.state import optimizers
from evae_jax.state import schedules


class TrainState(struct.PyTreeNode):
  """One model's arrays (step, parameters, optimizer state) with the model
  and optimizer that use them (static: code, not arrays).

  Flax's ``train_state.TrainState`` with the model in a field named for it
  (Flax's holds an ``apply_fn``); its leaves, and so checkpoints, vmap and
  sharding, are the same: step, params, opt_state.

  Attributes:
    step: the number of optimizer updates applied, () int.
    params: the model's parameters (`evae_jax.models.Model.init`).
    opt_state: ``tx``'s state.
    model: the `evae_jax.models.Model` (encoder, decoder, masks, objective).
    tx: the optax optimizer.
  """
  step: Any
  params: Any
  opt_state: Any
  model: models.Model = struct.field(pytree_node=False)
  tx: optax.GradientTransformation = struct.field(pytree_node=False)

  @classmethod
  def create(cls, *, model: models.Model, params: Any,
             tx: optax.GradientTransformation) -> 'TrainState':
    """Step 0 and ``tx``'s initial state for ``params``.

    Args:
      model: the model.
      params: its initial parameters.
      tx: the optimizer.

    Returns:
      The state.
    """
    return cls(step=0, params=params, opt_state=tx.init(params), model=model,
               tx=tx)

  def apply_gradients(self, *, grads: Any) -> 'TrainState':
    """One optimizer update: params <- params + tx's update of ``grads``.

    Args:
      grads: gradients of the loss, the structure of ``params``.

    Returns:
      The state one step on.
    """
    updates, opt_state = self.tx.update(grads, self.opt_state, self.params)
    return self.replace(step=self.step + 1,
                        params=optax.apply_updates(self.params, updates),
                        opt_state=opt_state)


def create_train_state(config: ml_collections.ConfigDict,
                       image_shape: models.ImageShape, rng: jax.Array,
                       steps_per_epoch: int = 1) -> TrainState:
  """Initial parameters and optimizer state for ``config.model`` /
  ``config.train``.

  Args:
    config: the full config.
    image_shape: (H, W) or (H, W, C) of the images (N alone for
      model.network=mlp; see `evae_jax.models.make_model`).
    rng: PRNG key of the initial parameters.
    steps_per_epoch: for the learning-rate schedule (epochs to steps).

  Returns:
    The state at step 0, with the model of `evae_jax.models.make_model`
    and the optimizer of `evae_jax.state.optimizers.make_optimizer`.
  """
  model = models.make_model(config.model, image_shape)
  tx = optimizers.make_optimizer(
      config.train, schedules.learning_rate(config.train, steps_per_epoch))
  return TrainState.create(model=model, params=model.init(rng), tx=tx)


def state_tree(state: TrainState,
               assignments: Optional[jax.Array] = None) -> Dict[str, Any]:
  """What a checkpoint holds: parameters, optimizer state, step, and the
  epoch's assignments of Algorithm 1 (model and tx are code).

  Args:
    state: the train state.
    assignments: (num_train,) int32 epitome y* of each training example
      (-1: not yet assigned), or None to leave them out.

  Returns:
    {'params', 'opt_state', 'step' (() int32)} and, if given,
    'assignments'.
  """
  tree = {'params': state.params, 'opt_state': state.opt_state,
          'step': jnp.asarray(state.step, jnp.int32)}
  if assignments is not None:
    tree['assignments'] = assignments
  return tree


def restore(ckpts: checkpoints.Checkpoints, state: TrainState,
            num_train: int, max_step: Optional[int] = None
            ) -> Tuple[TrainState, jax.Array, Optional[int]]:
  """The state of the newest readable checkpoint, if any.

  Args:
    ckpts: the workdir's checkpoints.
    state: a state of the same model and optimizer (shapes and dtypes to
      restore into); returned as it is when there is no checkpoint.
    num_train: the number of training examples (the assignments' length).
    max_step: ignore checkpoints after this step (None: no limit).

  Returns:
    (state, assignments, step): the restored state, the (num_train,) int32
    assignments and the checkpoint's step; or ``state``, -1 for every
    example and None if there is no checkpoint yet.

  Raises:
    evae_jax.errors.CheckpointError: checkpoints exist but none can be read
      (`evae_jax.storage.checkpoints.Checkpoints.restore_latest`).
  """
  assignments = jnp.full((num_train,), -1, jnp.int32)
  tree, step = ckpts.restore_latest(state_tree(state, assignments), max_step)
  if tree is None:
    return state, assignments, None
  assignments = tree.pop('assignments')
  return state.replace(**tree), assignments, step


def members(config: ml_collections.ConfigDict
            ) -> List[Tuple[str, ml_collections.ConfigDict]]:
  """The models one program trains: (subdirectory, config) of each.

  ``train.num_seeds`` seeds times ``train.kl_weights`` (or the single
  ``train.kl_weight``). A single model trains in the workdir itself ('');
  several train side by side under ``jax.vmap``, each in its own
  subdirectory with its own config, checkpoints, metrics and figures, so
  each can be evaluated like any other workdir.

  Args:
    config: the full config.

  Returns:
    [(subdirectory, config)], in order of seed then KL weight:
    [('', config)] for a single model; else e.g. 'seed=3' or
    'seed=3,kl_weight=0.5' with a config of one seed and one KL weight.
  """

  tc = config.train
  weights = list(tc.kl_weights) or [tc.kl_weight]
  if tc.num_seeds == 1 and len(weights) == 1:
    return [('', config)]
  team = []
  for i in range(tc.num_seeds):
    for weight in weights:
      member = ml_collections.ConfigDict(config.to_dict())
      member.seed = config.seed + i
      member.train.kl_weight = float(weight)
      member.train.num_seeds = 1
      member.train.kl_weights = ()
      name = f'seed={member.seed}' + (f',kl_weight={weight:g}'
                                      if len(weights) > 1 else '')
      team.append((name, member))
  return team
