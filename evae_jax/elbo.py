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

from evae_jax import epitomes
from evae_jax import likelihoods

Encode = Callable[[jax.Array], Tuple[jax.Array, jax.Array]]
DecodeLogProb = Callable[[jax.Array, jax.Array], jax.Array]

OBJECTIVES = ('point', 'logsumexp', 'iwae', 'iwae_marginal')
IWAE_OBJECTIVES = ('iwae', 'iwae_marginal')
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
  """ELBO_y(x) for every example and every epitome at once (docs/maths.md).

  For each epitome y with mask m_y (paper eq. 5-6), with q(z | x, y) =
  N(m_y * mu, exp(m_y * logvar)):

      ELBO_y(x) = log p(x | y, z_y) - sum_d m_y[d] KL(N(mu_d, e^logvar_d) || N(0, 1)),
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
  """The key of the selection draw A, independent of the keys that
  `epitome_loss` and `mixture_loss` derive from ``rng`` for scoring."""
  return jax.random.fold_in(rng, SELECTION_FOLD)


def _z_scale(rng, shape, dtype, z_dropout_rate):
  """Inverted-dropout multipliers for z, or None when dropout is off."""
  if z_dropout_rate <= 0.0:
    return None
  keep = jax.random.bernoulli(rng, 1.0 - z_dropout_rate, shape)
  return keep.astype(dtype) / (1.0 - z_dropout_rate)


def _pick(a, assignments):
  return jnp.take_along_axis(a, assignments[:, None], -1)[:, 0]


def _aux(chosen_ll, chosen_kl, assignments, log_e, lse_bound=None):
  """Diagnostics, all scored on the draw B that is independent of y*."""
  elbo = chosen_ll - chosen_kl
  aux = {'elbo': elbo, 'log_lik': chosen_ll, 'kl': chosen_kl,
         'assignments': assignments, 'bound': elbo - log_e}
  if lse_bound is not None:
    aux['logsumexp_bound'] = lse_bound
  return jax.lax.stop_gradient(aux)


def _loss_from_terms(select, log_lik, kl, kl_weight, objective, assignments,
                     log_e):
  """Per-example loss and aux from selection terms of draw A and (B, E)
  scoring terms of draw B that carry gradients (both objectives)."""
  weighted = log_lik - kl_weight * kl
  if objective == 'logsumexp':
    sel_ll, sel_kl = select
    sel_weighted = sel_ll - kl_weight * sel_kl
    assignments = assign_epitomes(sel_weighted)
    per_example = -logsumexp_bound(sel_weighted, weighted)
    lse = logsumexp_bound(sel_ll - sel_kl, log_lik - kl)
    return per_example, _aux(_pick(log_lik, assignments),
                             _pick(kl, assignments), assignments, log_e, lse)
  if assignments is None:
    sel_ll, sel_kl = select
    assignments = assign_epitomes(sel_ll - kl_weight * sel_kl)
  per_example = -_pick(weighted, assignments) + log_e
  return per_example, _aux(_pick(log_lik, assignments),
                           _pick(kl, assignments), assignments, log_e)


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


def _check_objective(objective):
  if objective not in OBJECTIVES:
    raise ValueError(f'objective must be one of {OBJECTIVES}, got {objective!r}')


def epitome_loss(encode: Encode, decode_log_prob: DecodeLogProb, x: jax.Array,
                 masks: jax.Array, rng: jax.Array, *,
                 kl_weight: float | jax.Array = 1.0,
                 objective: str = 'point',
                 z_dropout_rate: float = 0.0,
                 assignments: Optional[jax.Array] = None,
                 num_samples: int = 1
                 ) -> Tuple[jax.Array, dict]:
  """Training loss: the negative bound of eq. 7, averaged over the batch.

  Two independent noise draws: A (from `selection_key`) chooses, B scores.
  With W_y = log p(x | y, z_y) - lambda KL_y (lambda is the KL weight of
  paper §3.1; it multiplies the z-KL only):

  ``objective='point'`` (the paper): y* = argmax_y W_y(A), found for all
  epitomes at once without gradients; then only the chosen epitome is
  computed with gradients, on draw B:

      loss(x) = -W_{y*}(B) + log E.

  ``objective='logsumexp'``: with q_A(y|x) = softmax_y W_y(A) (no gradient),

      loss(x) = -(sum_y q_A(y) [W_y(B) - log q_A(y)] - log E),

  which backpropagates through all E epitomes (see `logsumexp_bound`).

  ``objective='iwae'`` / ``'iwae_marginal'``: `iwae_loss` with
  ``num_samples`` importance samples (kl_weight must be 1).

  Since y* and q_A do not depend on B, both losses are unbiased estimates of
  valid (negative) bounds; scoring the selecting draw would not be. The log
  E term is KL(delta(y*) || uniform p(y)); it keeps eVAE bounds comparable
  with VAE bounds in nats. A VAE (E = 1) needs no selection pass.

  Args:
    encode: x -> (mu, logvar), each (B, D).
    decode_log_prob: (z, x) -> (B,) log p(x | z).
    x: (B, ...) batch.
    masks: (E, D) epitome masks.
    rng: PRNG key.
    kl_weight: lambda (scalar; may be traced, e.g. vmapped over models).
    objective: 'point', 'logsumexp', 'iwae' or 'iwae_marginal'.
    z_dropout_rate: dropout rate on z (the dropout VAE of paper §3.2); 0 off.
    assignments: optional (B,) int epitome per example, fixed in advance
      (Algorithm 1) from data independent of ``rng``; by default y* is
      chosen here, per step, from draw A.
    num_samples: k of the IWAE objectives (ignored by the others).

  Returns:
    (loss, aux): scalar loss and a dict of (B,)-shaped diagnostics, all on
    draw B: 'elbo' (the true, unweighted ELBO of the assigned epitome),
    'log_lik', 'kl', 'assignments', 'bound' (eq. 7, with log E) and, for
    the logsumexp objective, 'logsumexp_bound'.
  """
  _check_objective(objective)
  if objective in IWAE_OBJECTIVES:
    if z_dropout_rate:
      raise ValueError('The IWAE objectives do not support z dropout.')
    return iwae_loss(encode, decode_log_prob, x, masks, rng,
                     num_samples=num_samples,
                     marginal=objective == 'iwae_marginal',
                     assignments=assignments)
  masks = jnp.asarray(masks)
  eps_rng, drop_rng = jax.random.split(rng)
  mu, logvar = encode(x)
  eps = jax.random.normal(eps_rng, mu.shape, mu.dtype)
  z_scale = _z_scale(drop_rng, mu.shape, mu.dtype, z_dropout_rate)
  log_e = epitomes.log_num_epitomes(masks)

  def all_terms(mu_, logvar_, eps_, z_scale_):
    log_lik, kl = jax.vmap(lambda m: _masked_terms(
        mu_, logvar_, eps_, m, decode_log_prob, x, z_scale_))(masks)
    return log_lik.T, kl.T

  select = None
  needs_selection = masks.shape[0] > 1 and (assignments is None
                                            or objective == 'logsumexp')
  if needs_selection:
    select = _selection_terms(mu, logvar, masks, decode_log_prob, x, rng,
                              z_dropout_rate)
  if objective == 'logsumexp':
    log_lik, kl = all_terms(mu, logvar, eps, z_scale)
    if select is None:  # E = 1: q is a point mass, the bound is the ELBO.
      select = (jnp.zeros_like(log_lik), jnp.zeros_like(kl))
    per_example, aux = _loss_from_terms(select, log_lik, kl, kl_weight,
                                        objective, None, log_e)
    return jnp.mean(per_example), aux
  if masks.shape[0] == 1:
    assignments = jnp.zeros(mu.shape[:1], jnp.int32)
  elif assignments is None:
    sel_ll, sel_kl = select
    assignments = assign_epitomes(sel_ll - kl_weight * sel_kl)
  chosen_ll, chosen_kl = _masked_terms(
      mu, logvar, eps, masks[assignments], decode_log_prob, x, z_scale)
  per_example = -(chosen_ll - kl_weight * chosen_kl) + log_e
  return jnp.mean(per_example), _aux(chosen_ll, chosen_kl, assignments, log_e)


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

  Same objective as `epitome_loss`, with the same two independent draws
  (A selects without gradients, B scores). Nothing is shared between
  components, so every component runs forward on B and the chosen one is
  picked per example (the others receive zero gradient).

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
  num_components = log_lik.shape[-1]
  select = None
  if num_components > 1 and (assignments is None or objective == 'logsumexp'):
    sel_rng, sel_drop_rng = jax.random.split(selection_key(rng))
    select = jax.lax.stop_gradient(mixture_terms(
        encode_all, decode_log_prob_all, x, jax.random.normal(sel_rng, shape),
        _z_scale(sel_drop_rng, shape, eps.dtype, z_dropout_rate)))
  elif assignments is None or objective == 'logsumexp':
    select = (jnp.zeros_like(log_lik), jnp.zeros_like(kl))
  per_example, aux = _loss_from_terms(select, log_lik, kl, kl_weight,
                                      objective, assignments,
                                      math.log(num_components))
  return jnp.mean(per_example), aux


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
  return (decode_log_prob(mask * z, x)
          + jnp.sum(mask * (log_prior - log_q), axis=-1))


def iwae_loss(encode: Encode, decode_log_prob: DecodeLogProb, x: jax.Array,
              masks: jax.Array, rng: jax.Array, *, num_samples: int,
              marginal: bool = False,
              assignments: Optional[jax.Array] = None
              ) -> Tuple[jax.Array, dict]:
  """Importance-weighted epitomic objectives (Burda et al., 2015; the eVAE
  paper's future work, §5.4), negated and averaged over the batch.

  With w_{y,i} the importance weight of sample i of epitome y
  (`log_importance_weight`), the k samples eps_i ~ N(0, I) drawn in one
  batched pass (k, B, D) and shared by all epitomes:

  - point (``marginal=False``): y* = argmax_y ELBO_y(x; A) from the
    single-sample selection draw A of `epitome_loss` (independent of the
    eps_i, or fixed by ``assignments``), then
        L_k(x) = log (1/k) sum_i w_{y*,i} - log E,
    Burda et al.'s IWAE bound for a VAE (E = 1). Only the chosen epitome is
    evaluated with gradients: k decoder passes per example. k = 1 is the
    eq. 7 loss itself (`epitome_loss`, with the closed-form KL).
  - marginal: L_k(x) = log (1/E) sum_y (1/k) sum_i w_{y,i}, a bound on
    log p(x) that is tighter than the point one for the same samples and
    backpropagates through every epitome: E * k decoder passes.

  Both are lower bounds on log p(x) in expectation and increase with k.

  Args:
    encode: x -> (mu, logvar), each (B, D).
    decode_log_prob: (z, x) -> (B,) log p(x | z).
    x: (B, ...) batch.
    masks: (E, D) epitome masks.
    rng: PRNG key (draw A from `selection_key`, the eps_i from the first
      half of ``jax.random.split(rng)``, as in `epitome_loss`).
    num_samples: k >= 1.
    marginal: the marginal bound instead of the point one.
    assignments: optional (B,) fixed epitomes (Algorithm 1), point only.

  Returns:
    (loss, aux): scalar loss; aux holds (B,) 'bound' (L_k, in nats, with
    log E), 'elbo' (mean over i of log w of the chosen epitome, the k = 1
    bound's estimate without log E) and 'assignments' (y*; for the marginal,
    argmax_y of the per-epitome estimates).
  """
  masks = jnp.asarray(masks)
  if num_samples == 1 and not marginal:
    return epitome_loss(encode, decode_log_prob, x, masks, rng,
                        assignments=assignments)
  log_e, log_k = epitomes.log_num_epitomes(masks), math.log(num_samples)
  eps_rng, _ = jax.random.split(rng)
  mu, logvar = encode(x)
  eps = jax.random.normal(eps_rng, (num_samples,) + mu.shape, mu.dtype)
  if marginal:
    lw = jax.vmap(lambda e: jax.vmap(lambda m: log_importance_weight(
        mu, logvar, e, m, decode_log_prob, x))(masks))(eps)  # (k, E, B)
    per_epitome = jax.nn.logsumexp(lw, axis=0) - log_k  # (E, B)
    bound = jax.nn.logsumexp(per_epitome, axis=0) - log_e
    y = assign_epitomes(per_epitome.T)
    chosen = jnp.take_along_axis(jnp.mean(lw, 0).T, y[:, None], -1)[:, 0]
  else:
    if masks.shape[0] == 1:
      y = jnp.zeros(mu.shape[:1], jnp.int32)
    elif assignments is None:
      sel_ll, sel_kl = _selection_terms(mu, logvar, masks, decode_log_prob, x,
                                        rng)
      y = assign_epitomes(sel_ll - sel_kl)
    else:
      y = assignments
    lw = jax.vmap(lambda e: log_importance_weight(
        mu, logvar, e, masks[y], decode_log_prob, x))(eps)  # (k, B)
    bound = jax.nn.logsumexp(lw, axis=0) - log_k - log_e
    chosen = jnp.mean(lw, 0)
  aux = jax.lax.stop_gradient({'bound': bound, 'elbo': chosen,
                               'assignments': y})
  return -jnp.mean(bound), aux


def iw_log_likelihood_per_epitome(
    encode: Encode, decode_log_prob: DecodeLogProb, x: jax.Array,
    masks: jax.Array, rng: jax.Array, num_samples: int,
    chunk_size: int = 100) -> jax.Array:
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
