"""Sweep files, the sweep runner, the paper tables and the benchmark."""

import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from configs import test as test_config
from experiments import sweeps
from experiments import tables
from tests.conftest import ROOT

SWEEPS = sorted(glob.glob(os.path.join(ROOT, 'configs', 'sweeps', '[a-z]*.py')))


@pytest.mark.parametrize('path', SWEEPS, ids=os.path.basename)
def test_every_sweep_point_is_a_valid_config(path):
  from evae_jax import configuration
  import importlib.util
  spec = importlib.util.spec_from_file_location('s', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  points = sweeps.load_points(path)
  assert points
  names = [sweeps.point_name(p) for p in points]
  assert len(set(names)) == len(names)       # one workdir per point
  for point in points:
    config = module.get_config()
    for key, value in point.items():
      section, field = key.split('.')
      config[section][field] = value
    configuration.validate(config)


def test_paper_numbers_are_complete():
  paper = json.load(open(tables.PAPER_FILE))
  assert len(paper['table1']) == 3 * 3 * 4 and len(paper['table4']) == 3 * 3 * 6
  assert len(paper['table2']) == 6 and len(paper['table3']) == 6
  cell = [r for r in paper['table4'] if r['kind'] == 'vae' and
          r['latent_dim'] == 24 and r['num_layers'] == 1 and
          r['hidden_dim'] == 500][0]
  assert (cell['parzen'], cell['active_units']) == (213, 22)


def test_runner_skips_done_points_and_survives_failures(tmp_path):
  sweep = tmp_path / 'tiny_sweep.py'
  sweep.write_text(
      'from configs import test\n'
      'def get_config():\n  return test.get_config()\n'
      'def sweep():\n'
      '  return [{"model.kind": "vae"}, {"model.kind": "evae"},\n'
      '          {"model.kind": "evae", "model.epitome_size": 99}]\n')
  root = str(tmp_path / 'root')
  run = lambda: subprocess.run(
      [sys.executable, '-m', 'experiments.run_sweep', f'--sweep={sweep}',
       f'--root={root}', '--set=train.num_epochs=1'], cwd=ROOT,
      capture_output=True, text=True, timeout=600)
  first = run()
  assert first.returncode == 1   # one point is invalid
  status = json.load(open(os.path.join(root, sweeps.STATUS_FILE)))
  assert status['kind=vae']['status'] == 'done'
  assert status['kind=evae']['status'] == 'done'
  bad = status['kind=evae,epitome_size=99']
  assert bad['status'] == 'failed' and 'K must satisfy' in bad['output_tail']
  assert os.path.exists(os.path.join(root, 'kind=evae', 'eval.json'))
  mtime = os.path.getmtime(os.path.join(root, 'kind=vae', 'eval.json'))
  second = run()
  assert 'start kind=vae\n' not in second.stdout
  assert os.path.getmtime(os.path.join(root, 'kind=vae', 'eval.json')) == mtime
  summary = tables.render(root, 'summary')
  assert 'kind=vae' in summary and 'kind=evae' in summary
  table = tables.render(root, 'table4')
  assert '213 (22)' in table   # the paper's number sits beside ours


def test_list_says_what_a_run_would_do_point_by_point_and_runs_nothing(
    tmp_path):
  sweep = tmp_path / 'tiny_sweep.py'
  sweep.write_text(
      'from configs import test\n'
      'def get_config():\n  return test.get_config()\n'
      'def sweep():\n  return [{"model.kind": "vae"}, {"model.kind": "evae"}]\n')
  root, keep = tmp_path / 'root', tmp_path / 'keep'
  epochs = test_config.get_config().train.num_epochs
  def evaluated(folder, epochs_trained):
    os.makedirs(folder)
    json.dump({'config': {'train': {'schedule': 'constant',
                                    'num_epochs': epochs}},
               'checkpoint_epochs': epochs_trained},
              open(folder / 'eval.json', 'w'))
  evaluated(keep / 'kind=vae,seed=0', epochs)
  evaluated(root / 'kind=evae,seed=0', epochs)
  evaluated(root / 'kind=vae,seed=1', epochs - 1)   # another budget
  os.makedirs(root / 'kind=vae,seed=1' / 'checkpoints' / '120')
  result = subprocess.run(
      [sys.executable, '-m', 'experiments.run_sweep', f'--sweep={sweep}',
       f'--root={root}', f'--keep={keep}', '--seeds=2', '--list'], cwd=ROOT,
      capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr
  states = {}
  for line in result.stdout.splitlines()[:4]:
    state, name = line.strip().rsplit(' ', 1)
    states[name] = state.strip()
  assert states == {'kind=vae,seed=0': 'kept', 'kind=evae,seed=0': 'finished',
                    'kind=vae,seed=1': 'resumes from step 120',
                    'kind=evae,seed=1': 'to run'}
  assert '2 of 4 points done, 2 to run' in result.stdout
  assert not os.path.exists(keep / 'kind=evae,seed=0')  # nothing copied


def test_failure_reason_is_the_last_error_line_in_the_sweeps_words():
  tail = ('I1202 log line\nerror: data.path is wrong; set '
          '--config.data.path=DIR.\nI1202 shutting down\n')
  assert sweeps.failure_reason(tail) == (
      'error: data.path is wrong; set --set=data.path=DIR.')
  assert sweeps.failure_reason('Traceback\nKeyError: x\n') == 'KeyError: x'


def test_a_sweep_whose_points_all_fail_alike_says_why_and_stops(tmp_path):
  sweep = tmp_path / 'tiny_sweep.py'
  sweep.write_text(
      'from configs import test\n'
      'def get_config():\n  return test.get_config()\n'
      'def sweep():\n'
      '  return [{"model.latent_dim": d} for d in (2, 4, 6, 8, 10)]\n')
  root = str(tmp_path / 'root')
  run = subprocess.run(
      [sys.executable, '-m', 'experiments.run_sweep', f'--sweep={sweep}',
       f'--root={root}', '--workers=1', '--set=data.name=idx',
       f'--set=data.path={tmp_path / "missing"}'], cwd=ROOT,
      capture_output=True, text=True, timeout=600)
  assert run.returncode == 1
  assert 'failed latent_dim=2: error: data.path=' in run.stdout
  assert '--set=data.path' in run.stdout and '--config.' not in run.stdout
  assert 'stopping: the first 3 points all failed the same way' in run.stdout
  status = json.load(open(os.path.join(root, sweeps.STATUS_FILE)))
  assert [status[f'latent_dim={d}']['status'] for d in (2, 4, 6, 8, 10)] == (
      ['failed'] * 3 + ['not started'] * 2)
  assert '2 not started' in run.stdout


def test_seeds_are_separate_points_seed_major():
  points = [{'model.kind': 'vae'}, {'model.kind': 'evae'}]
  seeded = sweeps.with_seeds(points, 3)
  assert [sweeps.point_name(p) for p in seeded[:2]] == [
      'kind=vae,seed=0', 'kind=evae,seed=0']
  assert [p['seed'] for p in seeded] == [0, 0, 1, 1, 2, 2]
  assert sweeps.with_seeds(points, 0) == points


def test_runner_keeps_results_and_skips_kept_points(tmp_path):
  """A finished point is copied to the kept folder (no checkpoints), and a
  rerun on a fresh root (a new machine) skips it instead of training it."""
  sweep = tmp_path / 'tiny_sweep.py'
  sweep.write_text(
      'from configs import test\n'
      'def get_config():\n  return test.get_config()\n'
      'def sweep():\n  return [{"model.kind": "vae"}]\n')
  keep = tmp_path / 'kept'
  run = lambda root: subprocess.run(
      [sys.executable, '-m', 'experiments.run_sweep', f'--sweep={sweep}',
       f'--root={tmp_path / root}', '--set=train.num_epochs=1', '--seeds=2',
       f'--keep={keep}'], cwd=ROOT, capture_output=True, text=True,
      timeout=600)
  first = run('a')
  assert first.returncode == 0, first.stdout + first.stderr
  for seed in (0, 1):
    kept = keep / f'kind=vae,seed={seed}'
    files = set(os.listdir(kept))
    assert {'eval.json', 'eval_examples.npz', 'samples.png'} <= files
    assert 'checkpoints' not in files
    assert json.load(open(kept / 'eval.json'))['config']['seed'] == seed
  second = run('b')   # a fresh root: nothing trained there
  assert second.returncode == 0 and 'start' not in second.stdout
  assert not os.path.exists(tmp_path / 'b' / 'kind=vae,seed=0')


def test_benchmark_runs_and_reports_every_target(tmp_path):
  out = str(tmp_path / 'bench.json')
  result = subprocess.run(
      [sys.executable, '-m', 'experiments.benchmark', '--hidden_dim=32',
       '--latent_dim=8', '--epitome_size=2', '--repeats=3', '--epoch_steps=8',
       '--num_models=2', '--iw_samples=10', '--matmul_size=64',
       '--objective_samples=5', '--num_pixels=64', f'--out={out}'], cwd=ROOT,
      capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  r = json.load(open(out))
  for key in ('evae_over_vae_step_time', 'evae_over_vae_flops',
              'matmul_flops_per_sec', 'vmap_models', 'iw'):
    assert key in r
  assert r['evae']['num_epitomes'] == 4 and r['vae']['num_epitomes'] == 1
  assert r['evae_over_vae_flops'] > 1
  assert '| median train step (ms) |' in result.stdout
  objectives = r['objectives']
  # One k is enough to check every objective of each kind is timed (the
  # default k = 5, 50 compile three more programs).
  assert set(objectives) == {'vae/point/k=1', 'vae/iwae/k=5',
                             'evae/point/k=1', 'evae/iwae/k=5',
                             'evae/iwae_marginal/k=5'}
  assert objectives['evae/point/k=1']['over_point'] == 1.0
  assert '| iwae_marginal | 5 |' in result.stdout


def test_benchmark_flop_count_by_hand():
  from experiments import benchmark
  from configs import default
  config = default.get_config()
  config.model.update(num_layers=1, hidden_dim=10, latent_dim=4,
                      epitome_size=2)
  config.train.batch_size = 1
  # encoder 6*10 + 2*10*4 = 140 MACs, decoder 4*10 + 10*6 = 100 MACs;
  # eVAE: 3 * 140 + 2 * 100 (selection) + 3 * 100, times 2 FLOPs per MAC.
  assert benchmark.step_flops(config, 6) == {'per_step': 1840, 'num_epitomes': 2}
  config.model.kind = 'vae'
  assert benchmark.step_flops(config, 6) == {'per_step': 1440, 'num_epitomes': 1}


def _examples(folder, seed=0, **values):
  """A point folder with its per-image values and the eval.json a point
  has beside them."""
  from experiments import paired
  os.makedirs(folder)
  np.savez(folder / paired.EXAMPLES, **values)
  (folder / 'eval.json').write_text(json.dumps({'config': {'seed': seed}}))


def test_paired_difference_against_numpy(tmp_path):
  from experiments import paired
  rs = np.random.RandomState(0)
  shared = rs.randn(500) * 5  # per-image difficulty, common to both models
  a, b = shared + rs.randn(500) * 0.1, shared + 0.3 + rs.randn(500) * 0.1
  d = paired.paired_difference(a, b)
  np.testing.assert_allclose(d['mean'], np.mean(b - a))
  np.testing.assert_allclose(d['stderr'], np.std(b - a, ddof=1) / np.sqrt(500))
  # The paired error is far below the per-model one, which hides 0.3 nats.
  assert d['stderr'] < 0.02 < np.std(a) / np.sqrt(500)
  for name, values in (('m=a', a), ('m=b', b)):
    _examples(tmp_path / name, iw_marginal=values)
  got = paired.compare(str(tmp_path / 'm=a'), str(tmp_path / 'm=b'),
                       ('iw_marginal',))
  assert got['iw_marginal'] == d


def test_paired_pairs_within_a_root_or_across_two(tmp_path):
  from experiments import paired
  rs = np.random.RandomState(1)
  values = {}
  for root, name in (('cpu', 'd=50,kind=vae'), ('cpu', 'd=50,kind=evae'),
                     ('gpu', 'kind=vae')):
    values[root, name] = rs.randn(50)
    _examples(tmp_path / root / name, iw_marginal=values[root, name])
  cpu, gpu = str(tmp_path / 'cpu'), str(tmp_path / 'gpu')
  (name, other_dir, diffs), = paired.pairs(cpu, 'kind=vae', 'kind=evae')
  assert name == 'd=50,kind=vae' and other_dir.endswith('d=50,kind=evae')
  want = paired.paired_difference(values['cpu', 'd=50,kind=vae'],
                                  values['cpu', 'd=50,kind=evae'])
  assert diffs['iw_marginal'] == want
  (name, other_dir, diffs), = paired.pairs(cpu, 'd=50,kind=vae', 'kind=vae',
                                           other_root=gpu)
  assert other_dir == os.path.join(gpu, 'kind=vae')
  assert diffs['iw_marginal'] == paired.paired_difference(
      values['cpu', 'd=50,kind=vae'], values['gpu', 'kind=vae'])
  run = subprocess.run(
      [sys.executable, '-m', 'experiments.paired', f'--root={cpu}',
       f'--other_root={gpu}', '--base=d=50,kind=vae', '--other=kind=vae',
       '--keys=iw_marginal'], cwd=ROOT, capture_output=True, text=True,
      timeout=120)
  assert run.returncode == 0, run.stderr[-2000:]
  mean = diffs['iw_marginal']['mean']
  assert f'| d=50,kind=vae | {mean:+.2f} ± ' in run.stdout


def test_paired_groups_seeds_and_prints_seed_level_rows(tmp_path):
  from experiments import paired
  rs = np.random.RandomState(2)
  values = {}
  for seed in range(3):
    for kind in ('vae', 'evae'):
      name = f'kind={kind},latent_dim=50,seed={seed}'
      values[kind, seed] = rs.randn(40)
      _examples(tmp_path / name, seed, iw_marginal=values[kind, seed])
  assert paired.split_seed('kind=vae,latent_dim=50,seed=12') == (
      'kind=vae,latent_dim=50', 12)
  found = paired.pairs(str(tmp_path), 'kind=vae', 'kind=evae',
                       keys=('iw_marginal',))
  assert len(found) == 3
  (group, stats), = paired.seed_pairs(found, str(tmp_path),
                                      ('iw_marginal',)).items()
  assert group == 'kind=vae,latent_dim=50'
  want = [np.mean(values['evae', s] - values['vae', s]) for s in range(3)]
  verdict = stats['iw_marginal']
  np.testing.assert_allclose(verdict.seeds, want)
  np.testing.assert_allclose(verdict.seed_stderr,
                             np.std(want, ddof=1) / np.sqrt(3))
  average = np.mean([values['evae', s] - values['vae', s] for s in range(3)],
                    axis=0)
  np.testing.assert_allclose(verdict.image_stderr,
                             np.std(average, ddof=1) / np.sqrt(40))
  run = subprocess.run(
      [sys.executable, '-m', 'experiments.paired', f'--root={tmp_path}',
       '--base=kind=vae', '--other=kind=evae', '--keys=iw_marginal'],
      cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert run.returncode == 0, run.stderr[-2000:]
  assert (f'| kind=vae,latent_dim=50 | iw_marginal | {np.mean(want):+.2f} '
          '(3 seeds: ' in run.stdout)
  assert f'SE {verdict.stderr:.2f} (seed ' in run.stdout
  assert 'df 2, t 4.30, 95% CI [' in run.stdout


def _fake_run(root, name, kind, latent_dim, seed, iw, stride=25,
              extra_train=None):
  """An evaluated workdir with the eval.json fields the tables read and
  per-example IW values ``iw``."""
  from experiments import paired
  os.makedirs(root / name)
  num_epitomes = 1 if kind == 'vae' else (latent_dim - 25) // stride + 1
  run = {'config': {'seed': seed, 'model': {
             'kind': kind, 'latent_dim': latent_dim, 'num_layers': 2,
             'hidden_dim': 200},
         'train': {'z_dropout_rate': 0.0, 'kl_weight': 1.0,
                   'schedule': 'burda', 'burda_stages': 4, 'num_epochs': 1},
         'data': {'name': 'idx', 'path': 'mnist'}},
         'step': 100, 'checkpoint_epochs': 40, 'num_epitomes': num_epitomes,
         'epitome_shape': {'latent_dim': latent_dim, 'epitome_size': 25,
                           'stride': stride},
         'iw_log_likelihood': {'marginal': {'mean': float(np.mean(iw))},
                               'assigned_epitome': {'mean': -1.0}},
         'active_units': {'count': 20 + seed, 'threshold': 0.02,
                          'count_at_0.01': 30 + seed},
         'bound': {'mean': float(np.mean(iw)) - 8},
         'parzen': {'mean': 200.0 + seed}}
  run['config']['train'].update(extra_train or {})
  with open(root / name / 'eval.json', 'w') as f:
    json.dump(run, f)
  np.savez(root / name / paired.EXAMPLES, iw_marginal=iw)


def test_tables_report_pairs_at_the_seed_level(tmp_path):
  """Table 2 and the stride table: the mean over seeds with its
  between-seed SE, and the paired difference seed by seed, against numpy."""
  rs = np.random.RandomState(3)
  shared = rs.randn(30) * 5 - 90
  values = {}
  for seed in range(3):
    for kind, shift in (('vae', 0.0), ('evae', 0.5 + 0.1 * seed)):
      iw = shared + shift + rs.randn(30) * 0.1
      values[kind, seed] = iw
      _fake_run(tmp_path, f'kind={kind},latent_dim=50,seed={seed}', kind, 50,
                seed, iw)
  diffs = [np.mean(values['evae', s] - values['vae', s]) for s in range(3)]
  table = tables.render(str(tmp_path), 'table2')
  nll = [-np.mean(values['vae', s]) for s in range(3)]
  assert (f'**{np.mean(nll):.2f}** ± {np.std(nll, ddof=1) / np.sqrt(3):.2f} '
          '(3 seeds) / 86.76' in table)
  cell = (f'{np.mean(diffs):+.2f} (3 seeds: '
          + ', '.join(f'{d:+.2f}' for d in diffs) + '; 30 images), SE ')
  assert cell in table   # the paper: eVAE better
  assert "resolved: eVAE better, the sign of the paper's gap" in table
  assert '20, 21, 22 / 20, 21, 22' in table
  stride = tables.render(str(tmp_path), 'stride')
  assert '(the baseline)' in stride and cell in stride


def test_remedies_table_names_each_method_and_pairs_it_with_the_vae(tmp_path):
  rs = np.random.RandomState(4)
  shared = rs.randn(30) * 5 - 90
  vae, warm = {}, {}
  for seed in range(2):
    vae[seed] = shared + rs.randn(30) * 0.1
    warm[seed] = shared + 0.4 + rs.randn(30) * 0.1
    _fake_run(tmp_path / 'a', f'kind=vae,latent_dim=50,seed={seed}', 'vae',
              50, seed, vae[seed])
    _fake_run(tmp_path / 'b', f'kl_warmup_steps=100,seed={seed}', 'vae', 50,
              seed, warm[seed], extra_train={'kl_warmup_steps': 100})
    _fake_run(tmp_path / 'b', f'free_bits=0.5,seed={seed}', 'vae', 50, seed,
              vae[seed], extra_train={'free_bits': 0.5})
  table = tables.render(f'{tmp_path / "a"},{tmp_path / "b"}', 'remedies')
  rows = {line.split(' | ')[0][2:]: line for line in table.splitlines()
          if line.startswith('| ') and ' | 2 | ' in line}
  assert set(rows) == {'VAE', 'KL warm-up (100 steps)', 'free bits 0.5'}
  diffs = [np.mean(warm[s] - vae[s]) for s in range(2)]
  assert (f'{np.mean(diffs):+.2f} (2 seeds: ' in rows['KL warm-up (100 steps)']
          and ', df 1, t 12.71, ' in rows['KL warm-up (100 steps)'])
  assert '(the baseline)' in rows['VAE']
  assert '20.5 ± 0.5 / 30.5 ± 0.5' in rows['VAE']   # both thresholds
  paper = json.load(open(tables.PAPER_FILE))
  burda_vae = [p['nll'] for p in paper['table2']
               if p['kind'] == 'vae' and p['latent_dim'] == 50][0]
  assert rows['VAE'].endswith(f'| {burda_vae} (Burda et al.) |')
  assert rows['free bits 0.5'].endswith('| – |')


def test_remedies_table_puts_the_published_iwae_and_evae_beside_ours(
    tmp_path):
  iw = -90 + np.arange(5.0)
  _fake_run(tmp_path, 'vae,seed=0', 'vae', 50, 0, iw)
  _fake_run(tmp_path, 'iwae,seed=0', 'vae', 50, 0, iw + 1,
            extra_train={'objective': 'iwae', 'num_samples': 5})
  _fake_run(tmp_path, 'evae,seed=0', 'evae', 50, 0, iw, stride=5)
  _fake_run(tmp_path, 'iwae10,seed=0', 'vae', 50, 0, iw,
            extra_train={'objective': 'iwae', 'num_samples': 10})
  table = tables.render(str(tmp_path), 'remedies')
  rows = {line.split(' | ')[0][2:]: line for line in table.splitlines()
          if line.startswith('| ') and ' | 1 | ' in line}
  paper = json.load(open(tables.PAPER_FILE))
  iwae = [p['nll'] for p in paper['iwae'] if p['latent_dim'] == 50][0]
  evae = [p['nll'] for p in paper['table2']
          if p['kind'] == 'evae' and p['latent_dim'] == 50][0]
  assert rows['IWAE (k = 5)'].endswith(f'| {iwae} (Burda et al.) |')
  assert rows['eVAE (K = 25, s = 5)'].endswith(
      f'| {evae} (eVAE paper, s not given) |')
  assert rows['IWAE (k = 10)'].endswith('| – |')  # nothing published at 10


def test_a_point_with_two_runs_of_one_seed_is_refused_not_counted_twice(
    tmp_path):
  """``X`` (a sweep run without --seeds: config seed 0) beside its rerun
  ``X,seed=0`` is one seed, not two."""
  _fake_run(tmp_path, 'kind=vae', 'vae', 50, 0, np.zeros(3))
  _fake_run(tmp_path, 'kind=vae,seed=0', 'vae', 50, 0, np.ones(3))
  for table in ('seeds', 'stride', 'remedies'):
    with pytest.raises(ValueError, match='two runs of seed 0'):
      tables.render(str(tmp_path), table)
  run = subprocess.run(
      [sys.executable, '-m', 'experiments.tables', f'--root={tmp_path}',
       '--table=seeds'], cwd=ROOT, capture_output=True, text=True,
      timeout=120)
  assert run.returncode == 2 and 'keep one' in run.stderr
  assert 'Traceback' not in run.stderr


def test_seeds_table_says_when_its_seeds_were_scored_with_different_k(
    tmp_path):
  for seed, k in ((0, 100), (1, 100), (2, 1000)):
    _fake_run(tmp_path, f'kind=vae,seed={seed}', 'vae', 50, seed, np.zeros(3))
    path = tmp_path / f'kind=vae,seed={seed}' / 'eval.json'
    run = json.load(open(path))
    run['iw_log_likelihood']['num_samples'] = k
    json.dump(run, open(path, 'w'))
  table = tables.render(str(tmp_path), 'seeds')
  assert '(100, 1000: seeds differ) |' in table


def test_seeds_table_gives_one_row_per_point_with_the_between_seed_error(
    tmp_path):
  rs = np.random.RandomState(5)
  iws = {s: rs.randn(20) - 90 - s for s in range(3)}
  for seed in range(3):
    _fake_run(tmp_path / 'a', f'kind=vae,seed={seed}', 'vae', 50, seed,
              iws[seed])
  # the same dataset read through a relative and an absolute path
  run = json.load(open(tmp_path / 'a' / 'kind=vae,seed=2' / 'eval.json'))
  run['config']['data']['path'] = '/somewhere/mnist/'
  json.dump(run, open(tmp_path / 'a' / 'kind=vae,seed=2' / 'eval.json', 'w'))
  table = tables.render(str(tmp_path / 'a'), 'seeds')
  rows = [line for line in table.splitlines() if line.startswith('| kind')]
  assert len(rows) == 1 and ' | 3 | 20, 21, 22 | 30, 31, 32 | ' in rows[0]
  means = np.array([iws[s].mean() for s in range(3)], np.float64)
  expected = f'{means.mean():.2f} ± {means.std(ddof=1) / np.sqrt(3):.2f}'
  assert expected in rows[0]
  assert '201.0 ± 0.6' in rows[0]  # Parzen 200, 201, 202
  assert table.count('data `idx` mnist,') == 1


def test_grid_tables_pick_the_point_with_the_best_mean_over_seeds(tmp_path):
  """K = 3 has the single best seed (300) but the worse mean (220 against
  250): the cell shows K = 4's mean and between-seed SE."""
  parzen = {3: [300.0, 140.0], 4: [245.0, 255.0]}
  for k, values in parzen.items():
    for seed, value in enumerate(values):
      name = f'kind=evae,epitome_size={k},latent_dim=24,seed={seed}'
      _fake_run(tmp_path, name, 'evae', 24, seed, np.zeros(3))
      run = json.load(open(tmp_path / name / 'eval.json'))
      run['config']['model'].update(num_layers=1, hidden_dim=500)
      run['parzen']['mean'] = value
      json.dump(run, open(tmp_path / name / 'eval.json', 'w'))
  table = tables.render(str(tmp_path), 'table4')
  row = [line for line in table.splitlines() if line.startswith('| 24 | evae')]
  se = np.std([245.0, 255.0], ddof=1) / np.sqrt(2)
  assert f'**250** ± {se:.0f} (20-21), 2 seeds' in row[0]
  assert '**300**' not in table


def test_workers_share_the_accelerators_they_have():
  """More workers than GPUs: each worker gets a GPU that exists (round
  robin) and does not grab most of its memory; one worker per GPU keeps
  JAX's default allocator. TPU chips cannot be shared between processes."""
  envs = [sweeps.device_env('gpu', slot, workers=3, count=1)
          for slot in range(3)]
  assert [e['CUDA_VISIBLE_DEVICES'] for e in envs] == ['0', '0', '0']
  assert all(e['XLA_PYTHON_CLIENT_PREALLOCATE'] == 'false' for e in envs)
  envs = [sweeps.device_env('gpu', slot, workers=4, count=2)
          for slot in range(4)]
  assert [e['CUDA_VISIBLE_DEVICES'] for e in envs] == ['0', '1', '0', '1']
  alone = sweeps.device_env('gpu', 1, workers=2, count=2)
  assert alone == {'CUDA_VISIBLE_DEVICES': '1'}
  with pytest.raises(ValueError, match='--workers=2'):
    sweeps.device_env('tpu', 0, workers=3, count=2)
  assert sweeps.device_env('cpu', 5, workers=6, count=1) == {}


def test_whole_job_alternates_and_reports_medians():
  from experiments import whole_job
  calls = []
  jobs = {'evae_jax': lambda w: ['jax', w], 'pytorch': lambda w: ['torch', w]}
  fake = {'jax': iter([10.0, 30.0, 20.0]), 'torch': iter([40.0, 5.0, 50.0])}
  def run(command):
    calls.append(command[0])
    return next(fake[command[0]])
  times = whole_job.alternate(jobs, 3, run)
  assert calls == ['jax', 'torch', 'torch', 'jax', 'jax', 'torch']
  got = whole_job.summary(times)
  assert got['evae_jax_median_s'] == 20.0 and got['pytorch_median_s'] == 40.0
  assert got['ratio'] == 0.5
  command = whole_job.evae_jax_command('/d', 3, '/w')
  assert '--config.train.assignment=step' in command
  assert '--config.train.num_epochs=3' in command


def test_torch_job_trains_the_same_objective():
  """The yardstick computes eq. 7's bound: with E = 1 (a VAE) it is the
  ELBO, checked against numpy on a tiny network."""
  torch = pytest.importorskip('torch')
  from experiments import torch_job
  model = torch_job.EVAE(pixels=6, hidden=4, layers=1, latent=2)
  x = torch.bernoulli(torch.full((3, 6), 0.5))
  masks = torch.ones(1, 2)
  torch.manual_seed(0)
  mean, logvar = model.encode(x)
  got = model.elbo(x, mean, logvar, masks)[:, 0]
  torch.manual_seed(0)
  eps = torch.randn_like(mean)
  z = (mean + torch.exp(0.5 * logvar) * eps).detach().numpy()
  logits = model.decoder(torch.from_numpy(z)).detach().numpy().astype(np.float64)
  xn = x.numpy().astype(np.float64)
  log_lik = (xn * logits - np.logaddexp(0, logits)).sum(-1)
  m, lv = mean.detach().numpy(), logvar.detach().numpy()
  kl = 0.5 * (m ** 2 + np.exp(lv) - 1 - lv).sum(-1)
  np.testing.assert_allclose(got.detach().numpy(), log_lik - kl, rtol=1e-5)
  assert torch_job.epitome_masks(50, 5).sum(1).tolist() == [5.0] * 10


def test_benchmark_does_not_overwrite_tracked_results_by_default():
  from experiments import benchmark
  default = os.path.abspath(benchmark.FLAGS['out'].default)
  assert not default.startswith(os.path.abspath(ROOT))


def test_mnist_script_without_arguments_prints_its_usage():
  run = subprocess.run(['bash', 'experiments/mnist.sh'], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
  assert run.returncode == 2
  assert run.stderr.startswith('usage: bash experiments/mnist.sh EXPERIMENT')


def test_mnist_script_passes_the_callers_flags_after_its_own(tmp_path):
  """A caller's --set=eval.iw_num_examples=500 must win over the
  experiment's own --set=eval.iw_num_examples=2000 (config flags apply in
  order: the last one counts)."""
  fake = tmp_path / 'python'
  fake.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@" >> "$ARGS"\n')
  fake.chmod(0o755)
  args = tmp_path / 'args.txt'
  run = subprocess.run(
      ['bash', 'experiments/mnist.sh', 'table2_stride', 'data', str(tmp_path),
       '--set=eval.iw_num_examples=500'], cwd=ROOT, capture_output=True,
      text=True, timeout=60,
      env={**os.environ, 'PYTHON': str(fake), 'ARGS': str(args)})
  assert run.returncode == 0, run.stderr
  sweep_call = args.read_text().split('experiments.tables')[0].splitlines()
  sets = [a for a in sweep_call if a.startswith('--set=eval.iw_num_examples')]
  assert sets[-1] == '--set=eval.iw_num_examples=500'


def test_a_flag_that_overrides_the_points_own_settings_is_refused(tmp_path):
  """--seeds with --set=seed=5 would train one seed under three names."""
  sweep = tmp_path / 'tiny_sweep.py'
  sweep.write_text(
      'from configs import test\n'
      'def get_config():\n  return test.get_config()\n'
      'def sweep():\n  return [{"model.kind": "vae"}]\n')
  run = subprocess.run(
      [sys.executable, '-m', 'experiments.run_sweep', f'--sweep={sweep}',
       f'--root={tmp_path / "root"}', '--seeds=2', '--set=seed=5'],
      cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert run.returncode == 2 and '--config.seed=5' in run.stderr
  assert not os.path.exists(tmp_path / 'root' / 'kind=vae,seed=0')
  # --list refuses the same command rather than plan a run that cannot start
  listed = subprocess.run(
      [sys.executable, '-m', 'experiments.run_sweep', f'--sweep={sweep}',
       f'--root={tmp_path / "root"}', '--seeds=2', '--set=seed=5', '--list'],
      cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert listed.returncode == 2 and '--config.seed=5' in listed.stderr
  assert 'to run' not in listed.stdout


def test_kept_results_of_another_budget_are_set_aside_not_lost(tmp_path):
  """A rerun with more epochs trains on (the runner's rule) and keeps its
  results; the committed ones of the smaller budget move aside, where the
  tables do not read them."""
  work = tmp_path / 'work'
  work.mkdir()
  (work / 'eval.json').write_text(json.dumps({'checkpoint_epochs': 40,
                                              'config': {}}))
  dest = tmp_path / 'kept' / 'p'
  dest.mkdir(parents=True)
  committed = json.dumps({'checkpoint_epochs': 10, 'config': {}})
  (dest / 'eval.json').write_text(committed)
  sweeps.keep_results(str(work), str(dest))
  assert json.loads((dest / 'eval.json').read_text())['checkpoint_epochs'] == 40
  aside = tmp_path / 'kept' / sweeps.SUPERSEDED / 'p,epochs=10' / 'eval.json'
  assert aside.read_text() == committed
  assert tables.load_runs(str(tmp_path / 'kept'))[0]['name'] == 'p'
  assert len(tables.load_runs(str(tmp_path / 'kept'))) == 1


def test_keeping_results_again_replaces_the_folder_whole(tmp_path):
  work = tmp_path / 'work'
  work.mkdir()
  (work / 'eval.json').write_text('new')
  (work / 'checkpoints').mkdir()
  dest = tmp_path / 'kept' / 'p'
  dest.mkdir(parents=True)
  (dest / 'eval.json').write_text('old')
  (dest / 'stale.png').write_text('x')
  sweeps.keep_results(str(work), str(dest))
  assert sorted(os.listdir(dest)) == ['eval.json']
  assert (dest / 'eval.json').read_text() == 'new'
  assert sorted(os.listdir(tmp_path / 'kept')) == ['p']


def test_equal_epochs_pairs_the_epochs_both_runs_logged(tmp_path):
  from experiments import equal_epochs
  base, other = tmp_path / 'a.jsonl', tmp_path / 'b.jsonl'
  base.write_text(''.join(json.dumps({'epoch': e, 'valid_bound': -100.0 + e})
                          + '\n' for e in (1, 2, 3, 4)))
  other.write_text(json.dumps({'epoch': 1.0, 'train_bound': 0.0}) + '\n' +
                   ''.join(json.dumps({'epoch': e, 'valid_bound': -100.5 + e
                                       + 0.1 * e}) + '\n' for e in (2, 3, 5)))
  mean, stderr, count = equal_epochs.difference(
      equal_epochs.valid_bounds(str(base)),
      equal_epochs.valid_bounds(str(other)), 1, 5)
  d = np.array([-0.5 + 0.2, -0.5 + 0.3])   # epochs 2 and 3 only
  assert count == 2
  np.testing.assert_allclose([mean, stderr],
                             [d.mean(), d.std(ddof=1) / np.sqrt(2)])


def test_a_mean_over_fewer_test_images_is_marked_in_the_stride_table():
  run = lambda n: {'iw_log_likelihood': {'num_examples': n}}
  assert tables._images_note([run(500)], 2000) == ' (first 500 test images)'
  assert tables._images_note([run(2000), run(2000)], 2000) == ''


def test_a_sweep_reports_only_its_own_points(tmp_path, monkeypatch):
  """Two selections (--where) share a root: a failure recorded by one must
  not make the other report it (and exit 1)."""
  sweep = tmp_path / 'tiny_sweep.py'
  sweep.write_text(
      'from configs import test\n'
      'def get_config():\n  return test.get_config()\n'
      'def sweep():\n  return [{"model.kind": "vae"}, {"model.kind": "evae"}]\n')
  root, keep = tmp_path / 'root', tmp_path / 'kept'
  root.mkdir()
  (root / sweeps.STATUS_FILE).write_text(
      json.dumps({'kind=evae': {'status': 'failed'}}))
  monkeypatch.setattr(sweeps, 'finished_at', lambda *a, **k: True)
  points = sweeps.run_sweep(str(sweep), str(root), where={'model.kind': 'vae'},
                            keep=str(keep))
  assert points == {'kind=vae': {'status': 'done', 'kept': True}}


def test_assignment_disagreement_counts_images_whose_epitome_differs(
    tmp_path):
  from experiments import paired
  a = np.array([0, 1, 2, 2, 1, 0, 0, 1])
  b = np.array([0, 2, 2, 2, 1, 1, 0, 1, 2, 2])  # longer: the prefix counts
  for name, y in (('kind=evae,dtype=f32', a), ('kind=evae,dtype=bf16', b)):
    _examples(tmp_path / name, assignments=y, iw_marginal=np.zeros(len(y)))
    record = json.loads((tmp_path / name / 'eval.json').read_text())
    (tmp_path / name / 'eval.json').write_text(
        json.dumps({**record, 'num_epitomes': 3}))
  got = paired.assignment_disagreement(
      str(tmp_path / 'kind=evae,dtype=f32'),
      str(tmp_path / 'kind=evae,dtype=bf16'))
  assert got == (2 / 8, 8)
  text = paired.report(str(tmp_path), 'dtype=f32', 'dtype=bf16', None,
                       ('iw_marginal',), assignments=True)
  assert '| kind=evae,dtype=f32 | 25.00% | 8 |' in text
  # One epitome: y* cannot differ; no epitome count: not "never".
  for name in ('kind=vae,dtype=f32', 'kind=vae,dtype=bf16'):
    _examples(tmp_path / 'vae' / name, assignments=np.zeros(4, int))
  vae = [str(tmp_path / 'vae' / n) for n in ('kind=vae,dtype=f32',
                                             'kind=vae,dtype=bf16')]
  assert paired.assignment_disagreement(*vae) is None
  for folder in vae:
    record = json.loads(open(os.path.join(folder, 'eval.json')).read())
    with open(os.path.join(folder, 'eval.json'), 'w') as f:
      json.dump({**record, 'num_epitomes': 1}, f)
  assert paired.assignment_disagreement(*vae) == paired.ONE_EPITOME
