"""Checks on a config before any work starts, and what it implies (masks).

User mistakes surface here as `errors.ConfigError` with one paragraph saying
what is wrong and how to fix it; `evae_jax.command_line` prints it and exits
with status 2.
"""

import json
import math
import os
from typing import Any, Dict

import ml_collections
import numpy as np

from evae_jax.configuration import defaults
from evae_jax import errors
from evae_jax import epitomes
from evae_jax import data as input_pipeline
from evae_jax import models
from evae_jax import objectives
from evae_jax.state import optimizers
from evae_jax.state import schedules


# The splits --mode=evaluate may score (eval.split).
EVAL_SPLITS = ('test', 'valid', 'train')


def _choice(value, allowed, field):
  if value not in allowed:
    raise errors.ConfigError(
        f'{field}={value!r} is not allowed; use one of {allowed}.')


def _positive(value, field, allow_zero=False):
  if value < 0 or (value == 0 and not allow_zero):
    raise errors.ConfigError(f'{field}={value!r} must be '
                             f'{">= 0" if allow_zero else "> 0"}: set '
                             f'--config.{field} to such a value.')


epitome_shape = models.epitome_shape


def masks_from_config(model_config: ml_collections.ConfigDict) -> np.ndarray:
  """The epitome masks of ``config.model`` (`evae_jax.epitomes.make_masks`).

  Args:
    model_config: the ``model`` section (latent_dim D, epitome_size K,
      stride s, kind; a VAE is the single epitome D = K = s).

  Returns:
    (E, D) masks, 1 on the units of each epitome.
  """
  return epitomes.make_masks(*epitome_shape(model_config))


def _check_fields(config: ml_collections.ConfigDict) -> None:
  """Every field of evae_jax/configuration/defaults.py is present with a
  compatible type."""
  given = flatten(config_as_dict(config))
  for field, expected in flatten(config_as_dict(defaults.get_config())).items():
    if field not in given:
      raise errors.ConfigError(
          f'The config lacks {field}; build configs from '
          'evae_jax/configuration/defaults.py (configs/default.py) and '
          'override fields.')
    value = given[field]
    numeric = (int, float)
    ok = (isinstance(value, type(expected))
          or (isinstance(expected, float) and isinstance(value, numeric))
          or (isinstance(expected, (list, tuple)) and
              isinstance(value, (list, tuple))))
    if not ok or (isinstance(value, bool) and not isinstance(expected, bool)):
      raise errors.ConfigError(
          f'{field}={value!r} has type {type(value).__name__}; '
          f'expected {type(expected).__name__} (e.g. '
          f'{expected!r}).')
    if isinstance(value, float) and not math.isfinite(value):
      raise errors.ConfigError(f'{field}={value} must be a finite number.')


def _check_objective(config: ml_collections.ConfigDict) -> None:
  """train.objective against the registry (`evae_jax.objectives`): the model
  kinds it supports, whether it takes num_samples and a KL term; and the
  over-pruning remedies."""
  m, t = config.model, config.train
  _choice(t.objective, objectives.names(), 'train.objective')
  spec = objectives.get(t.objective)
  if m.kind not in spec.model_kinds:
    raise errors.ConfigError(
        f'train.objective={t.objective!r} is implemented for '
        f'model.kind {spec.model_kinds}, not {m.kind!r}.')
  if not spec.uses_num_samples and t.num_samples != 1:
    raise errors.ConfigError(
        f'train.num_samples={t.num_samples} is used only by the '
        f'objectives {objectives.names(uses_num_samples=True)}; '
        'set e.g. --config.train.objective=iwae, or '
        'train.num_samples=1.')
  _positive(t.free_bits, 'train.free_bits', allow_zero=True)
  _positive(t.free_bits_group, 'train.free_bits_group')
  _positive(t.kl_warmup_steps, 'train.kl_warmup_steps', allow_zero=True)
  if not 0.0 <= t.kl_warmup_start <= 1.0:
    raise errors.ConfigError(
        f'train.kl_warmup_start={t.kl_warmup_start} must be in '
        '[0, 1] (a fraction of train.kl_weight).')
  changed = [f'train.{name}={t[name]!r}' for name in spec.kl_settings_given(
      {name: t[name] for name, _ in objectives.KL_TERM_SETTINGS})]
  if changed:
    raise errors.ConfigError(
        f'train.objective={t.objective!r} is a bound on log p(x) without a '
        f'separate KL term: it takes no KL weight, z dropout, free bits or '
        f'KL warm-up ({", ".join(changed)}); set '
        + ', '.join(f'train.{name}={off!r}'
                    for name, off in objectives.KL_TERM_SETTINGS) + '.')
  units = epitome_shape(m)[0]
  if t.free_bits and units % t.free_bits_group:
    raise errors.ConfigError(
        f'train.free_bits_group={t.free_bits_group} does not '
        f'divide the {units} latent units; use a divisor of '
        f'{units} (1 = per unit).')


def validate(config: ml_collections.ConfigDict) -> None:
  """Refuses any value the run cannot use, before any work starts.

  Args:
    config: the full config (every field of evae_jax/configuration/defaults.py).

  Raises:
    errors.ConfigError: a field missing or of the wrong type, a value out of
      range or not among the allowed choices, an epitome shape that does
      not tile the latent units, an objective that does not fit the model
      kind or the KL options, or a data field the dataset does not read;
      the message names the field and the fix.
  """
  _check_fields(config)
  m, t, d, e = config.model, config.train, config.data, config.eval
  _choice(m.kind, models.MODEL_KINDS, 'model.kind')
  _choice(m.likelihood, models.LIKELIHOODS, 'model.likelihood')
  _choice(m.network, models.NETWORKS, 'model.network')
  _check_conv(m)
  _choice(m.activation, tuple(models.ACTIVATIONS), 'model.activation')
  _choice(m.kernel_init, tuple(models.KERNEL_INITS), 'model.kernel_init')
  _choice(m.dtype, tuple(models.DTYPES), 'model.dtype')
  _choice(e.dtype, tuple(models.DTYPES) + ('train',), 'eval.dtype')
  _choice(m.output_bias_init, models.OUTPUT_BIAS_INITS,
          'model.output_bias_init')
  _choice(t.optimizer, optimizers.OPTIMIZERS, 'train.optimizer')
  _choice(d.valid_from, input_pipeline.VALID_FROM, 'data.valid_from')
  _positive(t.assignment_samples, 'train.assignment_samples')
  for name in ('adam_b1', 'adam_b2'):
    if not 0.0 <= t[name] < 1.0:
      raise errors.ConfigError(f'train.{name}={t[name]} must be in [0, 1).')
  _positive(t.adam_eps, 'train.adam_eps')
  _positive(t.num_samples, 'train.num_samples')
  _choice(t.assignment, schedules.ASSIGNMENTS, 'train.assignment')
  _choice(t.schedule, schedules.SCHEDULES, 'train.schedule')
  if t.schedule == 'burda':
    _positive(t.burda_stages, 'train.burda_stages')
  _choice(d.binarization, input_pipeline.BINARIZATIONS, 'data.binarization')
  _choice(d.name, input_pipeline.DATASET_NAMES, 'data.name')
  _check_ignored_data_fields(d)
  _choice(e.split, EVAL_SPLITS, 'eval.split')
  try:
    epitomes.validate(*epitome_shape(m))
  except errors.EpitomeConfigError as err:
    raise errors.ConfigError(f'{err} (config fields model.latent_dim, '
                             'model.epitome_size, model.stride)') from err
  _check_objective(config)
  _positive(m.num_layers, 'model.num_layers', allow_zero=True)
  for section, name in (('model', 'hidden_dim'), ('train', 'num_epochs'),
                        ('train', 'batch_size'), ('train', 'learning_rate'),
                        ('train', 'keep_checkpoints'), ('eval', 'batch_size'),
                        ('eval', 'iw_samples'), ('eval', 'iw_chunk'),
                        ('eval', 'parzen_samples'), ('eval', 'parzen_valid')):
    _positive(config[section][name], f'{section}.{name}')
  _positive(t.kl_weight, 'train.kl_weight', allow_zero=True)
  for weight in t.kl_weights:
    if isinstance(weight, bool) or not isinstance(weight, (int, float)):
      raise errors.ConfigError(
          f'train.kl_weights={tuple(t.kl_weights)!r} must hold '
          "numbers, e.g. --config.train.kl_weights='(1.0, 0.5)'.")
    _positive(weight, 'train.kl_weights', allow_zero=True)
  for field, value in (('seed', config.seed),
                       ('data.split_seed', d.split_seed)):
    if not 0 <= value < 2 ** 31:
      raise errors.ConfigError(
          f'{field}={value} must be in [0, 2**31); seeds are '
          'non-negative 31-bit integers (numpy and JAX keys).')
  _positive(t.eval_every_epochs, 'train.eval_every_epochs')
  _positive(e.num_image_samples, 'eval.num_image_samples')
  for field in ('num_examples', 'iw_num_examples', 'mi_num_examples'):
    _positive(e[field], f'eval.{field}', allow_zero=True)  # 0 = the split
  _positive(t.num_seeds, 'train.num_seeds')
  _positive(t.max_chunk_steps, 'train.max_chunk_steps', allow_zero=True)
  _positive(t.num_devices, 'train.num_devices', allow_zero=True)
  _positive(t.initialization_timeout, 'train.initialization_timeout')
  _positive(t.checkpoint_every_steps, 'train.checkpoint_every_steps',
            allow_zero=True)
  if not 0.0 <= t.z_dropout_rate < 1.0:
    raise errors.ConfigError(
        f'train.z_dropout_rate={t.z_dropout_rate} must be in [0, 1).')
  if m.min_logvar >= m.max_logvar:
    raise errors.ConfigError(f'model.min_logvar={m.min_logvar} must be below '
                             f'model.max_logvar={m.max_logvar}.')
  if m.likelihood == 'gaussian' and d.binarization != 'none':
    raise errors.ConfigError(
        'A Gaussian likelihood models real-valued pixels: set '
        "--config.data.binarization=none (or use "
        "model.likelihood='bernoulli' for binarised data).")


def _check_conv(model: ml_collections.ConfigDict) -> None:
  """model.conv_channels and model.conv_kernel_size (read by
  network=conv only)."""
  channels = tuple(model.conv_channels)
  if not channels or any(isinstance(c, bool) or not isinstance(c, int)
                         or c < 1 for c in channels):
    raise errors.ConfigError(
        f'model.conv_channels={channels!r} must be a non-empty tuple of '
        "positive integers, e.g. --config.model.conv_channels='(32, 64)'.")
  _choice(model.conv_kernel_size, models.KERNEL_SIZES,
          'model.conv_kernel_size')


# The data fields each dataset reads; any other set away from its default
# would be ignored silently (a run "on MNIST" training on the digits).
_DATA_FIELDS = {'path': ('idx', 'npz', 'tfd'),
                'data_dir': input_pipeline.TFDS_NAMES,
                'tfd_fold': ('tfd',),
                'tfd_include_unlabeled': ('tfd',)}


def _check_ignored_data_fields(data: ml_collections.ConfigDict) -> None:
  """Refuses a data field that data.name does not read, set away from its
  default (`defaults.get_config`).

  Raises:
    errors.ConfigError: naming the field, the datasets that read it, and the
      fix.
  """
  default = defaults.get_config().data
  for field, readers in _DATA_FIELDS.items():
    if data.name not in readers and data[field] != default[field]:
      raise errors.ConfigError(
          f'data.{field}={data[field]!r} is ignored by data.name='
          f'{data.name!r} (only {", ".join(readers)} read it), so the run '
          f'would not train on the data you meant. Set --config.data.name to '
          f'the dataset of that {field} (e.g. data.name=idx for a folder of '
          f'MNIST IDX files, npz for your own .npz), or drop data.{field}.')


def check_memory(config: ml_collections.ConfigDict,
                 image_shape: models.ImageShape) -> None:
  """Refuses a model whose parameters and Adam state alone would not fit in
  this machine's memory, before anything is allocated.

  Args:
    config: the full config (model size, batch size, models trained side
      by side).
    image_shape: (H, W) or (H, W, C) of one image (N alone for
      model.network=mlp).

  Raises:
    errors.ConfigError: naming the size and the fields to lower.
  """
  m = config.model
  count = models.network_param_count(m, image_shape, m.latent_dim,
                                     m.hidden_dim)
  team = config.train.num_seeds * max(1, len(config.train.kl_weights))
  state = 4 * 4 * count * team  # params, gradients, two Adam moments; f32
  # The (E, D) masks, and the selection pass's latents: every epitome of
  # every example of a minibatch, (E, B, D), f32.
  latent_dim, size, stride = epitome_shape(m)
  count_e = (1 if m.kind == 'vae' else
             epitomes.num_epitomes(latent_dim, size, stride))
  working = 4 * count_e * latent_dim * (1 + config.train.batch_size) * team
  needed = state + working
  try:
    available = os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE')
  except (ValueError, OSError):
    return
  if needed > available:
    raise errors.ConfigError(
        f'The model has {count:,} parameters per model ({team} model(s)) and '
        f'{count_e:,} epitomes of {latent_dim:,} latent units: its parameters '
        f'and optimizer state need {state / 2 ** 30:,.1f} GiB, its epitome '
        f'masks and the latents of one minibatch over all epitomes '
        f'{working / 2 ** 30:,.1f} GiB, more than this machine\'s '
        f'{available / 2 ** 30:,.1f} GiB. Lower model.latent_dim or raise '
        'model.epitome_size / model.stride (fewer epitomes), or lower '
        'model.hidden_dim, model.num_layers, model.conv_channels or '
        'train.batch_size.')


def flatten(d: Dict[str, Any], prefix: str = '') -> Dict[str, Any]:
  """A nested dict as one level with dotted keys.

  Args:
    d: nested {section: {field: value}}; only dicts are descended into.
    prefix: prepended to every key.

  Returns:
    {'section.field': value}, e.g. {'train.batch_size': 100}.
  """
  flat = {}
  for key, value in d.items():
    if isinstance(value, dict):
      flat.update(flatten(value, f'{prefix}{key}.'))
    else:
      flat[f'{prefix}{key}'] = value
  return flat


def config_as_dict(config: ml_collections.ConfigDict) -> Dict[str, Any]:
  """A config as plain JSON values, as config.json stores it.

  Args:
    config: the config.

  Returns:
    Nested dicts of JSON values (tuples become lists), so that a config
    compares equal to the one read back from config.json.
  """
  return json.loads(config.to_json())


def config_from_dict(saved: Dict[str, Any]) -> ml_collections.ConfigDict:
  """A stored config (nested JSON values) typed as `defaults.get_config`.

  Fields added to the library after it was stored take their defaults (as
  on resume); JSON lists go back to tuples where the default is one; fields
  the library no longer has are dropped.

  Args:
    saved: nested {section: {field: value}}, as config.json holds it.

  Returns:
    The config.
  """
  flat = flatten(saved)
  config = defaults.get_config()
  for field, default in flatten(config_as_dict(config)).items():
    if field in flat:
      section, _, name = field.rpartition('.')
      target = config[section] if section else config
      value = flat[field]
      if isinstance(default, tuple) and isinstance(value, list):
        value = tuple(value)
      target[name] = value
  return config
