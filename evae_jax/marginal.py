"""The importance-weighted estimate of log p(x), marginal over epitomes.

`evae_jax.elbo.iw_log_likelihood_per_epitome` estimates log p(x | y) for
every epitome y, shape (B, E). What a user usually wants is log p(x), one
number per example; with the paper's uniform prior p(y) = 1/E:

    log p(x) = log sum_y p(y) p(x | y) = logsumexp_y log p(x | y) - log E.

Both functions are pure and safe under ``jax.jit`` and ``jax.vmap``.
"""

import math

import jax
import jax.numpy as jnp

from evae_jax import elbo


def log_marginal_from_per_epitome(per_epitome: jax.Array) -> jax.Array:
  """log p(x) from per-epitome estimates of log p(x | y), uniform p(y).

      log p(x) = logsumexp_y per_epitome[:, y] - log E

  Args:
    per_epitome: (B, E) estimates of log p(x | y) in nats, e.g. from
      `evae_jax.iw_log_likelihood_per_epitome`.

  Returns:
    (B,) estimates of log p(x) in nats.
  """
  per_epitome = jnp.asarray(per_epitome)
  return jax.nn.logsumexp(per_epitome, axis=-1) - math.log(
      per_epitome.shape[-1])


def iw_log_marginal_likelihood(
    encode: elbo.Encode, decode_log_prob: elbo.DecodeLogProb, x: jax.Array,
    masks: jax.Array, rng: jax.Array, num_samples: int,
    chunk_size: int = 100) -> jax.Array:
  """Importance-weighted estimate of log p(x), marginal over the E epitomes.

      log p(x) ~= logsumexp_y IW_k(x | y) - log E,
      IW_k(x | y) = logsumexp_k [log p(x | y, z_k) + log p(z_k^y)
                                 - log q(z_k^y | x, y)] - log k

  (Burda et al.'s estimator for each epitome, then the uniform mixture over
  epitomes of the paper). It is a stochastic lower bound on log p(x) in
  expectation and tightens as k grows. The per-epitome values are
  `evae_jax.iw_log_likelihood_per_epitome` with the same arguments.

  Args:
    encode: x -> (mu, logvar), each (B, D).
    decode_log_prob: (z, x) -> (B,) log p(x | z) for masked z (B, D).
    x: (B, ...) batch.
    masks: (E, D) epitome masks (`evae_jax.make_masks`); a VAE is (1, D) ones.
    rng: PRNG key.
    num_samples: k, importance samples per example and epitome.
    chunk_size: samples drawn at once (bounds memory).

  Returns:
    (B,) estimates of log p(x) in nats.
  """
  per_epitome = elbo.iw_log_likelihood_per_epitome(
      encode, decode_log_prob, x, masks, rng, num_samples, chunk_size)
  return log_marginal_from_per_epitome(per_epitome)
