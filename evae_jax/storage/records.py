"""The record saved with each checkpoint step: its step, the checksum of its
arrays, the config that trained it, a digest and the size of its images, and
a checksum of the record itself; read back, and searched for the newest
intact one (`stored_config`)."""

import hashlib
import json
from typing import Optional, Tuple

from evae_jax import errors
from evae_jax.storage import files

# The item beside the arrays in a step folder: the record, written by orbax
# with the arrays into the temporary folder that is renamed into place
# whole, so that a step never counts as saved without its record.
META_ITEM = 'evae_jax'
_META_FILE = 'metadata'  # the file orbax's JsonSave writes in its item


def checksum(record: dict) -> str:
  """sha256 of a step's record as JSON (keys sorted), without its own
  'record_checksum' field: what `Checkpoints.save` stores there.

  Args:
    record: the record (JSON types; tuples count as the lists JSON reads).

  Returns:
    The hex digest (64 characters).
  """
  fields = {k: v for k, v in record.items() if k != 'record_checksum'}
  text = json.dumps(json.loads(json.dumps(fields)), sort_keys=True,
                    separators=(',', ':'))
  return hashlib.sha256(text.encode()).hexdigest()


def stored_config(workdir: str) -> Tuple[Optional[dict], Optional[int]]:
  """The config saved with the newest checkpoint in ``workdir`` that has
  one, and its step.

  Args:
    workdir: the workdir (its ``checkpoints/`` folder is read).

  Returns:
    (config, step): the nested config dict, as in config.json, and the step
    it was saved with; (None, None) if no checkpoint has one (or there is
    none, or the folder cannot be listed).
  """
  return stored_field(workdir, 'config')


def stored_field(workdir: str, field: str
                 ) -> Tuple[Optional[dict], Optional[int]]:
  """One dict field of the newest intact record in ``workdir`` that has it.

  Args:
    workdir: the workdir (its ``checkpoints/`` folder is read).
    field: a field of the records (`Checkpoints.save`'s ``record``), e.g.
      'config'.

  Returns:
    (value, step); (None, None) if no intact record has it as a dict (or
    there is no checkpoint, or the folder cannot be listed).
  """
  directory = files.join(workdir, 'checkpoints')
  try:
    names = files.listdir(directory) if files.isdir(directory) else []
  except Exception:  # pylint: disable=broad-except
    return None, None
  for step in sorted((int(n) for n in names if n.isdigit()), reverse=True):
    try:
      meta = read(files.join(directory, str(step)))
    except errors.CheckpointError:  # damaged: the step before tells
      continue
    if isinstance(meta, dict) and isinstance(meta.get(field), dict):
      return meta[field], step
  return None, None


def read(path: str) -> Optional[dict]:
  """The record saved in step folder ``path`` (None: none was saved, as by
  earlier versions), checked against its own checksum when it has one.

  Raises:
    errors.CheckpointError: the record exists but cannot be read, or does
      not match its checksum.
  """
  meta_path = files.join(path, META_ITEM, _META_FILE)
  if not files.exists(files.join(path, META_ITEM)):
    return None
  try:
    meta = json.loads(files.read_text(meta_path))
  except Exception as e:  # pylint: disable=broad-except
    raise errors.CheckpointError(
        f'its record {meta_path} is unreadable ({e})') from e
  if not isinstance(meta, dict):
    raise errors.CheckpointError(f'its record {meta_path} is not a JSON object')
  # Records of earlier versions have no checksum of their own.
  if 'record_checksum' in meta and (
      meta['record_checksum'] != checksum(meta)):
    raise errors.CheckpointError(
        f'its record {meta_path} does not match the checksum saved with it '
        '(bit flips or an edit by hand)')
  return meta
