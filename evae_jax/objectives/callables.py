"""The objectives for a user's own networks: encode and decode_log_prob as
plain callables (no Flax), through the same registry as the models.

    encode(x) -> (mu, logvar)           each (B, D)
    decode_log_prob(z, x) -> log p(x|z)  shape (B,), z already masked, (B, D)
"""

from typing import Optional, Tuple

import jax
import jax.numpy as jnp

from evae_jax import elbo
from evae_jax.objectives import latents as latents_lib
from evae_jax.objectives import registry

def epitome_loss(encode: elbo.Encode, decode_log_prob: elbo.DecodeLogProb,
                 x: jax.Array,
                 masks: jax.Array, rng: jax.Array, *,
                 objective: str = 'point', **options
                 ) -> Tuple[jax.Array, registry.LossAux]:
  """The training loss of the eVAE / VAE for any registered objective.

  `evae_jax.objectives.loss` for `SharedLatents` (encode, decode_log_prob,
  masks): by default the paper's eq. 7 loss (`point_loss`), with y* chosen on
  draw A and scored on the independent draw B.

  Args:
    encode: x -> (mu, logvar), each (B, D).
    decode_log_prob: (z, x) -> (B,) log p(x | z).
    x: (B, ...) batch.
    masks: (E, D) epitome masks.
    rng: PRNG key.
    objective: a name of `evae_jax.objectives.REGISTRY` ('point',
      'logsumexp', 'iwae', 'iwae_marginal', ...).
    **options: fields of `evae_jax.objectives.LossOptions` (kl_weight,
      z_dropout_rate, assignments, num_samples, free_bits, free_bits_group).

  Returns:
    (loss, aux): scalar loss and a `evae_jax.objectives.LossAux` of (B,)
    diagnostics, without gradients (``aux.bound`` or ``aux['bound']``).
    Every objective gives ``bound``, ``elbo`` and ``assignments`` (y*).
    'point' and 'logsumexp' add ``log_lik`` and ``kl`` of y*, 'logsumexp'
    adds ``logsumexp_bound``, and with free bits both add ``free_bits_kl``
    (`point_loss`, `logsumexp_loss`). 'iwae' and 'iwae_marginal' give those
    three only, with ``bound`` the IWAE bound L_k and ``elbo`` the mean over
    the k samples of log w of y* (without log E); 'iwae' with num_samples=1
    is 'point' and gives its aux (`iwae_point_loss`, `iwae_marginal_loss`).

  Raises:
    evae_jax.errors.ObjectiveError: an unknown objective or options it
      does not take.
  """
  return registry.loss(latents_lib.SharedLatents(encode, decode_log_prob,
                                       jnp.asarray(masks)),
                         x, rng, objective=objective, **options)


def iwae_loss(encode: elbo.Encode, decode_log_prob: elbo.DecodeLogProb,
              x: jax.Array,
              masks: jax.Array, rng: jax.Array, *, num_samples: int,
              marginal: bool = False,
              assignments: Optional[jax.Array] = None
              ) -> Tuple[jax.Array, registry.LossAux]:
  """`epitome_loss` with objective 'iwae' (``marginal=False``, see
  `iwae_point_loss`) or 'iwae_marginal' (`iwae_marginal_loss`).

  Args:
    encode, decode_log_prob, x, masks, rng: as in `epitome_loss`.
    num_samples: k >= 1.
    marginal: the marginal bound instead of the point one.
    assignments: optional (B,) fixed epitomes (Algorithm 1), point only.

  Returns:
    (loss, aux) of the objective.
  """
  return epitome_loss(encode, decode_log_prob, x, masks, rng,
                      objective='iwae_marginal' if marginal else 'iwae',
                      num_samples=num_samples, assignments=assignments)
