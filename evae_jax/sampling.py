"""Generation and reconstruction with a trained model (pure, jittable)."""

import jax
import jax.numpy as jnp



def generate(model, params, rng: jax.Array, num_samples: int) -> jax.Array:
  """Samples from the generative model: y ~ U{1..E}, z ~ N(0, I), decoder mean.

  Args:
    model: an `evae_jax.models.Model`.
    params: its parameters.
    rng: PRNG key.
    num_samples: n.

  Returns:
    (n, N) decoder means E[x | M[y] * z] in [0, 1].
  """
  masks = model.masks
  y_rng, z_rng = jax.random.split(rng)
  y = jax.random.randint(y_rng, (num_samples,), 0, masks.shape[0])
  z = jax.random.normal(z_rng, (num_samples, masks.shape[1]))
  return model.decode_mean(params, masks[y] * z, y)


def reconstruct(model, params, x: jax.Array,
                assignments: jax.Array) -> jax.Array:
  """Decoder mean at the posterior mean of the assigned epitome.

  Args:
    model: an `evae_jax.models.Model`.
    params: parameters.
    x: (B, N) inputs.
    assignments: (B,) epitome of each example (y*).

  Returns:
    (B, N) reconstructions E[x | M[y*] * mu(x)].
  """
  mu, _ = model.encode(params, x)
  return model.decode_mean(params, model.masks[assignments] * mu, assignments)


def epitome_manifold(model, params, epitome: int,
                     grid_size: int) -> jax.Array:
  """The learned 2-d manifold of one epitome (paper Fig. 5).

  The epitome's first two units sweep the standard-normal quantiles of a
  grid_size x grid_size grid (the other units are zero):

      z_{ij} = (Phi^-1(q_i), Phi^-1(q_j)),  q = linspace(0.05, 0.95, grid_size)

  Args:
    model: an `evae_jax.models.Model`.
    params: its parameters.
    epitome: y, the epitome to sweep (at least 2 units).
    grid_size: points per side.

  Returns:
    (grid_size**2, N) decoder means, row-major over the grid.
  """
  quantiles = jax.scipy.special.ndtri(
      jnp.linspace(0.05, 0.95, grid_size))
  a, b = jnp.meshgrid(quantiles, quantiles, indexing='ij')
  masks = model.masks
  units = jnp.nonzero(masks[epitome], size=2)[0]
  z = jnp.zeros((grid_size * grid_size, masks.shape[1]))
  z = z.at[:, units[0]].set(a.ravel()).at[:, units[1]].set(b.ravel())
  return model.decode_mean(params, z, jnp.full(z.shape[:1], epitome))
