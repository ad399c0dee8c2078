"""Over-pruning remedies that change only what is optimised: free bits.

The bounds a run reports always use the true KL; these change the loss.
"""

import jax
import jax.numpy as jnp


def free_bits_kl(unit_kl: jax.Array, usage: jax.Array, free_bits: float,
                 group_size: int = 1) -> jax.Array:
  """The training KL with free bits (Kingma et al., 2016, openai/iaf kl_min).

  Units are taken ``group_size`` consecutive ones at a time (group g). With
  r_{b,d} in [0, 1] how much example b uses unit d (M[y*_b, d] for a point
  q(y|x); sum_y q(y|x_b) M[y, d] otherwise), u_{b,g} = max_{d in g} r_{b,d},
  KL_{b,g} = sum_{d in g} r_{b,d} KL_{b,d} and the minibatch average over
  the examples that use the group

      avg_g = sum_b KL_{b,g} / sum_b u_{b,g},

  each example's KL term becomes

      KL_FB(b) = sum_g u_{b,g} max(free_bits, avg_g).

  For a VAE (r = 1) this is Kingma et al.'s sum_g max(lambda, mean_b
  KL_{b,g}) per example; for the eVAE only the units of the chosen epitome
  carry KL, as in eq. 8. When every avg_g >= free_bits the batch mean of
  KL_FB equals the batch mean of the true KL; a group below free_bits gets
  no KL gradient. This changes the loss only: bounds use the true KL.

  Args:
    unit_kl: (B, D) KL(q(z_d | x_b) || N(0, 1)) per unit.
    usage: (B, D) r_{b,d}; no gradient flows through it.
    free_bits: lambda in nats per group.
    group_size: units per group; must divide D.

  Returns:
    (B,) free-bits KL of every example.

  Raises:
    ValueError: ``group_size`` does not divide D.
  """
  batch, units = unit_kl.shape
  if units % group_size:
    raise ValueError(f'free_bits_group={group_size} must divide the '
                     f'{units} latent units.')
  usage = jax.lax.stop_gradient(usage)
  group_kl = jnp.sum((usage * unit_kl).reshape(batch, -1, group_size), -1)
  group_use = jnp.max(usage.reshape(batch, -1, group_size), -1)
  average = jnp.sum(group_kl, 0) / jnp.maximum(jnp.sum(group_use, 0), 1e-12)
  return jnp.sum(group_use * jnp.maximum(free_bits, average), -1)


def training_kl(latents, enc, kl, usage, options):
  """The KL term of the loss: the true KL, or its free-bits version.

  Args:
    latents: the model kind (`evae_jax.objectives.latents.Latents`).
    enc: its encoding of the batch.
    kl: (B,) the true KL of the chosen epitomes (returned without free
      bits).
    usage: (B, D) how much each example uses each unit (see
      `free_bits_kl`).
    options: the `evae_jax.objectives.LossOptions` (``free_bits``,
      ``free_bits_group``).

  Returns:
    (B,) ``kl``, or `free_bits_kl` of the per-unit KL when
    ``options.free_bits`` is set.
  """
  if not options.free_bits:
    return kl
  return free_bits_kl(latents.unit_kl(enc), usage, options.free_bits,
                      options.free_bits_group)
