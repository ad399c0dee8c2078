"""experiments.paper_figures: every figure from kept points, one command,
each PNG with the values it draws beside it."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from experiments import kept
from experiments import paper_figures
from tests.conftest import ROOT


def _keep(folder, name, kind, latent_dim, seed=0, epitome_size=2, stride=1,
          kl_weight=1.0, dropout=0.0, parzen=200.0, pngs=True):
  """A kept point: eval.json with the fields the figures read, and PNGs."""
  path = folder / name
  os.makedirs(path)
  rs = np.random.RandomState(seed)
  activity = rs.rand(latent_dim)
  run = {'config': {'seed': seed, 'model': {
             'kind': kind, 'latent_dim': latent_dim, 'num_layers': 1,
             'hidden_dim': 500},
         'train': {'kl_weight': kl_weight, 'z_dropout_rate': dropout,
                   'num_epochs': 10}},
         'epitome_shape': {'latent_dim': latent_dim,
                           'epitome_size': epitome_size, 'stride': stride},
         'parzen': {'mean': parzen},
         'active_units': {'count': int((activity > 0.02).sum()),
                          'threshold': 0.02, 'activity': activity.tolist(),
                          'per_unit_kl': (activity * 2).tolist()}}
  (path / 'eval.json').write_text(json.dumps(run))
  if pngs:
    for png in ('samples.png', 'reconstructions.png', 'manifolds.png'):
      Image.fromarray((rs.rand(28, 28) * 255).astype(np.uint8)).save(path / png)


def _results(tmp_path):
  results = tmp_path / 'results'
  for kind in ('vae', 'evae'):
    for d in (2, 5, 10, 20):
      _keep(results / 'fig6', f'kind={kind},latent_dim={d}', kind, d)
  for seed in range(3):
    _keep(results / 'fig3', f'kind=vae,seed={seed}', 'vae', 50, seed=seed)
    _keep(results / 'fig3', f'kind=vae,z_dropout_rate=0.5,seed={seed}',
          'vae', 50, seed=seed, dropout=0.5)
    _keep(results / 'fig3', f'kind=evae,seed={seed}', 'evae', 50, seed=seed,
          epitome_size=5)
    for w in (1.0, 0.5, 0.2):
      _keep(results / 'fig2', f'kl_weight={w},seed={seed}', 'vae', 50,
            seed=seed, kl_weight=w)
  for seed in (0, 1, 2):   # Table 4: K = 4 over 3 seeds, the VAE over 3
    _keep(results / 'table4', f'kind=evae,K=4,seed={seed}', 'evae', 24,
          seed=seed, epitome_size=4, stride=4, parzen=250.0 + seed)
    _keep(results / 'table4', f'kind=vae,seed={seed}', 'vae', 24, seed=seed,
          epitome_size=24, stride=24, parzen=160.0, pngs=False)
  for seed in (0, 1):      # Fig. 7's sweep: K = 2 and 4 over 2 seeds
    for k in (2, 4):
      _keep(results / 'fig7', f'kind=evae,K={k},seed={seed}', 'evae', 24,
            seed=seed, epitome_size=k, stride=k, parzen=250.0 + seed)
  # A first-run file beside the seed folders: never drawn.
  (results / 'table4' / 'kind=evae,K=3.json').write_text(json.dumps(
      {'config': {'model': {'kind': 'evae', 'latent_dim': 24}}}))
  return results


def test_every_figure_is_made_from_kept_points_with_its_values(tmp_path):
  out = tmp_path / 'figures'
  run = subprocess.run(
      [sys.executable, '-m', 'experiments.paper_figures',
       f'--results={_results(tmp_path)}', f'--out={out}'], cwd=ROOT,
      capture_output=True, text=True, timeout=300)
  assert run.returncode == 0, run.stderr[-2000:]
  names = [name for name, *_ in paper_figures.FIGURES]
  assert 'fig2_activity_samples_by_kl_weight.png' in names
  assert 'fig4_dropout_vae.png' in names
  for name in names:
    image = Image.open(out / name)
    assert min(image.size) > 200, name
    assert np.asarray(image.convert('L')).std() > 5, name  # not blank
    data = json.loads((out / name.replace('.png', '.json')).read_text())
    assert data['figure'] == name and data['panels'], name
  assert sorted(os.listdir(out)) == sorted(
      names + [n.replace('.png', '.json') for n in names])


def test_fig7_draws_each_point_once_from_seed_folders(tmp_path):
  results = _results(tmp_path)
  runs = [r for f in ('fig7', 'table4')
          for r in paper_figures.load_points(str(results / f))]
  data = paper_figures.parzen_vs_size_figure(runs, str(tmp_path / 'f.png'))
  (panel,) = data['panels']
  points = {(s['kind'], p['K']): p for s in panel['series']
            for p in s['points']}
  assert set(points) == {('evae', 2), ('evae', 4), ('vae', 24)}  # no K = 3
  four = points['evae', 4]   # Table 4's 3 seeds, not pooled with Fig. 7's 2
  assert four['experiment'] == 'table4' and four['seeds'] == [0, 1, 2]
  assert four['mean'] == pytest.approx(251.0)
  assert four['error_bar'] == pytest.approx(np.std([250, 251, 252], ddof=1)
                                            / np.sqrt(3))
  two = points['evae', 2]    # 2 seeds: drawn without an error bar
  assert two['experiment'] == 'fig7' and two['seeds'] == [0, 1]
  assert two['error_bar'] is None and 'fewer than 3' in two['error_bar_is']


def test_fig2_bars_are_the_between_seed_error_of_each_rank(tmp_path):
  results = _results(tmp_path)
  runs = paper_figures.load_points(str(results / 'fig2'))
  data = paper_figures.kl_weight_activity_figure(runs, str(tmp_path / 'f.png'))
  assert [p['kl_weight'] for p in data['panels']] == [1.0, 0.5, 0.2]
  panel = data['panels'][0]
  ranked = np.sort([r['active_units']['activity'] for r in runs
                    if r['config']['train']['kl_weight'] == 1.0], axis=1)[:, ::-1]
  np.testing.assert_allclose(panel['activity_sorted_mean'], ranked.mean(0))
  np.testing.assert_allclose(panel['error_bar'],
                             ranked.std(0, ddof=1) / np.sqrt(3))
  assert panel['samples']['seed'] == 0 and panel['seeds'] == [0, 1, 2]


def test_a_figure_without_runs_names_the_command(tmp_path):
  written = paper_figures.make_all(str(tmp_path / 'none'),
                                   str(tmp_path / 'out'))
  assert not any(written.values())


def test_a_damaged_point_stops_the_figures_with_what_to_do(tmp_path):
  results = _results(tmp_path)
  (results / 'fig2' / 'kl_weight=0.5,seed=1' / 'eval.json').write_text('[]')
  with pytest.raises(kept.DamagedResult, match='holds no evaluation'):
    paper_figures.make_all(str(results), str(tmp_path / 'out'))


def test_content_keeps_the_grid_and_drops_a_title_band():
  image = np.full((100, 120), 255, np.uint8)
  image[2:8, 10:40] = 0         # a title: dark, but in few columns
  image[30:80, 20:100] = 0      # the grid
  image[50, 20:100] = 255       # a white divider inside it stays
  out = paper_figures.content(image)
  assert out.shape == (50, 80) and (out[50 - 30] == 255).all()
  assert paper_figures.content(np.full((5, 5), 255, np.uint8)).shape == (5, 5)
