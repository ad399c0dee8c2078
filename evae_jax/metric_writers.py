"""Metrics to a JSON-lines file and to TensorBoard event files in the workdir."""

import json
import math
import os
from typing import Dict, Optional

import numpy as np

from tensorboardX import SummaryWriter

METRICS_FILE = 'metrics.jsonl'


class MetricWriter:
  """Appends one JSON object per write to ``metrics.jsonl`` and logs scalars
  to TensorBoard under ``workdir/tensorboard``."""

  def __init__(self, workdir: str, resume_step: Optional[int] = None):
    """Opens the writers; with ``resume_step``, first drops every record of a
    later step (from a run killed after its last checkpoint) from
    metrics.jsonl, and tells TensorBoard to purge those steps too."""
    self._path = os.path.join(workdir, METRICS_FILE)
    if resume_step is not None:
      _truncate(self._path, resume_step)
    self._tb = SummaryWriter(
        os.path.join(workdir, 'tensorboard'),
        purge_step=None if resume_step is None else resume_step + 1)

  def write(self, step: int, scalars: Dict[str, float]) -> None:
    record = {'step': int(step)}
    record.update({k: float(v) for k, v in scalars.items()})
    with open(self._path, 'a') as f:
      f.write(json.dumps({k: (v if not isinstance(v, float) or math.isfinite(v)
                              else str(v)) for k, v in record.items()}) + '\n')
    for key, value in scalars.items():
      self._tb.add_scalar(key, float(value), int(step))
    self._tb.flush()

  def write_images(self, step: int, images: Dict[str, np.ndarray]) -> None:
    """Logs uint8 (H, W) grayscale images to TensorBoard."""
    for key, image in images.items():
      self._tb.add_image(key, image, int(step), dataformats='HW')
    self._tb.flush()

  def close(self) -> None:
    self._tb.close()


def _truncate(path: str, last_step: int) -> None:
  """Rewrites ``path`` (atomically) without records after ``last_step``."""
  if not os.path.exists(path):
    return
  with open(path) as f:
    lines = f.readlines()
  keep = []
  for line in lines:
    try:
      if json.loads(line)['step'] <= last_step:
        keep.append(line if line.endswith('\n') else line + '\n')
    except (ValueError, KeyError, TypeError):
      pass  # a torn last line from a kill mid-write
  if len(keep) != len(lines):
    with open(path + '.tmp', 'w') as f:
      f.writelines(keep)
    os.replace(path + '.tmp', path)


def read_metrics(workdir: str):
  """All records of ``workdir/metrics.jsonl``, in order."""
  with open(os.path.join(workdir, METRICS_FILE)) as f:
    return [json.loads(line) for line in f if line.strip()]
