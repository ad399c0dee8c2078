"""evae_jax.load on workdirs the command line trained, checked against
independent computations; the public marginal log-likelihood and the
deprecated name."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special

import evae_jax
from evae_jax import errors
from evae_jax import models
from tests.conftest import cli


@pytest.fixture(scope='module')
def trained(one_epoch_workdir):
  return evae_jax.load(one_epoch_workdir)


def test_load_holds_config_params_and_masks(trained, one_epoch_workdir):
  assert trained.workdir == one_epoch_workdir
  assert trained.config.model.latent_dim == 6
  assert trained.config.model.epitome_size == 2
  assert trained.masks.shape == (3, 6)
  np.testing.assert_array_equal(trained.masks,
                                evae_jax.make_masks(6, 2, 2))
  assert trained.image_shape == (8, 8)
  assert trained.num_epitomes == 3 and trained.latent_dim == 6
  assert trained.step == 1300 // 50  # one epoch of configs/test.py
  assert models.count_params(trained.params) > 0
  assert 'evae' in repr(trained)


def test_shapes_and_ranges(trained):
  x = trained.splits.test[:10]  # uint8 (10, 8, 8), as the dataset gives
  mu, logvar = trained.encode(x)
  assert mu.shape == logvar.shape == (10, 6)
  terms = trained.elbo(x, jax.random.PRNGKey(0))
  assert terms.elbo.shape == terms.log_lik.shape == terms.kl.shape == (10, 3)
  np.testing.assert_allclose(terms.elbo, terms.log_lik - terms.kl, rtol=1e-5,
                             atol=1e-4)
  y = trained.assign(x, 0)
  assert y.shape == (10,) and y.dtype == jnp.int32
  assert np.all((np.asarray(y) >= 0) & (np.asarray(y) < 3))
  np.testing.assert_array_equal(y, np.argmax(terms.elbo, -1))  # same draw
  rec = trained.reconstruct(x, 0)
  assert rec.shape == (10, 8, 8)
  assert float(rec.min()) >= 0 and float(rec.max()) <= 1
  samples = trained.sample(jax.random.PRNGKey(1), 7)
  assert samples.shape == (7, 8, 8) and samples.dtype == jnp.float32
  assert float(samples.min()) >= 0 and float(samples.max()) <= 1
  assert trained.bound(x, 0).shape == (10,)
  activity, count = trained.active_units(trained.splits.test[:100], 0)
  assert activity.shape == (6,) and 0 <= count <= 6


def test_input_layouts_agree(trained):
  x = trained.splits.test[:5]
  as_float = x.astype(np.float32) / 255.0
  reference = trained.encode(x)[0]
  for other in (as_float, as_float[..., None], as_float.reshape(5, 64),
                x[..., None], x.reshape(5, 64)):
    np.testing.assert_allclose(trained.encode(other)[0], reference,
                               rtol=1e-5, atol=1e-6)
  for bad, match in ((x[0], 'shape'), (x[:, :4], 'shape'),
                     (as_float * 255, r'\[0, 1\]'),
                     (x.astype(np.int64), 'dtype')):
    with pytest.raises(ValueError, match=match):
      trained.encode(bad)


def test_encode_matches_the_network(trained):
  x = trained.splits.test[:4]
  flat = jnp.asarray(x.reshape(4, -1), jnp.float32) / 255.0
  mu, logvar = trained.model.module.apply(
      {'params': trained.params}, flat, method=models.VAENetwork.encode)
  np.testing.assert_allclose(trained.encode(x)[0], mu, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(trained.encode(x)[1], logvar, rtol=1e-5,
                             atol=1e-6)


def test_log_likelihood_is_the_marginal_of_the_per_epitome_values(trained):
  x = trained.eval_inputs(trained.splits.test[:12])
  assert set(np.unique(np.asarray(x))) <= {0.0, 1.0}  # dynamic: binarised
  rng = jax.random.PRNGKey(3)
  per = trained.log_likelihood_per_epitome(x, rng, num_samples=16,
                                           chunk_size=4, batch_size=5)
  marginal = trained.log_likelihood(x, rng, num_samples=16, chunk_size=4,
                                    batch_size=5)
  assert per.shape == (12, 3) and marginal.shape == (12,)
  np.testing.assert_allclose(
      marginal, scipy.special.logsumexp(np.asarray(per, np.float64), axis=1)
      - np.log(3), rtol=1e-5, atol=1e-4)
  # The same key gives the same values; another key other values.
  again = trained.log_likelihood(x, rng, num_samples=16, chunk_size=4,
                                 batch_size=5)
  np.testing.assert_array_equal(marginal, again)
  other = trained.log_likelihood(x, 4, num_samples=16, chunk_size=4,
                                 batch_size=5)
  assert not np.allclose(marginal, other)
  # log p(x) >= max_y log p(x | y) - log E, and the estimate is finite.
  assert np.all(np.isfinite(marginal))
  assert np.all(marginal >= per.max(1) - np.log(3) - 1e-4)


def test_log_likelihood_above_the_bound_on_average(trained):
  x = trained.eval_inputs(trained.splits.test[:50])
  iw = trained.log_likelihood(x, 0, num_samples=64, chunk_size=16)
  bound = trained.bound(x, 0)
  assert float(np.mean(iw)) > float(np.mean(bound)) - 0.5


def test_deterministic_under_a_fixed_key(trained):
  x = trained.splits.test[:8]
  for fn in (trained.elbo, trained.assign, trained.reconstruct,
             trained.bound):
    a, b = fn(x, jax.random.PRNGKey(5)), fn(x, jax.random.PRNGKey(5))
    jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)
  np.testing.assert_array_equal(trained.sample(9, 4), trained.sample(9, 4))
  assert not np.allclose(trained.sample(9, 4), trained.sample(10, 4))


def test_iw_log_marginal_likelihood_public_function():
  masks = evae_jax.make_masks(4, 2, 2)
  w = jax.random.normal(jax.random.PRNGKey(0), (4, 9)) * 0.3

  def encode(x):
    return x[:, :4] - 0.5, jnp.full((x.shape[0], 4), -1.0)

  def decode_log_prob(z, x):
    return evae_jax.bernoulli_log_prob(z @ w, x)

  x = (jax.random.uniform(jax.random.PRNGKey(1), (5, 9)) > 0.5).astype(
      jnp.float32)
  rng = jax.random.PRNGKey(2)
  per = evae_jax.iw_log_likelihood_per_epitome(encode, decode_log_prob, x,
                                               masks, rng, 32, 8)
  marginal = evae_jax.iw_log_marginal_likelihood(encode, decode_log_prob, x,
                                                 masks, rng, 32, 8)
  assert per.shape == (5, 2) and marginal.shape == (5,)
  np.testing.assert_allclose(
      marginal, scipy.special.logsumexp(np.asarray(per, np.float64), 1)
      - np.log(2), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(evae_jax.log_marginal_from_per_epitome(per),
                             marginal, rtol=1e-6)
  jitted = jax.jit(lambda x: evae_jax.iw_log_marginal_likelihood(
      encode, decode_log_prob, x, masks, rng, 32, 8))
  np.testing.assert_allclose(jitted(x), marginal, rtol=1e-5, atol=1e-5)


def test_old_name_warns_and_still_works():
  with pytest.warns(DeprecationWarning,
                    match='iw_log_likelihood_per_epitome.*'
                    'iw_log_marginal_likelihood'):
    old = evae_jax.iw_log_likelihood
  assert old is evae_jax.iw_log_likelihood_per_epitome
  with pytest.warns(DeprecationWarning):  # every access, not only the first
    from evae_jax import iw_log_likelihood  # pylint: disable=g-import-not-at-top
  assert iw_log_likelihood is old
  with warnings.catch_warnings():
    warnings.simplefilter('error')  # the new names do not warn
    evae_jax.iw_log_likelihood_per_epitome  # pylint: disable=pointless-statement
    evae_jax.iw_log_marginal_likelihood  # pylint: disable=pointless-statement
    evae_jax.load  # pylint: disable=pointless-statement
  assert 'iw_log_likelihood' not in evae_jax.__all__
  assert {'load', 'iw_log_marginal_likelihood'} <= set(evae_jax.__all__)


def test_not_a_workdir(tmp_path):
  with pytest.raises(errors.ConfigError, match='config.json'):
    evae_jax.load(str(tmp_path))


def test_multi_model_workdir_and_its_members(tmp_path):
  workdir = str(tmp_path / 'team')
  run = cli(workdir, '--config.train.num_epochs=1',
            '--config.train.num_seeds=2')
  assert run.returncode == 0, run.stderr[-3000:]
  with pytest.raises(errors.ConfigError, match=r'seed=0, seed=1.*member='):
    evae_jax.load(workdir)
  first = evae_jax.load(workdir, member='seed=1')
  second = evae_jax.load(f'{workdir}/seed=1')
  assert first.config.seed == 1 and second.workdir.endswith('seed=1')
  x = first.splits.test[:6]
  np.testing.assert_array_equal(first.encode(x)[0], second.encode(x)[0])
  zero = evae_jax.load(workdir, member='seed=0')
  assert not np.allclose(zero.encode(x)[0], first.encode(x)[0])


def test_overrides(one_epoch_workdir):
  with pytest.raises(errors.ConfigError, match='defines the trained model'):
    evae_jax.load(one_epoch_workdir, overrides={'model.latent_dim': 8})
  with pytest.raises(errors.ConfigError, match='unknown'):
    evae_jax.load(one_epoch_workdir, overrides={'data.nope': 1})
  again = evae_jax.load(one_epoch_workdir, overrides={'eval.iw_samples': 3})
  assert again.config.eval.iw_samples == 3


def test_load_from_a_bucket(gcs, trained, one_epoch_workdir):
  """A workdir in gs:// (a local GCS emulator behind the real gcsfs and
  tensorstore clients) loads as the same model as its local copy."""
  import os  # pylint: disable=g-import-not-at-top
  import uuid  # pylint: disable=g-import-not-at-top
  from evae_jax.storage import files  # pylint: disable=g-import-not-at-top
  remote = f'{gcs}/{uuid.uuid4().hex}/run'
  for folder, _, names in os.walk(one_epoch_workdir):
    for name in names:
      if name == '.lock':
        continue
      path = os.path.join(folder, name)
      relative = os.path.relpath(path, one_epoch_workdir)
      with open(path, 'rb') as f:
        files.write_bytes(files.join(remote, *relative.split(os.sep)),
                          f.read())
  in_bucket = evae_jax.load(remote)
  assert in_bucket.workdir == remote and in_bucket.step == trained.step
  jax.tree_util.tree_map(np.testing.assert_array_equal, in_bucket.params,
                         trained.params)
  x = trained.splits.test[:6]
  np.testing.assert_array_equal(in_bucket.sample(0, 3), trained.sample(0, 3))
  np.testing.assert_array_equal(in_bucket.encode(x)[0], trained.encode(x)[0])


def test_config_json_of_an_older_version_loads(trained, one_epoch_workdir,
                                               tmp_path):
  """A field added to evae_jax after the run was trained takes its default."""
  import json  # pylint: disable=g-import-not-at-top
  import shutil  # pylint: disable=g-import-not-at-top
  copy = str(tmp_path / 'old')
  shutil.copytree(one_epoch_workdir, copy)
  with open(f'{copy}/config.json') as f:
    saved = json.load(f)
  del saved['eval']['iw_chunk'], saved['train']['assignment_samples']
  with open(f'{copy}/config.json', 'w') as f:
    json.dump(saved, f)
  old = evae_jax.load(copy)
  assert old.config.eval.iw_chunk == 100  # evae_jax/configuration/defaults.py
  assert old.config.train.kl_weights == ()
  jax.tree_util.tree_map(np.testing.assert_array_equal, old.params,
                         trained.params)
