"""Flax MLP encoder and decoder (paper §5: fully connected, ReLU).

One model class serves every kind: a plain VAE is the eVAE with one epitome
covering all D units (D = K = s), so there is no separate code path.
"""

from typing import Callable, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from evae_jax import likelihoods

LIKELIHOODS = ('bernoulli', 'gaussian')


class MLP(nn.Module):
  """num_layers Dense+ReLU layers of hidden_dim units."""
  hidden_dim: int
  num_layers: int

  @nn.compact
  def __call__(self, x):
    for _ in range(self.num_layers):
      x = nn.relu(nn.Dense(self.hidden_dim)(x))
    return x


class EVAE(nn.Module):
  """Encoder h(x) -> (mu, logvar) and decoder f(z) -> p(x | z).

  Attributes:
    latent_dim: D.
    output_dim: N, pixels per example (data are flattened).
    hidden_dim: H, units per hidden layer.
    num_layers: L, hidden layers in the encoder and in the decoder.
    likelihood: 'bernoulli' (logits) or 'gaussian' (mean and log-variance
      heads, eq. 2/5).
    min_logvar, max_logvar: the Gaussian decoder's log-variance is squashed
      smoothly into this interval, so a near-constant pixel cannot drive the
      density, and with it the loss, to infinity.
  """
  latent_dim: int
  output_dim: int
  hidden_dim: int = 500
  num_layers: int = 2
  likelihood: str = 'bernoulli'
  min_logvar: float = -7.0
  max_logvar: float = 2.0

  def setup(self):
    self.encoder = MLP(self.hidden_dim, self.num_layers)
    self.mu_head = nn.Dense(self.latent_dim)
    self.logvar_head = nn.Dense(self.latent_dim)
    self.decoder = MLP(self.hidden_dim, self.num_layers)
    self.out_head = nn.Dense(self.output_dim)
    if self.likelihood == 'gaussian':
      self.out_logvar_head = nn.Dense(self.output_dim)

  def encode(self, x: jax.Array) -> Tuple[jax.Array, jax.Array]:
    """(B, N) -> mu, logvar, each (B, D)."""
    h = self.encoder(x)
    return self.mu_head(h), self.logvar_head(h)

  def decode(self, z: jax.Array):
    """(B, D) masked z -> logits (B, N), or (mean, logvar) for 'gaussian'."""
    h = self.decoder(z)
    if self.likelihood == 'bernoulli':
      return self.out_head(h)
    mean = nn.sigmoid(self.out_head(h))
    span = self.max_logvar - self.min_logvar
    logvar = self.min_logvar + span * nn.sigmoid(self.out_logvar_head(h))
    return mean, logvar

  def log_prob(self, z: jax.Array, x: jax.Array) -> jax.Array:
    """log p(x | z), (B,)."""
    out = self.decode(z)
    if self.likelihood == 'bernoulli':
      return likelihoods.bernoulli_log_prob(out, x)
    return likelihoods.gaussian_log_prob(out[0], out[1], x)

  def mean(self, z: jax.Array) -> jax.Array:
    """Decoder mean E[x | z] in [0, 1], (B, N)."""
    out = self.decode(z)
    return nn.sigmoid(out) if self.likelihood == 'bernoulli' else out[0]

  def __call__(self, x: jax.Array) -> jax.Array:
    mu, _ = self.encode(x)
    return self.log_prob(mu, x)


def make_model(model_config, output_dim: int) -> EVAE:
  """Builds the Flax module from ``config.model``."""
  return EVAE(latent_dim=model_config.latent_dim, output_dim=output_dim,
              hidden_dim=model_config.hidden_dim,
              num_layers=model_config.num_layers,
              likelihood=model_config.likelihood,
              min_logvar=model_config.min_logvar,
              max_logvar=model_config.max_logvar)


def bind(apply_fn: Callable, params) -> Tuple[Callable, Callable]:
  """The (encode, decode_log_prob) callables that `evae_jax.elbo` expects.

  Args:
    apply_fn: ``model.apply`` of an `EVAE`.
    params: its parameters.
  """
  def encode(x):
    return apply_fn({'params': params}, x, method=EVAE.encode)

  def decode_log_prob(z, x):
    return apply_fn({'params': params}, z, x, method=EVAE.log_prob)
  return encode, decode_log_prob


def decode_mean(apply_fn: Callable, params, z: jax.Array) -> jax.Array:
  """Decoder mean E[x | z], (B, N), for masked z (B, D)."""
  return apply_fn({'params': params}, z, method=EVAE.mean)


def init_params(model: EVAE, rng: jax.Array):
  """Initial parameters for a model with ``model.output_dim`` inputs."""
  return model.init(rng, jnp.zeros((1, model.output_dim), jnp.float32))['params']


def count_params(params) -> int:
  """Total number of scalars in a parameter tree."""
  return sum(int(p.size) for p in jax.tree_util.tree_leaves(params))
