"""The objectives registry: one entry per objective, what it states, the
errors for unsupported combinations (at library level, not only in config
validation), and adding an objective as one registered function."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import test as test_config
from evae_jax import errors
from evae_jax import configuration
from evae_jax import elbo
from evae_jax import epitomes
from evae_jax import models
from evae_jax import objectives

B, N, D = 6, 8, 4


def _shared(num_epitomes=2):
  rs = np.random.RandomState(0)
  w = jnp.asarray(rs.randn(N, 2 * D) * 0.3, jnp.float32)
  v = jnp.asarray(rs.randn(D, N) * 0.3, jnp.float32)
  encode = lambda x: (x @ w[:, :D], x @ w[:, D:])
  decode = lambda z, x: jnp.sum(x * (z @ v) - jax.nn.softplus(z @ v), -1)
  k = D // num_epitomes
  return objectives.latents.SharedLatents(encode, decode,
                            jnp.asarray(epitomes.make_masks(D, k, k)))


def _model(kind):
  config = test_config.get_config()
  config.model.kind = kind
  model = models.make_model(config.model, N)
  return model, model.init(jax.random.PRNGKey(0))


X = (np.random.RandomState(1).rand(B, N) > 0.5).astype(np.float32)


def test_registry_states_kinds_samples_and_kl_term():
  reg = objectives.REGISTRY
  assert tuple(reg) == ('point', 'logsumexp', 'iwae', 'iwae_marginal')
  assert reg['point'].model_kinds == ('evae', 'vae', 'mvae')
  assert reg['logsumexp'].model_kinds == ('evae', 'vae', 'mvae')
  for name in ('iwae', 'iwae_marginal'):
    assert reg[name].model_kinds == ('evae', 'vae')
    assert reg[name].uses_num_samples and not reg[name].weights_kl
  assert not reg['point'].uses_num_samples and reg['point'].weights_kl
  assert objectives.names(uses_num_samples=True) == ('iwae', 'iwae_marginal')
  assert reg['point'].loss_fn is objectives.point.point_loss


def test_every_objective_is_registered_whichever_module_is_imported_first():
  """No caller has to import a family for its objectives to exist: any
  import under ``evae_jax.objectives`` (here its registry module alone, in a
  fresh process) runs the package, which registers every family."""
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  from tests.conftest import ROOT  # pylint: disable=import-outside-toplevel
  probe = ('from evae_jax.objectives.registry import get, names; '
           'print(names(), get("iwae_marginal").loss_fn.__module__)')
  out = subprocess.run([sys.executable, '-c', probe], cwd=ROOT, check=True,
                       capture_output=True, text=True).stdout.strip()
  assert out == ("('point', 'logsumexp', 'iwae', 'iwae_marginal') "
                 'evae_jax.objectives.iwae')


def test_mvae_with_an_iwae_objective_raises_in_the_library():
  """It used to train the point objective silently."""
  model, params = _model('mvae')
  for name in ('iwae', 'iwae_marginal'):
    with pytest.raises(errors.ObjectiveError, match="not 'mvae'"):
      model.loss(params, X, jax.random.PRNGKey(0), objective=name,
                 num_samples=3)


@pytest.mark.parametrize('objective,options,needle', [
    ('point', {'num_samples': 5}, 'does not use num_samples'),
    ('logsumexp', {'num_samples': 2}, 'does not use num_samples'),
    ('iwae', {'num_samples': 3, 'kl_weight': 0.5}, 'no kl_weight'),
    ('iwae', {'num_samples': 3, 'z_dropout_rate': 0.1}, 'no z_dropout_rate'),
    ('iwae_marginal', {'num_samples': 3, 'free_bits': 0.5}, 'no free_bits'),
    ('nope', {}, 'must be one of'),
])
def test_unsupported_options_raise_in_the_library(objective, options, needle):
  with pytest.raises(errors.ObjectiveError, match=needle):
    objectives.loss(_shared(), X, jax.random.PRNGKey(0), objective=objective,
                    **options)
  with pytest.raises(ValueError, match=needle):  # the public entry point
    latents = _shared()
    objectives.callables.epitome_loss(latents.encode, latents.decode_log_prob, X,
                      latents.masks, jax.random.PRNGKey(0),
                      objective=objective, **options)


@pytest.mark.parametrize('kind', ['evae', 'vae', 'mvae'])
@pytest.mark.parametrize('objective', ['point', 'logsumexp'])
def test_every_kind_runs_every_objective_it_supports(kind, objective):
  model, params = _model(kind)
  loss, aux = jax.jit(lambda p: model.loss(p, X, jax.random.PRNGKey(2),
                                           objective=objective))(params)
  assert np.isfinite(loss)
  for key in ('elbo', 'bound', 'log_lik', 'kl', 'assignments'):
    assert aux[key].shape == (B,), key
  np.testing.assert_allclose(aux['elbo'], aux['log_lik'] - aux['kl'],
                             rtol=1e-6)


def test_config_validation_follows_the_registry():
  config = test_config.get_config()
  config.model.kind = 'mvae'
  config.train.objective = 'iwae'
  with pytest.raises(errors.ConfigError, match="not 'mvae'"):
    configuration.validate(config)
  config = test_config.get_config()
  config.train.num_samples = 4
  with pytest.raises(errors.ConfigError,
                     match=r"only by the objectives \('iwae', 'iwae_marginal'\)"):
    configuration.validate(config)
  config = test_config.get_config()
  config.train.objective = 'unknown'
  with pytest.raises(errors.ConfigError, match='train.objective'):
    configuration.validate(config)


def _scratch_registry(monkeypatch):
  """A copy of the registry for the test to register into (both names of
  it: `register` writes the registry module's)."""
  scratch = dict(objectives.REGISTRY)
  monkeypatch.setattr(objectives.registry, 'REGISTRY', scratch)
  monkeypatch.setattr(objectives, 'REGISTRY', scratch)


def test_adding_an_objective_is_one_registered_function(monkeypatch):
  """A new objective registered once is accepted by config validation and
  trained by both model kinds' ``loss``, with nothing else changed."""
  _scratch_registry(monkeypatch)

  @objectives.register('half_point', summary='half the point loss')
  def half_point(latents, x, rng, options):
    loss, aux = objectives.point.point_loss(latents, x, rng, options)
    return 0.5 * loss, aux

  config = test_config.get_config()
  config.train.objective = 'half_point'
  configuration.validate(config)
  for kind in ('evae', 'mvae'):
    model, params = _model(kind)
    rng = jax.random.PRNGKey(3)
    half, _ = model.loss(params, X, rng, objective='half_point')
    full, _ = model.loss(params, X, rng, objective='point')
    np.testing.assert_allclose(half, 0.5 * full, rtol=1e-6)
  with pytest.raises(ValueError, match='registered twice'):
    objectives.register('half_point')(half_point)


def test_the_aux_is_typed_and_an_objective_returning_a_dict_still_works(
    monkeypatch):
  """Every objective's aux is a `LossAux` whose absent fields are None (and
  whose fields read by name, as the dict before it); an objective of one's
  own that returns the old dict gets it converted; one with a key that is
  not a field, one without a required field and one that is not a dict are
  refused, naming what is wrong."""
  model, params = _model('evae')
  rng = jax.random.PRNGKey(3)
  _, aux = model.loss(params, X, rng, objective='point')
  assert isinstance(aux, objectives.LossAux)
  assert aux.logsumexp_bound is None and aux.free_bits_kl is None
  assert list(aux.present()) == ['bound', 'elbo', 'assignments', 'log_lik',
                                 'kl']
  assert aux['bound'] is aux.bound and aux[0] is aux.bound
  with pytest.raises(KeyError, match='logsumexp_bound'):
    aux['logsumexp_bound']  # pylint: disable=pointless-statement
  _, lse = model.loss(params, X, rng, objective='logsumexp')
  assert lse.logsumexp_bound.shape == (B,)
  _scratch_registry(monkeypatch)

  @objectives.register('as_dict')
  def as_dict(latents, x, rng, options):
    loss, aux = objectives.point.point_loss(latents, x, rng, options)
    return loss, dict(aux.present())

  @objectives.register('extra_key')
  def extra_key(latents, x, rng, options):
    loss, aux = objectives.point.point_loss(latents, x, rng, options)
    return loss, dict(aux.present(), mine=aux.bound)

  loss, converted = model.loss(params, X, rng, objective='as_dict')
  want, _ = model.loss(params, X, rng, objective='point')
  assert isinstance(converted, objectives.LossAux) and loss == want
  np.testing.assert_array_equal(converted.kl, aux.kl)
  with pytest.raises(errors.ObjectiveError, match=r"unknown keys \['mine'\]"):
    model.loss(params, X, rng, objective='extra_key')

  @objectives.register('no_elbo')
  def no_elbo(latents, x, rng, options):
    loss, aux = objectives.point.point_loss(latents, x, rng, options)
    return loss, {'bound': aux.bound}

  @objectives.register('a_tuple')
  def a_tuple(latents, x, rng, options):
    loss, aux = objectives.point.point_loss(latents, x, rng, options)
    return loss, (aux.bound, aux.elbo)

  with pytest.raises(errors.ObjectiveError, match=r"no \['elbo'\]"):
    model.loss(params, X, rng, objective='no_elbo')
  with pytest.raises(errors.ObjectiveError,
                     match='an aux of type tuple; return a LossAux'):
    model.loss(params, X, rng, objective='a_tuple')


@pytest.mark.parametrize('name,value', [
    ('kl_weight', 0.5), ('kl_weights', (1.0, 0.5)), ('z_dropout_rate', 0.1),
    ('free_bits', 0.5), ('kl_warmup_steps', 10)])
def test_one_kl_term_rule_for_the_config_the_objective_and_the_step(name,
                                                                   value):
  """Every setting of KL_TERM_SETTINGS, set for an objective without a KL
  term, is refused by the config check naming it; the same table says
  which (and nothing for an objective with a KL term)."""
  from evae_jax import configuration
  from evae_jax import errors
  from evae_jax.configuration import defaults
  assert dict(objectives.KL_TERM_SETTINGS)[name] != value
  iwae = objectives.get('iwae')
  assert iwae.kl_settings_given({name: value}) == [name]
  assert objectives.get('point').kl_settings_given({name: value}) == []
  off = dict(objectives.KL_TERM_SETTINGS)[name]
  assert iwae.kl_settings_given({name: off}) == []
  config = defaults.get_config()
  config.model.kind = 'vae'
  config.train.objective, config.train.num_samples = 'iwae', 5
  config.train[name] = value
  with pytest.raises(errors.ConfigError, match=rf'train\.{name}='):
    configuration.validate(config)
