"""results/RESULTS.md against the kept results it reports: every generated
table is what its command prints today, the refresh tool runs only the
table commands, and the budget pieces (the verdict header's budget, the
gap change between two budgets) against numpy."""

import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from experiments import kept
from experiments import paired
from experiments import refresh
from tests.conftest import ROOT
from tests.test_experiments import _fake_run

PAGE = os.path.join(ROOT, 'results', 'RESULTS.md')


def test_every_generated_table_of_results_md_is_current():
  """The page's tables are what their commands print from the committed
  results: a number edited by hand, or results changed without refreshing
  the page, fails here."""
  with open(PAGE) as f:
    text = f.read()
  assert len(refresh.BLOCK.findall(text)) >= 20
  new, changed = refresh.refresh(text)
  assert not changed, ('stale blocks (run python -m experiments.refresh '
                       f'results/RESULTS.md): {changed}')
  assert new == text


def test_refresh_rewrites_blocks_and_keeps_the_prose():
  page = ('prose 1\n<!-- begin: python -m experiments.tables --root=r '
          '--table=seeds -->\nold\n<!-- end -->\nprose 2\n'
          '<!-- begin: python -m experiments.paired --root=r --base=a '
          '--other=b -->\n<!-- end -->\n')
  outputs = {}

  def runner(command):
    outputs[command] = f'new for {command.split()[2]}\n'
    return outputs[command]

  new, changed = refresh.refresh(page, runner)
  assert new == ('prose 1\n<!-- begin: python -m experiments.tables --root=r '
                 '--table=seeds -->\nnew for experiments.tables\n<!-- end -->'
                 '\nprose 2\n<!-- begin: python -m experiments.paired '
                 '--root=r --base=a --other=b -->\nnew for experiments.paired'
                 '\n<!-- end -->\n')
  assert len(changed) == 2
  assert refresh.refresh(new, runner) == (new, [])


@pytest.mark.parametrize('command', [
    'rm -rf /', 'python -m os', 'python experiments/tables.py --root=r',
    'python -m experiments.tables --root=r --nonsense=1',
    'python -m experiments.tables --root r'])
def test_refresh_runs_only_table_commands(command):
  with pytest.raises(refresh.RefreshError):
    refresh.run(command)


def test_refresh_check_exits_1_on_a_stale_page_and_writes_nothing(tmp_path):
  for seed in range(2):
    for kind in ('vae', 'evae'):
      _fake_run(tmp_path / 'r', f'kind={kind},latent_dim=50,seed={seed}',
                kind, 50, seed, np.arange(5.0) - 90 + seed)
  page = tmp_path / 'page.md'
  text = (f'<!-- begin: python -m experiments.tables --root={tmp_path}/r '
          '--table=seeds -->\nstale\n<!-- end -->\n')
  page.write_text(text)
  cli = [sys.executable, '-m', 'experiments.refresh']
  check = subprocess.run(cli + ['--check', str(page)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
  assert check.returncode == 1 and 'stale:' in check.stdout
  assert page.read_text() == text
  subprocess.run(cli + [str(page)], cwd=ROOT, check=True, timeout=120,
                 capture_output=True)
  assert '| kind=evae,latent_dim=50 |' in page.read_text()
  again = subprocess.run(cli + ['--check', str(page)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
  assert again.returncode == 0, again.stdout


def test_budget_label_gives_the_share_of_the_papers_epochs():
  assert kept.budget_label([{'checkpoint_epochs': 40.0}]) == (
      'at 40 of 3,280 epochs (1.2%)')
  assert kept.budget_label([{'checkpoint_epochs': 10}], 200) == (
      'at 10 of 200 epochs (5.0%)')
  assert kept.budget_label([{'checkpoint_epochs': 13.0},
                            {'checkpoint_epochs': 40.0}]) == (
      'at 13, 40 of 3,280 epochs (0.4-1.2%)')
  assert kept.BURDA_FULL_EPOCHS == 3280  # 1 + 3 + ... + 3^7


def test_gap_change_against_numpy(tmp_path):
  """The change of the eVAE - VAE gap from one budget to another, seed by
  seed and image by image, with the verdict rule's SE and t(S - 1)."""
  rs = np.random.RandomState(7)
  n, seeds = 40, 3
  shared = rs.randn(n) * 3 - 95
  values = {}
  for budget, gain, gap in (('early', 0.0, -0.5), ('late', 4.0, -0.1)):
    for seed in range(seeds):
      for kind, shift in (('vae', 0.0), ('evae', gap)):
        iw = shared + gain + shift + 0.2 * rs.randn(n)
        values[budget, kind, seed] = iw
        _fake_run(tmp_path / budget, f'kind={kind},latent_dim=50,seed={seed}',
                  kind, 50, seed, iw)
  out = paired.gap_change(str(tmp_path / 'early'), str(tmp_path / 'late'),
                          'kind=vae', 'kind=evae')
  verdict = out['kind=vae,latent_dim=50']['iw_marginal']
  c = np.stack([(values['late', 'evae', s] - values['late', 'vae', s])
                - (values['early', 'evae', s] - values['early', 'vae', s])
                for s in range(seeds)])
  per_seed = c.mean(axis=1)
  se = np.hypot(per_seed.std(ddof=1) / np.sqrt(seeds),
                c.mean(axis=0).std(ddof=1) / np.sqrt(n))
  q = stats.t.ppf(0.975, seeds - 1)
  assert verdict.estimate == pytest.approx(per_seed.mean(), abs=1e-12)
  assert verdict.stderr == pytest.approx(se, rel=1e-9)
  assert verdict.interval == pytest.approx(
      (per_seed.mean() - q * se, per_seed.mean() + q * se), rel=1e-9)
  text = paired.report(str(tmp_path / 'early'), 'kind=vae', 'kind=evae',
                       None, ['iw_marginal'],
                       then_root=str(tmp_path / 'late'))
  assert 'gap change over seeds' in text
  assert f'{per_seed.mean():+.2f} (3 seeds' in text.split(
      'gap change over seeds')[1]
  assert 'at 40 of 3,280 epochs (1.2%)' in text


def test_the_runs_line_has_no_stray_space_for_a_dataset_without_a_path():
  from experiments import tables  # pylint: disable=g-import-not-at-top
  run = {'config': {'data': {'name': 'digits', 'path': ''},
                    'train': {'schedule': 'constant', 'num_epochs': 10}},
         'step': 50}
  assert tables._budget([run]) == 'data `digits`, 10 epochs (constant), 50 steps'
