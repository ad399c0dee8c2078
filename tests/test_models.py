"""The model kinds: their latent interface (what the objectives see) agrees
with their ELBO terms, and the names they export."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import test as test_config
from evae_jax import elbo
from evae_jax import objectives
from evae_jax import models

B, N = 5, 12


def _model(kind):
  config = test_config.get_config()
  config.model.kind = kind
  model = models.make_model(config.model, N)
  return model, model.init(jax.random.PRNGKey(0))


@pytest.mark.parametrize('kind', ['evae', 'vae', 'mvae'])
def test_latents_terms_are_the_elbo_terms(kind):
  """The interface of `elbo` (terms, unit_kl, masks) gives the numbers of
  the model's own `elbo_terms` on the same noise."""
  model, params = _model(kind)
  x = jnp.asarray(np.random.RandomState(0).rand(B, N) > 0.5, jnp.float32)
  rng = jax.random.PRNGKey(1)
  terms, mu, logvar = model.elbo_terms(params, x, rng)
  latents = model.latents(params)
  enc = latents.encoding(x)
  shape, dtype = latents.noise_shape(enc, x)
  eps = jax.random.normal(rng, shape, dtype)
  log_lik, kl = latents.terms(enc, x, eps, None)
  np.testing.assert_allclose(log_lik, terms.log_lik, rtol=1e-5)
  np.testing.assert_allclose(kl, terms.kl, rtol=1e-5)
  y = jnp.arange(B) % model.masks.shape[0]
  chosen_ll, chosen_kl = latents.terms(enc, x, eps, None, y)
  np.testing.assert_allclose(chosen_ll, log_lik[jnp.arange(B), y], rtol=1e-5)
  # Per-unit KL in the flat layout, summed over an epitome, is its KL.
  unit_kl = latents.unit_kl(enc)
  assert unit_kl.shape == mu.shape
  np.testing.assert_allclose(unit_kl @ model.masks.T, kl, rtol=1e-5)
  assert latents.model_kinds == (('mvae',) if kind == 'mvae'
                                 else ('evae', 'vae'))


def test_no_alias_names():
  assert not hasattr(models, 'EVAE')
  assert isinstance(_model('evae')[0].latents({}), objectives.latents.SharedLatents)
