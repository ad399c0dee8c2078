"""Kept results read by the tables and the paired comparisons: damaged
files stop them with exit status 2 and a line saying what to do, a cell
says how many seeds stand behind it, and runs trained by different code
are marked (or refused with --strict)."""

import hashlib
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from experiments import kept
from experiments import tables
from tests.conftest import ROOT
from tests.test_experiments import _fake_run


def _pair_root(root, seeds=3, digest=False):
  """VAE and eVAE at D = 50 over ``seeds`` seeds, 20 images each."""
  rs = np.random.RandomState(0)
  shared = rs.randn(20) - 90
  for seed in range(seeds):
    for kind, shift in (('vae', 0.0), ('evae', 0.4)):
      name = f'kind={kind},latent_dim=50,seed={seed}'
      _fake_run(root, name, kind, 50, seed,
                shared + shift + 0.05 * rs.randn(20))
      if digest:
        raw = (root / name / kept.EXAMPLES).read_bytes()
        _edit(root / name, examples_sha256=hashlib.sha256(raw).hexdigest())
  return root


def _edit(folder, **fields):
  path = folder / 'eval.json'
  run = json.loads(path.read_text())
  run.update(fields)
  path.write_text(json.dumps(run))


def _cli(module, *args):
  return subprocess.run([sys.executable, '-m', f'experiments.{module}',
                         *args], cwd=ROOT, capture_output=True, text=True,
                        timeout=120)


POINT = 'kind=evae,latent_dim=50,seed=1'


def _damage(root, how):
  """Damages POINT's files under ``root`` as ``how`` says; returns the
  path the message must name and the words it must hold."""
  point = root / POINT
  if how == 'json_list':
    (point / 'eval.json').write_text('[]')
    return point / 'eval.json', 'holds no evaluation'
  if how == 'json_torn':
    text = (point / 'eval.json').read_text()
    (point / 'eval.json').write_text(text[:len(text) // 2])
    return point / 'eval.json', 'is not valid JSON'
  if how == 'npz_torn':
    raw = (point / kept.EXAMPLES).read_bytes()
    (point / kept.EXAMPLES).write_bytes(raw[:len(raw) // 2])
    return point / kept.EXAMPLES, 'is torn'
  if how == 'npz_swapped':  # another point's values, no digest to say so
    other = root / 'kind=vae,latent_dim=50,seed=2' / kept.EXAMPLES
    (point / kept.EXAMPLES).write_bytes(other.read_bytes())
    return point / kept.EXAMPLES, 'is not the one eval.json was written with'
  if how == 'npz_missing':
    (point / kept.EXAMPLES).unlink()
    return point / kept.EXAMPLES, 'missing'
  if how == 'empty_folder':
    (root / 'kind=evae,latent_dim=50,seed=3').mkdir()
    return root / 'kind=evae,latent_dim=50,seed=3', 'empty point folder'
  if how == 'json_missing':
    (point / 'eval.json').unlink()
    return point / 'eval.json', 'missing'
  raise ValueError(how)


DAMAGE = ('json_list', 'json_torn', 'npz_torn', 'npz_swapped', 'npz_missing',
          'empty_folder', 'json_missing')


def _refused(run, path, words):
  assert run.returncode == 2, (run.returncode, run.stdout[-500:], run.stderr)
  assert 'Traceback' not in run.stderr
  message = run.stderr.strip()
  assert '\n' not in message and str(path) in message and words in message
  assert '--mode=evaluate' in message and 'delete' in message


@pytest.mark.parametrize('how', DAMAGE)
def test_tables_stop_on_a_damaged_result_with_what_to_do(tmp_path, how):
  root = _pair_root(tmp_path)
  path, words = _damage(root, how)
  _refused(_cli('tables', f'--root={root}', '--table=table2'), path, words)


@pytest.mark.parametrize('how', ('json_list', 'npz_torn', 'npz_missing',
                                 'empty_folder'))
def test_paired_stops_on_a_damaged_result_with_what_to_do(tmp_path, how):
  root = _pair_root(tmp_path)
  path, words = _damage(root, how)
  _refused(_cli('paired', f'--root={root}', '--base=kind=vae',
                '--other=kind=evae', '--keys=iw_marginal'), path, words)


def test_a_swapped_file_is_caught_by_its_digest(tmp_path):
  root = _pair_root(tmp_path, digest=True)
  other = root / 'kind=vae,latent_dim=50,seed=2' / kept.EXAMPLES
  (root / POINT / kept.EXAMPLES).write_bytes(other.read_bytes())
  with pytest.raises(kept.DamagedResult, match='rerun --mode=evaluate'):
    tables.render(str(root), 'table2')
  kept.load_examples(str(other.parent))  # the untouched one still reads


def test_a_copy_left_by_an_interrupted_keep_is_refused(tmp_path):
  root = _pair_root(tmp_path, seeds=1)
  (root / 'kind=vae,latent_dim=50,seed=0.tmp').mkdir()
  with pytest.raises(kept.DamagedResult, match='interrupted copy'):
    tables.render(str(root), 'seeds')


def test_undamaged_roots_read_and_a_training_workdir_is_named(tmp_path):
  root = _pair_root(tmp_path)
  (root / 'notes').mkdir()               # not a point: ignored
  (root / 'notes' / 'x.txt').write_text('')
  (root / '.superseded').mkdir()         # set aside: ignored
  (root / 'kind=vae,latent_dim=100,seed=0' / 'checkpoints').mkdir(
      parents=True)
  run = _cli('tables', f'--root={root}', '--table=table2')
  assert run.returncode == 0, run.stderr
  assert ('Not evaluated yet, not in the table: kind=vae,latent_dim=100,'
          'seed=0.' in run.stdout)
  assert 'resolved: eVAE better' in run.stdout


def test_a_cell_says_how_many_seeds_stand_behind_it(tmp_path):
  """Fails on the old tables, which averaged the seeds that have a field
  and said nothing of the others."""
  root = _pair_root(tmp_path)
  for seed in range(3):
    _edit(root / f'kind=vae,latent_dim=50,seed={seed}',
          mutual_information={'marginal': 3.0 + seed, 'num_examples': 2000})
  for seed in (0, 1):  # evaluated before the second threshold existed
    folder = root / f'kind=vae,latent_dim=50,seed={seed}'
    run = json.loads((folder / 'eval.json').read_text())
    del run['active_units']['count_at_0.01']
    _edit(folder, active_units=run['active_units'])
  _edit(root / 'kind=vae,latent_dim=50,seed=0', mutual_information=None)
  table = tables.render(str(root), 'remedies')
  row = [l for l in table.splitlines() if l.startswith('| VAE')][0]
  assert '21.0 ± 0.6 / 32.0 (1 of 3 seeds) |' in row
  assert '| 4.50 ± 0.50 (2 of 3 seeds) |' in row


def test_a_pair_missing_a_seed_says_so(tmp_path):
  root = _pair_root(tmp_path)
  shutil.rmtree(root / 'kind=evae,latent_dim=50,seed=2')
  table = tables.render(str(root), 'table2')
  assert '(2 seeds: ' in table
  assert '(paired on 2 of 3 seeds: seed 2 without a pair)' in table


def _code(*numerics):
  return {'trained_with': [{'step': 100 * i, 'version': '0.3', 'commit': None,
                            'dirty': None, 'numerics': n}
                           for i, n in enumerate(numerics)],
          'evaluated_with': {'version': '0.3', 'commit': None, 'dirty': None,
                             'numerics': numerics[-1]}}


def test_runs_trained_by_other_numerics_are_marked_or_refused(tmp_path):
  root = _pair_root(tmp_path)
  for folder in root.iterdir():
    _edit(folder, code=_code(1))
  assert '†' not in tables.render(str(root), 'table2')
  _edit(root / POINT, code=_code(2))
  table = tables.render(str(root), 'table2')
  vae, evae, *_, pair = [l for l in table.splitlines()
                         if l.startswith('| 50 |')][0].split(' | ')[1:]
  assert '†' not in vae and evae.endswith(' †1 / 86.13') and ' †2' in pair
  assert ('†1 trained by different numerics versions: 1 for '
          '`kind=evae,latent_dim=50` (seeds 0, 2); 2 for '
          '`kind=evae,latent_dim=50` (seed 1).' in table)
  assert ('†2 trained by different numerics versions: 1 for '
          '`kind=vae,latent_dim=50` (seeds 0, 1, 2), '
          '`kind=evae,latent_dim=50` (seeds 0, 2); 2 for' in table)
  run = _cli('tables', f'--root={root}', '--table=table2', '--strict')
  assert run.returncode == 2 and 'Traceback' not in run.stderr
  assert 'refused (--strict)' in run.stderr and '(seed 1)' in run.stderr
  assert len(run.stderr.strip().splitlines()) == 1
  _edit(root / POINT, code=_code(1, 2))   # resumed by other code
  assert ('`kind=evae,latent_dim=50` (seed 1) was trained by numerics '
          'versions 1, 2' in tables.render(str(root), 'table2'))
  paired = _cli('paired', f'--root={root}', '--base=kind=vae',
                '--other=kind=evae', '--keys=iw_marginal')
  assert paired.returncode == 0, paired.stderr
  assert 'iw_marginal | ' in paired.stdout and '†1' in paired.stdout


def test_runs_without_a_record_lacking_config_fields_are_marked(tmp_path):
  """Points evaluated before the code record: a config without fields the
  others have was written by older code."""
  root = _pair_root(tmp_path)
  for folder in root.iterdir():
    run = json.loads((folder / 'eval.json').read_text())
    run['config']['train'].update(free_bits=0.0, kl_warmup_steps=0)
    (folder / 'eval.json').write_text(json.dumps(run))
  assert '†' not in tables.render(str(root), 'table2')
  old = root / 'kind=vae,latent_dim=50,seed=0'
  run = json.loads((old / 'eval.json').read_text())
  del run['config']['train']['free_bits']
  del run['config']['train']['kl_warmup_steps']
  (old / 'eval.json').write_text(json.dumps(run))
  table = tables.render(str(root), 'table2')
  assert ('†1 `kind=vae,latent_dim=50` (seed 0): no code record, and the '
          'config lacks train.free_bits, train.kl_warmup_steps, which the '
          'other runs of the cell have: trained by older code.' in table)
  with pytest.raises(kept.MixedCode, match='kind=vae,latent_dim=50'):
    tables.render(str(root), 'table2', strict=True)


def test_margin_turns_a_small_unresolved_difference_level(tmp_path):
  rs = np.random.RandomState(1)
  shared = rs.randn(40) - 90
  for seed in range(3):
    for kind in ('vae', 'evae'):
      _fake_run(tmp_path, f'kind={kind},latent_dim=50,seed={seed}', kind, 50,
                seed, shared + 0.02 * rs.randn(40))
  assert ': not resolved' in tables.render(str(tmp_path), 'table2')
  assert ': level within ±0.5' in tables.render(str(tmp_path), 'table2',
                                                 margin=0.5)
