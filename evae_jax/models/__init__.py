"""The model kinds built from the networks of `evae_jax.models.networks`
(Flax MLP encoder and decoder, paper §5) or `evae_jax.models.conv`
(convolutional, for colour images; ``model.network``), and the factory
`make_model`.

`SharedModel` (`models.shared`) is the eVAE; a plain VAE is the same class
with one epitome covering all D units (D = K = s), so there is no separate
code path that can drift. `MixtureModel` (`models.mixture`) is the paper's
mVAE ablation. Both expose the methods of `Model`, which the training loop
and the evaluation call; `models.sizing` gives the latent layout and the
parameter counts from a config. The model kinds see only the network's
encode / log_prob / mean on flat (B, N) images, so every kind runs on every
network.
"""

from typing import Any, Protocol, Tuple

import jax
import ml_collections

from evae_jax import epitomes
from evae_jax import objectives
from evae_jax.models.conv import (  # noqa: F401 (the public API)
    ConvVAENetwork,
    KERNEL_SIZES,
)
from evae_jax.models.mixture import MixtureModel
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
from evae_jax.models.shared import SharedModel
from evae_jax.models.sizing import (  # noqa: F401 (the public API)
    MODEL_KINDS,
    NETWORKS,
    ImageShape,
    epitome_shape,
    mixture_hidden_dim,
    module_param_count,
    network,
    network_param_count,
    param_count,
)


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
    """N, pixel values per example (H * W * C)."""

  @property
  def image_shape(self) -> Tuple[int, ...]:
    """The shape the network was built for: (H, W, C) for 'conv', (N,) for
    'mlp' (which sees flat images only)."""

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
           objective: str = 'point', **options
           ) -> Tuple[jax.Array, objectives.LossAux]:
    """The training loss of a registered objective.

    Args:
      params: the parameters.
      x: (B, N) batch.
      rng: PRNG key.
      objective: a registered objective name.
      **options: fields of `evae_jax.objectives.LossOptions` (kl_weight,
        assignments, ...), as `evae_jax.train.steps.train_step` passes them.

    Returns:
      (loss, aux): the scalar loss and a `evae_jax.objectives.LossAux` of
        (B,) diagnostics.
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
                     image_shape: ImageShape) -> 'Model':
  """The model of ``config`` computed in `evaluation_dtype`: the same
  parameters apply (they are float32 in every dtype).

  Args:
    config: the full config.
    image_shape: N, (H, W) or (H, W, C) (see `make_model`).

  Returns:
    `make_model` of ``config.model`` with its dtype replaced.
  """
  model_config = ml_collections.ConfigDict(config.model.to_dict())
  model_config.dtype = evaluation_dtype(config)
  return make_model(model_config, image_shape)


def make_model(model_config: ml_collections.ConfigDict,
               image_shape: ImageShape) -> Model:
  """The model of ``config.model`` for images of ``image_shape``.

  Args:
    model_config: the ``model`` section.
    image_shape: (H, W) or (H, W, C), or N alone (pixel values per example)
      for ``model.network='mlp'``, which sees flat images only.

  Returns:
    A `MixtureModel` for kind 'mvae' (H' from ``mvae_hidden_dim`` or
    `mixture_hidden_dim`), else a `SharedModel`, of the network `network`
    builds.
  """
  if model_config.kind == 'mvae':
    hidden = model_config.mvae_hidden_dim or mixture_hidden_dim(model_config,
                                                                image_shape)
    d, k, s = epitome_shape(model_config)
    return MixtureModel(network(model_config, image_shape, k, hidden),
                        epitomes.num_epitomes(d, k, s))
  return SharedModel(network(model_config, image_shape,
                             model_config.latent_dim, model_config.hidden_dim),
                     epitome_shape(model_config))
