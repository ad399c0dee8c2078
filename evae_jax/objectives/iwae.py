"""The importance-weighted objectives (Burda et al., 2015): 'iwae' (the
chosen epitome y*, k samples) and 'iwae_marginal' (log-mean over every
epitome's weights, the IWAE-eVAE of the paper's future work).
"""

import math
from typing import Tuple

import jax
import jax.numpy as jnp

from evae_jax import elbo
from evae_jax import epitomes
from evae_jax import errors
from evae_jax.objectives import latents as latents_lib
from evae_jax.objectives import point
from evae_jax.objectives import registry

# pylint: disable=protected-access  (the bound's helpers, one package apart)

def _iwae(latents, x, rng, options, marginal):
  """`iwae_point_loss` / `iwae_marginal_loss`."""
  num_samples = options.num_samples
  if num_samples < 1:
    raise errors.ObjectiveError(f'num_samples={num_samples} must be >= 1.')
  if num_samples == 1 and not marginal:
    return point.point_loss(latents, x, rng, options._replace(kl_weight=1.0))
  masks = latents.masks
  log_e, log_k = epitomes.log_num_epitomes(masks), math.log(num_samples)
  enc = latents.encoding(x)
  eps_rng, _ = jax.random.split(rng)
  shape, dtype = latents.noise_shape(enc, x)
  eps = jax.random.normal(eps_rng, (num_samples,) + shape, dtype)
  if marginal:
    lw = jax.vmap(lambda e: latents.log_weights(enc, x, e))(eps)  # (k, E, B)
    per_epitome = jax.nn.logsumexp(lw, axis=0) - log_k  # (E, B)
    bound = jax.nn.logsumexp(per_epitome, axis=0) - log_e
    y = elbo.assign_epitomes(per_epitome.T)
    chosen = jnp.take_along_axis(jnp.mean(lw, 0).T, y[:, None], -1)[:, 0]
  else:
    if masks.shape[0] == 1:
      y = jnp.zeros(x.shape[:1], jnp.int32)
    elif options.assignments is None:
      sel_ll, sel_kl = latents.selection_terms(enc, x, rng, 0.0)
      y = elbo.assign_epitomes(sel_ll - sel_kl)
    else:
      y = options.assignments
    lw = jax.vmap(lambda e: latents.log_weights(enc, x, e, y))(eps)  # (k, B)
    bound = jax.nn.logsumexp(lw, axis=0) - log_k - log_e
    chosen = jnp.mean(lw, 0)
  aux = jax.lax.stop_gradient(registry.LossAux(bound=bound, elbo=chosen,
                                                assignments=y))
  return -jnp.mean(bound), aux


@registry.register('iwae', model_kinds=('evae', 'vae'),
                     uses_num_samples=True, weights_kl=False,
                     summary='IWAE bound of y* with k samples (Burda et al.)')
def iwae_point_loss(latents: latents_lib.Latents, x: jax.Array, rng: jax.Array,
                    options: registry.LossOptions
                    ) -> Tuple[jax.Array, registry.LossAux]:
  """Importance-weighted bound of the chosen epitome (Burda et al., 2015;
  the eVAE paper's future work, §5.4), negated and averaged over the batch.

  With w_{y,i} the importance weight of sample i of epitome y
  (`log_importance_weight`) and k = ``options.num_samples`` samples eps_i ~
  N(0, I) drawn in one batched pass (k, B, D): y* = argmax_y ELBO_y(x; A)
  from the single-sample selection draw A of `point_loss` (independent of
  the eps_i, or fixed by ``assignments``), then

      L_k(x) = log (1/k) sum_i w_{y*,i} - log E,

  Burda et al.'s IWAE bound for a VAE (E = 1). Only the chosen epitome is
  evaluated with gradients: k decoder passes per example. k = 1 is
  `point_loss` itself (closed-form KL). A lower bound on log p(x) in
  expectation that increases with k.

  Args:
    latents: `SharedLatents`.
    x, rng: as in `point_loss`.
    options: num_samples = k >= 1 and optional assignments (Algorithm 1);
      no KL weight, z dropout or free bits.

  Returns:
    (loss, aux): scalar loss; aux, a `registry.LossAux`, holds (B,)
    ``bound`` (L_k, in nats, with log E), ``elbo`` (mean over i of log w of
    y*, the k = 1 bound's estimate without log E) and ``assignments`` (y*),
    and no ``log_lik`` or ``kl``. For k = 1, `point_loss`'s aux.

  Raises:
    evae_jax.errors.ObjectiveError: num_samples < 1.
  """
  return _iwae(latents, x, rng, options, marginal=False)


@registry.register('iwae_marginal', model_kinds=('evae', 'vae'),
                     uses_num_samples=True, weights_kl=False,
                     summary='IWAE bound of the marginal over epitomes')
def iwae_marginal_loss(latents: latents_lib.Latents, x: jax.Array,
                       rng: jax.Array,
                       options: registry.LossOptions
                       ) -> Tuple[jax.Array, registry.LossAux]:
  """Importance-weighted bound of the marginal over epitomes, negated and
  averaged over the batch:

      L_k(x) = log (1/E) sum_y (1/k) sum_i w_{y,i},

  with the k samples of `iwae_point_loss` shared by all epitomes. Tighter
  than the point bound on the same samples; backpropagates through every
  epitome (E * k decoder passes). Fixed ``assignments`` are not used.

  Args:
    latents, x, rng: as in `iwae_point_loss`.
    options: num_samples = k >= 1.

  Returns:
    (loss, aux): as in `iwae_point_loss` (for every k, k = 1 included),
    with ``assignments`` = argmax_y of the per-epitome estimates.

  Raises:
    evae_jax.errors.ObjectiveError: num_samples < 1.
  """

  return _iwae(latents, x, rng, options, marginal=True)
