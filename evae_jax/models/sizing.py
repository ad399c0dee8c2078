"""The shapes of a model from its config: the latent layout (D, K, s), the
network it builds (``model.network``), its parameter count (from
``jax.eval_shape`` of the real initialisation, so no formula can drift from
an architecture), and the mVAE's matched width."""

from typing import Sequence, Tuple, Union

import jax
import ml_collections
import numpy as np

from evae_jax import epitomes
from evae_jax.models.conv import conv_module
from evae_jax.models.networks import _module
from evae_jax.models.networks import count_params
from evae_jax.models.networks import init_params
from evae_jax.models.networks import VAENetwork


MODEL_KINDS = ('evae', 'vae', 'mvae')
NETWORKS = ('mlp', 'conv')  # model.network

# N, or the image shape (H, W) / (H, W, C): what a model is sized for.
ImageShape = Union[int, Sequence[int]]


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


def image_shape_of(image_shape: ImageShape) -> Tuple[int, ...]:
  """An `ImageShape` as a tuple: N alone is (N,)."""
  if isinstance(image_shape, (int, np.integer)):
    return (int(image_shape),)
  return tuple(int(n) for n in image_shape)


def network(model_config: ml_collections.ConfigDict, image_shape: ImageShape,
            latent_dim: int, hidden_dim: int) -> VAENetwork:
  """The network of ``config.model.network`` for images of ``image_shape``.

  Args:
    model_config: the ``model`` section.
    image_shape: N (flat images; 'mlp' only), (H, W) or (H, W, C).
    latent_dim: its latent units (D; K for an mVAE component).
    hidden_dim: H of its Dense layers.

  Returns:
    A `VAENetwork` ('mlp') or a `models.conv.ConvVAENetwork` ('conv').

  Raises:
    ValueError: 'conv' given a flat N instead of an image shape.
  """
  shape = image_shape_of(image_shape)
  if model_config.get('network', 'mlp') == 'conv':
    return conv_module(model_config, shape, latent_dim, hidden_dim)
  return _module(model_config, int(np.prod(shape)), latent_dim, hidden_dim)


def module_param_count(module: VAENetwork) -> int:
  """Parameters of a network, from ``jax.eval_shape`` of its initialisation
  (no arrays are allocated).

  Args:
    module: the network.

  Returns:
    `count_params` of the tree `init_params` would return.
  """
  return count_params(jax.eval_shape(lambda r: init_params(module, r),
                                     jax.random.PRNGKey(0)))


def network_param_count(model_config: ml_collections.ConfigDict,
                        image_shape: ImageShape, latent_dim: int,
                        hidden_dim: int) -> int:
  """Parameters of `network` (model_config, image_shape, latent_dim,
  hidden_dim).

  Args:
    model_config, image_shape, latent_dim, hidden_dim: as in `network`.

  Returns:
    The count.
  """
  return module_param_count(network(model_config, image_shape, latent_dim,
                                    hidden_dim))


def param_count(output_dim: int, latent_dim: int, hidden_dim: int,
                num_layers: int, likelihood: str) -> int:
  """Number of parameters of an MLP `VAENetwork` (`module_param_count`).

  Args:
    output_dim: N, pixels per example.
    latent_dim: D.
    hidden_dim: H.
    num_layers: L.
    likelihood: 'bernoulli' or 'gaussian' (a second output head).

  Returns:
    The count, equal to `count_params` of its initial parameters.
  """
  return module_param_count(VAENetwork(
      latent_dim=latent_dim, output_dim=output_dim, hidden_dim=hidden_dim,
      num_layers=num_layers, likelihood=likelihood))


def mixture_hidden_dim(model_config: ml_collections.ConfigDict,
                       image_shape: ImageShape) -> int:
  """H' per mVAE component whose E components together have the parameter
  count closest to the eVAE with the same (L, H, D, K) (paper §5.2); for
  'conv' the components keep the eVAE's convolutions and H' is the width
  of their Dense layers.

  A network's count is a polynomial of degree <= 2 in the width of its
  Dense layers (hidden-to-hidden layers are quadratic in it, the others
  linear or constant), so three counts fix it and a fourth checks it.

  Args:
    model_config: the ``model`` section, read as the eVAE's.
    image_shape: as in `network`.

  Returns:
    H', in [1, 4 H] (the smallest of equally close widths).
  """
  d, k, s = epitome_shape(model_config)
  e = epitomes.num_epitomes(d, k, s)
  count = lambda latent, h: network_param_count(model_config, image_shape,
                                                latent, h)
  target = count(model_config.latent_dim, model_config.hidden_dim)
  f1, f2, f3 = (count(k, h) for h in (1, 2, 3))
  a = (f3 - 2 * f2 + f1) // 2
  b = f2 - f1 - 3 * a
  c = f1 - a - b
  widest = 4 * model_config.hidden_dim
  if a * widest ** 2 + b * widest + c != count(k, widest):
    raise ValueError('The parameter count of model.network='
                     f'{model_config.get("network", "mlp")!r} is not a '
                     'quadratic in model.hidden_dim; set '
                     'model.mvae_hidden_dim by hand.')
  return min(range(1, widest + 1),
             key=lambda h: abs(e * (a * h * h + b * h + c) - target))
