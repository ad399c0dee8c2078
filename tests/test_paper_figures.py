"""experiments.paper_figures: every figure from kept results, one command."""

import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image

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
         'train': {'kl_weight': kl_weight, 'z_dropout_rate': dropout}},
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


def test_every_figure_is_made_from_kept_points(tmp_path):
  results = tmp_path / 'results'
  for kind in ('vae', 'evae'):
    for d in (2, 5, 10, 20):
      _keep(results / 'fig6', f'kind={kind},latent_dim={d}', kind, d)
  _keep(results / 'fig3', 'kind=vae,seed=0', 'vae', 50)
  _keep(results / 'fig3', 'kind=vae,z_dropout_rate=0.5,seed=0', 'vae', 50,
        dropout=0.5)
  _keep(results / 'fig3', 'kind=evae,seed=0', 'evae', 50, epitome_size=5)
  for w in (1.0, 0.5, 0.2):
    _keep(results / 'fig2', f'kl_weight={w},seed=0', 'vae', 50, kl_weight=w)
  for seed in (0, 1):
    _keep(results / 'table4', f'kind=evae,K=4,seed={seed}', 'evae', 24,
          seed=seed, epitome_size=4, parzen=250.0 + seed)
    _keep(results / 'table4', f'kind=vae,seed={seed}', 'vae', 24, seed=seed,
          epitome_size=24, parzen=160.0, pngs=False)
  out = tmp_path / 'figures'
  run = subprocess.run(
      [sys.executable, '-m', 'experiments.paper_figures',
       f'--results={results}', f'--out={out}'], cwd=ROOT,
      capture_output=True, text=True, timeout=300)
  assert run.returncode == 0, run.stderr[-2000:]
  for name, *_ in paper_figures.FIGURES:
    image = Image.open(out / name)
    assert min(image.size) > 200, name
    assert np.asarray(image.convert('L')).std() > 5, name  # not blank


def test_a_figure_without_runs_names_the_command(tmp_path):
  written = paper_figures.make_all(str(tmp_path / 'none'),
                                   str(tmp_path / 'out'))
  assert not any(written.values())


def test_content_keeps_the_grid_and_drops_a_title_band():
  image = np.full((100, 120), 255, np.uint8)
  image[2:8, 10:40] = 0         # a title: dark, but in few columns
  image[30:80, 20:100] = 0      # the grid
  image[50, 20:100] = 255       # a white divider inside it stays
  out = paper_figures.content(image)
  assert out.shape == (50, 80) and (out[50 - 30] == 255).all()
  assert paper_figures.content(np.full((5, 5), 255, np.uint8)).shape == (5, 5)
