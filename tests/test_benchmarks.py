"""experiments.whole_job's four jobs (evae_jax and PyTorch, float32 and
bfloat16): their order, their command lines, the medians and ratios;
experiments.torch_job's --autocast; experiments.benchmark's interleaving.
The PyTorch parts are skipped where torch is not installed."""

import gzip
import os
import subprocess
import sys

import numpy as np
import pytest

from experiments import whole_job
from tests.conftest import ROOT

FOUR = ['evae_jax', 'evae_jax_bf16', 'pytorch', 'pytorch_autocast']


def _fake_jobs(names):
  """Jobs whose command line is [name, workdir], and a runner that records
  the names it ran and returns 1, 2, 3, ... seconds in call order."""
  calls = []
  def run(command):
    calls.append(command[0])
    return float(len(calls))
  return {n: (lambda w, n=n: [n, w]) for n in names}, calls, run


def test_four_jobs_rotate_by_one_each_round():
  jobs, calls, run = _fake_jobs(FOUR)
  times = whole_job.alternate(jobs, 5, run)
  a, b, c, d = FOUR
  assert calls == [a, b, c, d,  b, c, d, a,  c, d, a, b,  d, a, b, c,
                   a, b, c, d]
  # every job once a round, its time from its own run
  assert times == {a: [1.0, 8.0, 11.0, 14.0, 17.0],
                   b: [2.0, 5.0, 12.0, 15.0, 18.0],
                   c: [3.0, 6.0, 9.0, 16.0, 19.0],
                   d: [4.0, 7.0, 10.0, 13.0, 20.0]}


def test_two_jobs_alternate_as_before():
  jobs, calls, run = _fake_jobs(['evae_jax', 'pytorch'])
  whole_job.alternate(jobs, 3, run)
  assert calls == ['evae_jax', 'pytorch', 'pytorch', 'evae_jax',
                   'evae_jax', 'pytorch']


def test_each_job_runs_in_its_own_fresh_workdir():
  workdirs = []
  def run(command):
    workdirs.append(command[1])
    assert not os.path.exists(command[1])
    return 1.0
  whole_job.alternate({n: (lambda w: ['x', w]) for n in FOUR}, 2, run)
  assert len(workdirs) == 8
  assert not any(os.path.exists(os.path.dirname(w)) for w in workdirs)


def test_summary_medians_and_every_ratio_by_hand():
  times = {'evae_jax': [30.0, 10.0, 20.0],        # median 20
           'evae_jax_bf16': [12.0, 18.0, 15.0],   # median 15
           'pytorch': [50.0, 40.0, 45.0],         # median 45
           'pytorch_autocast': [25.0, 35.0, 30.0]}  # median 30
  got = whole_job.summary(times)
  assert got['evae_jax_median_s'] == 20.0
  assert got['evae_jax_bf16_median_s'] == 15.0
  assert got['pytorch_median_s'] == 45.0
  assert got['pytorch_autocast_median_s'] == 30.0
  assert got['ratios'] == pytest.approx({
      'evae_jax_bf16 / pytorch_autocast': 15 / 30,
      'evae_jax / pytorch': 20 / 45,
      'evae_jax / pytorch_autocast': 20 / 30,
      'evae_jax_bf16 / pytorch': 15 / 45})
  # the bfloat16 pair first, then evae_jax's jobs in order
  assert list(got['ratios']) == ['evae_jax_bf16 / pytorch_autocast',
                                 'evae_jax / pytorch',
                                 'evae_jax / pytorch_autocast',
                                 'evae_jax_bf16 / pytorch']
  assert got['ratio'] == pytest.approx(20 / 45)   # float32 against float32
  rows = [line.split() for line in
          whole_job.format_summary(times, got).splitlines()]
  assert ['evae_jax_bf16', '15.0', '(12.0-18.0)'] in rows
  assert ['evae_jax_bf16', '/', 'pytorch_autocast', '0.500', 'bfloat16',
          'against', 'bfloat16'] in rows
  assert ['evae_jax', '/', 'pytorch', '0.444', 'float32', 'against',
          'float32'] in rows


def test_summary_of_the_float32_pair_alone_keeps_its_ratio():
  got = whole_job.summary({'evae_jax': [10.0, 30.0, 20.0],
                           'pytorch': [40.0, 5.0, 50.0]})
  assert got['ratio'] == 0.5
  assert got['ratios'] == {'evae_jax / pytorch': 0.5}


def test_summary_without_the_float32_pair_has_no_float32_ratio():
  got = whole_job.summary({'evae_jax_bf16': [4.0], 'pytorch_autocast': [8.0]})
  assert 'ratio' not in got
  assert got['ratios'] == {'evae_jax_bf16 / pytorch_autocast': 0.5}
  assert whole_job.summary({'evae_jax': [1.0]})['ratios'] == {}


def test_command_lines_differ_only_in_the_precision_flag():
  command = {n: whole_job.JOBS[n]('/d', 3, '/w') for n in FOUR}
  assert command['evae_jax'][1:] == [
      '-m', 'evae_jax.main', '--config=configs/mnist.py', '--workdir=/w',
      '--config.data.name=idx', '--config.data.path=/d',
      '--config.train.assignment=step', '--config.train.num_epochs=3',
      '--config.train.progress_bar=False']
  assert command['evae_jax_bf16'] == (command['evae_jax']
                                      + ['--config.model.dtype=bfloat16'])
  assert command['pytorch'][1:] == ['-m', 'experiments.torch_job',
                                    '--data=/d', '--epochs=3', '--out=/w']
  assert command['pytorch_autocast'] == (command['pytorch']
                                         + ['--autocast=bfloat16'])
  assert all(c[0] == sys.executable for c in command.values())


def test_whole_job_refuses_an_unknown_job():
  run = subprocess.run(
      [sys.executable, '-m', 'experiments.whole_job', '--data=/nowhere',
       '--jobs=evae_jax,pytorch_fp16'], cwd=ROOT, capture_output=True,
      text=True, timeout=120)
  assert run.returncode != 0
  assert '--jobs=evae_jax,pytorch_fp16' in run.stderr
  assert 'pytorch_autocast' in run.stderr


def test_benchmark_times_its_calls_interleaved():
  from experiments import benchmark
  order = []
  calls = {k: (lambda k=k: order.append(k) or 0.0) for k in ('f32', 'bf16')}
  got = benchmark._interleaved_medians(calls, 3)  # pylint: disable=protected-access
  assert order == ['f32', 'bf16'] * 4     # one warm-up round, then 3
  assert set(got) == {'f32', 'bf16'} and all(t >= 0 for t in got.values())


def test_objective_table_orders_k_by_number_and_marks_what_is_not_timed():
  """The objectives table: the point objective first, then each objective's
  k in numeric order (k = 5 before k = 10), one row per (objective, k),
  and the VAE's cells of iwae_marginal (one epitome: the same as iwae, not
  timed) marked."""
  from experiments import benchmark
  t = lambda ms, over: {'step_seconds': ms / 1e3, 'over_point': over}
  r = {'vae/iwae/k=10': t(4.0, 2.0), 'vae/iwae/k=5': t(3.0, 1.5),
       'evae/iwae/k=10': t(8.0, 2.5), 'evae/iwae/k=5': t(6.0, 1.75),
       'vae/point/k=1': t(2.0, 1.0), 'evae/point/k=1': t(3.2, 1.0),
       'evae/iwae_marginal/k=5': t(7.0, 2.25)}
  rows = benchmark.format_objectives(r).splitlines()[2:]
  assert rows == ['| point | 1 | 2.00 | 1.00 | 3.20 | 1.00 |',
                  '| iwae | 5 | 3.00 | 1.50 | 6.00 | 1.75 |',
                  '| iwae | 10 | 4.00 | 2.00 | 8.00 | 2.50 |',
                  '| iwae_marginal | 5 | (= iwae) |  | 7.00 | 2.25 |']


def _idx(path, images):
  """Writes uint8 images (n, 28 * 28) as a gzipped IDX3 file."""
  header = np.array([2051, len(images), 28, 28], '>i4').tobytes()
  with gzip.open(path, 'wb') as f:
    f.write(header + images.astype(np.uint8).tobytes())


def _torch_job(tmp_path, *flags):
  data = tmp_path / 'data'
  data.mkdir(exist_ok=True)
  _idx(str(data / 'train-images-idx3-ubyte.gz'),
       np.random.RandomState(0).randint(0, 256, (20, 784)))
  return subprocess.run(
      [sys.executable, '-m', 'experiments.torch_job', f'--data={data}',
       '--epochs=0', f'--out={tmp_path / "out"}', *flags], cwd=ROOT,
      capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize('value', ['off', 'bfloat16'])
def test_torch_job_accepts_its_autocast_values(tmp_path, value):
  pytest.importorskip('torch')
  run = _torch_job(tmp_path, f'--autocast={value}')
  assert run.returncode == 0, run.stderr[-3000:]


def test_torch_job_refuses_another_autocast_dtype(tmp_path):
  pytest.importorskip('torch')
  run = _torch_job(tmp_path, '--autocast=float16')
  assert run.returncode != 0
  assert 'autocast' in run.stderr and 'bfloat16' in run.stderr


def _linear_output_dtypes(model, fn):
  torch = pytest.importorskip('torch')
  seen = []
  hooks = [m.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
           for m in model.modules() if isinstance(m, torch.nn.Linear)]
  out = fn()
  for h in hooks:
    h.remove()
  return out, set(seen)


def test_torch_autocast_puts_the_networks_in_bfloat16_and_the_loss_in_float32():
  torch = pytest.importorskip('torch')
  from experiments import torch_job
  torch.manual_seed(0)
  model = torch_job.EVAE(pixels=16, hidden=32, layers=2, latent=4)
  masks = torch_job.epitome_masks(4, 2)
  x = torch.bernoulli(torch.full((8, 16), 0.4))
  torch.manual_seed(1)
  want, seen = _linear_output_dtypes(model, lambda: model.loss(x, masks))
  assert seen == {torch.float32}
  torch.manual_seed(1)
  got, seen = _linear_output_dtypes(
      model, lambda: model.loss(x, masks, torch.bfloat16))
  assert seen == {torch.bfloat16}
  assert got.dtype == torch.float32
  # bfloat16 keeps 8 significant bits
  np.testing.assert_allclose(got.item(), want.item(), rtol=2e-2)
  got.backward()
  assert {p.dtype for p in model.parameters()} == {torch.float32}
  assert {p.grad.dtype for p in model.parameters()} == {torch.float32}
  # validation is float32 whatever the steps ran in
  bound, seen = _linear_output_dtypes(model, lambda: model.bound(x, masks))
  assert seen == {torch.float32} and bound.dtype == torch.float32


def test_the_machine_record_names_cpu_cores_and_bf16_flags(monkeypatch,
                                                           tmp_path):
  from experiments import whole_job
  cpuinfo = tmp_path / 'cpuinfo'
  cpuinfo.write_text('processor\t: 0\nmodel name\t: Test CPU 9000\n'
                     'flags\t\t: fpu avx512_bf16 sse\n')
  real_open = open
  monkeypatch.setattr(
      'builtins.open', lambda path, *a, **k: real_open(
          cpuinfo if path == '/proc/cpuinfo' else path, *a, **k))
  got = whole_job.machine()
  assert got['cpu_model'] == 'Test CPU 9000'
  assert got['bfloat16_flags'] == ['avx512_bf16']
  assert got['cores'] == len(os.sched_getaffinity(0)) >= 1
  assert got['platform']
