"""Log-densities and KL divergences used by the bound (pure).

`bernoulli_log_prob(logits, x)` and `gaussian_log_prob(mean, logvar, x)`
take the decoder's outputs first and the data last, and sum over the last
axis (the pixels of one example); the others are elementwise and leave the
sum over latent units to the caller, which masks them first (an epitome's
units).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np

LOG_2PI = math.log(2.0 * math.pi)


def bernoulli_log_prob(logits: jax.Array, x: jax.Array) -> jax.Array:
  """log Bernoulli(x; sigmoid(logits)), summed over the last axis.

  log p(x) = sum_n x_n * l_n - softplus(l_n), which is
  x log sigmoid(l) + (1 - x) log sigmoid(-l) written stably.

  The order is (logits, x); swapped, the formula still returns numbers. So
  when ``x`` holds concrete values (outside ``jit``/``vmap``, or a constant
  closed over by a jitted function), values outside [0, 1] raise: swapped
  arguments are caught unless the logits themselves lie in [0, 1]. Under a
  trace the values are unknown and nothing is checked.

  Args:
    logits: (..., N) decoder logits.
    x: (..., N) targets in [0, 1] (binary for a proper likelihood).

  Returns:
    (...,) log-probabilities.

  Raises:
    ValueError: concrete ``x`` with values outside [0, 1].
  """
  _check_targets(x)
  return jnp.sum(x * logits - jax.nn.softplus(logits), axis=-1)


def _check_targets(x) -> None:
  """Raises if ``x`` is concrete and not in [0, 1]; a traced ``x`` passes."""
  try:
    values = np.asarray(x)
  except jax.errors.TracerArrayConversionError:
    return
  outside = (values < 0) | (values > 1)
  if outside.any():
    raise ValueError(
        f'bernoulli_log_prob(logits, x): x must hold targets in [0, 1], got '
        f'values from {values.min()} to {values.max()}. Were the arguments '
        'swapped? The decoder\'s logits come first and the data second '
        '(write bernoulli_log_prob(logits, x=x) to make it explicit); '
        'images in [0, 255] must be divided by 255 first.')


def gaussian_log_prob(mean: jax.Array, logvar: jax.Array,
                      x: jax.Array) -> jax.Array:
  """log N(x; mean, exp(logvar)) with diagonal covariance, summed over the
  last axis.

  log p(x) = -1/2 sum_n [log 2 pi + logvar_n + (x_n - mean_n)^2 exp(-logvar_n)]
  (paper eq. 2/5).

  Args:
    mean: (..., N) decoder means.
    logvar: (..., N) decoder log-variances.
    x: (..., N) data.

  Returns:
    (...,) log-densities.
  """
  return -0.5 * jnp.sum(
      LOG_2PI + logvar + jnp.square(x - mean) * jnp.exp(-logvar), axis=-1)


def standard_normal_log_prob(z: jax.Array) -> jax.Array:
  """Elementwise log N(z; 0, 1), not summed.

      log N(z; 0, 1) = -1/2 (log 2 pi + z^2)

  Args:
    z: (...) any shape.

  Returns:
    (...) log-densities, the shape of z.
  """
  return -0.5 * (LOG_2PI + jnp.square(z))


def diag_normal_log_prob_elementwise(z: jax.Array, mean: jax.Array,
                                     logvar: jax.Array) -> jax.Array:
  """Elementwise log N(z; mean, exp(logvar)), not summed.

      log N(z; mean, exp(logvar)) = -1/2 (log 2 pi + logvar
                                          + (z - mean)^2 exp(-logvar))

  Args:
    z: (..., D) points.
    mean: (..., D) means (broadcast against z).
    logvar: (..., D) log-variances (broadcast against z).

  Returns:
    (..., D) log-densities, the broadcast shape.
  """
  return -0.5 * (LOG_2PI + logvar + jnp.square(z - mean) * jnp.exp(-logvar))


def gaussian_kl_to_standard(mean: jax.Array, logvar: jax.Array) -> jax.Array:
  """Elementwise KL(N(mean, exp(logvar)) || N(0, 1)).

  KL = 1/2 (mean^2 + exp(logvar) - 1 - logvar), zero iff mean = 0 and
  logvar = 0.

  Args:
    mean: (..., D) posterior means.
    logvar: (..., D) posterior log-variances.

  Returns:
    (..., D) per-unit KL in nats (not summed).
  """
  return 0.5 * (jnp.square(mean) + jnp.exp(logvar) - 1.0 - logvar)
