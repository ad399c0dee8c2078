"""A trained model in one self-contained file: what `evae_jax.export` writes
and `evae_jax.load` reads without the training data, orbax or a workdir.

The file is an ``.npz`` archive (numpy's zip of arrays; read with
``allow_pickle=False``, so it can hold no code):

- ``__meta__``: a uint8 array of UTF-8 JSON: the format version, the config
  the model was trained with, the image shape (H, W), the training-set size,
  the step, the code that trained it (`provenance`), the evaluation numbers
  of the workdir's ``eval.json`` where there is one, and ``params_sha256``;
- ``params/<path>``: one float32 array per parameter, ``<path>`` the
  parameter's path in the Flax tree joined by ``/``.

``params_sha256`` is the SHA-256 of every parameter's path and bytes in path
order, so a flipped bit anywhere in the weights is found at load time; the
file's own SHA-256 (`file_sha256`) is what a download is checked against.
What evaluation needs besides the weights is in the config: the binarisation
rule (``data.binarization``, ``data.split_seed``) and the likelihood; the
output bias set from the training-pixel mean is a trained parameter.
"""

import hashlib
import io
import json
from typing import Any, Dict, Tuple

import numpy as np
from flax import traverse_util

from evae_jax import errors
from evae_jax.storage import files

FORMAT = 'evae_jax-model'
VERSION = 1
META = '__meta__'
PREFIX = 'params/'


def params_sha256(flat: Dict[str, np.ndarray]) -> str:
  """SHA-256 over every (path, float32 bytes) in path order.

  Args:
    flat: {'/'-joined parameter path: array}.

  Returns:
    The hex digest.
  """
  h = hashlib.sha256()
  for path in sorted(flat):
    h.update(path.encode())
    h.update(np.ascontiguousarray(flat[path], np.float32).tobytes())
  return h.hexdigest()


def flatten(params: Any) -> Dict[str, np.ndarray]:
  """A Flax parameter tree -> {'a/b/kernel': float32 numpy array}."""
  flat = traverse_util.flatten_dict(params, sep='/')
  return {k: np.asarray(v, np.float32) for k, v in flat.items()}


def write(path: str, params: Any, meta: Dict[str, Any]) -> str:
  """Writes the model file atomically.

  Args:
    path: the file to write (local or ``gs://``); its parent must exist.
    params: the parameter tree.
    meta: the JSON-serialisable description (config, image_shape, ...);
      the format, version and ``params_sha256`` are added.

  Returns:
    The file's SHA-256 (`file_sha256`).
  """
  flat = flatten(params)
  meta = dict(meta, format=FORMAT, version=VERSION,
              params_sha256=params_sha256(flat))
  arrays = {PREFIX + k: v for k, v in flat.items()}
  arrays[META] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(),
                               np.uint8)
  buffer = io.BytesIO()
  np.savez(buffer, **arrays)
  raw = buffer.getvalue()
  files.write_bytes(path, raw)
  return hashlib.sha256(raw).hexdigest()


def file_sha256(raw: bytes) -> str:
  """The SHA-256 of a model file's bytes."""
  return hashlib.sha256(raw).hexdigest()


def read(raw: bytes, where: str = 'the model file'
         ) -> Tuple[Dict[str, Any], Dict[str, Any]]:
  """Reads a model file's bytes.

  Args:
    raw: the bytes.
    where: the file's name, for messages.

  Returns:
    (meta, params): the description and the parameter tree (float32 numpy).

  Raises:
    errors.ConfigError: not a model file, a newer format version, or
      parameters whose checksum does not match (damaged or edited).
  """
  try:
    archive = np.load(io.BytesIO(raw), allow_pickle=False)
    if not isinstance(archive, np.lib.npyio.NpzFile) or META not in archive:
      raise ValueError('no __meta__ entry')
    meta = json.loads(bytes(archive[META]).decode())
    flat = {k[len(PREFIX):]: archive[k] for k in archive.files
            if k.startswith(PREFIX)}
  except Exception as e:  # pylint: disable=broad-except
    raise errors.ConfigError(
        f'{where} is not an evae_jax model file ({type(e).__name__}: {e}). '
        'Model files are written by evae_jax.export(workdir, path) or '
        '`python -m evae_jax.main --workdir=W --mode=export '
        '--export_path=PATH`.') from e
  if meta.get('format') != FORMAT:
    raise errors.ConfigError(f'{where} is not an evae_jax model file.')
  if int(meta.get('version', 0)) > VERSION:
    raise errors.ConfigError(
        f'{where} was written by a newer evae_jax (model file version '
        f'{meta["version"]}; this one reads up to {VERSION}): upgrade '
        'evae_jax.')
  if params_sha256(flat) != meta.get('params_sha256'):
    raise errors.ConfigError(
        f'{where}: its parameters do not match the checksum recorded with '
        'them: the file is damaged or was edited. Export it again, or '
        'download it again.')
  return meta, traverse_util.unflatten_dict(flat, sep='/')
