"""Trained models as single files, and the ones shipped with the package.

    evae_jax.export('runs/mnist_evae', 'mnist-evae.npz')   # or --mode=export
    m = evae_jax.load('mnist-evae.npz')                    # no data, no orbax
    m = evae_jax.load('pretrained:mnist-evae')             # shipped, offline
    m = evae_jax.load('https://host/mnist-evae.npz', sha256='9f2c...')

A model file (`evae_jax.storage.model_file`) holds the config, the
parameters, the image shape, the code that trained it and the evaluation
numbers of its workdir; loading it needs none of the training data (they are
read only if ``m.splits`` is used, from ``data.path`` as trained or
``overrides={'data.path': ...}``). ``pretrained:NAME`` names a file shipped
in this folder (`available` lists them; each has a model card
``NAME.md``: data, command, budget, test numbers, licence). A URL is
downloaded once into a cache folder (``$EVAE_JAX_CACHE``, default
``~/.cache/evae_jax``) and must come with its SHA-256.
"""

import hashlib
import json
import os
import types
import urllib.request
from typing import Any, Dict, List, Optional

import jax

from evae_jax import errors
from evae_jax.storage import files
from evae_jax.storage import model_file
from evae_jax.storage import provenance

PRETRAINED = 'pretrained:'
_HERE = os.path.dirname(os.path.abspath(__file__))
_URL_SCHEMES = ('https://', 'http://')


def available() -> List[str]:
  """The names ``load('pretrained:NAME')`` accepts."""
  return sorted(f[:-len('.npz')] for f in os.listdir(_HERE)
                if f.endswith('.npz'))


def card(name: str) -> str:
  """The model card (markdown) of a shipped model."""
  path = os.path.join(_HERE, f'{name}.md')
  if not os.path.isfile(path):
    raise errors.ConfigError(_unknown(name))
  with open(path) as f:
    return f.read()


def _unknown(name: str) -> str:
  return (f'No pretrained model {name!r}; shipped: '
          f'{", ".join(available()) or "none"} '
          f"(evae_jax.load('pretrained:NAME')).")


def is_model_source(source: str) -> bool:
  """Whether `evae_jax.load` should read ``source`` as a model file (a
  ``pretrained:`` name, a URL, or a file) rather than a workdir."""
  source = str(source)
  if source.startswith(PRETRAINED) or source.startswith(_URL_SCHEMES):
    return True
  try:
    return files.isfile(source)
  except Exception:  # pylint: disable=broad-except
    return False


def _cache_dir() -> str:
  return os.environ.get('EVAE_JAX_CACHE') or os.path.join(
      os.path.expanduser('~'), '.cache', 'evae_jax')


def _download(url: str, sha256: Optional[str]) -> bytes:
  """The bytes at ``url``, checked against ``sha256``, cached by digest."""
  if not sha256:
    raise errors.ConfigError(
        f'Loading {url} needs its SHA-256, so that a changed or truncated '
        "download is refused: evae_jax.load(url, sha256='...') (the "
        'digest export printed, or `sha256sum FILE`).')
  cached = os.path.join(_cache_dir(), f'{sha256}.npz')
  if os.path.isfile(cached):
    with open(cached, 'rb') as f:
      raw = f.read()
    if hashlib.sha256(raw).hexdigest() == sha256:
      return raw
  try:
    with urllib.request.urlopen(url, timeout=60) as response:
      raw = response.read()
  except OSError as e:
    raise errors.ConfigError(f'Cannot download {url} ({e}).') from e
  digest = hashlib.sha256(raw).hexdigest()
  if digest != sha256:
    raise errors.ConfigError(
        f'{url}: the download has SHA-256 {digest}, not the {sha256} asked '
        'for: the file changed or the download was cut short. Nothing was '
        'loaded or cached.')
  os.makedirs(os.path.dirname(cached), exist_ok=True)
  files.write_bytes(cached, raw)
  return raw


def read_source(source: str, sha256: Optional[str] = None) -> bytes:
  """The bytes of a model file named by ``source``.

  Args:
    source: ``pretrained:NAME``, an ``http(s)://`` URL, or a file path
      (local or ``gs://``).
    sha256: the file's expected SHA-256: required for a URL, checked for a
      file when given.

  Raises:
    errors.ConfigError: an unknown name, a failed or mismatched download,
      or a file whose digest is not ``sha256``.
  """
  source = str(source)
  if source.startswith(PRETRAINED):
    name = source[len(PRETRAINED):]
    path = os.path.join(_HERE, f'{name}.npz')
    if not os.path.isfile(path):
      raise errors.ConfigError(_unknown(name))
    with open(path, 'rb') as f:
      raw = f.read()
  elif source.startswith(_URL_SCHEMES):
    return _download(source, sha256)
  else:
    raw = files.read_bytes(source)
  if sha256 and hashlib.sha256(raw).hexdigest() != sha256:
    raise errors.ConfigError(
        f'{source} has SHA-256 {hashlib.sha256(raw).hexdigest()}, not '
        f'{sha256}.')
  return raw


def export(workdir: str, path: str, member: Optional[str] = None) -> str:
  """Writes the newest checkpoint of a trained run as one model file.

  Args:
    workdir: the trained run (as for `evae_jax.load`).
    path: the file to write (``.npz``; local or ``gs://``).
    member: for a run of several models, which one (as for `load`).

  Returns:
    The file's SHA-256 (what a download of it is checked against).

  Raises:
    evae_jax.errors.ConfigError: as `evae_jax.load`.
  """
  from evae_jax import api  # pylint: disable=g-import-not-at-top
  from evae_jax import configuration  # pylint: disable=g-import-not-at-top
  m = api.load(workdir, member=member)
  source = files.join(str(workdir), member) if member else str(workdir)
  evaluation = {}
  eval_json = files.join(source, 'eval.json')
  if files.exists(eval_json):
    try:
      full = json.loads(files.read_text(eval_json))
      if full.get('step') == m.step:
        evaluation = {k: full[k] for k in (
            'split', 'num_examples', 'bound', 'logsumexp_bound',
            'iw_log_likelihood', 'parzen', 'mutual_information',
            'epitome_usage', 'examples_sha256')
                      if k in full}
        evaluation['active_units'] = {
            k: v for k, v in full.get('active_units', {}).items()
            if k in ('count', 'threshold', 'count_at_0.01', 'count_at_0.02',
                     'activity', 'per_unit_kl')}
    except ValueError:
      evaluation = {}
  meta = {'config': configuration.config_as_dict(m.config),
          'image_shape': list(m.image_shape), 'step': m.step,
          'trained_with': provenance.trained_with(source, m.step),
          'exported_with': provenance.code_version(),
          'evaluation': evaluation, 'workdir': source}
  return model_file.write(path, m.params, meta)


def load(source: str, sha256: Optional[str] = None,
         overrides: Optional[Dict[str, Any]] = None):
  """A `evae_jax.api.TrainedModel` from a model file (see `read_source`).

  Args:
    source: ``pretrained:NAME``, a URL or a file path.
    sha256: the expected SHA-256 (required for a URL).
    overrides: config fields to change, flattened (``data.*`` and
      ``eval.*`` only: the rest defines the trained model).

  Returns:
    The model; ``.meta`` holds the file's description (the code that
    trained it, its evaluation numbers).

  Raises:
    evae_jax.errors.ConfigError: as `read_source` and `model_file.read`,
      or an override of a field that defines the model.
  """
  from evae_jax import api  # pylint: disable=g-import-not-at-top
  from evae_jax import configuration  # pylint: disable=g-import-not-at-top
  from evae_jax import models  # pylint: disable=g-import-not-at-top
  meta, params = model_file.read(read_source(source, sha256), str(source))
  config = configuration.config_from_dict(meta['config'])
  for field, value in (overrides or {}).items():
    section, _, name = field.rpartition('.')
    if section not in ('data', 'eval') or name not in config[section]:
      raise errors.ConfigError(
          f'overrides: {field!r} cannot change on a model file (only '
          'existing data.* and eval.* fields can).')
    config[section][name] = value
  shape = tuple(int(n) for n in meta['image_shape'])
  model = models.evaluation_model(config, shape)
  params = jax.tree_util.tree_map(jax.numpy.asarray, params)
  state = types.SimpleNamespace(params=params, model=model, step=meta['step'])
  trained = api.TrainedModel(str(source), config, state, shape)
  trained.meta = meta
  return trained
