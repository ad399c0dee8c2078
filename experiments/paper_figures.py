"""The paper's figures on MNIST, as pictures, from the kept results, each
with the values it draws beside it.

    python -m experiments.paper_figures --results=results/mnist \
        --out=results/figures

reads the kept points (``results/mnist/<experiment>/<point>[,seed=S]/``:
eval.json and the PNGs each run wrote; see ``experiments/mnist.sh``; the
first-run ``<point>.json`` files beside them are not read, so that no run is
drawn twice) and writes one PNG per figure of the paper it can make, each
panel labelled, and beside it ``<figure>.json`` with exactly what is drawn:
for each panel or plotted point its experiment, point, seeds and values
(and error bar), for each picture the PNG it shows (paths relative to
``--results``):

- Fig. 1 / 3: sorted unit activity and per-unit KL of the Fig. 3 VAE,
  dropout VAE and eVAE (lowest seed);
- Fig. 2: sorted unit activity (mean over seeds by rank, bars of the
  between-seed SE) and samples of the 50-d VAE at each KL weight lambda;
- Fig. 4: reconstructions and samples of the dropout VAE (Fig. 3's runs);
- Fig. 5: the epitome manifolds of the D = 20 eVAE (K = 2, s = 1);
- Fig. 6 / 10: samples / reconstructions of VAE and eVAE at D = 2, 5, 10, 20;
- Fig. 7: Parzen log-density against epitome size K for each D (eVAE and
  mVAE at each K run, the VAE at K = D), mean over seeds, error bars the
  between-seed SE where at least 3 seeds stand behind a point (fewer: an
  open marker, no bar); each plotted point from one experiment's seed
  folders, Fig. 7's sweep or Table 4's, whichever has more seeds (their
  runs of one seed are the same run, never pooled);
- Fig. 8a: samples of the eVAE point with the best mean Parzen log-density;
- Fig. 9: reconstructions of the 50-d VAE at KL weights 1, 0.5, 0.2.

A figure whose runs are not kept yet is skipped with a line saying which
command makes them; a damaged kept result stops with exit status 2 and a
line saying what to do (`experiments.kept`).
"""

import json
import os
import sys
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from absl import app
from absl import flags
import numpy as np

from experiments import kept
from experiments import paired

# Error bars from fewer seeds than this are not drawn: with 2 seeds the SE
# rests on one degree of freedom.
MIN_SEEDS_FOR_ERROR_BARS = 3


def load_points(folder: str) -> List[Dict]:
  """eval.json of every kept point folder under ``folder`` (none if it does
  not exist), with ``name``, ``dir``, ``experiment`` (the folder's name),
  ``group`` (the name without its seed) and ``seed``.

  Raises:
    kept.DamagedResult: a damaged point (`kept.point_dirs`).
  """
  if not os.path.isdir(folder):
    return []
  out = []
  for run in kept.load_points(folder):
    run.update(experiment=os.path.basename(os.path.normpath(folder)),
               group=paired.split_seed(run['name'])[0],
               seed=run['config'].get('seed', 0))
    out.append(run)
  return out


def _model(run) -> Dict:
  return run['config']['model']


def _first_seed(runs: Sequence[Dict], match: Callable[[Dict], bool],
                png: str) -> Optional[Dict]:
  """The lowest-seed run that matches and has ``png`` kept."""
  runs = [r for r in runs if match(r)
          and os.path.exists(os.path.join(r['dir'], png))]
  return min(runs, key=lambda r: r['seed']) if runs else None


def _source(run: Dict, png: str) -> Dict:
  """What a picture panel shows: the run and its PNG."""
  return {'experiment': run['experiment'], 'point': run['name'],
          'seed': run['seed'],
          'png': f'{run["experiment"]}/{run["name"]}/{png}'}


def _between_seeds(values: Sequence[float]) -> Tuple[float, Optional[float]]:
  """(mean, between-seed SE, or None below MIN_SEEDS_FOR_ERROR_BARS)."""
  values = np.asarray(values, np.float64)
  if len(values) < MIN_SEEDS_FOR_ERROR_BARS:
    return float(values.mean()), None
  return (float(values.mean()),
          float(values.std(ddof=1) / np.sqrt(len(values))))


def _network(runs: Sequence[Dict]) -> str:
  """'L = 1, H = 500' of the runs (several values: joined by '/')."""
  join = lambda key: '/'.join(map(str, sorted({_model(r)[key] for r in runs})))
  return f'L = {join("num_layers")}, H = {join("hidden_dim")}'


def _epochs(runs: Sequence[Dict]) -> str:
  epochs = sorted({r['config']['train'].get('num_epochs', '?') for r in runs},
                  key=str)
  return '/'.join(map(str, epochs))


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
        _show(ax, png, crop)
        ax.set_title(label, fontsize=10)
  fig.suptitle(title, fontsize=12)
  fig.savefig(path, dpi=110)
  plt.close(fig)


def _show(ax, png: str, crop: bool = True) -> None:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  image = np.asarray(Image.open(png).convert('L'))
  ax.imshow(content(image) if crop else image, cmap='gray', vmin=0,
            vmax=255, interpolation='nearest')


def _picture_figure(path: str, title: str, cells, **kwargs) -> Dict:
  """`image_panels` of ``cells``: rows of (label, run or None, png name,
  values shown in the label); returns the figure's data."""
  rows = [[(label, os.path.join(run['dir'], png) if run else None)
           for label, run, png, _ in row] for row in cells]
  image_panels(path, title, rows, **kwargs)
  return {'title': title, 'panels': [
      {'label': label, **_source(run, png), **values}
      for row in cells for label, run, png, values in row if run]}


def activity_figure(runs: Sequence[Dict], path: str) -> Optional[Dict]:
  """Fig. 1 / 3: sorted activity (bars) and per-unit KL (line) per model,
  lowest seed."""
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
    return None
  plt = _pyplot()
  fig, axes = plt.subplots(1, len(chosen), figsize=(4.2 * len(chosen), 3.4),
                           squeeze=False)
  panels = []
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
    ax.set_title(f'{label}, seed {run["seed"]}: {units["count"]} active of '
                 f'{len(order)}', fontsize=10)
    if ax is axes[0][0]:
      handles = [h for a in (ax, twin) for h in a.get_legend_handles_labels()[0]]
      labels = [l for a in (ax, twin) for l in a.get_legend_handles_labels()[1]]
      ax.legend(handles, labels, loc='upper right', fontsize=8)
    panels.append({'label': label, 'experiment': run['experiment'],
                   'point': run['name'], 'seed': run['seed'],
                   'threshold': units['threshold'],
                   'active_units': units['count'],
                   'unit_order': order.tolist(),
                   'activity_sorted': activity[order].tolist(),
                   'per_unit_kl_in_that_order': kl[order].tolist()})
  shown = [r for _, r in chosen]
  title = (f'Fig. 1 / 3 on MNIST: unit activity and KL, D = 50 '
           f'({_network(shown)}, {_epochs(shown)} epochs, lowest seed kept)')
  fig.suptitle(title, fontsize=11)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return {'title': title, 'panels': panels}


def kl_weight_activity_figure(runs: Sequence[Dict], path: str
                              ) -> Optional[Dict]:
  """Fig. 2: for each KL weight lambda, the sorted activity of the 50-d VAE
  (by rank, mean over seeds; bars: between-seed SE) above samples of its
  lowest seed."""
  weights = sorted({r['config']['train']['kl_weight'] for r in runs},
                   reverse=True)
  columns = []
  for weight in weights:
    rs = sorted((r for r in runs
                 if r['config']['train']['kl_weight'] == weight),
                key=lambda r: r['seed'])
    sample = _first_seed(rs, lambda r: True, 'samples.png')
    columns.append((weight, rs, sample))
  if not columns:
    return None
  plt = _pyplot()
  fig, axes = plt.subplots(2, len(columns), squeeze=False,
                           figsize=(4.0 * len(columns), 7.6),
                           gridspec_kw={'height_ratios': [1, 1.25]})
  panels = []
  for c, (weight, rs, sample) in enumerate(columns):
    ax = axes[0][c]
    ranked = np.array([np.sort(r['active_units']['activity'])[::-1]
                       for r in rs])
    stats = [_between_seeds(ranked[:, u]) for u in range(ranked.shape[1])]
    means = np.array([m for m, _ in stats])
    errors = [e for _, e in stats]
    bars = None if errors[0] is None else np.array(errors)
    ax.bar(np.arange(len(means)), means, yerr=bars, color='tab:blue',
           ecolor='black', capsize=1.5, error_kw={'lw': 0.8})
    threshold = rs[0]['active_units']['threshold']
    ax.axhline(threshold, color='gray', ls='--', lw=1,
               label=f'threshold {threshold:g}')
    ax.set_ylim(bottom=0)
    ax.set_xlabel('latent unit (sorted by activity)')
    if c == 0:
      ax.set_ylabel('activity $A_u$')
      ax.legend(loc='upper right', fontsize=8)
    counts = [r['active_units']['count'] for r in rs]
    seeds = [r['seed'] for r in rs]
    ax.set_title(f'λ = {weight:g}: {", ".join(map(str, counts))} active of '
                 f'{len(means)}\n(seeds {", ".join(map(str, seeds))}; '
                 + ('bars: between-seed SE)' if bars is not None
                    else 'no error bars: fewer than '
                    f'{MIN_SEEDS_FOR_ERROR_BARS} seeds)'), fontsize=10)
    ax = axes[1][c]
    ax.axis('off')
    if sample:
      _show(ax, os.path.join(sample['dir'], 'samples.png'))
      ax.set_title(f'samples, seed {sample["seed"]}', fontsize=10)
    panels.append({
        'kl_weight': weight, 'experiment': rs[0]['experiment'],
        'points': [r['name'] for r in rs], 'seeds': seeds,
        'threshold': threshold, 'active_units_per_seed': counts,
        'activity_sorted_per_seed': ranked.tolist(),
        'activity_sorted_mean': means.tolist(),
        'error_bar': None if bars is None else bars.tolist(),
        'error_bar_is': ('between-seed SE of the activity at each rank'
                         if bars is not None else
                         f'none: fewer than {MIN_SEEDS_FOR_ERROR_BARS} seeds'),
        'samples': _source(sample, 'samples.png') if sample else None})
  title = ('Fig. 2 on MNIST: unit activity and samples of a 50-d VAE by KL '
           f'weight λ ({_network(runs)}, {_epochs(runs)} epochs)')
  fig.suptitle(title, fontsize=12)
  fig.tight_layout(h_pad=2.5)
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return {'title': title, 'panels': panels}


def dropout_figure(runs: Sequence[Dict], path: str) -> Optional[Dict]:
  """Fig. 4: (a) reconstructions and (b) samples of the dropout VAE."""
  is_dropout = lambda r: bool(r['config']['train']['z_dropout_rate'])
  recon = _first_seed(runs, is_dropout, 'reconstructions.png')
  sample = _first_seed(runs, is_dropout, 'samples.png')
  if not recon and not sample:
    return None
  run = recon or sample
  rate = run['config']['train']['z_dropout_rate']
  values = lambda r: {'active_units': r['active_units']['count'],
                      'parzen': r['parzen']['mean']}
  return _picture_figure(
      path, f'Fig. 4 on MNIST: dropout VAE (rate {rate:g}), D = '
      f'{_model(run)["latent_dim"]} ({_network([run])}, {_epochs([run])} '
      'epochs)',
      [[(f'(a) reconstructions (top half: test images), seed '
         f'{recon["seed"]}'
         if recon else '', recon, 'reconstructions.png',
         values(recon) if recon else {}),
        (f'(b) samples, seed {sample["seed"]}: {sample["active_units"]["count"]}'
         f' active units, Parzen {sample["parzen"]["mean"]:.0f} nats'
         if sample else '', sample, 'samples.png',
         values(sample) if sample else {})]], panel_inches=4.6)


def dims_figure(runs: Sequence[Dict], path: str, png: str, title: str
                ) -> Optional[Dict]:
  """Fig. 6 / 10: one row per model kind, one column per D."""
  dims = sorted({_model(r)['latent_dim'] for r in runs})
  cells = []
  for kind, label in (('vae', 'VAE'), ('evae', 'eVAE')):
    row = []
    for d in dims:
      run = _first_seed(runs, lambda r, d=d, kind=kind: (
          _model(r)['kind'] == kind and _model(r)['latent_dim'] == d), png)
      row.append((f'{label}, D = {d}', run, png,
                  {'parzen': run['parzen']['mean']} if run else {}))
    cells.append(row)
  if not any(cell[1] for row in cells for cell in row):
    return None
  return _picture_figure(path, title, cells)


def manifold_figure(runs: Sequence[Dict], path: str) -> Optional[Dict]:
  """Fig. 5: the 20-d eVAE's epitome manifolds (K = 2, s = 1)."""
  run = _first_seed(runs, lambda r: (_model(r)['kind'] == 'evae' and
                                     _model(r)['latent_dim'] == 20),
                    'manifolds.png')
  if not run:
    return None
  return _picture_figure(
      path, 'Fig. 5 on MNIST: 10 x 10 manifolds of 4 of the 19 epitomes of '
      'a 20-d eVAE (K = 2, s = 1),\neach over its 2-d latent grid (the other '
      f'units at 0); {_epochs([run])} epochs, seed {run["seed"]}',
      [[('', run, 'manifolds.png', {})]], panel_inches=12, crop=False)


def _fig7_cells(runs: Sequence[Dict]) -> Dict[Tuple[int, str, int], List]:
  """{(D, kind, K): the runs of one experiment}: for each plotted point the
  experiment with the most seeds of it (ties: the first in ``runs``)."""
  by_experiment: Dict[Tuple, Dict[str, List]] = {}
  for r in runs:
    m = _model(r)
    size = m['latent_dim'] if m['kind'] == 'vae' else (
        r['epitome_shape']['epitome_size'])
    key = (m['latent_dim'], m['kind'], size)
    by_experiment.setdefault(key, {}).setdefault(r['experiment'], []).append(r)
  return {key: max(groups.values(), key=len)
          for key, groups in by_experiment.items()}


def parzen_vs_size_figure(runs: Sequence[Dict], path: str) -> Optional[Dict]:
  """Fig. 7: Parzen log-density against K for each D (eVAE, mVAE; VAE at
  K = D), mean over seeds with the between-seed SE as error bars (only
  over at least MIN_SEEDS_FOR_ERROR_BARS seeds)."""
  runs = [r for r in runs if _model(r)['num_layers'] == 1
          and _model(r)['hidden_dim'] == 500
          and r['epitome_shape']['stride'] == r['epitome_shape'][
              'epitome_size']]
  cells = _fig7_cells(runs)
  dims = sorted({d for d, _, _ in cells})
  if not dims:
    return None
  plt = _pyplot()
  fig, axes = plt.subplots(1, len(dims), figsize=(4.4 * len(dims), 3.9),
                           squeeze=False)
  colours = {'evae': 'tab:blue', 'mvae': 'tab:orange', 'vae': 'tab:green'}
  panels = []
  for ax, d in zip(axes[0], dims):
    series = []
    for kind, style in (('evae', 'o-'), ('mvae', 's--'), ('vae', '*')):
      sizes = sorted(k for dd, kk, k in cells if dd == d and kk == kind)
      if not sizes:
        continue
      points = []
      for k in sizes:
        rs = sorted(cells[d, kind, k], key=lambda r: r['seed'])
        values = [r['parzen']['mean'] for r in rs]
        mean, error = _between_seeds(values)
        points.append({
            'K': k, 'experiment': rs[0]['experiment'], 'point': rs[0]['group'],
            'seeds': [r['seed'] for r in rs], 'values': values, 'mean': mean,
            'error_bar': error,
            'error_bar_is': (f'between-seed SE over {len(rs)} seeds'
                             if error is not None else
                             f'none: {len(rs)} seed{"s" * (len(rs) > 1)}, '
                             f'fewer than {MIN_SEEDS_FOR_ERROR_BARS}')})
      size = 11 if kind == 'vae' else 6
      ax.plot(sizes, [p['mean'] for p in points], style, color=colours[kind],
              ms=size, label=kind, zorder=2)
      for p in points:
        if p['error_bar'] is not None:
          ax.errorbar(p['K'], p['mean'], yerr=p['error_bar'], fmt='none',
                      ecolor=colours[kind], capsize=4, zorder=3)
        else:  # open marker: fewer seeds, no bar
          ax.plot(p['K'], p['mean'], style[0], ms=size, mfc='white',
                  color=colours[kind], zorder=4)
      series.append({'kind': kind, 'points': points})
    ax.set_title(f'D = {d}', fontsize=11)
    ax.set_xscale('log', base=2)
    ticks = sorted({k for dd, _, k in cells if dd == d})
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(k) for k in ticks])
    ax.minorticks_off()
    ax.set_xlabel('epitome size K (log scale; VAE: K = D)')
    ax.set_ylabel('Parzen log-density (nats)')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc='best')
    panels.append({'latent_dim': d, 'series': series})
  title = ('Fig. 7 on MNIST: epitome size vs. Parzen log-density '
           f'({_network(runs)}, {_epochs(runs)} epochs); mean over seeds,\nbars: '
           f'between-seed SE over ≥ {MIN_SEEDS_FOR_ERROR_BARS} seeds; open '
           'markers: fewer seeds, no bar')
  fig.suptitle(title, fontsize=11)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return {'title': title, 'panels': panels,
          'read': 'seed folders only; each point from one experiment '
                  '(fig7 or table4, the one with more seeds): their runs of '
                  'one seed are the same run'}


def best_samples_figure(runs: Sequence[Dict], path: str) -> Optional[Dict]:
  """Fig. 8a: samples of the eVAE point with the best mean Parzen
  log-density over its seeds (not the luckiest seed), lowest seed shown."""
  groups: Dict[str, List[Dict]] = {}
  for r in runs:
    if _model(r)['kind'] == 'evae':
      groups.setdefault(r['group'], []).append(r)
  shown = {g: _first_seed(rs, lambda r: True, 'samples.png')
           for g, rs in groups.items()}
  groups = {g: rs for g, rs in groups.items() if shown[g]}
  if not groups:
    return None
  best = max(groups, key=lambda g: np.mean(
      [r['parzen']['mean'] for r in groups[g]]))
  run, rs = shown[best], groups[best]
  mean = float(np.mean([r['parzen']['mean'] for r in rs]))
  m, shape = _model(run), run['epitome_shape']
  return _picture_figure(
      path, 'Fig. 8a on MNIST: samples of the best eVAE', [[(
          f'D = {m["latent_dim"]}, K = {shape["epitome_size"]}, '
          f'L = {m["num_layers"]}, H = {m["hidden_dim"]}: Parzen {mean:.0f} '
          f'nats (mean of {len(rs)} seed{"s" * (len(rs) > 1)}); seed '
          f'{run["seed"]} shown', run, 'samples.png',
          {'parzen_mean_over_seeds': mean,
           'parzen_per_seed': {r['seed']: r['parzen']['mean'] for r in rs}})]],
      panel_inches=6)


def kl_weight_figure(runs: Sequence[Dict], path: str) -> Optional[Dict]:
  """Fig. 9: reconstructions of the 50-d VAE at each KL weight lambda."""
  row = []
  for weight in (1.0, 0.5, 0.2):
    run = _first_seed(runs, lambda r, w=weight: r['config']['train'][
        'kl_weight'] == w, 'reconstructions.png')
    if run:
      row.append((f'λ = {weight:g}, seed {run["seed"]} '
                  f'({run["active_units"]["count"]} active units)', run,
                  'reconstructions.png',
                  {'kl_weight': weight,
                   'active_units': run['active_units']['count']}))
  if not row:
    return None
  return _picture_figure(path, 'Fig. 9 on MNIST: reconstructions of a 50-d '
                         'VAE (top: test images, bottom: reconstructions)',
                         [row], panel_inches=4.2)


# (PNG, experiments read, make(runs, path) -> the data drawn or None,
#  the mnist.sh experiment that makes the runs)
FIGURES = (
    ('fig1_fig3_activity.png', ('fig3',), activity_figure, 'fig3'),
    ('fig2_activity_samples_by_kl_weight.png', ('fig2',),
     kl_weight_activity_figure, 'fig2'),
    ('fig4_dropout_vae.png', ('fig3',), dropout_figure, 'fig3'),
    ('fig5_manifolds.png', ('fig6',), manifold_figure, 'fig6'),
    ('fig6_samples.png', ('fig6',), lambda runs, path: dims_figure(
        runs, path, 'samples.png', f'Fig. 6 on MNIST: samples ({_network(runs)}'
        f'; eVAE with 2-d overlapping epitomes, s = 1; {_epochs(runs)} '
        'epochs; lowest seed)'), 'fig6'),
    ('fig10_reconstructions.png', ('fig6',), lambda runs, path: dims_figure(
        runs, path, 'reconstructions.png', 'Fig. 10 on MNIST: '
        'reconstructions (top half: test images; bottom: reconstructions)'),
     'fig6'),
    ('fig7_parzen_vs_epitome_size.png', ('fig7', 'table4'),
     parzen_vs_size_figure, 'fig7'),
    ('fig8a_best_evae_samples.png', ('table4',), best_samples_figure,
     'table4'),
    ('fig9_kl_weight_reconstructions.png', ('fig2',), kl_weight_figure,
     'fig2'),
)


def data_path(png_path: str) -> str:
  """Where the values drawn in ``png_path`` go: the .json beside it."""
  return os.path.splitext(png_path)[0] + '.json'


def make_all(results: str, out: str) -> Dict[str, bool]:
  """Writes every figure it can, each PNG with its .json; {file name:
  written}.

  Raises:
    kept.DamagedResult: a damaged kept result.
  """
  os.makedirs(out, exist_ok=True)
  written = {}
  for name, folders, make, experiment in FIGURES:
    runs = [r for f in folders for r in load_points(os.path.join(results, f))]
    path = os.path.join(out, name)
    data = make(runs, path) if runs else None
    if data is not None:
      with open(data_path(path), 'w') as f:
        json.dump({'figure': name, 'experiments': list(folders),
                   'paths': 'relative to the folder of kept results (--results)',
                   **data}, f, indent=1)
        f.write('\n')
    written[name] = data is not None
    print(f'{name}: ' + ('written, with its values in '
                         f'{os.path.basename(data_path(path))}'
                         if written[name] else
                         f'no kept runs yet (bash experiments/mnist.sh '
                         f'{experiment} MNIST_DIR runs/mnist)'))
  return written


def main(argv):
  del argv
  try:
    make_all(flags.FLAGS.results, flags.FLAGS.out)
  except kept.DamagedResult as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)


if __name__ == '__main__':
  flags.DEFINE_string('results', 'results/mnist',
                      'Folder of kept results, one subfolder per experiment.')
  flags.DEFINE_string('out', 'results/figures',
                      'Where the figure PNGs and their .json go.')
  app.run(main)
