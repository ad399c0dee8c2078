"""Config validation: the objectives registry decides which objective goes
with which model kind and settings; the remedies are off by default."""

import pytest

from configs import test as test_config
from evae_jax import errors
from evae_jax import configuration
from evae_jax.configuration import defaults
from evae_jax import objectives


def test_remedies_are_off_by_default():
  t = defaults.get_config().train
  assert (t.free_bits, t.free_bits_group, t.kl_warmup_steps,
          t.kl_warmup_start) == (0.0, 1, 0, 0.0)


@pytest.mark.parametrize('kind', ['evae', 'vae', 'mvae'])
@pytest.mark.parametrize('name', list(objectives.REGISTRY))
def test_every_registered_objective_and_kind(name, kind):
  config = test_config.get_config()
  config.model.kind = kind
  config.train.objective = name
  if objectives.get(name).uses_num_samples:
    config.train.num_samples = 3
  if kind in objectives.get(name).model_kinds:
    configuration.validate(config)
  else:
    with pytest.raises(errors.ConfigError, match=repr(kind)):
      configuration.validate(config)


def test_a_kl_free_objective_names_every_setting_it_refuses():
  config = test_config.get_config()
  config.train.objective = 'iwae_marginal'
  config.train.kl_weight = 0.5
  config.train.z_dropout_rate = 0.1
  with pytest.raises(errors.ConfigError,
                     match=r'train.kl_weight=0.5, train.z_dropout_rate=0.1'):
    configuration.validate(config)


def test_free_bits_group_must_divide_the_mvae_units():
  config = test_config.get_config()
  config.model.kind = 'mvae'  # D = 6, K = 2: 3 components, 6 units
  config.train.free_bits = 0.1
  config.train.free_bits_group = 4
  with pytest.raises(errors.ConfigError, match='divide the 6'):
    configuration.validate(config)
  config.train.free_bits_group = 3
  configuration.validate(config)


def test_the_memory_check_counts_the_epitomes_not_only_the_parameters():
  """latent_dim=100000 with K = 4 has 25,000 epitomes: its masks and one
  minibatch's latents over all of them cannot fit, though its parameters
  (a few hundred MB of state) would; refused in one paragraph."""
  import pytest
  from configs import default
  from evae_jax import configuration
  config = default.get_config()
  config.model.latent_dim = 100000
  with pytest.raises(errors.ConfigError, match='25,000 epitomes'):
    configuration.check_memory(config, 64)
  config.model.kind = 'vae'   # one epitome: the same parameters fit
  configuration.check_memory(config, 64)


@pytest.mark.parametrize('name,field,value', [
    ('digits', 'path', '/data/mnist'), ('idx', 'data_dir', '/tfds'),
    ('mnist', 'path', '/data/mnist'), ('digits', 'tfd_fold', 2)])
def test_a_data_field_the_dataset_ignores_is_refused(name, field, value):
  """data.path with the default data.name trained on the digits, exit 0."""
  config = test_config.get_config()
  config.data.name, config.data[field] = name, value
  with pytest.raises(errors.ConfigError,
                     match=f'data.{field}=.* is ignored by data.name'):
    configuration.validate(config)


@pytest.mark.parametrize('field', ['num_examples', 'iw_num_examples',
                                   'mi_num_examples'])
def test_a_negative_number_of_evaluation_examples_is_refused(field):
  """0 means the whole split; a negative count would silently drop the last
  examples (a slice [:-1]): refused, naming the field."""
  config = test_config.get_config()
  config.eval[field] = 0
  configuration.validate(config)
  config.eval[field] = -1
  with pytest.raises(errors.ConfigError, match=f'eval.{field}=-1 must be >= 0'):
    configuration.validate(config)
