"""The eVAE (and the VAE: one epitome of all D units): one encoder and one
decoder shared by all epitomes, the paper's §3 model."""

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
class SharedModel:
  """eVAE (and VAE, E = 1): one encoder and one decoder shared by all epitomes.

  Latent codes use the flat (B, D) layout; epitome y uses the units of
  ``masks[y]``.

  Attributes:
    module: the network.
    layout: (D, K, s) of the epitomes (a VAE: (D, D, D)), which fix `masks`.
  """
  module: VAENetwork
  layout: Tuple[int, int, int]

  @property
  def output_dim(self) -> int:
    """N, pixels per example."""
    return self.module.output_dim

  @property
  def image_shape(self) -> Tuple[int, ...]:
    """(H, W, C) for a convolutional network, (N,) for the MLP."""
    return getattr(self.module, 'image_shape', (self.output_dim,))

  @property
  def masks(self) -> jax.Array:
    """(E, D) float32 epitome masks (`evae_jax.epitomes.make_masks`)."""
    return jnp.asarray(epitomes.make_masks(*self.layout))

  def init(self, rng: jax.Array) -> Any:
    """Fresh parameters of the shared network.

    Args:
      rng: PRNG key.

    Returns:
      The parameter tree.
    """
    return init_params(self.module, rng)

  def encode(self, params: Any, x: jax.Array
             ) -> Tuple[jax.Array, jax.Array]:
    """The posterior q(z | x) of all D units.

    Args:
      params: the model's parameters.
      x: (B, N) flattened images.

    Returns:
      (mu, logvar), each (B, D).
    """
    return bind(self.module.apply, params)[0](x)

  def latents(self, params: Any) -> objectives.latents.SharedLatents:
    """This model as the objectives see it.

    Args:
      params: the model's parameters.

    Returns:
      The `evae_jax.objectives.latents.SharedLatents` of the bound network
      and the masks.
    """
    return objectives.latents.SharedLatents(
        *bind(self.module.apply, params), self.masks)

  def loss(self, params: Any, x: jax.Array, rng: jax.Array, *,
           objective: str = 'point', **options
           ) -> Tuple[jax.Array, objectives.LossAux]:
    """`evae_jax.objectives.loss` of ``objective`` for this model.

    Args:
      params: the model's parameters.
      x: (B, N) batch.
      rng: PRNG key.
      objective: a registered objective name.
      **options: fields of `evae_jax.objectives.LossOptions`.

    Returns:
      (loss, aux): the scalar loss and the objective's (B,) diagnostics
      (see `evae_jax.objectives.callables.epitome_loss`).

    Raises:
      evae_jax.errors.ObjectiveError: an unknown objective or options it
        does not take.
    """
    return objectives.loss(self.latents(params), x, rng, objective=objective,
                           **options)

  def elbo_terms(self, params: Any, x: jax.Array, rng: jax.Array
                 ) -> Tuple[elbo.ElboTerms, jax.Array, jax.Array]:
    """The ELBO of every epitome on one noise draw (common to all of them).

    Args:
      params: the model's parameters.
      x: (B, N) batch.
      rng: PRNG key of the draw eps ~ N(0, I), (B, D).

    Returns:
      (terms, mu, logvar): `evae_jax.elbo.ElboTerms` with each field
      (B, E); mu and logvar (B, D).
    """
    encode, decode_log_prob = bind(self.module.apply, params)
    mu, logvar = encode(x)
    eps = jax.random.normal(rng, mu.shape, mu.dtype)
    return (elbo.elbo_from_encoding(mu, logvar, eps, decode_log_prob, x,
                                    self.masks), mu, logvar)

  def iw_per_epitome(self, params: Any, x: jax.Array, rng: jax.Array,
                     num_samples: int, chunk_size: int) -> jax.Array:
    """Importance-weighted estimates of log p(x | y) for every epitome
    (`evae_jax.elbo.iw_log_likelihood_per_epitome`).

    Args:
      params: the model's parameters.
      x: (B, N) batch.
      rng: PRNG key.
      num_samples: k, importance samples per example and epitome.
      chunk_size: samples drawn at once (bounds memory).

    Returns:
      (B, E) the estimates, in nats.
    """
    encode, decode_log_prob = bind(self.module.apply, params)
    return elbo.iw_log_likelihood_per_epitome(
        encode, decode_log_prob, x, self.masks, rng, num_samples, chunk_size)

  def decode_mean(
      self, params: Any, z: jax.Array,
      assignments: jax.Array) -> jax.Array:  # pylint: disable=unused-argument
    """Decoder means of latent codes.

    Args:
      params: the model's parameters.
      z: (B, D) masked codes.
      assignments: (B,) int epitome of each code; unused, the decoder is
        shared.

    Returns:
      (B, N) means in [0, 1].
    """
    return self.module.apply({'params': params}, z, method=VAENetwork.mean)
