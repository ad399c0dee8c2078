"""The paper's measurements (docs/maths.md): bounds, importance-weighted
log-likelihood, active units, per-unit KL, epitome usage and Parzen windows;
and beyond the paper the mutual information I_q(x; z) (He et al., 2019).

Functions take a trained model as (params, model) and float inputs (n, N)
and are batched so that memory stays bounded for any dataset size. The
mutual information (`evae_jax.metrics.information`) and the Parzen
windows (`evae_jax.metrics.parzen`) have modules of their own, their
functions served from here too.
"""

import functools
from typing import Dict, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from evae_jax import elbo
from evae_jax import epitomes
from evae_jax import data as input_pipeline
from evae_jax import likelihoods
from evae_jax import models
from evae_jax.metrics import batching
from evae_jax.metrics import progress as progress_lib
from evae_jax.metrics.information import epitome_mutual_information
from evae_jax.metrics.information import mutual_information
from evae_jax.metrics.parzen import parzen_log_density
from evae_jax.metrics.parzen import select_parzen_sigma

__all__ = ['ACTIVE_THRESHOLDS', 'EVAL_BINARIZATION_SEED_OFFSET', 'Encodings',
           'active_unit_counts', 'active_units', 'dataset_bounds',
           'encode_dataset', 'epitome_mutual_information', 'epitome_usage',
           'eval_inputs', 'iw_estimates', 'mean_bounds', 'mutual_information',
           'parzen_log_density', 'per_unit_kl', 'select_parzen_sigma']

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
  batches, n = batching.pad_batches(x, batch_size)
  return batching.unbatch(_encode_batches(params, model, batches, rng), n)


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
  batches, n = batching.pad_batches(x, batch_size)
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
