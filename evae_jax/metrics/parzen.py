"""The Parzen-window log-density of test images under a model's samples
(the paper's Tables 1 and 4, docs/maths.md), and the choice of its width on
validation images."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from evae_jax.metrics import batching


@functools.partial(jax.jit, static_argnums=(4,))
def _parzen_batch(x, samples, is_real, sigma, chunk):
  sample_chunks = samples.reshape((-1, chunk) + samples.shape[1:])
  real_chunks = is_real.reshape(-1, chunk)
  x_sq = jnp.sum(jnp.square(x), -1)

  def body(carry, inputs):
    s, real = inputs
    sq = x_sq[:, None] + jnp.sum(jnp.square(s), -1)[None, :] - 2.0 * x @ s.T
    log_kernel = jnp.where(real[None, :],
                           -jnp.maximum(sq, 0.0) / (2.0 * sigma ** 2), -jnp.inf)
    return jnp.logaddexp(carry, jax.nn.logsumexp(log_kernel, axis=-1)), None
  init = jnp.full(x.shape[:1], -jnp.inf, x.dtype)
  total, _ = jax.lax.scan(body, init, (sample_chunks, real_chunks))
  return (total - jnp.log(jnp.sum(is_real))
          - 0.5 * x.shape[-1] * jnp.log(2.0 * math.pi * sigma ** 2))


def parzen_log_density(x: jax.Array, samples: jax.Array, sigma: float,
                       batch_size: int = 100, chunk: int = 1000) -> np.ndarray:
  """Gaussian-kernel (Parzen window) log-density of x under the samples.

      log p(x) = logsumexp_i [-||x - s_i||^2 / (2 sigma^2)] - log m
                 - N/2 log(2 pi sigma^2)

  Args:
    x: (n, N) points to score.
    samples: (m, N) generated samples (the kernel centres).
    sigma: kernel width.
    batch_size: points scored at once.
    chunk: kernel centres processed at once.

  Returns:
    (n,) log-densities in nats.
  """
  m = samples.shape[0]
  chunk = min(chunk, m)
  pad = (-m) % chunk
  samples = jnp.concatenate([samples, jnp.zeros((pad, samples.shape[1]),
                                                samples.dtype)])
  is_real = jnp.arange(m + pad) < m
  batches, n = batching.pad_batches(x, batch_size)
  out = [np.asarray(_parzen_batch(b, samples, is_real, jnp.float32(sigma),
                                  chunk)) for b in batches]
  return np.concatenate(out)[:n]


def select_parzen_sigma(valid: jax.Array, samples: jax.Array,
                        sigmas) -> tuple[float, np.ndarray]:
  """The sigma of the grid with the highest mean validation log-density
  (`parzen_log_density`).

  Args:
    valid: (n, N) validation points.
    samples: (m, N) generated samples (the kernel centres).
    sigmas: the candidate kernel widths (the paper: logspace(-1, 0, 10)).

  Returns:
    (best sigma, mean validation log-density for every sigma).
  """
  scores = np.array([np.mean(parzen_log_density(valid, samples, s))
                     for s in sigmas])
  return float(sigmas[int(np.argmax(scores))]), scores
