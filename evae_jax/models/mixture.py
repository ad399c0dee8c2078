"""The mVAE ablation (paper §5.2): a mixture of E independent VAEs, one per
epitome, parameter-matched to the eVAE."""

import dataclasses
from typing import Any, Tuple

import jax
import jax.numpy as jnp

from evae_jax import elbo
from evae_jax import epitomes
from evae_jax import objectives
from evae_jax.models.networks import bind
from evae_jax.models.networks import init_params
from evae_jax.models.networks import VAENetwork


@dataclasses.dataclass(frozen=True)
class MixtureModel:
  """mVAE: E independent VAEs of K units each (the paper's ablation, §5.2).

  Component parameters are stacked on a leading axis of size E and every
  component runs under ``jax.vmap``. For analysis, latent codes use the flat
  layout of an eVAE with D = E * K and non-overlapping blocks: component e
  owns units [e K, (e + 1) K).

  Attributes:
    component: the network of one component (latent_dim K).
    num_components: E.
  """
  component: VAENetwork
  num_components: int

  @property
  def output_dim(self) -> int:
    """N, pixels per example."""
    return self.component.output_dim

  @property
  def image_shape(self) -> Tuple[int, ...]:
    """(H, W, C) for a convolutional network, (N,) for the MLP."""
    return getattr(self.component, 'image_shape', (self.output_dim,))

  @property
  def masks(self) -> jax.Array:
    """(E, E K) float32: component e's block of units in the flat layout."""
    k = self.component.latent_dim
    return jnp.asarray(epitomes.make_masks(self.num_components * k, k, k))

  def init(self, rng: jax.Array) -> Any:
    """Fresh parameters of every component, stacked.

    Args:
      rng: PRNG key (split into one per component).

    Returns:
      The component's parameter tree with a leading axis of size E on
      every leaf.
    """
    rngs = jax.random.split(rng, self.num_components)
    return jax.vmap(lambda r: init_params(self.component, r))(rngs)

  def _all(self, params):
    apply = self.component.apply
    def encode_all(x):
      return jax.vmap(lambda p: bind(apply, p)[0](x))(params)
    def decode_log_prob_all(z, x):
      return jax.vmap(lambda p, z_e: bind(apply, p)[1](z_e, x))(params, z)
    return encode_all, decode_log_prob_all

  def encode(self, params: Any, x: jax.Array
             ) -> Tuple[jax.Array, jax.Array]:
    """Every component's posterior, in the flat block layout.

    Args:
      params: the stacked parameters.
      x: (B, N) flattened images.

    Returns:
      (mu, logvar), each (B, E * K): component e in units [e K, (e + 1) K).
    """
    mu, logvar = self._all(params)[0](x)
    flat = lambda a: jnp.transpose(a, (1, 0, 2)).reshape(a.shape[1], -1)
    return flat(mu), flat(logvar)

  def latents(self, params: Any) -> objectives.latents.MixtureLatents:
    """This model as the objectives see it.

    Args:
      params: the stacked parameters.

    Returns:
      The `evae_jax.objectives.latents.MixtureLatents` of the components.
    """
    return objectives.latents.MixtureLatents(
        *self._all(params), self.component.latent_dim,
                               self.num_components)

  def loss(self, params: Any, x: jax.Array, rng: jax.Array, *,
           objective: str = 'point', **options
           ) -> Tuple[jax.Array, objectives.LossAux]:
    """`evae_jax.objectives.loss` of ``objective`` for this model.

    Args:
      params: the stacked parameters.
      x: (B, N) batch.
      rng: PRNG key.
      objective: a registered objective name implemented for 'mvae'.
      **options: fields of `evae_jax.objectives.LossOptions`.

    Returns:
      (loss, aux): the scalar loss and the objective's (B,) diagnostics.

    Raises:
      evae_jax.errors.ObjectiveError: an unknown objective, one registered
        without 'mvae', or options it does not take.
    """
    return objectives.loss(self.latents(params), x, rng, objective=objective,
                           **options)

  def elbo_terms(self, params: Any, x: jax.Array, rng: jax.Array
                 ) -> Tuple[elbo.ElboTerms, jax.Array, jax.Array]:
    """The ELBO of every component on one noise draw (common to all).

    Args:
      params: the stacked parameters.
      x: (B, N) batch.
      rng: PRNG key of the draw eps ~ N(0, I), (B, K).

    Returns:
      (terms, mu, logvar): `evae_jax.elbo.ElboTerms` with each field
      (B, E); mu and logvar (B, E K) in the block layout.
    """
    eps = jax.random.normal(rng, (x.shape[0], self.component.latent_dim))
    log_lik, kl = objectives.latents.mixture_terms(*self._all(params), x, eps)
    mu, logvar = self.encode(params, x)
    return elbo.ElboTerms(log_lik - kl, log_lik, kl), mu, logvar

  def iw_per_epitome(self, params: Any, x: jax.Array, rng: jax.Array,
                     num_samples: int, chunk_size: int) -> jax.Array:
    """Importance-weighted estimates of log p_e(x) of every component, on
    the same noise for every e.

    Args:
      params: the stacked parameters.
      x: (B, N) batch.
      rng: PRNG key.
      num_samples: k, importance samples per example and component.
      chunk_size: samples drawn at once (bounds memory).

    Returns:
      (B, E) the estimates, in nats.
    """
    ones = jnp.ones((1, self.component.latent_dim))
    def one(p):
      encode, decode_log_prob = bind(self.component.apply, p)
      return elbo.iw_log_likelihood_per_epitome(
          encode, decode_log_prob, x, ones, rng, num_samples, chunk_size)[:, 0]
    return jax.vmap(one)(params).T

  def decode_mean(self, params: Any, z: jax.Array,
                  assignments: jax.Array) -> jax.Array:
    """Decoder means of the assigned components.

    Args:
      params: the stacked parameters.
      z: (B, E K) codes in the block layout.
      assignments: (B,) int component y of each example; its block of z is
        decoded by its decoder.

    Returns:
      (B, N) means in [0, 1].
    """
    batch, k = z.shape[0], self.component.latent_dim
    blocks = jnp.transpose(z.reshape(batch, self.num_components, k), (1, 0, 2))
    means = jax.vmap(lambda p, z_e: self.component.apply(
        {'params': p}, z_e, method=VAENetwork.mean))(params, blocks)
    return means[assignments, jnp.arange(batch)]
