"""The model kinds built from the networks of `evae_jax.models.networks`
(Flax MLP encoder and decoder, paper §5), and the factory `make_model`.

`SharedModel` is the eVAE; a plain VAE is the same class with one epitome
covering all D units (D = K = s), so there is no separate code path that can
drift. `MixtureModel` is the paper's mVAE ablation. Both expose the same
methods, which the training loop and the evaluation call.
"""

import dataclasses
from typing import Any, Protocol, Tuple

import jax
import jax.numpy as jnp
import ml_collections

from evae_jax import elbo
from evae_jax import epitomes
from evae_jax import objectives
from evae_jax.models.networks import (  # noqa: F401 (the public API)
    LIKELIHOODS,
    OUTPUT_BIAS_INITS,
    ACTIVATIONS,
    KERNEL_INITS,
    DTYPES,
    dense,
    MLP,
    VAENetwork,
    _module,
    bind,
    init_params,
    init_output_bias,
    count_params,
    native_bfloat16,
)


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
           objective: str = 'point', **options) -> Tuple[jax.Array, dict]:
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
           objective: str = 'point', **options) -> Tuple[jax.Array, dict]:
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


class Model(Protocol):
  """What training, evaluation and sampling use of a model kind
  (`SharedModel`: eVAE and VAE; `MixtureModel`: mVAE). Shapes: x (B, N),
  z (B, D) in the eVAE's flat layout, E epitomes.

  Every method is pure and jittable; the model itself is a static value
  (a frozen dataclass) that the train state holds in its ``model`` field
  (`evae_jax.state.TrainState`). It owns its epitome masks: they follow
  from ``config.model`` alone.
  """

  @property
  def output_dim(self) -> int:
    """N, pixels per example."""

  @property
  def masks(self) -> jax.Array:
    """(E, D) float32: epitome y uses the units where ``masks[y]`` is 1."""

  def init(self, rng: jax.Array) -> Any:
    """Fresh parameters.

    Args:
      rng: PRNG key.

    Returns:
      The parameter tree.
    """

  def encode(self, params: Any, x: jax.Array
             ) -> Tuple[jax.Array, jax.Array]:
    """The posterior q(z | x).

    Args:
      params: the parameters.
      x: (B, N) flattened images.

    Returns:
      (mu, logvar), each (B, D).
    """

  def latents(self, params: Any) -> Any:
    """The model as the objectives of `evae_jax.objectives` see it.

    Args:
      params: the parameters.

    Returns:
      The interface of `evae_jax.elbo`: `objectives.latents.SharedLatents` or
      `objectives.latents.MixtureLatents`.
    """

  def loss(self, params: Any, x: jax.Array, rng: jax.Array, *,
           objective: str = 'point', **options) -> Tuple[jax.Array, dict]:
    """The training loss of a registered objective.

    Args:
      params: the parameters.
      x: (B, N) batch.
      rng: PRNG key.
      objective: a registered objective name.
      **options: fields of `evae_jax.objectives.LossOptions` (kl_weight,
        assignments, ...), as `evae_jax.train.steps.train_step` passes them.

    Returns:
      (loss, aux): the scalar loss and a dict of (B,) diagnostics.
    """

  def elbo_terms(self, params: Any, x: jax.Array, rng: jax.Array
                 ) -> Tuple[Any, jax.Array, jax.Array]:
    """The ELBO of every epitome on one noise draw.

    Args:
      params: the parameters.
      x: (B, N) batch.
      rng: PRNG key of the draw.

    Returns:
      (terms, mu, logvar): `evae_jax.elbo.ElboTerms` with each field
      (B, E); mu and logvar (B, D).
    """

  def iw_per_epitome(self, params: Any, x: jax.Array, rng: jax.Array,
                     num_samples: int, chunk_size: int) -> jax.Array:
    """Importance-weighted estimates of log p(x | y).

    Args:
      params: the parameters.
      x: (B, N) batch.
      rng: PRNG key.
      num_samples: k, importance samples per example and epitome.
      chunk_size: samples drawn at once (bounds memory).

    Returns:
      (B, E) the estimates, in nats.
    """

  def decode_mean(self, params: Any, z: jax.Array,
                  assignments: jax.Array) -> jax.Array:
    """Decoder means for codes of given epitomes.

    Args:
      params: the parameters.
      z: (B, D) codes.
      assignments: (B,) int epitome of each code (the shared decoder of the
        eVAE ignores it).

    Returns:
      (B, N) means in [0, 1].
    """


MODEL_KINDS = ('evae', 'vae', 'mvae')


def epitome_shape(model_config: ml_collections.ConfigDict
                  ) -> Tuple[int, int, int]:
  """(D, K, s) of the latent layout of ``config.model``.

  Kind 'vae' forces K = s = D. Kind 'mvae' has one component per epitome
  of the eVAE with the same (D, K) and non-overlapping epitomes, E =
  `epitomes.num_epitomes` (D, K, K) components of K units each, laid out
  side by side: E * K units, which is more than D when K does not divide D
  (D = 8, K = 3: E = 3 components, 9 units).

  Args:
    model_config: the ``model`` section (kind, latent_dim, epitome_size,
      stride).

  Returns:
    (D, K, s), the stride resolved (0 = K).

  Raises:
    evae_jax.errors.EpitomeConfigError: for 'mvae', K does not fit D.
  """
  d = model_config.latent_dim
  if model_config.kind == 'vae':
    return d, d, d
  k = model_config.epitome_size
  if model_config.kind == 'mvae':
    epitomes.validate(d, k, k)
    return epitomes.num_epitomes(d, k, k) * k, k, k
  return d, k, epitomes.resolve_stride(k, model_config.stride)


def param_count(output_dim: int, latent_dim: int, hidden_dim: int,
                num_layers: int, likelihood: str) -> int:
  """Number of parameters of a `VAENetwork`, in closed form.

  Args:
    output_dim: N, pixels per example.
    latent_dim: D.
    hidden_dim: H.
    num_layers: L.
    likelihood: 'bernoulli' or 'gaussian' (a second output head).

  Returns:
    The count, equal to `count_params` of its initial parameters.
  """
  def mlp(n_in):
    if num_layers == 0:
      return 0, n_in
    return (n_in * hidden_dim + hidden_dim
            + (num_layers - 1) * (hidden_dim * hidden_dim + hidden_dim),
            hidden_dim)
  enc, h_enc = mlp(output_dim)
  dec, h_dec = mlp(latent_dim)
  heads = 2 if likelihood == 'gaussian' else 1
  return (enc + 2 * (h_enc * latent_dim + latent_dim)
          + dec + heads * (h_dec * output_dim + output_dim))


def mixture_hidden_dim(model_config: ml_collections.ConfigDict,
                       output_dim: int) -> int:
  """H' per mVAE component whose E components together have the parameter
  count closest to the eVAE with the same (L, H, D, K) (paper §5.2).

  Args:
    model_config: the ``model`` section, read as the eVAE's.
    output_dim: N, pixels per example.

  Returns:
    H', in [1, 4 H].
  """
  d, k, s = epitome_shape(model_config)
  e = epitomes.num_epitomes(d, k, s)
  count = lambda latent, h: param_count(output_dim, latent, h,
                                        model_config.num_layers,
                                        model_config.likelihood)
  target = count(model_config.latent_dim, model_config.hidden_dim)
  return min(range(1, 4 * model_config.hidden_dim + 1),
             key=lambda h: abs(e * count(k, h) - target))


def evaluation_dtype(config: ml_collections.ConfigDict) -> str:
  """The networks' dtype for evaluation, sampling and validation.

  Args:
    config: the full config (``eval.dtype``; 'train' means ``model.dtype``).

  Returns:
    A key of `DTYPES`.
  """
  dtype = config.eval.get('dtype', 'float32')
  return config.model.get('dtype', 'float32') if dtype == 'train' else dtype


def evaluation_model(config: ml_collections.ConfigDict,
                     output_dim: int) -> 'Model':
  """The model of ``config`` computed in `evaluation_dtype`: the same
  parameters apply (they are float32 in every dtype).

  Args:
    config: the full config.
    output_dim: N, pixels per example.

  Returns:
    `make_model` of ``config.model`` with its dtype replaced.
  """
  model_config = ml_collections.ConfigDict(config.model.to_dict())
  model_config.dtype = evaluation_dtype(config)
  return make_model(model_config, output_dim)


def make_model(model_config: ml_collections.ConfigDict,
               output_dim: int) -> Model:
  """The model of ``config.model`` for data with ``output_dim`` pixels.

  Args:
    model_config: the ``model`` section.
    output_dim: N, pixels per example.

  Returns:
    A `MixtureModel` for kind 'mvae' (H' from ``mvae_hidden_dim`` or
    `mixture_hidden_dim`), else a `SharedModel`.
  """
  if model_config.kind == 'mvae':
    hidden = model_config.mvae_hidden_dim or mixture_hidden_dim(model_config,
                                                                output_dim)
    d, k, s = epitome_shape(model_config)
    return MixtureModel(_module(model_config, output_dim, k, hidden),
                        epitomes.num_epitomes(d, k, s))
  return SharedModel(_module(model_config, output_dim, model_config.latent_dim,
                             model_config.hidden_dim),
                     epitome_shape(model_config))
