"""The paper's measurements (docs/maths.md): bounds, importance-weighted
log-likelihood, active units, per-unit KL, epitome usage and Parzen windows;
and beyond the paper the mutual information I_q(x; z) (He et al., 2019).

Functions take a trained model as (params, model) and float inputs (n, N)
and are batched so that memory stays bounded for any dataset size.
"""

import functools
import math
from typing import Any, Dict, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from evae_jax import elbo
from evae_jax import epitomes
from evae_jax import data as input_pipeline
from evae_jax import likelihoods
from evae_jax import models
from evae_jax.metrics import progress as progress_lib

EVAL_BINARIZATION_SEED_OFFSET = 1000
# A_u thresholds of an active unit: the paper's (§3) and Burda et al.'s.
ACTIVE_THRESHOLDS = (0.02, 0.01)


def eval_inputs(images: np.ndarray, data_config) -> jax.Array:
  """uint8 (n, H, W[, C]) -> float32 (n, N) evaluation inputs on the device.

  With dynamic binarisation, evaluation uses one fixed stochastic
  binarisation (seeded from ``data.split_seed``) so that figures are
  reproducible and comparable across models.

  Args:
    images: uint8 (n, H, W) or (n, H, W, C) in [0, 255].
    data_config: the config's ``data`` section (``binarization``,
      ``split_seed``).

  Returns:
    (n, N) float32, N = H * W (* C): x / 255, or its fixed binarisation
    for ``binarization == 'dynamic'``.
  """
  images = np.asarray(images).reshape(len(images), -1)  # the same draws
  if data_config.binarization == 'dynamic':
    images = input_pipeline.binarize_once(
        images, data_config.split_seed + EVAL_BINARIZATION_SEED_OFFSET)
  return input_pipeline.preprocess(jnp.asarray(images), None, 'none')


def _batches(x: jax.Array, batch_size: int):
  """(n, ...) -> (num_batches, batch_size, ...) zero-padded, and n."""
  n = x.shape[0]
  batch_size = min(batch_size, n)
  num_batches = -(-n // batch_size)
  pad = num_batches * batch_size - n
  x = jnp.concatenate([x, jnp.zeros((pad,) + x.shape[1:], x.dtype)])
  return x.reshape((num_batches, batch_size) + x.shape[1:]), n


def _unbatch(tree, n):
  return jax.tree_util.tree_map(
      lambda a: a.reshape((-1,) + a.shape[2:])[:n], tree)


class Encodings(NamedTuple):
  """Per-example quantities over a dataset, from two independent noise draws.

  Attributes:
    terms: `evae_jax.elbo.ElboTerms` of the scoring draw B, each (n, E).
    select: `evae_jax.elbo.ElboTerms` of the selection draw A, each (n, E):
      y* and q(y|x) come from these, so that scoring them on B is unbiased.
    mu: (n, D) posterior means.
    logvar: (n, D) posterior log-variances.
  """
  terms: elbo.ElboTerms
  select: elbo.ElboTerms
  mu: jax.Array
  logvar: jax.Array

  @property
  def assignments(self) -> jax.Array:
    """(n,) y* = argmax_y ELBO_y(x; A)."""
    return elbo.assign_epitomes(self.select.elbo)


@functools.partial(jax.jit, static_argnums=(1,))
def _encode_batches(params, model, batches, rng):
  def one(args):
    i, x = args
    key = jax.random.fold_in(rng, i)
    score, mu, logvar = model.elbo_terms(params, x, key)
    select, _, _ = model.elbo_terms(params, x, elbo.selection_key(key))
    return Encodings(score, select, mu, logvar)
  return jax.lax.map(one, (jnp.arange(batches.shape[0]), batches))


def encode_dataset(params, model: models.Model, x: jax.Array,
                   rng: jax.Array, batch_size: int = 100) -> Encodings:
  """ELBO terms for every epitome (two independent draws), and the encoding,
  of every example.

  Args:
    params: model parameters.
    model: the `evae_jax.models.Model`.
    x: (n, N) inputs.
    rng: key for the single-sample ELBO noise.
    batch_size: examples per batch.

  Returns:
    `Encodings` with leading axis n.
  """
  batches, n = _batches(x, batch_size)
  return _unbatch(_encode_batches(params, model, batches, rng), n)


def dataset_bounds(enc: Encodings) -> Dict[str, jax.Array]:
  """Per-example bounds of an `Encodings`, each (n,), in nats.

  'bound' is eq. 7 (ELBO_{y*}(B) - log E, y* from draw A), 'logsumexp_bound'
  the tighter bound with q_A(y|x) = softmax ELBO_y(A) scored on B, and
  'log_lik' / 'kl' the terms of the assigned epitome on B. All are unbiased
  estimates of valid lower bounds (`evae_jax.elbo.point_estimate_bound`).

      bound = ELBO_{y*}(x; B) - log E,   y* = argmax_y ELBO_y(x; A)
      logsumexp_bound = sum_y q_A(y) [ELBO_y(x; B) - log q_A(y)] - log E

  Args:
    enc: `Encodings` of n examples (`encode_dataset`).

  Returns:
    {'bound', 'logsumexp_bound', 'log_lik', 'kl'}: each (n,).
  """
  y = enc.assignments[:, None]
  pick = lambda a: jnp.take_along_axis(a, y, -1)[:, 0]
  return {'bound': elbo.point_estimate_bound(enc.select.elbo, enc.terms.elbo),
          'logsumexp_bound': elbo.logsumexp_bound(enc.select.elbo,
                                                  enc.terms.elbo),
          'log_lik': pick(enc.terms.log_lik), 'kl': pick(enc.terms.kl)}


@functools.partial(jax.jit, static_argnums=(1, 4))
def _mean_bounds(params, model, x, rng, batch_size):
  bounds = dataset_bounds(encode_dataset(params, model, x, rng, batch_size))
  return {k: jnp.mean(v) for k, v in bounds.items()}


def mean_bounds(params, model, x, rng, batch_size=100) -> Dict[str, float]:
  """Dataset means, in nats, of `dataset_bounds`: 'bound', 'logsumexp_bound',
  'log_lik' and 'kl'.

  One compiled program from the inputs to the four means, fetched at once
  (training's per-epoch validation calls it; op by op it cost a third of an
  epoch's time on a CPU).

  Args:
    params: model parameters.
    model: the `evae_jax.models.Model`.
    x: (n, N) inputs.
    rng: key for the single-sample ELBO noise.
    batch_size: examples per batch.

  Returns:
    dict of floats.
  """
  means = jax.device_get(_mean_bounds(params, model, x, rng, batch_size))
  return {k: float(v) for k, v in means.items()}


@functools.partial(jax.jit, static_argnums=(1, 4, 5))
def _iw_batch(params, model, x, rng, num_samples, chunk_size):
  return model.iw_per_epitome(params, x, rng, num_samples, chunk_size)


def iw_estimates(params, model, x, rng, num_samples: int,
                      chunk_size: int = 100, batch_size: int = 100,
                      assignments: Optional[jax.Array] = None,
                      progress: bool = False) -> Dict[str, np.ndarray]:
  """Importance-weighted log p(x) per example (paper Table 2; docs/maths.md).

  Args:
    params, model: the trained `evae_jax.models.Model`.
    x: (n, N) inputs.
    rng: key.
    num_samples: k (5000 in the paper).
    chunk_size: importance samples drawn at once.
    batch_size: examples per batch.
    assignments: (n,) y* per example for the y*-only estimate; by default the
      argmax of the per-epitome estimates.
    progress: show the progress over batches (`progress.progress_steps`: a
      bar on a terminal, a plain line every ~10 % elsewhere).

  Returns:
    dict of (n,) arrays: 'marginal' = log (1/E) sum_y p(x | y) (the headline
    figure), 'assigned' = log p(x | y*) - log E (a lower bound on it), and
    (n, E) 'per_epitome' = log p(x | y).
  """
  batches, n = _batches(x, batch_size)
  out = []
  for i in progress_lib.progress_steps(
      batches.shape[0], f'IW log-likelihood (k={num_samples})', progress):
    out.append(np.asarray(_iw_batch(params, model, batches[i],
                                    jax.random.fold_in(rng, i), num_samples,
                                    chunk_size)))
  per_epitome = np.concatenate(out)[:n]
  log_e = epitomes.log_num_epitomes(model.masks)
  if assignments is None:
    assignments = np.argmax(per_epitome, axis=-1)
  assigned = np.take_along_axis(per_epitome,
                                np.asarray(assignments)[:, None], -1)[:, 0]
  marginal = np.asarray(jax.nn.logsumexp(per_epitome, axis=-1)) - log_e
  return {'marginal': marginal, 'assigned': assigned - log_e,
          'per_epitome': per_epitome}


def active_units(mu: jax.Array, assignments: jax.Array, masks: jax.Array,
                 threshold: float = 0.02):
  """Unit activity A_u = Cov_x(E_q(u|x)[u]) (paper §3, Burda et al.).

  E_q[u] is mu_u(x) when u lies in epitome y*(x) and 0 otherwise (the unit
  sits at the prior).

  Args:
    mu: (n, D) posterior means.
    assignments: (n,) y* per example.
    masks: (E, D).
    threshold: a unit is active if A_u > threshold (0.02 in the paper).

  Returns:
    (activity (D,), number of active units).
  """
  posterior_mean = masks[assignments] * mu
  activity = jnp.var(posterior_mean, axis=0)
  return activity, int(jnp.sum(activity > threshold))


def active_unit_counts(activity: jax.Array,
                       thresholds=ACTIVE_THRESHOLDS) -> Dict[float, int]:
  """Number of units with A_u > t for each threshold t (the paper's 0.02
  and Burda et al.'s 0.01 by default).

  Args:
    activity: (D,) A_u from `active_units`.
    thresholds: the thresholds.

  Returns:
    {threshold: count}.
  """
  activity = np.asarray(activity)
  return {float(t): int(np.sum(activity > t)) for t in thresholds}


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


def per_unit_kl(mu: jax.Array, logvar: jax.Array, assignments: jax.Array,
                masks: jax.Array) -> jax.Array:
  """Mean over examples of KL(q(z_d | x, y*) || N(0, 1)) per unit (Fig. 1).

      KL_d = (1/n) sum_i M[y*_i, d] KL(N(mu_id, exp(logvar_id)) || N(0, 1))

  Units outside the assigned epitome contribute 0, as in the bound.

  Args:
    mu: (n, D) posterior means.
    logvar: (n, D) posterior log-variances.
    assignments: (n,) y* per example.
    masks: (E, D) epitome masks.

  Returns:
    (D,) mean KL per unit, nats.
  """
  kl = likelihoods.gaussian_kl_to_standard(mu, logvar)
  return jnp.mean(masks[assignments] * kl, axis=0)


def epitome_usage(assignments: jax.Array, num_epitomes: int) -> np.ndarray:
  """How many examples each epitome is assigned.

  Args:
    assignments: (n,) int y* per example, in [0, E).
    num_epitomes: E.

  Returns:
    (E,) int counts, summing to n.
  """
  return np.bincount(np.asarray(assignments), minlength=num_epitomes)


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
  batches, n = _batches(x, batch_size)
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
