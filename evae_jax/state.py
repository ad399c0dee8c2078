"""The train state, how a checkpoint stores it, and which models a config trains.

Training writes checkpoints and evaluation reads them; both use this module,
so neither imports the other. ``apply_fn`` of the state holds the
`evae_jax.models.Model` (the state's `model`), ``tx`` the optimizer.
"""

from typing import Any, Dict, List, Optional, Tuple

import jax
import jax.numpy as jnp
import ml_collections
from flax.training import train_state

from evae_jax import checkpoints
from evae_jax import models
from evae_jax import optimizers
from evae_jax import schedules


class TrainState(train_state.TrainState):
  """Flax's TrainState; ``apply_fn`` holds the `evae_jax.models.Model`."""

  @property
  def model(self) -> models.Model:
    return self.apply_fn


def create_train_state(config: ml_collections.ConfigDict, num_pixels: int,
                       rng: jax.Array, steps_per_epoch: int = 1) -> TrainState:
  """Initial parameters and Adam state for ``config.model`` / ``config.train``."""
  model = models.make_model(config.model, num_pixels)
  tx = optimizers.make_optimizer(
      config.train, schedules.learning_rate(config.train, steps_per_epoch))
  return TrainState.create(apply_fn=model, params=model.init(rng), tx=tx)


def state_tree(state: TrainState,
               assignments: Optional[jax.Array] = None) -> Dict[str, Any]:
  """What a checkpoint holds: parameters, optimizer state, step, and the
  epoch's assignments of Algorithm 1 (apply_fn and tx are code)."""
  tree = {'params': state.params, 'opt_state': state.opt_state,
          'step': jnp.asarray(state.step, jnp.int32)}
  if assignments is not None:
    tree['assignments'] = assignments
  return tree


def restore(ckpts: checkpoints.Checkpoints, state: TrainState,
            num_train: int, max_step: Optional[int] = None):
  """(state, assignments, step) from the newest readable checkpoint (at most
  ``max_step``), or the given state, unassigned examples (-1) and None if
  there is none yet."""
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
