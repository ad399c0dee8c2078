"""Optimizers: optax's Adam, and the Adam variant of Burda et al.'s code.

Burda, Grosse and Salakhutdinov (2015) trained the VAE whose MNIST number
(86.76 nats) the eVAE paper's Table 2 quotes with their own Adam
(yburda/iwae, optimizers.py). It differs from Kingma and Ba's in three
ways that matter early in training: the second-moment estimate starts at
ones (not zeros), epsilon is added to sqrt(v) rather than to the
bias-corrected sqrt(v-hat), and the bias correction is folded into the step
size. With m_0 = 0, v_0 = 1 and t = 1, 2, ...:

    update_t = -lr_t sqrt(1 - b2^t) / (1 - b1^t)
               * m_{t-1} / (sqrt(v_{t-1}) + eps)
    m_t = b1 m_{t-1} + (1 - b1) g_t
    v_t = b2 v_{t-1} + (1 - b2) g_t^2

The step uses the moments *before* this step's gradient (so the first step
moves nothing): Theano computes all of a function's updates from the values
the shared variables held before the call, and their step reads the moment
variables, not the moment updates.

(their defaults: b1 = 0.99, b2 = 0.999, eps = 1e-4). Written here from that
description as an optax ``GradientTransformation``; optax has no option for
the ones initialisation.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from evae_jax import errors

OPTIMIZERS = ('adam', 'burda_adam')


class BurdaAdamState(NamedTuple):
  count: jax.Array
  mu: optax.Updates
  nu: optax.Updates


def scale_by_burda_adam(b1: float = 0.99, b2: float = 0.999,
                        eps: float = 1e-4) -> optax.GradientTransformation:
  """The direction of Burda et al.'s Adam step (before the learning rate).

  Args:
    b1: decay of the first moment.
    b2: decay of the second moment (which starts at ones).
    eps: added to sqrt(v_t).

  Returns:
    An optax transformation: g_t -> sqrt(1 - b2^t) / (1 - b1^t)
    * m_{t-1} / (sqrt(v_{t-1}) + eps), then the moments take g_t in.
  """
  def init_fn(params):
    return BurdaAdamState(
        count=jnp.zeros([], jnp.int32),
        mu=jax.tree_util.tree_map(jnp.zeros_like, params),
        nu=jax.tree_util.tree_map(jnp.ones_like, params))

  def update_fn(grads, state, params=None):
    del params
    count = state.count + 1
    t = count.astype(jnp.float32)
    scale = jnp.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    updates = jax.tree_util.tree_map(
        lambda m, v: scale * m / (jnp.sqrt(v) + eps), state.mu, state.nu)
    mu = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g,
                                state.mu, grads)
    nu = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g,
                                state.nu, grads)
    return updates, BurdaAdamState(count=count, mu=mu, nu=nu)

  return optax.GradientTransformation(init_fn, update_fn)


def make_optimizer(train_config, learning_rate: optax.Schedule
                   ) -> optax.GradientTransformation:
  """The optimizer of ``config.train`` descending with the given schedule.

  Args:
    train_config: ``config.train`` (fields optimizer, adam_b1, adam_b2,
      adam_eps).
    learning_rate: the schedule (step -> rate).

  Returns:
    The optax transformation: optax's Adam, or Burda et al.'s Adam.

  Raises:
    evae_jax.errors.ConfigError: an optimizer name not in `OPTIMIZERS`.
  """
  tc = train_config
  if tc.optimizer not in OPTIMIZERS:
    raise errors.ConfigError(
        f'train.optimizer={tc.optimizer!r} is not one of {OPTIMIZERS}.')
  if tc.optimizer == 'burda_adam':
    return optax.chain(scale_by_burda_adam(tc.adam_b1, tc.adam_b2, tc.adam_eps),
                       optax.scale_by_learning_rate(learning_rate))
  return optax.adam(learning_rate, b1=tc.adam_b1, b2=tc.adam_b2,
                    eps=tc.adam_eps)
