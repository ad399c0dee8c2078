"""The convolutional network (``model.network='conv'``), for colour or
grey-scale images: strided convolutions down to a feature map, then the
MLP's Dense layers to the latent mean and log-variance; the decoder mirrors
it with transposed convolutions.

`ConvVAENetwork` is a `VAENetwork` with other torsos and output heads: its
encode / decode / log_prob / mean are the MLP's, so the model kinds (eVAE,
VAE, mVAE) and everything above them take it unchanged. Inputs and outputs
stay flat (B, N), N = H * W * C in channel-last order, as the data pipeline
stores every image; the network reshapes them to (B, H, W, C).
"""

import functools
from typing import Any, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from evae_jax.models.networks import ACTIVATIONS
from evae_jax.models.networks import DTYPES
from evae_jax.models.networks import KERNEL_INITS
from evae_jax.models.networks import MLP
from evae_jax.models.networks import VAENetwork
from evae_jax.models.networks import dense

KERNEL_SIZES = (3, 4)  # of every convolution; stride 2 (the last layer: 1)


def image_hwc(image_shape: Sequence[int]) -> Tuple[int, int, int]:
  """(H, W, C) of an image shape, C = 1 for grey-scale (H, W).

  Args:
    image_shape: (H, W) or (H, W, C).

  Returns:
    (H, W, C).

  Raises:
    ValueError: another number of axes.
  """
  shape = tuple(int(n) for n in image_shape)
  if len(shape) == 2:
    return shape + (1,)
  if len(shape) != 3:
    raise ValueError(f'model.network=conv needs images of shape (H, W) or '
                     f'(H, W, C), not {shape}.')
  return shape


def feature_shape(image_shape: Sequence[int], num_convs: int
                  ) -> Tuple[int, int]:
  """The encoder's spatial size after ``num_convs`` stride-2 'SAME'
  convolutions: ceil(H / 2^n), ceil(W / 2^n).

  Args:
    image_shape: (H, W) or (H, W, C).
    num_convs: the number of strided convolutions.

  Returns:
    (h, w) of the last feature map.
  """
  h, w, _ = image_hwc(image_shape)
  for _ in range(num_convs):
    h, w = -(-h // 2), -(-w // 2)
  return h, w


def _conv(features: int, kernel_size: int, stride: int, kernel_init: str,
          dtype: str, transpose: bool = False) -> nn.Module:
  """A 'SAME' convolution (or transposed one) of the networks, computed in
  ``dtype`` with float32 parameters (as `networks.dense`)."""
  layer = nn.ConvTranspose if transpose else nn.Conv
  return layer(features, (kernel_size, kernel_size), (stride, stride),
               padding='SAME', kernel_init=KERNEL_INITS[kernel_init],
               dtype=DTYPES[dtype], param_dtype=jnp.float32)


def _lead(x: jax.Array, trailing: int) -> Tuple[Tuple[int, ...], jax.Array]:
  """x's leading axes, and x with them folded into one."""
  lead = x.shape[:x.ndim - trailing]
  return lead, x.reshape((-1,) + x.shape[x.ndim - trailing:])


class ConvEncoder(nn.Module):
  """(..., N) flat images -> (..., hidden) features: one stride-2 'SAME'
  convolution per entry of ``channels``, each followed by the activation,
  flattened, then `MLP` (num_layers Dense layers of hidden_dim units).

  Attributes:
    image_shape: (H, W, C) of the images.
    channels: output channels of each convolution.
    kernel_size: k, each kernel k x k.
    hidden_dim, num_layers, activation, kernel_init, dtype: as in `MLP`.
  """
  image_shape: Tuple[int, int, int]
  channels: Tuple[int, ...]
  kernel_size: int
  hidden_dim: int
  num_layers: int
  activation: str = 'relu'
  kernel_init: str = 'lecun_normal'
  dtype: str = 'float32'

  @nn.compact
  def __call__(self, x):
    lead, x = _lead(x, 1)
    x = x.reshape((-1,) + tuple(self.image_shape))
    for c in self.channels:
      x = ACTIVATIONS[self.activation](_conv(
          c, self.kernel_size, 2, self.kernel_init, self.dtype)(x)
                                       .astype(jnp.float32))
    x = x.reshape(lead + (-1,))
    return MLP(self.hidden_dim, self.num_layers, self.activation,
               self.kernel_init, self.dtype)(x)


class ConvDecoder(nn.Module):
  """(..., D) codes -> (..., h 2^n, w 2^n, channels[0]) feature maps: `MLP`,
  a Dense layer to the encoder's last feature map (h, w, channels[-1]), and
  one stride-2 transposed convolution per entry of ``channels`` (reversed),
  each followed by the activation. The map may exceed (H, W) by up to
  2^n - 1 pixels; `PixelHead` crops it.

  Attributes:
    image_shape, channels, kernel_size, hidden_dim, num_layers, activation,
    kernel_init, dtype: as in `ConvEncoder`.
  """
  image_shape: Tuple[int, int, int]
  channels: Tuple[int, ...]
  kernel_size: int
  hidden_dim: int
  num_layers: int
  activation: str = 'relu'
  kernel_init: str = 'lecun_normal'
  dtype: str = 'float32'

  @nn.compact
  def __call__(self, z):
    act = ACTIVATIONS[self.activation]
    h = MLP(self.hidden_dim, self.num_layers, self.activation,
            self.kernel_init, self.dtype)(z)
    rows, cols = feature_shape(self.image_shape, len(self.channels))
    h = act(dense(rows * cols * self.channels[-1], self.kernel_init,
                  self.dtype)(h))
    lead, h = _lead(h, 1)
    h = h.reshape((-1, rows, cols, self.channels[-1]))
    for c in reversed(self.channels):
      h = act(_conv(c, self.kernel_size, 2, self.kernel_init, self.dtype,
                    transpose=True)(h).astype(jnp.float32))
    return h.reshape(lead + h.shape[1:])


class PixelHead(nn.Conv):
  """A stride-1 convolution to the C channels of the image, cropped to
  (H, W) and flattened: (..., h', w', F) -> (..., N), N = H * W * C.

  Its parameters are a plain convolution's (``kernel``, ``bias`` of shape
  (C,)), so `networks.init_output_bias` finds the bias.

  Attributes:
    image_shape: (H, W, C).
  """
  image_shape: Tuple[int, int, int] = (1, 1, 1)

  def __call__(self, x):
    lead, x = _lead(x, 3)
    height, width, _ = self.image_shape
    out = super().__call__(x).astype(jnp.float32)[:, :height, :width, :]
    return out.reshape(lead + (-1,))


class ConvVAENetwork(VAENetwork):
  """`VAENetwork` with `ConvEncoder`, `ConvDecoder` and `PixelHead` outputs
  (Bernoulli logits, or the Gaussian's mean and log-variance per channel
  value).

  Attributes:
    image_shape: (H, W, C), N = H * W * C = output_dim.
    channels: output channels of each strided convolution.
    kernel_size: k of every convolution (a key of `KERNEL_SIZES`).
    The others: as in `VAENetwork`.
  """
  image_shape: Tuple[int, int, int] = (1, 1, 1)
  channels: Tuple[int, ...] = (32, 64)
  kernel_size: int = 4

  def setup(self):
    torso = dict(image_shape=self.image_shape, channels=self.channels,
                 kernel_size=self.kernel_size, hidden_dim=self.hidden_dim,
                 num_layers=self.num_layers, activation=self.activation,
                 kernel_init=self.kernel_init, dtype=self.dtype)
    head = functools.partial(
        PixelHead, self.image_shape[-1], (self.kernel_size,) * 2,
        padding='SAME', kernel_init=KERNEL_INITS[self.kernel_init],
        dtype=DTYPES[self.dtype], param_dtype=jnp.float32,
        image_shape=self.image_shape)
    self.encoder = ConvEncoder(**torso)
    self.mu_head = dense(self.latent_dim, self.kernel_init, self.dtype)
    self.logvar_head = dense(self.latent_dim, self.kernel_init, self.dtype)
    self.decoder = ConvDecoder(**torso)
    self.out_head = head()
    if self.likelihood == 'gaussian':
      self.out_logvar_head = head()


def conv_module(model_config: Any, image_shape: Sequence[int],
                latent_dim: int, hidden_dim: int) -> ConvVAENetwork:
  """The `ConvVAENetwork` of ``config.model`` for images of ``image_shape``.

  Args:
    model_config: the ``model`` section (conv_channels, conv_kernel_size
      and the fields `VAENetwork` reads).
    image_shape: (H, W) or (H, W, C).
    latent_dim: D of this network (K for an mVAE component).
    hidden_dim: H of its Dense layers.

  Returns:
    The (unbound) network.
  """
  hwc = image_hwc(image_shape)
  return ConvVAENetwork(
      latent_dim=latent_dim, output_dim=hwc[0] * hwc[1] * hwc[2],
      hidden_dim=hidden_dim, num_layers=model_config.num_layers,
      likelihood=model_config.likelihood,
      min_logvar=model_config.min_logvar, max_logvar=model_config.max_logvar,
      activation=model_config.activation,
      kernel_init=model_config.kernel_init,
      dtype=model_config.get('dtype', 'float32'), image_shape=hwc,
      channels=tuple(int(c) for c in model_config.conv_channels),
      kernel_size=int(model_config.conv_kernel_size))
