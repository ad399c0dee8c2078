"""The epitomic ELBO and the estimators built on it (paper §2, §4, eq. 7).

Everything here is framework-agnostic: the encoder and the decoder are plain
callables, so a user's own networks plug in. All functions are pure and safe
under ``jax.jit``, ``jax.vmap`` and ``jax.grad``.

The training objectives that optimise these bounds ('point', 'logsumexp',
'iwae', 'iwae_marginal'), the model-kind interface they are written against
and the free-bits remedy live in `evae_jax.objectives`; their old names here
still work, with a DeprecationWarning.

    encode(x) -> (mu, logvar)           each (B, D)
    decode_log_prob(z, x) -> log p(x|z)  shape (B,), z already masked, (B, D)

A ``decode_log_prob`` whose result is not (B,) (e.g. per-pixel terms,
(B, N)) raises ValueError naming it, at trace time.

Notation (docstrings only): B examples, D latent units, E epitomes, M the
(E, D) mask matrix of `evae_jax.epitomes.make_masks`.
"""

import math
import importlib
from typing import Callable, NamedTuple, Tuple
import warnings

import jax
import jax.numpy as jnp

from evae_jax import likelihoods

Encode = Callable[[jax.Array], Tuple[jax.Array, jax.Array]]
DecodeLogProb = Callable[[jax.Array, jax.Array], jax.Array]

# fold_in constant of the selection draw A (the scoring draw B uses split).
SELECTION_FOLD = 7


class ElboTerms(NamedTuple):
  """Per-example, per-epitome terms of the bound, each (B, E).

  Attributes:
    elbo: ELBO_y(x) = log_lik - kl.
    log_lik: single-sample estimate of E_q(z|x,y)[log p(x | y, z)].
    kl: sum_d M[y, d] KL(q(z_d | x) || N(0, 1)), closed form.
  """
  elbo: jax.Array
  log_lik: jax.Array
  kl: jax.Array


def float32_at_least(a: jax.Array) -> jax.Array:
  """``a`` in float32 if it is a lower-precision float (bfloat16, float16),
  else unchanged: the bound's arithmetic (log-densities, KL, logsumexp, the
  choice of y*) is float32 whatever dtype a user's network computes in.

  Args:
    a: an array.

  Returns:
    ``a``, or ``a.astype(float32)``.
  """
  a = jnp.asarray(a)
  if jnp.issubdtype(a.dtype, jnp.floating) and jnp.finfo(a.dtype).bits < 32:
    return a.astype(jnp.float32)
  return a


def _log_prob(decode_log_prob: DecodeLogProb, z: jax.Array,
              x: jax.Array) -> jax.Array:
  """``decode_log_prob(z, x)``, refused unless it has shape z.shape[:-1]: one
  value per example. A decoder that returns per-pixel terms would otherwise
  broadcast through the bound into arrays of the wrong shape, silently. The
  check reads static shapes only, so it holds under jit and vmap."""
  log_prob = float32_at_least(decode_log_prob(z, x))
  expected = tuple(z.shape[:-1])
  if tuple(jnp.shape(log_prob)) != expected:
    name = getattr(decode_log_prob, '__qualname__', None) or repr(
        decode_log_prob)
    raise ValueError(
        f'decode_log_prob ({name}) returned shape {tuple(jnp.shape(log_prob))}'
        f' for z of shape {tuple(z.shape)}; it must return {expected}, one '
        'log p(x | z) per example: sum the per-pixel terms over each '
        'example (e.g. jnp.sum(..., axis=-1)).')
  return log_prob


def _masked_terms(mu, logvar, eps, mask, decode_log_prob, x, z_scale=None):
  """log p(x | y, z) and the z-KL for one mask (D,) or per-example masks
  (B, D)."""
  mu, logvar = float32_at_least(mu), float32_at_least(logvar)
  z = mask * (mu + jnp.exp(0.5 * logvar) * eps)
  if z_scale is not None:
    z = z * z_scale
  kl = jnp.sum(mask * likelihoods.gaussian_kl_to_standard(mu, logvar), axis=-1)
  return _log_prob(decode_log_prob, z, x), kl


def elbo_from_encoding(mu: jax.Array, logvar: jax.Array, eps: jax.Array,
                       decode_log_prob: DecodeLogProb, x: jax.Array,
                       masks: jax.Array) -> ElboTerms:
  """Per-epitome bound from a given encoding and noise (see `elbo_fn`).

  Args:
    mu: (B, D) posterior means h1(x).
    logvar: (B, D) posterior log-variances h2(x).
    eps: (B, D) standard-normal noise, shared by all epitomes.
    decode_log_prob: (z (B, D), x) -> (B,) log p(x | z).
    x: (B, ...) the data, passed through to ``decode_log_prob``.
    masks: (E, D) epitome masks M.

  Returns:
    `ElboTerms` with fields of shape (B, E).
  """
  log_lik, kl = jax.vmap(
      lambda m: _masked_terms(mu, logvar, eps, m, decode_log_prob, x))(masks)
  log_lik, kl = log_lik.T, kl.T
  return ElboTerms(elbo=log_lik - kl, log_lik=log_lik, kl=kl)


def elbo_fn(encode: Encode, decode_log_prob: DecodeLogProb, x: jax.Array,
            masks: jax.Array, rng: jax.Array) -> ElboTerms:
  """ELBO_y(x) for every example and every epitome at once (docs/maths.md).

  For each epitome y with mask m_y (paper eq. 5-6), with q(z | x, y) =
  N(m_y * mu, exp(m_y * logvar)):

      ELBO_y(x) = log p(x | y, z_y)
                  - sum_d m_y[d] KL(N(mu_d, e^logvar_d) || N(0, 1)),
      z_y = m_y * (mu + exp(logvar / 2) * eps),   eps ~ N(0, I_D).

  The same eps is used for every epitome (common random numbers), so an
  argmax over y compares like with like. Choose y* from one call and score
  it with another (independent ``rng``): the max over the same noisy
  estimates is biased upward (see `point_estimate_bound`). The VAE is the
  case E = 1, M = 1.

  Args:
    encode: x -> (mu, logvar), each (B, D).
    decode_log_prob: (z, x) -> (B,) log p(x | z) for masked z of shape (B, D).
    x: (B, ...) a batch of data.
    masks: (E, D) epitome masks, e.g. from `evae_jax.epitomes.make_masks`.
    rng: PRNG key for eps.

  Returns:
    `ElboTerms` (elbo, log_lik, kl), each (B, E).

  Raises:
    ValueError: ``decode_log_prob`` returned another shape than (B,).
  """
  mu, logvar = map(float32_at_least, encode(x))
  eps = jax.random.normal(rng, mu.shape, mu.dtype)
  return elbo_from_encoding(mu, logvar, eps, decode_log_prob, x, masks)


def assign_epitomes(objective: jax.Array) -> jax.Array:
  """y* = argmax_y objective[:, y] (= argmin of the negative bound, eq. 7).

  Args:
    objective: (B, E) per-epitome bound (ELBO or its KL-weighted variant).

  Returns:
    (B,) int32 epitome assignments; no gradient flows through them.
  """
  return jnp.argmax(jax.lax.stop_gradient(objective), axis=-1).astype(jnp.int32)


def point_estimate_bound(select_elbo: jax.Array,
                         score_elbo: jax.Array) -> jax.Array:
  """Bound of eq. 7 with q(y|x) = delta(y*), scored on an independent draw.

      y* = argmax_y ELBO_y(x; A),   bound = ELBO_{y*}(x; B) - log E,

  where A and B are independent noise draws. Because y* does not depend on
  B, E_B[bound] = ELBO_{y*}(x) - log E <= log p(x): an unbiased estimate of
  a valid lower bound. Scoring the draw that chose y* (A = B) would estimate
  E[max_y ELBO^_y] >= max_y ELBO_y, which is biased upward and can exceed
  log p(x); that bias grows with E (a VAE, E = 1, has none).

  Args:
    select_elbo: (B, E) per-epitome ELBO estimates from draw A (selection).
    score_elbo: (B, E) per-epitome ELBO estimates from draw B (scoring).

  Returns:
    (B,) lower bound on log p(x) in nats.
  """
  y = assign_epitomes(select_elbo)
  chosen = jnp.take_along_axis(score_elbo, y[:, None], -1)[:, 0]
  return chosen - math.log(score_elbo.shape[-1])


def logsumexp_bound(select_elbo: jax.Array,
                    score_elbo: jax.Array) -> jax.Array:
  """The tighter bound with q_A(y|x) = softmax_y ELBO_y(x; A) (docs/maths.md).

  For any q(y|x) that does not depend on the scoring noise B,

      log p(x) >= sum_y q(y|x) ELBO_y(x) + H(q) - log E.

  With q_A = softmax_y ELBO_y(x; A) this is

      bound = sum_y q_A(y) [ELBO_y(x; B) - log q_A(y)] - log E,

  an unbiased estimate (over B) of a valid lower bound. When the ELBO
  estimates are exact it equals logsumexp_y ELBO_y - log E, never below the
  eq. 7 bound max_y ELBO_y - log E.

  Args:
    select_elbo: (B, E) per-epitome ELBO estimates from draw A (weights).
    score_elbo: (B, E) per-epitome ELBO estimates from draw B (scoring).

  Returns:
    (B,) lower bound on log p(x) in nats.
  """
  select_elbo = jax.lax.stop_gradient(select_elbo)
  log_q = jax.nn.log_softmax(select_elbo, axis=-1)
  return (jnp.sum(jnp.exp(log_q) * (score_elbo - log_q), axis=-1)
          - math.log(score_elbo.shape[-1]))


def selection_key(rng: jax.Array) -> jax.Array:
  """The key of the selection draw A, independent of the keys that the
  objectives derive from ``rng`` for scoring (``jax.random.split(rng)``).

  Args:
    rng: the step's PRNG key.

  Returns:
    ``jax.random.fold_in(rng, SELECTION_FOLD)``, the key of draw A.
  """
  return jax.random.fold_in(rng, SELECTION_FOLD)


def _z_scale(rng, shape, dtype, z_dropout_rate):
  """Inverted-dropout multipliers for z, or None when dropout is off."""
  if z_dropout_rate <= 0.0:
    return None
  keep = jax.random.bernoulli(rng, 1.0 - z_dropout_rate, shape)
  return keep.astype(dtype) / (1.0 - z_dropout_rate)


def _pick(a, assignments):
  return jnp.take_along_axis(a, assignments[:, None], -1)[:, 0]


def _selection_terms(mu, logvar, masks, decode_log_prob, x, rng,
                     z_dropout_rate=0.0):
  """(log_lik, kl), each (B, E), of the selection draw A, without gradients.

  Draw A feeds only an argmax (or q_A), so its backward pass is dead code.
  """
  sel_rng, sel_drop_rng = jax.random.split(selection_key(rng))
  mu, logvar = jax.lax.stop_gradient(mu), jax.lax.stop_gradient(logvar)
  eps = jax.random.normal(sel_rng, mu.shape, mu.dtype)
  z_scale = _z_scale(sel_drop_rng, mu.shape, mu.dtype, z_dropout_rate)
  log_lik, kl = jax.vmap(lambda m: _masked_terms(
      mu, logvar, eps, m, decode_log_prob, x, z_scale))(masks)
  return jax.lax.stop_gradient((log_lik.T, kl.T))



def log_importance_weight(mu: jax.Array, logvar: jax.Array, eps: jax.Array,
                          mask: jax.Array, decode_log_prob: DecodeLogProb,
                          x: jax.Array) -> jax.Array:
  """log w = log p(x | y, z) + log p(z^y) - log q(z^y | x, y) for one draw.

  z = mu + exp(logvar / 2) * eps, and only the units of epitome y (``mask``)
  enter p(z) and q(z | x, y): the decoder sees M_y * z, so the other units
  integrate out exactly.

  Args:
    mu, logvar: (B, D) encoding.
    eps: (B, D) standard-normal noise.
    mask: (D,) one epitome's mask, or (B, D) one per example.
    decode_log_prob: (z, x) -> (B,) log p(x | z).
    x: (B, ...) data.

  Returns:
    (B,) log importance weights.
  """
  z = mu + jnp.exp(0.5 * logvar) * eps
  log_prior = likelihoods.standard_normal_log_prob(z)
  log_q = likelihoods.diag_normal_log_prob_elementwise(z, mu, logvar)
  return (_log_prob(decode_log_prob, mask * z, x)
          + jnp.sum(mask * (log_prior - log_q), axis=-1))


def iw_log_likelihood_per_epitome(
    encode: Encode, decode_log_prob: DecodeLogProb, x: jax.Array,
    masks: jax.Array, rng: jax.Array, num_samples: int,
    chunk_size: int = 100) -> jax.Array:
  """Importance-weighted estimate of log p(x | y) for every epitome
  (Burda et al.).

      log p(x | y) ~= logsumexp_k [log p(x | y, z_k) + log p(z_k^y)
                                   - log q(z_k^y | x, y)] - log k

  with z_k ~ q(z | x, y) over the K units of epitome y only: the decoder
  ignores the other units, so they integrate out exactly. The same k noise
  draws are shared by all epitomes. Samples are drawn ``chunk_size`` at a time
  inside a ``lax.scan`` with a running logsumexp, so memory is bounded by
  chunk_size * E * B decoder outputs whatever ``num_samples`` is.

  The marginal is log p(x) = logsumexp_y log p(x | y) - log E.

  Args:
    encode: x -> (mu, logvar), each (B, D).
    decode_log_prob: (z, x) -> (B,) log p(x | z).
    x: (B, ...) batch.
    masks: (E, D) epitome masks.
    rng: PRNG key.
    num_samples: k, importance samples per example and epitome.
    chunk_size: samples drawn per scan step (num_samples is rounded up to a
      multiple of it internally and the surplus masked out).

  Returns:
    (B, E) estimates of log p(x | y) in nats.
  """
  mu, logvar = map(float32_at_least, encode(x))
  chunk_size = max(1, min(chunk_size, num_samples))
  num_chunks = -(-num_samples // chunk_size)

  def log_weights(eps):  # eps: (B, D) -> (E, B)
    return jax.vmap(lambda m: log_importance_weight(
        mu, logvar, eps, m, decode_log_prob, x))(masks)

  def body(carry, chunk_index):
    eps = jax.random.normal(jax.random.fold_in(rng, chunk_index),
                            (chunk_size,) + mu.shape, mu.dtype)
    lw = jax.vmap(log_weights)(eps)  # (C, E, B)
    sample_index = chunk_index * chunk_size + jnp.arange(chunk_size)
    lw = jnp.where((sample_index < num_samples)[:, None, None], lw, -jnp.inf)
    return jnp.logaddexp(carry, jax.nn.logsumexp(lw, axis=0)), None

  init = jnp.full((masks.shape[0], mu.shape[0]), -jnp.inf, mu.dtype)
  total, _ = jax.lax.scan(body, init, jnp.arange(num_chunks))
  return total.T - math.log(num_samples)


# The name the public API has always had (``evae_jax.iw_log_likelihood``).
iw_log_likelihood = iw_log_likelihood_per_epitome



# Names that moved to `evae_jax.objectives`: still served, with a
# DeprecationWarning on every access (never cached in this module).
_MOVED = {
    'Latents': 'latents', 'SharedLatents': 'latents',
    'MixtureLatents': 'latents', 'mixture_terms': 'latents',
    'free_bits_kl': 'free_bits',
    'point_loss': 'point', 'logsumexp_loss': 'point',
    'iwae_point_loss': 'iwae', 'iwae_marginal_loss': 'iwae',
    'epitome_loss': 'callables', 'iwae_loss': 'callables',
}


def __getattr__(name):
  if name in _MOVED:
    module = f'evae_jax.objectives.{_MOVED[name]}'
    warnings.warn(f'evae_jax.elbo.{name} moved to {module}.{name}; import it '
                  'from there (the old path will be removed).',
                  DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module(module), name)
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
