"""The paper's objective and its tighter sibling: 'point' (eq. 7, y* chosen
on one noise draw and scored on an independent one) and 'logsumexp'
(q(y|x) = softmax of the selection draw).
"""

from typing import Tuple

import jax
import jax.numpy as jnp

from evae_jax import elbo
from evae_jax import epitomes
from evae_jax.objectives import free_bits as free_bits_lib
from evae_jax.objectives import latents as latents_lib
from evae_jax.objectives import registry

# pylint: disable=protected-access  (the bound's helpers, one package apart)

def _aux(chosen_ll, chosen_kl, assignments, log_e, lse_bound=None,
         training_kl=None):
  """Diagnostics, all scored on the draw B that is independent of y*."""
  elbo = chosen_ll - chosen_kl
  return jax.lax.stop_gradient(registry.LossAux(
      bound=elbo - log_e, elbo=elbo, assignments=assignments,
      log_lik=chosen_ll, kl=chosen_kl, logsumexp_bound=lse_bound,
      free_bits_kl=training_kl))


def _scoring_draw(latents, enc, x, rng, z_dropout_rate):
  """eps and the dropout multipliers of the scoring draw B."""
  eps_rng, drop_rng = jax.random.split(rng)
  shape, dtype = latents.noise_shape(enc, x)
  return (jax.random.normal(eps_rng, shape, dtype),
          elbo._z_scale(drop_rng, shape, dtype, z_dropout_rate))


@registry.register('point', summary='eq. 7: y* = argmax_y of draw A, '
                     'scored on draw B (the paper)')
def point_loss(latents: latents_lib.Latents, x: jax.Array, rng: jax.Array,
               options: registry.LossOptions
               ) -> Tuple[jax.Array, registry.LossAux]:
  """The paper's loss: the negative bound of eq. 7, averaged over the batch.

  With W_y = log p(x | y, z_y) - lambda KL_y (lambda multiplies the z-KL
  only, paper §3.1), y* = argmax_y W_y(A) on the selection draw A, for all
  epitomes at once without gradients (or y* fixed by ``assignments``); then
  only the chosen epitome is scored, with gradients, on the independent
  draw B:

      loss(x) = -W_{y*}(B) + log E.

  Since y* does not depend on B this is an unbiased estimate of a valid
  negative bound; the log E term is KL(delta(y*) || uniform p(y)). A model
  with one epitome needs no selection pass. With free bits, KL_{y*} in the
  loss is `free_bits_kl` over the units of y* (selection is unchanged).

  Args:
    latents: the model (`Latents`: `SharedLatents`, `MixtureLatents`).
    x: (B, ...) batch.
    rng: PRNG key.
    options: `evae_jax.objectives.LossOptions`.

  Returns:
    (loss, aux): the scalar loss, and a `registry.LossAux` of (B,)
    diagnostics on draw B: ``elbo`` (the true, unweighted ELBO of y*),
    ``log_lik``, ``kl`` (true KL), ``assignments``, ``bound`` (eq. 7, with
    log E) and, with free bits, ``free_bits_kl``.
  """
  masks = latents.masks
  enc = latents.encoding(x)
  eps, z_scale = _scoring_draw(latents, enc, x, rng, options.z_dropout_rate)
  log_e = epitomes.log_num_epitomes(masks)
  kl_weight, assignments = options.kl_weight, options.assignments
  if masks.shape[0] == 1:
    assignments = jnp.zeros(x.shape[:1], jnp.int32)
  elif assignments is None:
    sel_ll, sel_kl = latents.selection_terms(enc, x, rng,
                                             options.z_dropout_rate)
    assignments = elbo.assign_epitomes(sel_ll - kl_weight * sel_kl)
  chosen_ll, chosen_kl = latents.terms(enc, x, eps, z_scale, assignments)
  train_kl = free_bits_lib.training_kl(latents, enc, chosen_kl,
                                       masks[assignments],
                          options)
  per_example = -(chosen_ll - kl_weight * train_kl) + log_e
  return jnp.mean(per_example), _aux(
      chosen_ll, chosen_kl, assignments, log_e,
      training_kl=train_kl if options.free_bits else None)


@registry.register('logsumexp', summary='q_A(y|x) = softmax_y of draw A, '
                     'scored on draw B (beyond the paper)')
def logsumexp_loss(latents: latents_lib.Latents, x: jax.Array, rng: jax.Array,
                   options: registry.LossOptions
               ) -> Tuple[jax.Array, registry.LossAux]:
  """The tighter bound of `logsumexp_bound`, negated and averaged.

  With q_A(y|x) = softmax_y W_y(A) (no gradient) and W_y as in `point_loss`,

      loss(x) = -(sum_y q_A(y) [W_y(B) - log q_A(y)] - log E),

  which backpropagates through all E epitomes. Fixed ``assignments`` are not
  used: q_A is recomputed every step. With free bits, sum_y q_A(y) KL_y
  becomes `free_bits_kl` with usage sum_y q_A(y) M[y].

  Args:
    latents, x, rng, options: as in `point_loss`.

  Returns:
    (loss, aux) as in `point_loss`, with (B,) ``logsumexp_bound`` (the true
    bound on draw B); ``assignments`` is argmax_y q_A(y).
  """
  masks = latents.masks
  enc = latents.encoding(x)
  eps, z_scale = _scoring_draw(latents, enc, x, rng, options.z_dropout_rate)
  log_e = epitomes.log_num_epitomes(masks)
  kl_weight = options.kl_weight
  log_lik, kl = latents.terms(enc, x, eps, z_scale)
  if masks.shape[0] > 1:
    sel_ll, sel_kl = latents.selection_terms(enc, x, rng,
                                             options.z_dropout_rate)
  else:  # E = 1: q is a point mass, the bound is the ELBO.
    sel_ll, sel_kl = jnp.zeros_like(log_lik), jnp.zeros_like(kl)
  sel_weighted = sel_ll - kl_weight * sel_kl
  assignments = elbo.assign_epitomes(sel_weighted)
  train_kl = None
  if options.free_bits:
    usage = jax.nn.softmax(sel_weighted, axis=-1) @ masks
    train_kl = free_bits_lib.training_kl(latents, enc, None, usage, options)
    per_example = (-elbo.logsumexp_bound(sel_weighted, log_lik)
                   + kl_weight * train_kl)
  else:
    per_example = -elbo.logsumexp_bound(sel_weighted, log_lik - kl_weight * kl)
  lse = elbo.logsumexp_bound(sel_ll - sel_kl, log_lik - kl)
  return jnp.mean(per_example), _aux(elbo._pick(log_lik, assignments),
                                     elbo._pick(kl, assignments), assignments,
                                     log_e, lse, train_kl)
