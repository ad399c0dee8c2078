"""Metrics to a JSON-lines file and to TensorBoard event files in the
workdir."""

import json
import logging
import math
import time
from typing import Any, Dict, List, Optional


import numpy as np

from evae_jax.storage import files


def _import_tensorboardx():
  """tensorboardX without PyTorch: where torch is installed, tensorboardX
  imports it at start-up (1.7 s on a 2-core CPU) only to accept torch
  tensors, which nothing here passes; a process that already has torch
  keeps it."""
  import sys  # pylint: disable=g-import-not-at-top
  hide = 'torch' not in sys.modules
  if hide:
    sys.modules['torch'] = None  # makes `import torch` raise ImportError
  try:
    import tensorboardX  # pylint: disable=g-import-not-at-top
    from tensorboardX import (  # pylint: disable=g-import-not-at-top
        record_writer)
  finally:
    if hide:
      del sys.modules['torch']
  return tensorboardX.SummaryWriter, record_writer


SummaryWriter, record_writer = _import_tensorboardx()

METRICS_FILE = 'metrics.jsonl'


class MetricWriter:
  """Appends one JSON object per write to ``metrics.jsonl`` and logs scalars
  to TensorBoard under ``workdir/tensorboard``."""

  def __init__(self, workdir: str, resume_step: Optional[int] = None):
    """Opens the writers; with ``resume_step``, first drops every record of a
    later step (from a run killed after its last checkpoint) from
    metrics.jsonl, and tells TensorBoard to purge those steps too.

    Args:
      workdir: the workdir (local path or object-store URI).
      resume_step: the step of the checkpoint a run resumes from; None for
        a fresh run.
    """
    self._path = files.join(workdir, METRICS_FILE)
    if resume_step is not None:
      _truncate(self._path, resume_step)
    if files.is_remote(workdir):
      scheme = workdir.split('://', 1)[0]
      record_writer.register_writer_factory(scheme, _ObjectStoreEvents())
    self._tb = SummaryWriter(
        files.join(workdir, 'tensorboard'),
        purge_step=None if resume_step is None else resume_step + 1)

  def write(self, step: int, scalars: Dict[str, float]) -> None:
    """Appends one record to metrics.jsonl and logs each scalar to
    TensorBoard.

    Args:
      step: the training step the scalars belong to.
      scalars: {name: value}; non-finite values are written to the JSON
        file as strings ('nan', 'inf').
    """
    record = {'step': int(step)}
    record.update({k: float(v) for k, v in scalars.items()})
    files.append_text(self._path, json.dumps(
        {k: (v if not isinstance(v, float) or math.isfinite(v) else str(v))
         for k, v in record.items()}) + '\n')
    for key, value in scalars.items():
      self._tb.add_scalar(key, float(value), int(step))
    self._tb.flush()

  def write_images(self, step: int, images: Dict[str, np.ndarray]) -> None:
    """Logs images (grey-scale or RGB) to TensorBoard.

    Args:
      step: the training step.
      images: {tag: (H, W) grey-scale or (H, W, 3) RGB uint8 image}.
    """
    for key, image in images.items():
      self._tb.add_image(key, image, int(step),
                         dataformats='HW' if image.ndim == 2 else 'HWC')
    self._tb.flush()

  def close(self) -> None:
    """Flushes and closes the TensorBoard writer."""
    self._tb.close()


def _truncate(path: str, last_step: int) -> None:
  """Rewrites ``path`` (atomically) without records after ``last_step``."""
  if not files.exists(path):
    return
  lines = files.read_text(path).splitlines(keepends=True)
  keep = []
  for line in lines:
    try:
      if json.loads(line)['step'] <= last_step:
        keep.append(line if line.endswith('\n') else line + '\n')
    except (ValueError, KeyError, TypeError):
      pass  # a torn last line from a kill mid-write
  if keep != lines:  # a dropped record, or a kept one missing its newline
    files.write_text(path, ''.join(keep))


def read_metrics(workdir: str) -> List[Dict[str, Any]]:
  """All records of ``workdir/metrics.jsonl``, in order.

  Args:
    workdir: the workdir.

  Returns:
    One dict per line: 'step' and the scalars written with it.
  """
  text = files.read_text(files.join(workdir, METRICS_FILE))
  return [json.loads(line) for line in text.splitlines() if line.strip()]


class _ObjectStoreEvents:
  """tensorboardX's writer factory for object-store URIs, through `files`
  (tensorboardX's own ``gs://`` writer needs google-cloud-storage). Each
  flush uploads the event file whole; a resumed run starts a new one."""

  def open(self, path: str) -> files.ObjectWriter:
    return files.ObjectWriter(path)

  def directory_check(self, path: str) -> None:
    del path  # object stores have no folders to create


def keep_damaged_lines(workdir: str) -> None:
  """Lines of metrics.jsonl that are not a record (a torn last line from a
  kill mid-write, or damage) are dropped when the run resumes: says so, and
  keeps them in ``metrics.jsonl.damaged-<time>``, never loses them.

  Args:
    workdir: the workdir (local path or object-store URI).
  """
  path = files.join(workdir, METRICS_FILE)
  if not files.exists(path):
    return
  bad = []
  for number, line in enumerate(files.read_text(path).splitlines(), 1):
    if not line.strip():
      continue
    try:
      record = json.loads(line)
      record['step']  # pylint: disable=pointless-statement
    except (ValueError, KeyError, TypeError, IndexError):
      bad.append((number, line))
  if not bad:
    return
  kept = f'{path}.damaged-{time.strftime("%Y%m%d-%H%M%S")}-{time.time_ns()}'
  files.write_text(kept, ''.join(f'{line}\n' for _, line in bad))
  logging.warning(
      '%s: dropping %d line(s) that are not a metrics record (line %s%s); '
      'they are kept in %s.', path, len(bad),
      ', '.join(str(n) for n, _ in bad[:10]), ', ...' if len(bad) > 10 else '',
      kept)
