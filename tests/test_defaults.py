"""evae_jax/configuration/defaults.py: the default config runs (it validates), every
caller gets a fresh copy, and what it documents is what the library
accepts: each ``a | b | c`` comment lists exactly the values validation
allows, and every ``--config.SECTION.FIELD`` the docs name is a field.

That the remedies are off by default is in tests/test_configuration.py.
"""

import glob
import os
import re

import pytest

from configs import default as default_config
from evae_jax import errors
from evae_jax import configuration
from evae_jax.configuration import defaults
from evae_jax import data as input_pipeline
from evae_jax import models
from evae_jax import objectives
from evae_jax.state import optimizers
from evae_jax.state import schedules
from tests.conftest import ROOT

# The fields whose comment lists their values, and what validation allows.
CHOICES = {
    'data.name': input_pipeline.DATASET_NAMES,
    'data.binarization': input_pipeline.BINARIZATIONS,
    'data.valid_from': input_pipeline.VALID_FROM,
    'model.kind': models.MODEL_KINDS,
    'model.network': models.NETWORKS,
    'model.likelihood': models.LIKELIHOODS,
    'model.activation': tuple(models.ACTIVATIONS),
    'model.kernel_init': tuple(models.KERNEL_INITS),
    'model.output_bias_init': models.OUTPUT_BIAS_INITS,
    'model.dtype': tuple(models.DTYPES),
    'eval.dtype': tuple(models.DTYPES) + ('train',),
    'train.optimizer': optimizers.OPTIMIZERS,
    'train.objective': objectives.names(),
    'train.assignment': schedules.ASSIGNMENTS,
    'train.schedule': schedules.SCHEDULES,
    'eval.split': configuration.EVAL_SPLITS,
}


def _flat(config):
  return configuration.flatten(configuration.config_as_dict(config))


def _documented_choices():
  """{field: [values]} from the comments of defaults.py: a field's comment
  and its continuation lines ('  #   ...'), parentheses removed, up to the
  first ';', split at '|', each value the word before any ':'."""
  with open(defaults.__file__) as f:
    lines = f.read().splitlines()
  found = {}
  for i, line in enumerate(lines):
    match = re.match(r'\s*config\.(\w+\.\w+) = .*?#(.*)$', line)
    if not match:
      continue
    text = match.group(2)
    for later in lines[i + 1:]:
      more = re.match(r'\s*#   (.*)$', later)
      if not more:
        break
      text += ' ' + more.group(1)
    while re.search(r'\([^()]*\)', text):  # innermost first: sqrt(v)
      text = re.sub(r'\([^()]*\)', '', text)
    text = text.split(';')[0]
    if '|' in text:
      found[match.group(1)] = [v.split(':')[0].strip() for v in text.split('|')]
  return found


def test_the_default_config_validates_and_is_what_configs_default_gives():
  configuration.validate(defaults.get_config())
  assert _flat(default_config.get_config()) == _flat(defaults.get_config())


def test_every_call_returns_a_fresh_config():
  first = defaults.get_config()
  first.train.learning_rate = 0.5
  first.model.latent_dim = 3
  second = defaults.get_config()
  assert (second.train.learning_rate, second.model.latent_dim) == (1e-3, 16)


def test_each_listed_choice_is_exactly_what_validation_allows():
  documented = _documented_choices()
  assert set(documented) == set(CHOICES), (
      'a field that lists its values needs its place in CHOICES')
  for field, allowed in CHOICES.items():
    assert sorted(documented[field]) == sorted(allowed), field


@pytest.mark.parametrize('field', sorted(CHOICES))
def test_a_value_not_listed_is_refused_by_name(field):
  config = defaults.get_config()
  section, name = field.split('.')
  config[section][name] = 'no_such_value'
  with pytest.raises(errors.ConfigError, match=re.escape(field)):
    configuration.validate(config)


def test_every_field_the_docs_name_exists():
  fields = set(_flat(defaults.get_config()))
  docs = [os.path.join(ROOT, 'README.md')] + glob.glob(
      os.path.join(ROOT, '*', '*.md'))
  named = {}
  for path in docs:
    with open(path) as f:
      for field in re.findall(r'--config\.([a-z_]+\.[a-z_0-9]+)',
                              f.read()):
        named.setdefault(field, os.path.relpath(path, ROOT))
  assert len(named) > 10  # the pattern still finds the docs' flags
  unknown = {f: where for f, where in named.items() if f not in fields}
  assert not unknown, unknown
