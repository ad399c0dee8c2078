"""evae_jax/metric_writers.py: metrics.jsonl (strict JSON, in order), the
TensorBoard scalars beside it, and what a resume drops from both.

Training's records and their steps after real kills and resumes are in
tests/test_train.py, tests/test_reliability.py and tests/test_faults.py;
gs:// workdirs in tests/test_cloud_workdirs.py.
"""

import glob
import json
import os
import struct

import numpy as np
import pytest
from tensorboardX.proto import event_pb2

from evae_jax.train import metric_writers


def _write(workdir, records, resume_step=None):
  writer = metric_writers.MetricWriter(workdir, resume_step=resume_step)
  try:
    for step, scalars in records:
      writer.write(step, scalars)
  finally:
    writer.close()


def _lines(workdir):
  with open(os.path.join(workdir, metric_writers.METRICS_FILE)) as f:
    return f.read()


def _events(workdir):
  """Every event of workdir/tensorboard, file by file in creation order,
  read from the TFRecord framing (length, crc, event, crc)."""
  events = []
  paths = glob.glob(os.path.join(workdir, 'tensorboard', 'events.*'))
  for path in sorted(paths, key=os.path.getmtime):
    with open(path, 'rb') as f:
      data = f.read()
    i = 0
    while i < len(data):
      (length,) = struct.unpack('<Q', data[i:i + 8])
      events.append(event_pb2.Event.FromString(data[i + 12:i + 12 + length]))
      i += 12 + length + 4
  return events


def _scalars(workdir):
  return [(e.step, v.tag, v.simple_value) for e in _events(workdir)
          if e.HasField('summary') for v in e.summary.value]


def test_records_read_back_in_order_as_written(tmp_path):
  workdir = str(tmp_path)
  _write(workdir, [(3, {'loss': 1.5, 'bound': np.float32(-2.25)}),
                   (1, {'loss': 2}),  # order of writing, not of steps
                   (np.int64(7), {})])
  records = metric_writers.read_metrics(workdir)
  assert records == [{'step': 3, 'loss': 1.5, 'bound': -2.25},
                     {'step': 1, 'loss': 2.0}, {'step': 7}]
  assert all(type(r['step']) is int for r in records)
  assert type(records[1]['loss']) is float


def test_non_finite_values_keep_the_file_strict_json(tmp_path):
  workdir = str(tmp_path)
  _write(workdir, [(1, {'a': float('nan'), 'b': float('inf'),
                        'c': -np.inf, 'd': 0.5})])

  def refuse(name):
    raise AssertionError(f'{name} is not JSON')
  for line in _lines(workdir).splitlines():
    json.loads(line, parse_constant=refuse)
  [record] = metric_writers.read_metrics(workdir)
  assert record == {'step': 1, 'a': 'nan', 'b': 'inf', 'c': '-inf', 'd': 0.5}


def test_scalars_reach_tensorboard(tmp_path):
  workdir = str(tmp_path)
  _write(workdir, [(5, {'loss': 1.25}), (10, {'loss': 0.5, 'bound': -3.0})])
  assert _scalars(workdir) == [(5, 'loss', 1.25), (10, 'loss', 0.5),
                               (10, 'bound', -3.0)]


def test_resume_drops_later_records_and_keeps_earlier_ones(tmp_path):
  workdir = str(tmp_path)
  _write(workdir, [(s, {'loss': float(s)}) for s in (10, 20, 30, 40)])
  # Killed after the checkpoint of step 20: 30 and 40 are redone.
  _write(workdir, [(30, {'loss': -30.0})], resume_step=20)
  assert [(r['step'], r['loss']) for r in metric_writers.read_metrics(
      workdir)] == [(10, 10.0), (20, 20.0), (30, -30.0)]
  # TensorBoard is told to hide the old steps after 20 (purge from 21 on).
  starts = [e.step for e in _events(workdir)
            if e.HasField('session_log') and
            e.session_log.status == event_pb2.SessionLog.START]
  assert starts == [21]


def test_resume_at_or_past_the_last_step_keeps_everything(tmp_path):
  workdir = str(tmp_path)
  _write(workdir, [(s, {'loss': float(s)}) for s in (10, 20)])
  before = _lines(workdir)
  for resume_step in (20, 100):
    metric_writers.MetricWriter(workdir, resume_step=resume_step).close()
    assert _lines(workdir) == before


def test_resume_without_a_metrics_file(tmp_path):
  workdir = str(tmp_path)
  _write(workdir, [(5, {'loss': 1.0})], resume_step=4)
  assert metric_writers.read_metrics(workdir) == [{'step': 5, 'loss': 1.0}]


def test_resume_drops_a_torn_last_line(tmp_path):
  workdir = str(tmp_path)
  _write(workdir, [(10, {'loss': 1.0})])
  with open(os.path.join(workdir, metric_writers.METRICS_FILE), 'a') as f:
    f.write('{"step": 20, "lo')  # killed mid-write
  _write(workdir, [(20, {'loss': 2.0})], resume_step=10)
  assert [r['step'] for r in metric_writers.read_metrics(workdir)] == [10, 20]


def test_resume_ends_a_kept_record_with_its_newline_when_it_drops_one(
    tmp_path):
  workdir = str(tmp_path)
  with open(os.path.join(workdir, metric_writers.METRICS_FILE), 'w') as f:
    f.write('{"step": 10}\n{"step": 30}\n{"step": 20}')  # 20: no newline
  _write(workdir, [(30, {'loss': 3.0})], resume_step=20)
  assert [r['step'] for r in metric_writers.read_metrics(workdir)] == [
      10, 20, 30]


def test_resume_ends_a_kept_record_with_its_newline_when_nothing_drops(
    tmp_path):
  workdir = str(tmp_path)
  with open(os.path.join(workdir, metric_writers.METRICS_FILE), 'w') as f:
    f.write('{"step": 10}\n{"step": 20}')  # killed before the newline
  _write(workdir, [(30, {'loss': 3.0})], resume_step=20)
  assert [r['step'] for r in metric_writers.read_metrics(workdir)] == [
      10, 20, 30]
