"""The epitomic ELBO and the estimators built on it (paper §2, §4, eq. 7).

Everything here is framework-agnostic: the encoder and the decoder are plain
callables, so a user's own networks plug in. All functions are pure and safe
under ``jax.jit``, ``jax.vmap`` and ``jax.grad``.

    encode(x) -> (mu, logvar)           each (B, D)
    decode_log_prob(z, x) -> log p(x|z)  shape (B,), z already masked, (B, D)

Notation (docstrings only): B examples, D latent units, E epitomes, M the
(E, D) mask matrix of `evae_jax.epitomes.make_masks`.
"""

import math
from typing import Callable, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp

from evae_jax import likelihoods

Encode = Callable[[jax.Array], Tuple[jax.Array, jax.Array]]
DecodeLogProb = Callable[[jax.Array, jax.Array], jax.Array]

OBJECTIVES = ('point', 'logsumexp')


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


def _masked_terms(mu, logvar, eps, mask, decode_log_prob, x, z_scale=None):
  """log p(x | y, z) and the z-KL for one mask (D,) or per-example masks (B, D)."""
  z = mask * (mu + jnp.exp(0.5 * logvar) * eps)
  if z_scale is not None:
    z = z * z_scale
  kl = jnp.sum(mask * likelihoods.gaussian_kl_to_standard(mu, logvar), axis=-1)
  return decode_log_prob(z, x), kl


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
  """ELBO_y(x) for every example and every epitome at once (DESIGN.md §1).

  For each epitome y with mask m_y (paper eq. 5-6), with q(z | x, y) =
  N(m_y * mu, exp(m_y * logvar)):

      ELBO_y(x) = log p(x | y, z_y) - sum_d m_y[d] KL(N(mu_d, e^logvar_d) || N(0, 1)),
      z_y = m_y * (mu + exp(logvar / 2) * eps),   eps ~ N(0, I_D).

  The same eps is used for every epitome (common random numbers), so an
  argmax over y compares like with like. The VAE is the case E = 1, M = 1.

  Args:
    encode: x -> (mu, logvar), each (B, D).
    decode_log_prob: (z, x) -> (B,) log p(x | z) for masked z of shape (B, D).
    x: (B, ...) a batch of data.
    masks: (E, D) epitome masks, e.g. from `evae_jax.epitomes.make_masks`.
    rng: PRNG key for eps.

  Returns:
    `ElboTerms` (elbo, log_lik, kl), each (B, E).
  """
  mu, logvar = encode(x)
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


def point_estimate_bound(elbo: jax.Array) -> jax.Array:
  """Bound of eq. 7 with q(y|x) = delta(y*): max_y ELBO_y(x) - log E.

  Args:
    elbo: (B, E).

  Returns:
    (B,) lower bound on log p(x) in nats.
  """
  return jnp.max(elbo, axis=-1) - math.log(elbo.shape[-1])


def logsumexp_bound(elbo: jax.Array) -> jax.Array:
  """The tighter bound log p(x) >= logsumexp_y ELBO_y(x) - log E (DESIGN.md §1).

  It is the bound with the optimal q(y|x) proportional to exp(ELBO_y(x)),
  and is never below `point_estimate_bound`.

  Args:
    elbo: (B, E).

  Returns:
    (B,) lower bound on log p(x) in nats.
  """
  return jax.nn.logsumexp(elbo, axis=-1) - math.log(elbo.shape[-1])


def _z_scale(rng, shape, dtype, z_dropout_rate):
  """Inverted-dropout multipliers for z, or None when dropout is off."""
  if z_dropout_rate <= 0.0:
    return None
  keep = jax.random.bernoulli(rng, 1.0 - z_dropout_rate, shape)
  return keep.astype(dtype) / (1.0 - z_dropout_rate)


def _loss_from_all_terms(log_lik, kl, kl_weight, objective, assignments):
  """Eq. 7 (or the logsumexp bound) from (B, E) terms that carry gradients."""
  log_e = math.log(log_lik.shape[-1])
  weighted = log_lik - kl_weight * kl
  if assignments is None:
    assignments = assign_epitomes(weighted)
  pick = lambda a: jnp.take_along_axis(a, assignments[:, None], -1)[:, 0]
  if objective == 'logsumexp':
    per_example = -(jax.nn.logsumexp(weighted, axis=-1) - log_e)
  else:
    per_example = -pick(weighted) + log_e
  return per_example, assignments, pick(log_lik), pick(kl)


def _aux(chosen_ll, chosen_kl, assignments, log_e, log_lik=None, kl=None):
  elbo = chosen_ll - chosen_kl
  return jax.lax.stop_gradient({
      'elbo': elbo,
      'log_lik': chosen_ll,
      'kl': chosen_kl,
      'assignments': assignments,
      'bound': elbo - log_e,
      'logsumexp_bound': (elbo - log_e if log_lik is None else
                          jax.nn.logsumexp(log_lik - kl, axis=-1) - log_e),
  })


def _check_objective(objective):
  if objective not in OBJECTIVES:
    raise ValueError(f'objective must be one of {OBJECTIVES}, got {objective!r}')


def epitome_loss(encode: Encode, decode_log_prob: DecodeLogProb, x: jax.Array,
                 masks: jax.Array, rng: jax.Array, *,
                 kl_weight: float | jax.Array = 1.0,
                 objective: str = 'point',
                 z_dropout_rate: float = 0.0,
                 assignments: Optional[jax.Array] = None
                 ) -> Tuple[jax.Array, dict]:
  """Training loss: the negative bound of eq. 7, averaged over the batch.

  ``objective='point'`` (the paper): y* = argmax_y [log_lik - lambda kl]_y is
  found for all epitomes at once without gradients, then only the chosen
  epitome is recomputed with gradients (same eps), and

      loss(x) = -(log p(x | y*, z) - lambda KL_{y*}) + log E.

  The log E term is KL(delta(y*) || uniform p(y)); it keeps eVAE bounds
  comparable with VAE bounds in nats. lambda is the KL weight of paper §3.1
  and multiplies the z-KL only.

  ``objective='logsumexp'``: loss(x) = -(logsumexp_y [log_lik - lambda kl]_y
  - log E), which backpropagates through all E epitomes.

  Args:
    encode: x -> (mu, logvar), each (B, D).
    decode_log_prob: (z, x) -> (B,) log p(x | z).
    x: (B, ...) batch.
    masks: (E, D) epitome masks.
    rng: PRNG key.
    kl_weight: lambda (scalar; may be traced, e.g. vmapped over models).
    objective: 'point' or 'logsumexp'.
    z_dropout_rate: dropout rate on z (the dropout VAE of paper §3.2); 0 off.
    assignments: optional (B,) int epitome per example, fixed in advance
      (Algorithm 1); by default y* is chosen here, per step.

  Returns:
    (loss, aux): scalar loss and a dict of (B,)-shaped diagnostics: 'elbo'
    (the true, unweighted ELBO of the assigned epitome), 'log_lik', 'kl',
    'assignments', 'bound' (eq. 7, with log E) and 'logsumexp_bound'.
  """
  _check_objective(objective)
  masks = jnp.asarray(masks)
  eps_rng, drop_rng = jax.random.split(rng)
  mu, logvar = encode(x)
  eps = jax.random.normal(eps_rng, mu.shape, mu.dtype)
  z_scale = _z_scale(drop_rng, mu.shape, mu.dtype, z_dropout_rate)
  log_e = math.log(masks.shape[0])

  def all_terms(mu_, logvar_):
    log_lik, kl = jax.vmap(lambda m: _masked_terms(
        mu_, logvar_, eps, m, decode_log_prob, x, z_scale))(masks)
    return log_lik.T, kl.T

  if objective == 'logsumexp':
    log_lik, kl = all_terms(mu, logvar)
    per_example, assignments, chosen_ll, chosen_kl = _loss_from_all_terms(
        log_lik, kl, kl_weight, objective, assignments)
    return jnp.mean(per_example), _aux(chosen_ll, chosen_kl, assignments,
                                       log_e, log_lik, kl)
  log_lik = kl = None
  if masks.shape[0] == 1:  # VAE: nothing to choose, no second pass.
    assignments = jnp.zeros(mu.shape[:1], jnp.int32)
  elif assignments is None:
    # The selection pass feeds only an argmax, so its backward pass is dead
    # code; only the chosen epitome is differentiated below.
    log_lik, kl = all_terms(jax.lax.stop_gradient(mu),
                            jax.lax.stop_gradient(logvar))
    assignments = assign_epitomes(log_lik - kl_weight * kl)
  chosen_ll, chosen_kl = _masked_terms(
      mu, logvar, eps, masks[assignments], decode_log_prob, x, z_scale)
  per_example = -(chosen_ll - kl_weight * chosen_kl) + log_e
  return jnp.mean(per_example), _aux(chosen_ll, chosen_kl, assignments, log_e,
                                     log_lik, kl)


def mixture_terms(encode_all: Encode, decode_log_prob_all: DecodeLogProb,
                  x: jax.Array, eps: jax.Array,
                  z_scale: Optional[jax.Array] = None
                  ) -> Tuple[jax.Array, jax.Array]:
  """Per-component log-likelihood and KL of a mixture of E VAEs (the mVAE).

  Args:
    encode_all: x -> (mu, logvar), each (E, B, K): one encoder per component.
    decode_log_prob_all: (z (E, B, K), x) -> (E, B) log p_e(x | z_e).
    x: (B, ...) batch.
    eps: (B, K) noise shared by all components (common random numbers).
    z_scale: optional (B, K) dropout multipliers.

  Returns:
    (log_lik, kl), each (B, E).
  """
  mu, logvar = encode_all(x)
  z = mu + jnp.exp(0.5 * logvar) * eps[None]
  if z_scale is not None:
    z = z * z_scale[None]
  kl = jnp.sum(likelihoods.gaussian_kl_to_standard(mu, logvar), axis=-1)
  return decode_log_prob_all(z, x).T, kl.T


def mixture_loss(encode_all: Encode, decode_log_prob_all: DecodeLogProb,
                 x: jax.Array, rng: jax.Array, latent_dim: int, *,
                 kl_weight: float | jax.Array = 1.0, objective: str = 'point',
                 z_dropout_rate: float = 0.0,
                 assignments: Optional[jax.Array] = None
                 ) -> Tuple[jax.Array, dict]:
  """The eq. 7 loss for the mVAE: E independent VAEs of K units each.

  Same objective as `epitome_loss`, but nothing is shared between
  components, so every component runs forward and the chosen one is picked
  per example (the others receive zero gradient).

  Args:
    encode_all, decode_log_prob_all: see `mixture_terms`.
    x: (B, ...) batch.
    rng: PRNG key.
    latent_dim: K, latent units per component.
    kl_weight, objective, z_dropout_rate, assignments: as in `epitome_loss`.

  Returns:
    (loss, aux) as in `epitome_loss`.
  """
  _check_objective(objective)
  eps_rng, drop_rng = jax.random.split(rng)
  shape = (x.shape[0], latent_dim)
  eps = jax.random.normal(eps_rng, shape)
  z_scale = _z_scale(drop_rng, shape, eps.dtype, z_dropout_rate)
  log_lik, kl = mixture_terms(encode_all, decode_log_prob_all, x, eps, z_scale)
  per_example, assignments, chosen_ll, chosen_kl = _loss_from_all_terms(
      log_lik, kl, kl_weight, objective, assignments)
  return jnp.mean(per_example), _aux(chosen_ll, chosen_kl, assignments,
                                     math.log(log_lik.shape[-1]), log_lik, kl)


def iw_log_likelihood(encode: Encode, decode_log_prob: DecodeLogProb,
                      x: jax.Array, masks: jax.Array, rng: jax.Array,
                      num_samples: int, chunk_size: int = 100) -> jax.Array:
  """Importance-weighted estimate of log p(x | y) for every epitome (Burda et al.).

      log p(x | y) ~= logsumexp_k [log p(x | y, z_k) + log p(z_k^y) - log q(z_k^y | x, y)] - log k

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
  mu, logvar = encode(x)
  chunk_size = max(1, min(chunk_size, num_samples))
  num_chunks = -(-num_samples // chunk_size)

  def log_weights(eps):  # eps: (B, D) -> (E, B)
    def one(mask):
      z = mu + jnp.exp(0.5 * logvar) * eps
      log_prior = likelihoods.standard_normal_log_prob(z)
      log_q = likelihoods.diag_normal_log_prob_elementwise(z, mu, logvar)
      return (decode_log_prob(mask * z, x)
              + jnp.sum(mask * (log_prior - log_q), axis=-1))
    return jax.vmap(one)(masks)

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
