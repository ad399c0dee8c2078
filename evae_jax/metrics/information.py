"""The mutual information I_q(x; z) under the aggregate posterior (He et
al., 2019's estimator, docs/maths.md), overall and per epitome: how much
the latent code says about the input, beyond the paper's active units."""

from typing import Any, Dict, Optional

import jax
import jax.numpy as jnp
import numpy as np

from evae_jax import likelihoods


def _log_mixture_density(z, mu, logvar, log_weights):
  """(n,) log sum_j w_j N(z_i; mu_j, exp(logvar_j)) (weights in log space,
  unnormalised), computed over chunks of the rows of z so that memory stays
  at ~2^24 floats (never the (n, n) matrix)."""
  n, d = mu.shape
  chunk = max(1, min(n, 2 ** 24 // max(1, n * d)))
  pad = (-z.shape[0]) % chunk
  zp = jnp.concatenate([z, jnp.zeros((pad, d), z.dtype)])

  def rows(zc):  # (chunk, D) -> (chunk,)
    log_density = jnp.sum(likelihoods.diag_normal_log_prob_elementwise(
        zc[:, None, :], mu[None], logvar[None]), axis=-1)
    return jax.nn.logsumexp(log_density + log_weights[None, :], axis=-1)
  return jax.lax.map(rows, zp.reshape(-1, chunk, d)).reshape(-1)[:z.shape[0]]


@jax.jit
def _mutual_information_batch(mu, logvar, eps, weights):
  """sum_i w_i [E_q(z|x_i) log q(z|x_i) - log q(z_i)] over one batch, with
  q(z) the mixture of the posteriors of weight 1 (w = 0 rows: padding)."""
  z = mu + jnp.exp(0.5 * logvar) * eps
  # E_q(z|x_i) log q(z|x_i) = -H(q(z|x_i)), in closed form.
  neg_entropy = -0.5 * jnp.sum(likelihoods.LOG_2PI + 1.0 + logvar, axis=-1)
  log_qz = (_log_mixture_density(z, mu, logvar, jnp.log(weights))
            - jnp.log(jnp.sum(weights)))
  return jnp.sum(jnp.where(weights > 0, neg_entropy - log_qz, 0.0))


def mutual_information(mu: jax.Array, logvar: jax.Array, rng: jax.Array, *,
                       dim_mask: Optional[jax.Array] = None,
                       example_weights: Optional[jax.Array] = None,
                       batch_size: int = 0) -> float:
  """I_q(x; z) under the aggregate posterior (Hoffman & Johnson, 2016), by
  He et al.'s (2019) estimator (calc_mi of jxhe/vae-lagging-encoder):

      I = E_x[E_q(z|x) log q(z|x)] - E_{x, z ~ q(z|x)}[log q(z)],
      q(z) ~= (1/n) sum_j q(z | x_j)   over the n posteriors of a batch,

  with E_q(z|x) log q(z|x) = -1/2 sum_d (log 2 pi + 1 + logvar_d) in closed
  form and one z_i ~ q(z | x_i) per example. q(z|x) = N(mu, exp(logvar)).
  The batch mixture makes the estimate at most log n (He et al. average
  over batches of their test set; ``batch_size=0`` uses every example as one
  batch, the closest to the true aggregate posterior). Cost O(n^2 D) per
  batch of n, in bounded memory.

  Args:
    mu, logvar: (n, D) posterior parameters.
    rng: key of the z draws (eps of shape (n, D), whatever the masks).
    dim_mask: optional (D,) 0/1: only the units of 1 count (the others are
      left out of every density); default all.
    example_weights: optional (n,) 0/1: only the examples of 1 enter the
      mixture q(z) and the average (e.g. one epitome's examples).
    batch_size: examples per mixture (consecutive batches of the n, before
      the weights select); 0 = all n.

  Returns:
    The estimate in nats (the mean over the selected examples); NaN when no
    example is selected.
  """
  mu, logvar = np.asarray(mu, np.float32), np.asarray(logvar, np.float32)
  n, d = mu.shape
  eps = np.asarray(jax.random.normal(rng, (n, d), jnp.float32))
  rows = (np.arange(n) if example_weights is None
          else np.flatnonzero(np.asarray(example_weights)))
  cols = (np.arange(d) if dim_mask is None
          else np.flatnonzero(np.asarray(dim_mask)))
  batch_size = batch_size or n
  total = 0.0
  for start in range(0, n, batch_size):
    members = rows[(rows >= start) & (rows < start + batch_size)]
    if not len(members):
      continue
    # Padded to a power of two with weight-0 rows: few shapes to compile.
    pad = (1 << (len(members) - 1).bit_length()) - len(members)
    take = lambda a: np.pad(a[members][:, cols], ((0, pad), (0, 0)))
    weights = np.pad(np.ones(len(members), np.float32), (0, pad))
    total += float(_mutual_information_batch(take(mu), take(logvar),
                                             take(eps), weights))
  return total / len(rows) if len(rows) else float('nan')


def epitome_mutual_information(mu: jax.Array, logvar: jax.Array,
                               assignments: jax.Array, masks: jax.Array,
                               rng: jax.Array,
                               batch_size: int = 0) -> Dict[str, Any]:
  """`mutual_information` of an eVAE (a VAE or the mVAE in its flat layout
  too), with every example's posterior under its assigned epitome y*(x):

      q(z | x) = q(z | x, y*) = N(M[y*] mu, exp(M[y*] logvar)),

  i.e. the units of y* at (mu, exp(logvar)) and the other units at the prior
  N(0, 1), as in eq. 6.

  - 'marginal': I_q(x; z) over all D units with q(z) the mixture of these
    posteriors over all examples (for a VAE, E = 1, He et al.'s number).
  - 'per_epitome': (E,) for each y, I_q(x; z_y | y* = y): the examples
    assigned to y only, the K units of y only (mixture over those
    examples); NaN for an epitome no example is assigned to.

  Args:
    mu, logvar: (n, D) posterior parameters (shared layout).
    assignments: (n,) y* per example.
    masks: (E, D) epitome masks.
    rng: key of the z draws (the same draws for every entry).
    batch_size: see `mutual_information`.

  Returns:
    {'marginal': float, 'per_epitome': list of E floats}.
  """
  masks, assignments = np.asarray(masks, np.float32), np.asarray(assignments)
  mu, logvar = np.asarray(mu, np.float32), np.asarray(logvar, np.float32)
  chosen = masks[assignments]
  marginal = mutual_information(chosen * mu, chosen * logvar, rng,
                                batch_size=batch_size)
  per_epitome = [
      mutual_information(mu, logvar, rng, dim_mask=masks[y],
                         example_weights=assignments == y,
                         batch_size=batch_size)
      for y in range(masks.shape[0])]
  return {'marginal': marginal, 'per_epitome': per_epitome}
