"""evae_jax.sampling: which latent codes reach the decoder (a recording
stand-in model makes the codes visible)."""

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from evae_jax import epitomes
from evae_jax import sampling


class _Echo:
  """A model whose decoder returns its input code and epitome."""

  masks = jnp.asarray(epitomes.make_masks(6, 2))  # E = 3 epitomes of 2 units

  def encode(self, params, x):
    del params
    return x[:, :6] + 1.0, jnp.zeros((x.shape[0], 6))

  def decode_mean(self, params, z, y):
    del params
    return jnp.concatenate([z, y[:, None].astype(z.dtype)], axis=1)


MASKS = _Echo.masks


def test_generate_draws_codes_inside_a_uniform_epitome():
  out = np.asarray(sampling.generate(_Echo(), None,
                                     jax.random.PRNGKey(0), 3000))
  z, y = out[:, :6], out[:, 6].astype(int)
  assert set(y) == {0, 1, 2}
  # uniform p(y): chi-square test at 1%
  assert stats.chisquare(np.bincount(y, minlength=3)).pvalue > 0.01
  outside = z * (1.0 - np.asarray(MASKS)[y])
  np.testing.assert_array_equal(outside, 0.0)
  inside = z[np.asarray(MASKS)[y] > 0]
  assert abs(inside.mean()) < 0.05 and abs(inside.std() - 1.0) < 0.05


def test_reconstruct_decodes_the_masked_posterior_mean():
  x = jnp.arange(12.0).reshape(2, 6)
  out = np.asarray(sampling.reconstruct(_Echo(), None, x,
                                        jnp.array([0, 2])))
  mu = np.asarray(x) + 1.0
  np.testing.assert_array_equal(out[0, :6], mu[0] * [1, 1, 0, 0, 0, 0])
  np.testing.assert_array_equal(out[1, :6], mu[1] * [0, 0, 0, 0, 1, 1])
  np.testing.assert_array_equal(out[:, 6], [0, 2])


def test_epitome_manifold_sweeps_the_epitomes_two_units():
  out = np.asarray(sampling.epitome_manifold(_Echo(), None, 1, 3))
  z = out[:, :6]
  np.testing.assert_array_equal(z[:, [0, 1, 4, 5]], 0.0)
  q = stats.norm.ppf([0.05, 0.5, 0.95])
  np.testing.assert_allclose(z[:, 2], np.repeat(q, 3), atol=1e-5)  # rows
  np.testing.assert_allclose(z[:, 3], np.tile(q, 3), atol=1e-5)    # columns
  np.testing.assert_array_equal(out[:, 6], 1)
