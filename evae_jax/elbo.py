"""The epitomic ELBO and the estimators built on it (paper §2, §4, eq. 7),
and the training objectives that optimise them.

Everything here is framework-agnostic: the encoder and the decoder are plain
callables, so a user's own networks plug in. All functions are pure and safe
under ``jax.jit``, ``jax.vmap`` and ``jax.grad``.

The objectives ('point', 'logsumexp', 'iwae', 'iwae_marginal') are written
once against the interface of `SharedLatents` (eVAE, VAE) and
`MixtureLatents` (mVAE) and registered in `evae_jax.objectives`, which
every caller goes through (`epitome_loss` for the callables below).

    encode(x) -> (mu, logvar)           each (B, D)
    decode_log_prob(z, x) -> log p(x|z)  shape (B,), z already masked, (B, D)

A ``decode_log_prob`` whose result is not (B,) (e.g. per-pixel terms,
(B, N)) raises ValueError naming it, at trace time.

Notation (docstrings only): B examples, D latent units, E epitomes, M the
(E, D) mask matrix of `evae_jax.epitomes.make_masks`.
"""

import math
from typing import Any, Callable, NamedTuple, Optional, Protocol, Tuple

import jax
import jax.numpy as jnp

from evae_jax import errors
from evae_jax import epitomes
from evae_jax import likelihoods
from evae_jax import objectives

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


def _log_prob(decode_log_prob: DecodeLogProb, z: jax.Array,
              x: jax.Array) -> jax.Array:
  """``decode_log_prob(z, x)``, refused unless it has shape z.shape[:-1]: one
  value per example. A decoder that returns per-pixel terms would otherwise
  broadcast through the bound into arrays of the wrong shape, silently. The
  check reads static shapes only, so it holds under jit and vmap."""
  log_prob = decode_log_prob(z, x)
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


class Latents(Protocol):
  """A model kind as the training objectives see it (`SharedLatents`: the
  eVAE and the VAE; `MixtureLatents`: the mVAE). An objective is written
  once against these methods. ``enc`` is whatever `encoding` returns; the
  objectives pass it back and never look inside. Shapes: x (B, ...), E
  epitomes (components), D latent units in the eVAE's flat layout.
  """
  model_kinds: Tuple[str, ...]  # the ``model.kind`` values it serves

  @property
  def masks(self) -> jax.Array:
    """(E, D) float32 masks in the flat layout."""

  def encoding(self, x: jax.Array) -> Any:
    """The encoding of x, with gradients.

    Args:
      x: (B, ...) batch.

    Returns:
      ``enc``, which the other methods take back.
    """

  def noise_shape(self, enc, x: jax.Array) -> Tuple[Tuple[int, ...], Any]:
    """The shape and dtype of one draw of the standard-normal noise eps.

    Args:
      enc: from `encoding`.
      x: (B, ...) batch.

    Returns:
      (shape, dtype) of eps.
    """

  def terms(self, enc, x: jax.Array, eps: jax.Array,
            z_scale: Optional[jax.Array],
            assignments: Optional[jax.Array] = None
            ) -> Tuple[jax.Array, jax.Array]:
    """The single-sample terms of the bound on the draw eps:

        log_lik_y = log p(x | y, z_y),  z_y = M_y * (mu + exp(logvar / 2) eps)
        kl_y = sum_d M[y, d] KL(q(z_d | x) || N(0, 1))

    (z multiplied by ``z_scale`` when given).

    Args:
      enc: from `encoding`.
      x: (B, ...) batch.
      eps: one draw of the shape `noise_shape` gives.
      z_scale: dropout multipliers of the shape of eps, or None (no dropout).
      assignments: optional (B,) int epitomes: the terms of those only.

    Returns:
      (log_lik, kl): each (B, E), or (B,) with ``assignments``.
    """

  def selection_terms(self, enc, x: jax.Array, rng: jax.Array,
                      z_dropout_rate: float) -> Tuple[jax.Array, jax.Array]:
    """`terms` of the selection draw A of ``rng`` (`selection_key`), without
    gradients: what y* or q_A(y|x) is chosen from.

    Args:
      enc: from `encoding`.
      x: (B, ...) batch.
      rng: the step's key (the same one the scoring draw derives from).
      z_dropout_rate: dropout on z of draw A; 0 off.

    Returns:
      (log_lik, kl), each (B, E).
    """

  def unit_kl(self, enc) -> jax.Array:
    """KL(q(z_d | x) || N(0, 1)) of every unit, in the flat layout.

    Args:
      enc: from `encoding`.

    Returns:
      (B, D) per-unit KL, nats.
    """

  def log_weights(self, enc, x: jax.Array, eps: jax.Array,
                  assignments: Optional[jax.Array] = None) -> jax.Array:
    """Log importance weights of the draw eps (`log_importance_weight`).

    Args:
      enc: from `encoding`.
      x: (B, ...) batch.
      eps: one draw of the shape `noise_shape` gives.
      assignments: optional (B,) int epitomes: the weights of those only.

    Returns:
      (E, B) log w, or (B,) with ``assignments``.
    """


class SharedLatents(NamedTuple):
  """The eVAE (and the VAE, E = 1): one encoder and one decoder shared by
  the epitomes, given as the callables of this module's docstring.

  Attributes:
    encode: x -> (mu, logvar), each (B, D).
    decode_log_prob: (z (B, D), x) -> (B,) log p(x | z).
    masks: (E, D) epitome masks.
  """
  encode: Encode
  decode_log_prob: DecodeLogProb
  masks: jax.Array

  model_kinds = ('evae', 'vae')

  def encoding(self, x):
    """``encode(x)``.

    Args:
      x: (B, ...) batch.

    Returns:
      (mu, logvar), each (B, D), with gradients.
    """
    return self.encode(x)

  def noise_shape(self, enc, x):  # pylint: disable=unused-argument
    """The noise of one draw: one eps_d per unit, shared by the epitomes.

    Args:
      enc: (mu, logvar), each (B, D).
      x: (B, ...) batch (unused).

    Returns:
      ((B, D), the dtype of mu).
    """
    return enc[0].shape, enc[0].dtype

  def terms(self, enc, x, eps, z_scale, assignments=None):
    """`Latents.terms`: the same eps for every epitome (common random
    numbers), z_y = M_y * (mu + exp(logvar / 2) * eps).

    Args:
      enc: (mu, logvar), each (B, D).
      x: (B, ...) batch.
      eps: (B, D) standard-normal noise.
      z_scale: (B, D) dropout multipliers, or None.
      assignments: optional (B,) int epitomes: the terms of those only.

    Returns:
      (log_lik, kl): each (B, E), or (B,) with ``assignments``.
    """
    mu, logvar = enc
    if assignments is not None:
      return _masked_terms(mu, logvar, eps, self.masks[assignments],
                           self.decode_log_prob, x, z_scale)
    log_lik, kl = jax.vmap(lambda m: _masked_terms(
        mu, logvar, eps, m, self.decode_log_prob, x, z_scale))(self.masks)
    return log_lik.T, kl.T

  def selection_terms(self, enc, x, rng, z_dropout_rate):
    """`Latents.selection_terms`: `terms` of draw A, without gradients.

    Args:
      enc: (mu, logvar), each (B, D).
      x: (B, ...) batch.
      rng: the step's key (draw A uses `selection_key` of it).
      z_dropout_rate: dropout on z of draw A; 0 off.

    Returns:
      (log_lik, kl), each (B, E).
    """
    return _selection_terms(*enc, self.masks, self.decode_log_prob, x, rng,
                            z_dropout_rate)

  def unit_kl(self, enc):
    """KL(N(mu_d, exp(logvar_d)) || N(0, 1)) of every unit.

    Args:
      enc: (mu, logvar), each (B, D).

    Returns:
      (B, D) per-unit KL, nats.
    """
    return likelihoods.gaussian_kl_to_standard(*enc)

  def log_weights(self, enc, x, eps, assignments=None):
    """`log_importance_weight` of the draw eps for every epitome.

    Args:
      enc: (mu, logvar), each (B, D).
      x: (B, ...) batch.
      eps: (B, D) standard-normal noise, shared by the epitomes.
      assignments: optional (B,) int epitomes: the weights of those only.

    Returns:
      (E, B) log w, or (B,) with ``assignments``.
    """
    mu, logvar = enc
    if assignments is not None:
      return log_importance_weight(mu, logvar, eps, self.masks[assignments],
                                   self.decode_log_prob, x)
    return jax.vmap(lambda m: log_importance_weight(
        mu, logvar, eps, m, self.decode_log_prob, x))(self.masks)


class MixtureLatents(NamedTuple):
  """The mVAE: E independent VAEs of K units each (see `mixture_terms`).
  In the flat layout component e owns units [e K, (e + 1) K).

  Attributes:
    encode_all: x -> (mu, logvar), each (E, B, K).
    decode_log_prob_all: (z (E, B, K), x) -> (E, B) log p_e(x | z_e).
    latent_dim: K.
    num_components: E.
  """
  encode_all: Encode
  decode_log_prob_all: DecodeLogProb
  latent_dim: int
  num_components: int

  model_kinds = ('mvae',)

  @property
  def masks(self):
    """(E, E * K) float32: component e owns units [e K, (e + 1) K)."""
    k = self.latent_dim
    return jnp.asarray(epitomes.make_masks(self.num_components * k, k, k))

  def encoding(self, x):
    """``encode_all(x)``.

    Args:
      x: (B, ...) batch.

    Returns:
      (mu, logvar), each (E, B, K), with gradients.
    """
    return self.encode_all(x)

  def noise_shape(self, enc, x):  # pylint: disable=unused-argument
    """The noise of one draw: K units, shared by the E components.

    Args:
      enc: (mu, logvar), each (E, B, K) (unused).
      x: (B, ...) batch.

    Returns:
      ((B, K), float32).
    """
    return (x.shape[0], self.latent_dim), jnp.float32

  def terms(self, enc, x, eps, z_scale, assignments=None):
    """`Latents.terms` of every component on the shared eps
    (`mixture_terms`).

    Args:
      enc: (mu, logvar), each (E, B, K).
      x: (B, ...) batch.
      eps: (B, K) standard-normal noise.
      z_scale: (B, K) dropout multipliers, or None.
      assignments: optional (B,) int components: the terms of those only.

    Returns:
      (log_lik, kl): each (B, E), or (B,) with ``assignments``.
    """
    log_lik, kl = _mixture_terms(enc, self.decode_log_prob_all, x, eps,
                                 z_scale)
    if assignments is None:
      return log_lik, kl
    return _pick(log_lik, assignments), _pick(kl, assignments)

  def selection_terms(self, enc, x, rng, z_dropout_rate):
    """`Latents.selection_terms`: `terms` of draw A, without gradients.

    Args:
      enc: unused: the components encode x again for draw A.
      x: (B, ...) batch.
      rng: the step's key (draw A uses `selection_key` of it).
      z_dropout_rate: dropout on z of draw A; 0 off.

    Returns:
      (log_lik, kl), each (B, E).
    """
    # The components encode again for draw A (no gradient flows there).
    del enc
    shape, dtype = self.noise_shape(None, x)
    sel_rng, sel_drop_rng = jax.random.split(selection_key(rng))
    return jax.lax.stop_gradient(mixture_terms(
        self.encode_all, self.decode_log_prob_all, x,
        jax.random.normal(sel_rng, shape, dtype),
        _z_scale(sel_drop_rng, shape, dtype, z_dropout_rate)))

  def unit_kl(self, enc):
    """KL(q(z_d | x) || N(0, 1)) of every unit of every component.

    Args:
      enc: (mu, logvar), each (E, B, K).

    Returns:
      (B, E * K) per-unit KL in the flat layout, nats.
    """
    kl = likelihoods.gaussian_kl_to_standard(*enc)  # (E, B, K)
    return jnp.transpose(kl, (1, 0, 2)).reshape(kl.shape[1], -1)

  def log_weights(self, enc, x, eps, assignments=None):
    """The mVAE has no importance-weighted objective: always raises.

    Args:
      enc: unused.
      x: unused.
      eps: unused.
      assignments: unused.

    Raises:
      evae_jax.errors.ObjectiveError: always; train the mVAE with
        'point' or 'logsumexp'.
    """
    raise errors.ObjectiveError(
        'The mVAE has no importance-weighted objective (iwae, iwae_marginal): '
        'train it with train.objective=point or logsumexp, or use '
        'model.kind=evae for the IWAE objectives.')


def _mixture_terms(enc, decode_log_prob_all, x, eps, z_scale):
  mu, logvar = enc
  z = mu + jnp.exp(0.5 * logvar) * eps[None]
  if z_scale is not None:
    z = z * z_scale[None]
  kl = jnp.sum(likelihoods.gaussian_kl_to_standard(mu, logvar), axis=-1)
  return _log_prob(decode_log_prob_all, z, x).T, kl.T


def mixture_terms(encode_all: Encode, decode_log_prob_all: DecodeLogProb,
                  x: jax.Array, eps: jax.Array,
                  z_scale: Optional[jax.Array] = None
                  ) -> Tuple[jax.Array, jax.Array]:
  """Per-component log-likelihood and KL of a mixture of E VAEs (the mVAE).

  Component e, with its own encoder and decoder over K units:

      log_lik_e = log p_e(x | z_e),   z_e = mu_e + exp(logvar_e / 2) * eps
      kl_e = sum_k KL(N(mu_ek, exp(logvar_ek)) || N(0, 1))

  (z_e multiplied by ``z_scale`` when given).

  Args:
    encode_all: x -> (mu, logvar), each (E, B, K): one encoder per component.
    decode_log_prob_all: (z (E, B, K), x) -> (E, B) log p_e(x | z_e).
    x: (B, ...) batch.
    eps: (B, K) noise shared by all components (common random numbers).
    z_scale: optional (B, K) dropout multipliers.

  Returns:
    (log_lik, kl), each (B, E).
  """
  return _mixture_terms(encode_all(x), decode_log_prob_all, x, eps, z_scale)


# ---------------------------------------------------------------------------
# Over-pruning remedies that change only what is optimised.
# ---------------------------------------------------------------------------


def free_bits_kl(unit_kl: jax.Array, usage: jax.Array, free_bits: float,
                 group_size: int = 1) -> jax.Array:
  """The training KL with free bits (Kingma et al., 2016, openai/iaf kl_min).

  Units are taken ``group_size`` consecutive ones at a time (group g). With
  r_{b,d} in [0, 1] how much example b uses unit d (M[y*_b, d] for a point
  q(y|x); sum_y q(y|x_b) M[y, d] otherwise), u_{b,g} = max_{d in g} r_{b,d},
  KL_{b,g} = sum_{d in g} r_{b,d} KL_{b,d} and the minibatch average over
  the examples that use the group

      avg_g = sum_b KL_{b,g} / sum_b u_{b,g},

  each example's KL term becomes

      KL_FB(b) = sum_g u_{b,g} max(free_bits, avg_g).

  For a VAE (r = 1) this is Kingma et al.'s sum_g max(lambda, mean_b
  KL_{b,g}) per example; for the eVAE only the units of the chosen epitome
  carry KL, as in eq. 8. When every avg_g >= free_bits the batch mean of
  KL_FB equals the batch mean of the true KL; a group below free_bits gets
  no KL gradient. This changes the loss only: bounds use the true KL.

  Args:
    unit_kl: (B, D) KL(q(z_d | x_b) || N(0, 1)) per unit.
    usage: (B, D) r_{b,d}; no gradient flows through it.
    free_bits: lambda in nats per group.
    group_size: units per group; must divide D.

  Returns:
    (B,) free-bits KL of every example.

  Raises:
    ValueError: ``group_size`` does not divide D.
  """
  batch, units = unit_kl.shape
  if units % group_size:
    raise ValueError(f'free_bits_group={group_size} must divide the '
                     f'{units} latent units.')
  usage = jax.lax.stop_gradient(usage)
  group_kl = jnp.sum((usage * unit_kl).reshape(batch, -1, group_size), -1)
  group_use = jnp.max(usage.reshape(batch, -1, group_size), -1)
  average = jnp.sum(group_kl, 0) / jnp.maximum(jnp.sum(group_use, 0), 1e-12)
  return jnp.sum(group_use * jnp.maximum(free_bits, average), -1)


def _training_kl(latents, enc, kl, usage, options):
  """The KL term of the loss: the true (B,) KL, or its free-bits version."""
  if not options.free_bits:
    return kl
  return free_bits_kl(latents.unit_kl(enc), usage, options.free_bits,
                      options.free_bits_group)


# ---------------------------------------------------------------------------
# The training objectives (registered in `evae_jax.objectives`).
# ---------------------------------------------------------------------------


def _aux(chosen_ll, chosen_kl, assignments, log_e, lse_bound=None,
         training_kl=None):
  """Diagnostics, all scored on the draw B that is independent of y*."""
  elbo = chosen_ll - chosen_kl
  aux = {'elbo': elbo, 'log_lik': chosen_ll, 'kl': chosen_kl,
         'assignments': assignments, 'bound': elbo - log_e}
  if lse_bound is not None:
    aux['logsumexp_bound'] = lse_bound
  if training_kl is not None:
    aux['free_bits_kl'] = training_kl
  return jax.lax.stop_gradient(aux)


def _scoring_draw(latents, enc, x, rng, z_dropout_rate):
  """eps and the dropout multipliers of the scoring draw B."""
  eps_rng, drop_rng = jax.random.split(rng)
  shape, dtype = latents.noise_shape(enc, x)
  return (jax.random.normal(eps_rng, shape, dtype),
          _z_scale(drop_rng, shape, dtype, z_dropout_rate))


@objectives.register('point', summary='eq. 7: y* = argmax_y of draw A, '
                     'scored on draw B (the paper)')
def point_loss(latents: Latents, x: jax.Array, rng: jax.Array,
               options: objectives.LossOptions) -> Tuple[jax.Array, dict]:
  """The paper's loss: the negative bound of eq. 7, averaged over the batch.

  With W_y = log p(x | y, z_y) - lambda KL_y (lambda multiplies the z-KL
  only, paper §3.1), y* = argmax_y W_y(A) on the selection draw A, for all
  epitomes at once without gradients (or y* fixed by ``assignments``); then
  only the chosen epitome is scored, with gradients, on the independent
  draw B:

      loss(x) = -W_{y*}(B) + log E.

  Since y* does not depend on B this is an unbiased estimate of a valid
  negative bound; the log E term is KL(delta(y*) || uniform p(y)). A model
  with one epitome needs no selection pass. With free bits, KL_{y*} in the
  loss is `free_bits_kl` over the units of y* (selection is unchanged).

  Args:
    latents: the model (`Latents`: `SharedLatents`, `MixtureLatents`).
    x: (B, ...) batch.
    rng: PRNG key.
    options: `evae_jax.objectives.LossOptions`.

  Returns:
    (loss, aux): the scalar loss, and (B,) diagnostics on draw B: 'elbo'
    (the true, unweighted ELBO of y*), 'log_lik', 'kl' (true KL),
    'assignments', 'bound' (eq. 7, with log E) and, with free bits,
    'free_bits_kl'.
  """
  masks = latents.masks
  enc = latents.encoding(x)
  eps, z_scale = _scoring_draw(latents, enc, x, rng, options.z_dropout_rate)
  log_e = epitomes.log_num_epitomes(masks)
  kl_weight, assignments = options.kl_weight, options.assignments
  if masks.shape[0] == 1:
    assignments = jnp.zeros(x.shape[:1], jnp.int32)
  elif assignments is None:
    sel_ll, sel_kl = latents.selection_terms(enc, x, rng,
                                             options.z_dropout_rate)
    assignments = assign_epitomes(sel_ll - kl_weight * sel_kl)
  chosen_ll, chosen_kl = latents.terms(enc, x, eps, z_scale, assignments)
  train_kl = _training_kl(latents, enc, chosen_kl, masks[assignments],
                          options)
  per_example = -(chosen_ll - kl_weight * train_kl) + log_e
  return jnp.mean(per_example), _aux(
      chosen_ll, chosen_kl, assignments, log_e,
      training_kl=train_kl if options.free_bits else None)


@objectives.register('logsumexp', summary='q_A(y|x) = softmax_y of draw A, '
                     'scored on draw B (beyond the paper)')
def logsumexp_loss(latents: Latents, x: jax.Array, rng: jax.Array,
                   options: objectives.LossOptions) -> Tuple[jax.Array, dict]:
  """The tighter bound of `logsumexp_bound`, negated and averaged.

  With q_A(y|x) = softmax_y W_y(A) (no gradient) and W_y as in `point_loss`,

      loss(x) = -(sum_y q_A(y) [W_y(B) - log q_A(y)] - log E),

  which backpropagates through all E epitomes. Fixed ``assignments`` are not
  used: q_A is recomputed every step. With free bits, sum_y q_A(y) KL_y
  becomes `free_bits_kl` with usage sum_y q_A(y) M[y].

  Args:
    latents, x, rng, options: as in `point_loss`.

  Returns:
    (loss, aux) as in `point_loss`, with (B,) 'logsumexp_bound' (the true
    bound on draw B); 'assignments' is argmax_y q_A(y).
  """
  masks = latents.masks
  enc = latents.encoding(x)
  eps, z_scale = _scoring_draw(latents, enc, x, rng, options.z_dropout_rate)
  log_e = epitomes.log_num_epitomes(masks)
  kl_weight = options.kl_weight
  log_lik, kl = latents.terms(enc, x, eps, z_scale)
  if masks.shape[0] > 1:
    sel_ll, sel_kl = latents.selection_terms(enc, x, rng,
                                             options.z_dropout_rate)
  else:  # E = 1: q is a point mass, the bound is the ELBO.
    sel_ll, sel_kl = jnp.zeros_like(log_lik), jnp.zeros_like(kl)
  sel_weighted = sel_ll - kl_weight * sel_kl
  assignments = assign_epitomes(sel_weighted)
  train_kl = None
  if options.free_bits:
    usage = jax.nn.softmax(sel_weighted, axis=-1) @ masks
    train_kl = _training_kl(latents, enc, None, usage, options)
    per_example = -logsumexp_bound(sel_weighted, log_lik) + kl_weight * train_kl
  else:
    per_example = -logsumexp_bound(sel_weighted, log_lik - kl_weight * kl)
  lse = logsumexp_bound(sel_ll - sel_kl, log_lik - kl)
  return jnp.mean(per_example), _aux(_pick(log_lik, assignments),
                                     _pick(kl, assignments), assignments,
                                     log_e, lse, train_kl)


def _iwae(latents, x, rng, options, marginal):
  """`iwae_point_loss` / `iwae_marginal_loss`."""
  num_samples = options.num_samples
  if num_samples < 1:
    raise errors.ObjectiveError(f'num_samples={num_samples} must be >= 1.')
  if num_samples == 1 and not marginal:
    return point_loss(latents, x, rng, options._replace(kl_weight=1.0))
  masks = latents.masks
  log_e, log_k = epitomes.log_num_epitomes(masks), math.log(num_samples)
  enc = latents.encoding(x)
  eps_rng, _ = jax.random.split(rng)
  shape, dtype = latents.noise_shape(enc, x)
  eps = jax.random.normal(eps_rng, (num_samples,) + shape, dtype)
  if marginal:
    lw = jax.vmap(lambda e: latents.log_weights(enc, x, e))(eps)  # (k, E, B)
    per_epitome = jax.nn.logsumexp(lw, axis=0) - log_k  # (E, B)
    bound = jax.nn.logsumexp(per_epitome, axis=0) - log_e
    y = assign_epitomes(per_epitome.T)
    chosen = jnp.take_along_axis(jnp.mean(lw, 0).T, y[:, None], -1)[:, 0]
  else:
    if masks.shape[0] == 1:
      y = jnp.zeros(x.shape[:1], jnp.int32)
    elif options.assignments is None:
      sel_ll, sel_kl = latents.selection_terms(enc, x, rng, 0.0)
      y = assign_epitomes(sel_ll - sel_kl)
    else:
      y = options.assignments
    lw = jax.vmap(lambda e: latents.log_weights(enc, x, e, y))(eps)  # (k, B)
    bound = jax.nn.logsumexp(lw, axis=0) - log_k - log_e
    chosen = jnp.mean(lw, 0)
  aux = jax.lax.stop_gradient({'bound': bound, 'elbo': chosen,
                               'assignments': y})
  return -jnp.mean(bound), aux


@objectives.register('iwae', model_kinds=('evae', 'vae'),
                     uses_num_samples=True, weights_kl=False,
                     summary='IWAE bound of y* with k samples (Burda et al.)')
def iwae_point_loss(latents: Latents, x: jax.Array, rng: jax.Array,
                    options: objectives.LossOptions) -> Tuple[jax.Array, dict]:
  """Importance-weighted bound of the chosen epitome (Burda et al., 2015;
  the eVAE paper's future work, §5.4), negated and averaged over the batch.

  With w_{y,i} the importance weight of sample i of epitome y
  (`log_importance_weight`) and k = ``options.num_samples`` samples eps_i ~
  N(0, I) drawn in one batched pass (k, B, D): y* = argmax_y ELBO_y(x; A)
  from the single-sample selection draw A of `point_loss` (independent of
  the eps_i, or fixed by ``assignments``), then

      L_k(x) = log (1/k) sum_i w_{y*,i} - log E,

  Burda et al.'s IWAE bound for a VAE (E = 1). Only the chosen epitome is
  evaluated with gradients: k decoder passes per example. k = 1 is
  `point_loss` itself (closed-form KL). A lower bound on log p(x) in
  expectation that increases with k.

  Args:
    latents: `SharedLatents`.
    x, rng: as in `point_loss`.
    options: num_samples = k >= 1 and optional assignments (Algorithm 1);
      no KL weight, z dropout or free bits.

  Returns:
    (loss, aux): scalar loss; aux holds (B,) 'bound' (L_k, in nats, with
    log E), 'elbo' (mean over i of log w of y*, the k = 1 bound's estimate
    without log E) and 'assignments' (y*), and no 'log_lik' or 'kl'. For
    k = 1, `point_loss`'s aux.

  Raises:
    evae_jax.errors.ObjectiveError: num_samples < 1.
  """
  return _iwae(latents, x, rng, options, marginal=False)


@objectives.register('iwae_marginal', model_kinds=('evae', 'vae'),
                     uses_num_samples=True, weights_kl=False,
                     summary='IWAE bound of the marginal over epitomes')
def iwae_marginal_loss(latents: Latents, x: jax.Array, rng: jax.Array,
                       options: objectives.LossOptions
                       ) -> Tuple[jax.Array, dict]:
  """Importance-weighted bound of the marginal over epitomes, negated and
  averaged over the batch:

      L_k(x) = log (1/E) sum_y (1/k) sum_i w_{y,i},

  with the k samples of `iwae_point_loss` shared by all epitomes. Tighter
  than the point bound on the same samples; backpropagates through every
  epitome (E * k decoder passes). Fixed ``assignments`` are not used.

  Args:
    latents, x, rng: as in `iwae_point_loss`.
    options: num_samples = k >= 1.

  Returns:
    (loss, aux): as in `iwae_point_loss` (for every k, k = 1 included),
    with 'assignments' = argmax_y of the per-epitome estimates.

  Raises:
    evae_jax.errors.ObjectiveError: num_samples < 1.
  """

  return _iwae(latents, x, rng, options, marginal=True)


def epitome_loss(encode: Encode, decode_log_prob: DecodeLogProb, x: jax.Array,
                 masks: jax.Array, rng: jax.Array, *,
                 objective: str = 'point', **options) -> Tuple[jax.Array, dict]:
  """The training loss of the eVAE / VAE for any registered objective.

  `evae_jax.objectives.loss` for `SharedLatents` (encode, decode_log_prob,
  masks): by default the paper's eq. 7 loss (`point_loss`), with y* chosen on
  draw A and scored on the independent draw B.

  Args:
    encode: x -> (mu, logvar), each (B, D).
    decode_log_prob: (z, x) -> (B,) log p(x | z).
    x: (B, ...) batch.
    masks: (E, D) epitome masks.
    rng: PRNG key.
    objective: a name of `evae_jax.objectives.REGISTRY` ('point',
      'logsumexp', 'iwae', 'iwae_marginal', ...).
    **options: fields of `evae_jax.objectives.LossOptions` (kl_weight,
      z_dropout_rate, assignments, num_samples, free_bits, free_bits_group).

  Returns:
    (loss, aux): scalar loss and a dict of (B,) diagnostics, without
    gradients. Every objective gives 'bound', 'elbo' and 'assignments'
    (y*). 'point' and 'logsumexp' add 'log_lik' and 'kl' of y*,
    'logsumexp' adds 'logsumexp_bound', and with free bits both add
    'free_bits_kl' (`point_loss`, `logsumexp_loss`). 'iwae' and
    'iwae_marginal' give those three only, with 'bound' the IWAE bound L_k
    and 'elbo' the mean over the k samples of log w of y* (without log E);
    'iwae' with num_samples=1 is 'point' and gives its aux
    (`iwae_point_loss`, `iwae_marginal_loss`).

  Raises:
    evae_jax.errors.ObjectiveError: an unknown objective or options it
      does not take.
  """
  return objectives.loss(SharedLatents(encode, decode_log_prob,
                                       jnp.asarray(masks)),
                         x, rng, objective=objective, **options)


def iwae_loss(encode: Encode, decode_log_prob: DecodeLogProb, x: jax.Array,
              masks: jax.Array, rng: jax.Array, *, num_samples: int,
              marginal: bool = False,
              assignments: Optional[jax.Array] = None
              ) -> Tuple[jax.Array, dict]:
  """`epitome_loss` with objective 'iwae' (``marginal=False``, see
  `iwae_point_loss`) or 'iwae_marginal' (`iwae_marginal_loss`).

  Args:
    encode, decode_log_prob, x, masks, rng: as in `epitome_loss`.
    num_samples: k >= 1.
    marginal: the marginal bound instead of the point one.
    assignments: optional (B,) fixed epitomes (Algorithm 1), point only.

  Returns:
    (loss, aux) of the objective.
  """
  return epitome_loss(encode, decode_log_prob, x, masks, rng,
                      objective='iwae_marginal' if marginal else 'iwae',
                      num_samples=num_samples, assignments=assignments)


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
