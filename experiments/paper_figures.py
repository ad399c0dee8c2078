"""The paper's figures on MNIST, as pictures, from the kept results.

    python -m experiments.paper_figures --results=results/mnist \
        --out=results/figures

reads the kept points (``results/mnist/<experiment>/<point>/``:
eval.json and the PNGs each run wrote; see ``experiments/mnist.sh``) and
writes one PNG per figure of the paper it can make, each panel labelled:

- Fig. 1 / 3: sorted unit activity and per-unit KL of the Fig. 3 VAE,
  dropout VAE and eVAE (seed 0);
- Fig. 5: the epitome manifolds of the D = 20 eVAE (K = 2, s = 1);
- Fig. 6 / 10: samples / reconstructions of VAE and eVAE at D = 2, 5, 10, 20;
- Fig. 7: Parzen log-density against epitome size K for each D (Table 4's
  runs: eVAE and mVAE at each K run, the VAE at K = D), mean ± between-seed SE;
- Fig. 8a: samples of the eVAE with the best Parzen log-density;
- Fig. 9: reconstructions of the 50-d VAE at KL weights 1, 0.5, 0.2.

A figure whose runs are not kept yet is skipped with a line saying which
command makes them.
"""

import glob
import json
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from absl import app
from absl import flags
import numpy as np

from experiments import paired


def load_points(folder: str) -> List[Dict]:
  """eval.json of every kept point under ``folder``, with ``name``, ``dir``
  (None for a point kept as ``<name>.json`` alone, as older runs were) and
  ``seed``."""
  points = []
  for path in sorted(glob.glob(os.path.join(folder, '*', 'eval.json'))):
    points.append((path, os.path.dirname(path)))
  for path in sorted(glob.glob(os.path.join(folder, '*.json'))):
    points.append((path, None))
  out = []
  for path, directory in points:
    with open(path) as f:
      run = json.load(f)
    name = (os.path.basename(directory) if directory else
            os.path.basename(path)[:-len('.json')])
    run.update(name=name, dir=directory,
               group=paired.split_seed(name)[0],
               seed=run.get('config', {}).get('seed', 0))
    out.append(run)
  return out


def _model(run) -> Dict:
  return run['config']['model']


def _first_seed(runs: Sequence[Dict], match: Callable[[Dict], bool],
                png: str) -> Optional[Dict]:
  """The lowest-seed run that matches and has ``png`` kept."""
  runs = [r for r in runs if match(r) and r['dir']
          and os.path.exists(os.path.join(r['dir'], png))]
  return min(runs, key=lambda r: r['seed']) if runs else None


def _pyplot():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def content(image: np.ndarray, dark: int = 128,
            fraction: float = 0.6) -> np.ndarray:
  """The image grid inside a run's PNG, without its title and labels (the
  panel's own label replaces them): the box of the rows and columns in
  which at least ``fraction`` of the pixels are darker than ``dark``.

  Args:
    image: (H, W) uint8 grey levels.
    dark: the grey level below which a pixel counts as grid.
    fraction: how much of a row (column) must be grid to keep it.

  Returns:
    The cropped (h, w) image; ``image`` itself if no row qualifies.
  """
  mask = image < dark
  rows = np.flatnonzero(mask.mean(axis=1) >= fraction)
  if rows.size == 0:
    return image
  band = mask[rows[0]:rows[-1] + 1]
  cols = np.flatnonzero(band.mean(axis=0) >= fraction)
  if cols.size == 0:
    return image
  return image[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def image_panels(path: str, title: str,
                 rows: Sequence[Sequence[Tuple[str, Optional[str]]]],
                 panel_inches: float = 2.6, crop: bool = True) -> None:
  """Writes a grid of labelled PNG panels: ``rows`` of (label, png path or
  None for an empty cell); ``crop``: each panel shows only the image grid of
  its PNG (`content`), else the whole PNG with its own labels and axes."""
  plt = _pyplot()
  from PIL import Image  # pylint: disable=g-import-not-at-top
  num_rows, num_cols = len(rows), max(len(r) for r in rows)
  first = next(png for row in rows for _, png in row if png)
  image = np.asarray(Image.open(first).convert('L'))
  height, width = (content(image) if crop else image).shape
  fig, axes = plt.subplots(num_rows, num_cols, squeeze=False,
                           figsize=(panel_inches * num_cols,
                                    (panel_inches * height / width + 0.35)
                                    * num_rows + 0.7),
                           layout='constrained')  # titles clear the panels
  for r, row in enumerate(rows):
    for c in range(num_cols):
      ax = axes[r][c]
      ax.axis('off')
      if c < len(row) and row[c][1]:
        label, png = row[c]
        image = np.asarray(Image.open(png).convert('L'))
        ax.imshow(content(image) if crop else image, cmap='gray', vmin=0,
                  vmax=255, interpolation='nearest')
        ax.set_title(label, fontsize=10)
  fig.suptitle(title, fontsize=12)
  fig.savefig(path, dpi=110)
  plt.close(fig)


def activity_figure(runs: Sequence[Dict], path: str) -> bool:
  """Fig. 1 / 3: sorted activity (bars) and per-unit KL (line) per model."""
  chosen = []
  for label, match in (
      ('VAE', lambda r: _model(r)['kind'] == 'vae'
       and not r['config']['train']['z_dropout_rate']),
      ('dropout VAE (0.5)', lambda r: r['config']['train']['z_dropout_rate']),
      ('eVAE (K = 5)', lambda r: _model(r)['kind'] == 'evae')):
    found = sorted((r for r in runs if match(r)), key=lambda r: r['seed'])
    if found:
      chosen.append((label, found[0]))
  if not chosen:
    return False
  plt = _pyplot()
  fig, axes = plt.subplots(1, len(chosen), figsize=(4.2 * len(chosen), 3.4),
                           squeeze=False)
  for ax, (label, run) in zip(axes[0], chosen):
    units = run['active_units']
    activity = np.asarray(units['activity'])
    kl = np.asarray(units['per_unit_kl'])
    order = np.argsort(-activity)
    ax.bar(np.arange(len(order)), activity[order], color='tab:blue',
           label='activity $A_u$')
    ax.axhline(units['threshold'], color='gray', ls='--', lw=1,
               label=f'threshold {units["threshold"]:g}')
    ax.set_ylim(bottom=0)
    ax.set_xlabel('latent unit (sorted by activity)')
    ax.set_ylabel('activity')
    twin = ax.twinx()
    twin.plot(np.arange(len(order)), kl[order], color='tab:red', marker='.',
              ms=3, label='KL')
    twin.set_ylim(bottom=0)
    twin.set_ylabel('KL (nats)')
    ax.set_title(f'{label}: {units["count"]} active of {len(order)}',
                 fontsize=10)
    if ax is axes[0][0]:
      handles = [h for a in (ax, twin) for h in a.get_legend_handles_labels()[0]]
      labels = [l for a in (ax, twin) for l in a.get_legend_handles_labels()[1]]
      ax.legend(handles, labels, loc='upper right', fontsize=8)
  train = chosen[0][1]['config']['train']
  fig.suptitle('Fig. 1 / 3 on MNIST: unit activity and KL, D = 50 '
               f'(L = 2, H = 500, {train.get("num_epochs", "?")} epochs, '
               f'lowest seed kept)', fontsize=11)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return True


def dims_figure(runs: Sequence[Dict], path: str, png: str, title: str) -> bool:
  """Fig. 6 / 10: one row per model kind, one column per D."""
  dims = sorted({_model(r)['latent_dim'] for r in runs})
  rows = []
  for kind, label in (('vae', 'VAE'), ('evae', 'eVAE')):
    row = []
    for d in dims:
      run = _first_seed(runs, lambda r, d=d, kind=kind: (
          _model(r)['kind'] == kind and _model(r)['latent_dim'] == d), png)
      row.append((f'{label}, D = {d}',
                  os.path.join(run['dir'], png) if run else None))
    rows.append(row)
  if not any(cell[1] for row in rows for cell in row):
    return False
  image_panels(path, title, rows)
  return True


def manifold_figure(runs: Sequence[Dict], path: str) -> bool:
  """Fig. 5: the 20-d eVAE's epitome manifolds (K = 2, s = 1)."""
  run = _first_seed(runs, lambda r: (_model(r)['kind'] == 'evae' and
                                     _model(r)['latent_dim'] == 20),
                    'manifolds.png')
  if not run:
    return False
  image_panels(path, 'Fig. 5 on MNIST: 10 x 10 manifolds of 4 of the 19 '
               'epitomes of a 20-d eVAE (K = 2, s = 1),\neach over its 2-d '
               'latent grid (the other units at 0); 10 epochs',
               [[('', os.path.join(run['dir'], 'manifolds.png'))]],
               panel_inches=12, crop=False)
  return True


def parzen_vs_size_figure(runs: Sequence[Dict], path: str) -> bool:
  """Fig. 7: Parzen log-density against K for each D (eVAE, mVAE; VAE at
  K = D), mean over seeds with the between-seed SE as error bars."""
  runs = [r for r in runs if _model(r)['num_layers'] == 1
          and _model(r)['hidden_dim'] == 500]
  dims = sorted({_model(r)['latent_dim'] for r in runs})
  if not dims:
    return False
  plt = _pyplot()
  fig, axes = plt.subplots(1, len(dims), figsize=(3.6 * len(dims), 3.4),
                           squeeze=False)
  for ax, d in zip(axes[0], dims):
    for kind, style in (('evae', 'o-'), ('mvae', 's--'), ('vae', '*')):
      cells: Dict[int, List[float]] = {}
      for r in runs:
        if _model(r)['kind'] == kind and _model(r)['latent_dim'] == d:
          size = d if kind == 'vae' else r['epitome_shape']['epitome_size']
          cells.setdefault(size, []).append(r['parzen']['mean'])
      if not cells:
        continue
      sizes = sorted(cells)
      means = [np.mean(cells[k]) for k in sizes]
      # No bar for a single seed: its spread is unknown, not zero.
      errors = [np.std(cells[k], ddof=1) / np.sqrt(len(cells[k]))
                if len(cells[k]) > 1 else np.nan for k in sizes]
      ax.errorbar(sizes, means, yerr=errors, fmt=style, capsize=3,
                  ms=9 if kind == 'vae' else 5, label=kind)
    ax.set_title(f'D = {d}', fontsize=10)
    ax.set_xscale('log', base=2)
    ticks = sorted({d} | {r['epitome_shape']['epitome_size'] for r in runs
                          if _model(r)['latent_dim'] == d})
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(k) for k in ticks])
    ax.minorticks_off()
    ax.set_xlabel('epitome size K (log scale; VAE: K = D)')
    ax.set_ylabel('Parzen log-density (nats)')
    ax.legend(fontsize=8)
  fig.suptitle('Fig. 7 on MNIST: epitome size vs. Parzen log-density '
               '(L = 1, H = 500, 10 epochs; bars: between-seed SE, none for '
               'one seed)', fontsize=11)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return True


def best_samples_figure(runs: Sequence[Dict], path: str) -> bool:
  """Fig. 8a: samples of the eVAE with the best Parzen log-density."""
  runs = [r for r in runs if _model(r)['kind'] == 'evae' and r['dir']
          and os.path.exists(os.path.join(r['dir'], 'samples.png'))]
  if not runs:
    return False
  best = max(runs, key=lambda r: r['parzen']['mean'])
  m, shape = _model(best), best['epitome_shape']
  image_panels(path, 'Fig. 8a on MNIST: samples of the best eVAE', [[(
      f'D = {m["latent_dim"]}, K = {shape["epitome_size"]}, '
      f'L = {m["num_layers"]}, H = {m["hidden_dim"]}, seed {best["seed"]}: '
      f'Parzen {best["parzen"]["mean"]:.0f} nats',
      os.path.join(best['dir'], 'samples.png'))]], panel_inches=6)
  return True


def kl_weight_figure(runs: Sequence[Dict], path: str) -> bool:
  """Fig. 9: reconstructions of the 50-d VAE at each KL weight lambda."""
  row = []
  for weight in (1.0, 0.5, 0.2):
    run = _first_seed(runs, lambda r, w=weight: r['config']['train'][
        'kl_weight'] == w, 'reconstructions.png')
    if run:
      row.append((f'λ = {weight:g} ({run["active_units"]["count"]} active '
                  'units)', os.path.join(run['dir'], 'reconstructions.png')))
  if not row:
    return False
  image_panels(path, 'Fig. 9 on MNIST: reconstructions of a 50-d VAE '
               '(top: test images, bottom: reconstructions)', [row],
               panel_inches=4.2)
  return True


FIGURES = (
    ('fig1_fig3_activity.png', 'fig3', activity_figure, 'fig3'),
    ('fig5_manifolds.png', 'fig6', manifold_figure, 'fig6'),
    ('fig6_samples.png', 'fig6', lambda runs, path: dims_figure(
        runs, path, 'samples.png', 'Fig. 6 on MNIST: samples (L = 1, '
        'H = 500; eVAE with 2-d overlapping epitomes, s = 1; 10 epochs)'),
     'fig6'),
    ('fig10_reconstructions.png', 'fig6', lambda runs, path: dims_figure(
        runs, path, 'reconstructions.png', 'Fig. 10 on MNIST: '
        'reconstructions (top half: test images; bottom: reconstructions)'),
     'fig6'),
    ('fig7_parzen_vs_epitome_size.png', 'table4', parzen_vs_size_figure,
     'table4'),
    ('fig8a_best_evae_samples.png', 'table4', best_samples_figure, 'table4'),
    ('fig9_kl_weight_reconstructions.png', 'fig2', kl_weight_figure, 'fig2'),
)


def make_all(results: str, out: str) -> Dict[str, bool]:
  """Writes every figure it can; {file name: written}."""
  os.makedirs(out, exist_ok=True)
  written = {}
  for name, folder, make, experiment in FIGURES:
    runs = load_points(os.path.join(results, folder))
    written[name] = bool(runs) and make(runs, os.path.join(out, name))
    print(f'{name}: ' + ('written' if written[name] else
                         f'no kept runs yet (bash experiments/mnist.sh '
                         f'{experiment} MNIST_DIR runs/mnist)'))
  return written


def main(argv):
  del argv
  make_all(flags.FLAGS.results, flags.FLAGS.out)


if __name__ == '__main__':
  flags.DEFINE_string('results', 'results/mnist',
                      'Folder of kept results, one subfolder per experiment.')
  flags.DEFINE_string('out', 'results/figures',
                      'Where the figure PNGs go.')
  app.run(main)
