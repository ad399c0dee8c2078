"""The networks: Flax MLP encoder and decoder (paper §5: fully connected,
ReLU or Burda et al.'s tanh), their Dense layers in float32 or bfloat16,
and the helpers that bind, initialise and count their parameters.

The model kinds (`evae_jax.models.SharedModel`, `MixtureModel`) are built
from one `VAENetwork` (or E stacked ones); nothing here knows of epitomes.
"""

import functools
from typing import Any, Callable, Tuple, Union

import flax.linen as nn
import jax
import jax.numpy as jnp

from evae_jax import likelihoods

LIKELIHOODS = ('bernoulli', 'gaussian')
OUTPUT_BIAS_INITS = ('zeros', 'train_mean')


ACTIVATIONS = {'relu': nn.relu, 'tanh': jnp.tanh}
KERNEL_INITS = {'lecun_normal': nn.initializers.lecun_normal(),
                'glorot_uniform': nn.initializers.glorot_uniform()}


# model.dtype -> the dtype the Dense layers' matmul inputs are cast to.
DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def dense(features: int, kernel_init: str, dtype: str = 'float32'
          ) -> nn.Dense:
  """A Dense layer of the networks, computed in ``dtype``.

  'float32' is the plain Flax layer. 'bfloat16' casts the inputs, kernel
  and bias to bfloat16 for the matmul and accumulates it in float32
  (``preferred_element_type``), so the output, every activation and
  everything after it (log-densities, KL, the choice of y*) stay float32;
  parameters are stored in float32 either way.

  Args:
    features: output units.
    kernel_init: a key of `KERNEL_INITS`.
    dtype: a key of `DTYPES`.

  Returns:
    The (unbound) Flax module.
  """
  if dtype == 'float32':
    return nn.Dense(features, kernel_init=KERNEL_INITS[kernel_init])
  return nn.Dense(features, kernel_init=KERNEL_INITS[kernel_init],
                  dtype=DTYPES[dtype], param_dtype=jnp.float32,
                  dot_general=functools.partial(
                      jax.lax.dot_general,
                      preferred_element_type=jnp.float32))


class MLP(nn.Module):
  """num_layers Dense layers of hidden_dim units, each followed by the
  activation ('relu', the paper; 'tanh', Burda et al.).

  Maps (B, n) inputs to (B, hidden_dim) (to the (B, n) input unchanged when
  num_layers is 0).

  Attributes:
    hidden_dim: H, units per layer.
    num_layers: L, the number of layers (0: the identity).
    activation: a key of `ACTIVATIONS`.
    kernel_init: a key of `KERNEL_INITS`.
    dtype: a key of `DTYPES`: the matmuls' input dtype (see `dense`).
  """
  hidden_dim: int
  num_layers: int
  activation: str = 'relu'
  kernel_init: str = 'lecun_normal'
  dtype: str = 'float32'

  @nn.compact
  def __call__(self, x):
    for _ in range(self.num_layers):
      x = ACTIVATIONS[self.activation](dense(
          self.hidden_dim, self.kernel_init, self.dtype)(x))
    return x


class VAENetwork(nn.Module):
  """The Flax network of one VAE: encoder h(x) -> (mu, logvar) and decoder
  f(z) -> p(x | z). The eVAE and the VAE use one (`SharedModel`); the mVAE
  one per component (`MixtureModel`).

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
    activation: a key of `ACTIVATIONS`, after every hidden layer.
    kernel_init: a key of `KERNEL_INITS`, for every Dense layer.
    dtype: a key of `DTYPES`, for every Dense layer (see `dense`).
  """
  latent_dim: int
  output_dim: int
  hidden_dim: int = 500
  num_layers: int = 2
  likelihood: str = 'bernoulli'
  min_logvar: float = -7.0
  max_logvar: float = 2.0
  activation: str = 'relu'
  kernel_init: str = 'lecun_normal'
  dtype: str = 'float32'

  def setup(self):
    layer = lambda n: dense(n, self.kernel_init, self.dtype)
    self.encoder = MLP(self.hidden_dim, self.num_layers, self.activation,
                       self.kernel_init, self.dtype)
    self.mu_head = layer(self.latent_dim)
    self.logvar_head = layer(self.latent_dim)
    self.decoder = MLP(self.hidden_dim, self.num_layers, self.activation,
                       self.kernel_init, self.dtype)
    self.out_head = layer(self.output_dim)
    if self.likelihood == 'gaussian':
      self.out_logvar_head = layer(self.output_dim)

  def encode(self, x: jax.Array) -> Tuple[jax.Array, jax.Array]:
    """The encoder h(x): the Gaussian posterior q(z | x) of all D units.

    Args:
      x: (B, N) flattened images.

    Returns:
      (mu, logvar), each (B, D).
    """
    h = self.encoder(x)
    return self.mu_head(h), self.logvar_head(h)

  def decode(self, z: jax.Array
             ) -> Union[jax.Array, Tuple[jax.Array, jax.Array]]:
    """The decoder f(z): the parameters of p(x | z).

    Args:
      z: (B, D) latent codes (units outside an epitome already zeroed).

    Returns:
      (B, N) Bernoulli logits, or for 'gaussian' (mean, logvar), each
      (B, N): mean in [0, 1], logvar in (min_logvar, max_logvar).
    """
    h = self.decoder(z)
    if self.likelihood == 'bernoulli':
      return self.out_head(h)
    mean = nn.sigmoid(self.out_head(h))
    span = self.max_logvar - self.min_logvar
    logvar = self.min_logvar + span * nn.sigmoid(self.out_logvar_head(h))
    return mean, logvar

  def log_prob(self, z: jax.Array, x: jax.Array) -> jax.Array:
    """log p(x | z), summed over pixels.

    Args:
      z: (B, D) latent codes.
      x: (B, N) flattened images.

    Returns:
      (B,) log p(x | z) in nats.
    """
    out = self.decode(z)
    if self.likelihood == 'bernoulli':
      return likelihoods.bernoulli_log_prob(out, x)
    return likelihoods.gaussian_log_prob(out[0], out[1], x)

  def mean(self, z: jax.Array) -> jax.Array:
    """The decoder mean E[x | z].

    Args:
      z: (B, D) latent codes.

    Returns:
      (B, N) means in [0, 1].
    """
    out = self.decode(z)
    return nn.sigmoid(out) if self.likelihood == 'bernoulli' else out[0]

  def __call__(self, x: jax.Array) -> jax.Array:
    mu, _ = self.encode(x)
    return self.log_prob(mu, x)


def _module(model_config, output_dim, latent_dim, hidden_dim) -> VAENetwork:
  return VAENetwork(latent_dim=latent_dim, output_dim=output_dim,
              hidden_dim=hidden_dim, num_layers=model_config.num_layers,
              likelihood=model_config.likelihood,
              min_logvar=model_config.min_logvar,
              max_logvar=model_config.max_logvar,
              activation=model_config.activation,
              kernel_init=model_config.kernel_init,
              dtype=model_config.get('dtype', 'float32'))


def bind(apply_fn: Callable, params: Any) -> Tuple[Callable, Callable]:
  """The (encode, decode_log_prob) callables that `evae_jax.elbo` expects.

  Args:
    apply_fn: ``module.apply`` of a `VAENetwork`.
    params: its parameters.

  Returns:
    (encode, decode_log_prob): x (B, N) -> (mu, logvar), each (B, D); and
    (z (B, D), x (B, N)) -> (B,) log p(x | z).
  """
  def encode(x):
    return apply_fn({'params': params}, x, method=VAENetwork.encode)

  def decode_log_prob(z, x):
    return apply_fn({'params': params}, z, x, method=VAENetwork.log_prob)
  return encode, decode_log_prob


def init_params(module: VAENetwork, rng: jax.Array) -> Any:
  """Initial parameters for a module with ``module.output_dim`` inputs.

  Args:
    module: the network.
    rng: PRNG key.

  Returns:
    The module's parameter tree (the 'params' collection).
  """
  return module.init(
      rng, jnp.zeros((1, module.output_dim), jnp.float32))['params']


def init_output_bias(params: Any, pixel_mean: Any) -> Any:
  """Sets the decoder's output bias to logit(clip(pixel_mean, 1e-3, 1 - 1e-3)).

  Burda et al.'s initialisation (yburda/iwae): a decoder that ignores z then
  already predicts each pixel's training-set mean. Works for the eVAE/VAE
  parameters and for the mVAE's stacked ones (every component).

  A convolutional head (`models.conv.PixelHead`) has one bias per channel:
  it gets the logit of the channel's mean over the pixels.

  Args:
    params: parameters with ``out_head/bias`` of shape (..., N), or (..., C)
      for a convolutional head.
    pixel_mean: (N,) mean of the training pixels in [0, 1], channel-last.

  Returns:
    ``params`` with ``out_head/bias`` replaced (the same shape).
  """
  p = jnp.asarray(pixel_mean, jnp.float32).reshape(-1)
  bias = params['out_head']['bias']
  if p.size != bias.shape[-1]:
    p = p.reshape(-1, bias.shape[-1]).mean(0)
  p = jnp.clip(p, 1e-3, 1 - 1e-3)
  logit = jnp.broadcast_to(jnp.log(p) - jnp.log1p(-p), bias.shape)
  return {**params, 'out_head': {**params['out_head'], 'bias': logit}}


def count_params(params: Any) -> int:
  """Total number of scalars in a parameter tree.

  Args:
    params: a parameter tree.

  Returns:
    The sum of the sizes of its leaves.
  """
  return sum(int(p.size) for p in jax.tree_util.tree_leaves(params))


def native_bfloat16() -> bool:
  """Whether this machine computes bfloat16 matmuls natively.

  True off the CPU (GPUs and TPUs do), and on a CPU whose flags name
  ``avx512_bf16`` or ``amx_bf16``; True too where the flags cannot be read
  (not Linux), since there is nothing to tell.

  Returns:
    Whether `dense` in bfloat16 can be expected to beat float32 here.
  """
  if jax.default_backend() != 'cpu':
    return True
  try:
    with open('/proc/cpuinfo') as f:
      flags = f.read()
  except OSError:
    return True
  return any(f in flags for f in ('avx512_bf16', 'amx_bf16'))
