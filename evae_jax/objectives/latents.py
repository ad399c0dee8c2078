"""The interface through which the objectives see a model kind.

`Latents` is the protocol; `SharedLatents` serves the eVAE and the VAE (one
encoder and decoder, epitomes as masks over the D units), `MixtureLatents`
the mVAE (E independent VAEs of K units). An objective is written once
against the protocol and works for every kind that implements it.
"""

from typing import Any, NamedTuple, Optional, Protocol, Tuple

import jax
import jax.numpy as jnp

from evae_jax import elbo
from evae_jax import epitomes
from evae_jax import errors
from evae_jax import likelihoods

# pylint: disable=protected-access  (the bound's helpers, one package apart)

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
  encode: elbo.Encode
  decode_log_prob: elbo.DecodeLogProb
  masks: jax.Array

  model_kinds = ('evae', 'vae')

  def encoding(self, x):
    """``encode(x)``.

    Args:
      x: (B, ...) batch.

    Returns:
      (mu, logvar), each (B, D), with gradients; float32 at least
      (`evae_jax.elbo.float32_at_least`).
    """
    return tuple(map(elbo.float32_at_least, self.encode(x)))

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
      return elbo._masked_terms(mu, logvar, eps, self.masks[assignments],
                           self.decode_log_prob, x, z_scale)
    log_lik, kl = jax.vmap(lambda m: elbo._masked_terms(
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
    return elbo._selection_terms(*enc, self.masks, self.decode_log_prob, x, rng,
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
      return elbo.log_importance_weight(
          mu, logvar, eps, self.masks[assignments],
                                   self.decode_log_prob, x)
    return jax.vmap(lambda m: elbo.log_importance_weight(
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
  encode_all: elbo.Encode
  decode_log_prob_all: elbo.DecodeLogProb
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
    return elbo._pick(log_lik, assignments), elbo._pick(kl, assignments)

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
    sel_rng, sel_drop_rng = jax.random.split(elbo.selection_key(rng))
    return jax.lax.stop_gradient(mixture_terms(
        self.encode_all, self.decode_log_prob_all, x,
        jax.random.normal(sel_rng, shape, dtype),
        elbo._z_scale(sel_drop_rng, shape, dtype, z_dropout_rate)))

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
  return elbo._log_prob(decode_log_prob_all, z, x).T, kl.T


def mixture_terms(encode_all: elbo.Encode,
                  decode_log_prob_all: elbo.DecodeLogProb,
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
