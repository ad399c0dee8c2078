"""Gathers a sweep's eval.json files into the paper's tables, with the
published number beside ours in every cell where the paper has one.

    python -m experiments.tables --root=runs/table4 --table=table4 > table4.md

Tables: table1 / table4 (Parzen (active units) by D and model, columns H, L;
mVAE and eVAE cells take the K with the best mean over seeds: mean ±
between-seed SE, active units min-max), table2 (IW negative log-likelihood),
iwae (the same for IWAE-trained models, beside Burda et al.'s IWAE k = 5),
table3 (best Parzen per model), summary (one row per run, every figure),
seeds (one row per point, each figure's mean ± between-seed SE).

Paired columns (Table 2, stride, remedies) give the verdict of
`experiments.verdicts`, the one rule of every comparison here and in
`experiments.paired` (``--margin=m`` adds "level within ±m"). A cell whose
mean covers fewer seeds than its row says so ("38.0 (1 of 3 seeds)"); a
cell whose runs were trained by different code is marked † with a footnote
(``--strict``: refused, exit 2); a damaged kept result stops the table with
exit status 2 and a line naming the file and what to do.
"""

import dataclasses
import json
import math
import os
import re
import sys
from typing import Dict, List, Optional

from absl import app
from absl import flags
import numpy as np

from experiments import kept
from experiments import paired
from experiments import verdicts

PAPER_FILE = os.path.join(os.path.dirname(__file__), 'paper_numbers.json')
TABLES = ('table1', 'table2', 'table3', 'table4', 'iwae', 'stride',
          'remedies', 'summary', 'seeds')
KINDS = ('vae', 'mvae', 'evae')


@dataclasses.dataclass
class Options:
  """How a table decides and marks: the equivalence margin in nats (None:
  no 'level' verdict, `verdicts.decide`) and the code-difference marks
  (`kept.CodeNotes`)."""
  margin: Optional[float] = None
  notes: kept.CodeNotes = dataclasses.field(default_factory=kept.CodeNotes)


def load_runs(root: str) -> List[Dict]:
  """eval.json of every point directly under ``root`` (with its ``name``
  and ``dir``); ``root`` may be several folders separated by commas (a
  table whose points two sweeps share).

  Raises:
    kept.DamagedResult: a damaged point (`kept.point_dirs`, `kept.load_point`).
  """
  return kept.load_points(root)


def _model(run):
  return run['config']['model']


def _label(run) -> str:
  """vae, 'vae (lambda=0.5)', 'dropout vae (0.5)', evae, mvae."""
  m, t = _model(run), run['config']['train']
  if t['z_dropout_rate'] > 0:
    return f'dropout {m["kind"]} ({t["z_dropout_rate"]:g})'
  if t['kl_weight'] != 1.0:
    return f'{m["kind"]} (λ={t["kl_weight"]:g})'
  return m['kind']


def _best(runs):
  return max(runs, key=lambda r: r['parzen']['mean']) if runs else None


def _best_point_cell(runs, options: Options) -> str:
  """'**243** (17)' for one run; over seeds '**243** ± 2 (17-19), 3 seeds'.

  The runs of one cell (e.g. an eVAE at K = 3 and at K = 4, each with its
  seeds) are grouped by point (the name without its seed); the point with
  the best *mean* Parzen log-density over its seeds is shown, so that a
  lucky seed of a point does not pick the cell (a point run with fewer
  seeds still competes on its mean; the cell says how many).

  Raises:
    ValueError: one point has two runs of the same seed (`_by_point`).
  """
  if not runs:
    return '–'
  groups = _by_point(runs)
  best = max(groups.values(),
             key=lambda rs: np.mean([r['parzen']['mean'] for r in rs]))
  mean, stderr = _mean_and_stderr([r['parzen']['mean'] for r in best])
  units = sorted(r['active_units']['count'] for r in best)
  span = (str(units[0]) if units[0] == units[-1]
          else f'{units[0]}-{units[-1]}')
  mark = options.notes.mark(best)
  if stderr is None:
    return f'**{mean:.0f}** ({span}){mark}'
  return f'**{mean:.0f}** ± {stderr:.0f} ({span}), {len(best)} seeds{mark}'


def _grid_table(runs, paper_rows, columns, options: Options) -> str:
  header = '| D | model | ' + ' | '.join(f'H={h}, L={l}' for h, l in columns)
  lines = [header + ' |', '|' + ' --- |' * (len(columns) + 2)]
  dims = sorted({_model(r)['latent_dim'] for r in runs}
                | {p['latent_dim'] for p in paper_rows})
  for d in dims:
    for kind in KINDS:
      cells = []
      for h, l in columns:
        match = lambda m: (m['latent_dim'] == d and m['kind'] == kind and
                           m['hidden_dim'] == h and m['num_layers'] == l)
        text = _best_point_cell([r for r in runs if match(_model(r))
                                 and _label(r) == kind], options)
        paper = [p for p in paper_rows if match(p)]
        if paper:
          text += f' / {paper[0]["parzen"]} ({paper[0]["active_units"]})'
        cells.append(text)
      lines.append(f'| {d} | {kind} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def _seed(run) -> int:
  return run['config'].get('seed', 0)


def _by_point(runs, key=None) -> Dict[str, List[Dict]]:
  """Runs grouped by point, ``key(run)`` (default: the name without its
  seed), in order of first appearance.

  Raises:
    ValueError: two runs of one point have the same training seed (say
      ``X`` from a sweep without ``--seeds`` beside its rerun ``X,seed=0``):
      counting both would report one seed as two.
  """
  key = key or (lambda r: paired.split_seed(r['name'])[0])
  groups: Dict[str, List[Dict]] = {}
  for r in runs:
    group = groups.setdefault(key(r), [])
    twin = [o for o in group if _seed(o) == _seed(r)]
    if twin:
      raise ValueError(
          f'two runs of seed {_seed(r)} for {key(r)!r}: {twin[0]["name"]} '
          f'and {r["name"]}; keep one (a table counts one run per seed).')
    group.append(r)
  return groups


def _nll(run, which='marginal') -> float:
  return -run['iw_log_likelihood'][which]['mean']


def _mean_and_stderr(values):
  """(mean, between-seed SE or None for one value) of per-seed values."""
  values = np.asarray(values, np.float64)
  if len(values) == 1:
    return float(values[0]), None
  return float(values.mean()), float(values.std(ddof=1) /
                                     math.sqrt(len(values)))


def _over_seeds(values) -> str:
  """'**92.31** ± 0.08 (3 seeds)': the mean and between-seed SE; the value
  alone for one seed."""
  mean, stderr = _mean_and_stderr(values)
  if stderr is None:
    return f'**{mean:.2f}**'
  return f'**{mean:.2f}** ± {stderr:.2f} ({len(values)} seeds)'


def _by_seed(runs) -> Dict[int, Dict]:
  """{training seed: run}.

  Raises:
    ValueError: two runs of one seed (a pair needs one run per seed).
  """
  out = {}
  for r in runs:
    if _seed(r) in out:
      raise ValueError(f'two runs of seed {_seed(r)}: {out[_seed(r)]["dir"]}'
                       f' and {r["dir"]}; a table pairs one run per seed.')
    out[_seed(r)] = r
  return out


def _paired_over_seeds(base_runs, other_runs, options: Options,
                       expected_sign: int = 0, a: str = 'A') -> str:
  """The paired IW difference (other - base, A = other) over every seed
  both have, with its verdict (`verdicts.decide`, `verdicts.describe`); a
  seed that only one of them has is named, not dropped silently.

  Raises:
    kept.DamagedResult: a run's eval_examples.npz is missing or damaged.
  """
  base, other = _by_seed(base_runs), _by_seed(other_runs)
  common = sorted(set(base) & set(other))
  if not common:
    return '–'
  images = [paired.differences(base[s]['dir'], other[s]['dir'],
                               'iw_marginal') for s in common]
  text = verdicts.describe(verdicts.decide(images, options.margin), a,
                           expected_sign)
  alone = sorted(set(base) ^ set(other))
  if alone:
    text += (f' (paired on {len(common)} of {len(common) + len(alone)} '
             f'seeds: seed{"s" * (len(alone) > 1)} '
             f'{", ".join(map(str, alone))} without a pair)')
  runs = [base[s] for s in common] + [other[s] for s in common]
  return text + options.notes.mark(runs)


def _units(runs) -> str:
  return ', '.join(str(r['active_units']['count'])
                   for r in sorted(runs, key=_seed)) or '–'


def _table2(runs, paper_rows, options: Options,
            names=('VAE', 'eVAE')) -> str:
  """-log p(x) (IW, marginal over epitomes) beside the paper's, the eVAE's
  y*-only estimate, active units, and the paired eVAE - VAE difference in
  log p(x) on the same test images (positive: the eVAE is better), each
  over the training seeds the root holds (mean ± between-seed SE; the
  paired verdict by `verdicts.decide`, set against the paper's sign).

  The eVAE is Table 2's non-overlapping one (stride K); other layouts are
  the stride table's. Rows: the paper's D and those with an eVAE (not the
  stride table's VAE control at D = 25)."""
  v, e = names
  runs = [r for r in runs if _model(r)['kind'] != 'evae' or
          r['epitome_shape']['stride'] == r['epitome_shape']['epitome_size']]
  lines = [f'| D | {v} ours / paper | {e} ours / paper | {e} y*-only | '
           f'active units {v} / {e} (per seed) | {e} - {v}, paired, '
           f'{kept.budget_label(runs)} |',
           '|' + ' --- |' * 6]
  dims = sorted({p['latent_dim'] for p in paper_rows}
                | {_model(r)['latent_dim'] for r in runs
                   if _model(r)['kind'] == 'evae'})
  for d in dims:
    cells, found, paper_nll = [], {}, {}
    for kind in ('vae', 'evae'):
      ours = [r for r in runs if _model(r)['latent_dim'] == d
              and _label(r) == kind]
      paper = [p for p in paper_rows if p['latent_dim'] == d
               and p['kind'] == kind]
      found[kind] = ours
      paper_nll[kind] = paper[0]['nll'] if paper else None
      text = (_over_seeds([_nll(r) for r in ours]) + options.notes.mark(ours)
              if ours else '–')
      cells.append(text + (f' / {paper[0]["nll"]:.2f}' if paper else ''))
    vae, evae = found['vae'], found['evae']
    cells.append(_over_seeds([_nll(r, 'assigned_epitome') for r in evae])
                 .replace('**', '') if evae else '–')
    cells.append(f'{_units(vae)} / {_units(evae)}')
    sign = 0
    if None not in paper_nll.values():
      sign = 1 if paper_nll['vae'] > paper_nll['evae'] else -1
    cells.append(_paired_over_seeds(vae, evae, options, sign, e))
    lines.append(f'| {d} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def _stride(runs, options: Options) -> str:
  """Table 2 at D = 50 by epitome layout: every model of the root (grouped
  over seeds) paired against the VAE with D = 50 seed by seed; the paper's
  sign (the eVAE better) is expected of the eVAEs, none of other VAEs."""
  groups = _by_point(runs)
  base = [g for g, rs in groups.items() if _model(rs[0])['kind'] == 'vae'
          and _model(rs[0])['latent_dim'] == 50]
  lines = ['| model | D | K | s | E | -log p(x) | active units (per seed) | '
           f'epochs | paired - VAE (D = 50), {kept.budget_label(runs)} |',
           '|' + ' --- |' * 9]
  counts = [_iw_images(r) for r in runs]
  usual = max(set(counts), key=counts.count) if counts else None
  for group, rs in groups.items():
    shape, m = rs[0]['epitome_shape'], _model(rs[0])
    sign = 1 if m['kind'] == 'evae' else 0
    diff = ('(the baseline)' if base and group == base[0] else
            _paired_over_seeds(groups[base[0]], rs, options, sign) if base
            else '–')
    epochs = sorted({r.get('checkpoint_epochs', '?') for r in rs}, key=str)
    lines.append(
        f'| {m["kind"]}{options.notes.mark(rs)} | {shape["latent_dim"]} | '
        f'{shape["epitome_size"]} | '
        f'{shape["stride"]} | {rs[0]["num_epitomes"]} | '
        f'{_over_seeds([_nll(r) for r in rs])}{_images_note(rs, usual)} | '
        f'{_units(rs)} | '
        f'{", ".join(map(str, epochs))} | {diff} |')
  return '\n'.join(lines)


def _iw_images(run):
  return run['iw_log_likelihood'].get('num_examples')


def _images_note(runs, usual) -> str:
  """' (first 500 test images)' where the IW estimate of ``runs`` covers
  another number of test images than most of the table's (its mean is then
  not comparable; the paired column compares on the images both scored)."""
  counts = sorted({_iw_images(r) for r in runs} - {usual, None})
  return (f' (first {", ".join(map(str, counts))} test images)' if counts
          else '')


def _method(run) -> str:
  """What was trained: 'VAE', 'KL warm-up (N steps)', 'free bits 0.1',
  'dropout VAE (0.5)', 'IWAE (k = 5)', 'eVAE (K = 25, s = 5)'."""
  m, t, shape = _model(run), run['config']['train'], run['epitome_shape']
  parts = []
  if m['kind'] == 'evae':
    parts.append(f'eVAE (K = {shape["epitome_size"]}, s = {shape["stride"]})')
  elif m['kind'] != 'vae' or m['latent_dim'] != 50:
    parts.append(f'{m["kind"].upper()} (D = {m["latent_dim"]})')
  objective = t.get('objective', 'point')
  if objective.startswith('iwae'):
    parts.append(f'{objective.upper()} (k = {t["num_samples"]})')
  elif objective != 'point':
    parts.append(f'{objective} objective')
  if t.get('kl_warmup_steps'):
    parts.append(f'KL warm-up ({t["kl_warmup_steps"]:,} steps)')
  if t.get('free_bits'):
    parts.append(f'free bits {t["free_bits"]:g}')
  if t['z_dropout_rate']:
    parts.append(f'dropout VAE ({t["z_dropout_rate"]:g})')
  return ', '.join(parts) or 'VAE'


def _mean_cell(values, digits=2) -> str:
  """'92.26 ± 0.03': the mean ± between-seed SE of the per-seed values, the
  value alone for one; a seed without the value (None: evaluated before it
  existed) is counted, not dropped: '38.0 (1 of 3 seeds)'."""
  present = [v for v in values if v is not None]
  if not present:
    return '–'
  mean, stderr = _mean_and_stderr(present)
  text = (f'{mean:.{digits}f}' if stderr is None
          else f'{mean:.{digits}f} ± {stderr:.{digits}f}')
  if len(present) < len(values):
    text += f' ({len(present)} of {len(values)} seeds)'
  return text


def _mutual_information(run):
  mi = run.get('mutual_information')
  return mi.get('marginal') if isinstance(mi, dict) else None


def _mi_cell(runs) -> str:
  """The mutual information over seeds, marked '≥' where an estimate lies
  within 0.1 nat of its ceiling log n (the estimator saturates there)."""
  cell = _mean_cell([_mutual_information(r) for r in runs])
  def near_ceiling(run):
    mi = run.get('mutual_information')
    if not isinstance(mi, dict):
      return False
    ceiling = mi.get('upper_limit', math.log(mi['num_examples']))
    return ceiling - mi['marginal'] < 0.1
  saturated = any(near_ceiling(r) for r in runs)
  return f'≥ {cell} (log n)' if saturated else cell


def _units_at(run, threshold):
  units = run['active_units']
  if abs(units['threshold'] - threshold) < 1e-9:
    return units['count']
  return units.get(f'count_at_{threshold:g}')  # None: evaluated before it existed


def _published_at_50(method: str, paper) -> str:
  """The published -log p(x) at D = 50 and full budget for a remedies row:
  Burda et al.'s VAE and IWAE (k = 5), the eVAE paper's eVAE (K = 25, its
  stride not given); '–' for the others."""
  vae = [p for p in paper['table2'] if p['kind'] == 'vae'
         and p['latent_dim'] == 50][0]['nll']
  evae = [p for p in paper['table2'] if p['kind'] == 'evae'
          and p['latent_dim'] == 50][0]['nll']
  iwae = [p for p in paper['iwae'] if p['latent_dim'] == 50][0]['nll']
  if method == 'VAE':
    return f'{vae} (Burda et al.)'
  if method == 'IWAE (k = 5)':
    return f'{iwae} (Burda et al.)'
  if re.fullmatch(r'eVAE \(K = 25, s = \d+\)', method):
    return f'{evae} (eVAE paper, s not given)'
  return '–'


def _remedies(runs, paper, options: Options) -> str:
  """Every method at D = 50 (grouped over seeds) beside the VAE: IW
  log-likelihood, bound, active units at 0.02 and 0.01, mutual information,
  Parzen, the paired IW difference to the VAE seed by seed, and the
  published -log p(x) at full budget where there is one."""
  runs = [r for r in runs if _model(r)['latent_dim'] == 50]
  groups = _by_point(runs, _method)
  lines = ['| method | seeds | -log p(x) | -bound (eq. 7) | active units '
           f'(0.02 / 0.01) | I_q(x; z) | Parzen | paired - VAE, '
           f'{kept.budget_label(runs)} | '
           '-log p(x) published, full budget |',
           '|' + ' --- |' * 9]
  for method, rs in groups.items():
    diff = ('(the baseline)' if method == 'VAE' else
            _paired_over_seeds(groups['VAE'], rs, options) if 'VAE' in groups
            else '–')
    lines.append(
        f'| {method}{options.notes.mark(rs)} | {len(rs)} | {_mean_cell([_nll(r) for r in rs])}'
        f'{_images_note(rs, 2000)} | '
        f'{_mean_cell([-r["bound"]["mean"] for r in rs])} | '
        f'{_mean_cell([_units_at(r, 0.02) for r in rs], 1)} / '
        f'{_mean_cell([_units_at(r, 0.01) for r in rs], 1)} | '
        f'{_mi_cell(rs)} | '
        f'{_mean_cell([r["parzen"]["mean"] for r in rs], 1)} | {diff} | '
        f'{_published_at_50(method, paper)} |')
  return '\n'.join(lines)


def _table3(runs, paper_rows) -> str:
  lines = ['| model | ours (best run) | paper MNIST | paper TFD |',
           '| --- | --- | --- | --- |']
  for kind in KINDS:
    ours = _best([r for r in runs if _label(r) == kind])
    paper = {p['dataset']: p for p in paper_rows if p['kind'] == kind}
    text = (f'**{ours["parzen"]["mean"]:.0f} ± {ours["parzen"]["stderr"]:.0f}**'
            f' ({ours["name"]})' if ours else '–')
    lines.append(f'| {kind} | {text} | {paper["mnist"]["parzen"]} ± '
                 f'{paper["mnist"]["stderr"]} | {paper["tfd"]["parzen"]} ± '
                 f'{paper["tfd"]["stderr"]} |')
  return '\n'.join(lines)


def _summary(runs) -> str:
  lines = ['| run | model | D | K | s | L | H | params | active units | '
           'Parzen | bound (eq. 7) | logsumexp bound | IW log-lik (k) |',
           '|' + ' --- |' * 13]
  for r in runs:
    m, shape = _model(r), r['epitome_shape']
    iw = r['iw_log_likelihood']
    lines.append(
        f'| {r["name"]} | {_label(r)} | {shape["latent_dim"]} | '
        f'{shape["epitome_size"]} | {shape["stride"]} | {m["num_layers"]} | '
        f'{m["hidden_dim"]} | {r["num_params"]:,} | '
        f'{r["active_units"]["count"]} | '
        f'{r["parzen"]["mean"]:.1f} ± {r["parzen"]["stderr"]:.1f} | '
        f'{r["bound"]["mean"]:.2f} | {r["logsumexp_bound"]["mean"]:.2f} | '
        f'{iw["marginal"]["mean"]:.2f} ({iw["num_samples"]}) |')
  return '\n'.join(lines)


def _seeds(runs, options: Options) -> str:
  """One row per point (its runs over seeds grouped by name): active units
  per seed at 0.02 and 0.01, Parzen, bound and IW log-likelihood as mean ±
  between-seed SE."""
  groups = _by_point(runs)
  lines = ['| point | model | seeds | active units (0.02; per seed) | '
           'active units (0.01) | Parzen | bound (eq. 7) | IW log-lik (k) |',
           '|' + ' --- |' * 8]
  for name, rs in groups.items():
    rs = sorted(rs, key=_seed)
    at_01 = [_units_at(r, 0.01) for r in rs]
    ks = sorted({str(r['iw_log_likelihood'].get('num_samples', '?'))
                 for r in rs}, key=lambda k: (len(k), k))
    lines.append(
        f'| {name}{options.notes.mark(rs)} | {_label(rs[0])} | {len(rs)} | '
        f'{_units(rs)} | '
        f'{", ".join("–" if u is None else str(u) for u in at_01)} | '
        f'{_mean_cell([r["parzen"]["mean"] for r in rs], 1)} | '
        f'{_mean_cell([r["bound"]["mean"] for r in rs])} | '
        f'{_mean_cell([-_nll(r) for r in rs])} '
        f'({", ".join(ks)}{"" if len(ks) == 1 else ": seeds differ"}) |')
  return '\n'.join(lines)


def _budget(runs) -> str:
  def epochs(train):
    if train['schedule'] == 'burda':  # stages 1..n of 3^(i-1) epochs
      return (f'{sum(3 ** i for i in range(train["burda_stages"]))} epochs '
              f'(Burda stages 1-{train["burda_stages"]})')
    return f'{train["num_epochs"]} epochs ({train["schedule"]})'

  def folder(path):
    return os.path.basename(os.path.normpath(path)) if path else ''

  budgets = sorted({(r['config']['data']['name'],
                     folder(r['config']['data']['path']),
                     epochs(r['config']['train']), r['step']) for r in runs})
  return '; '.join(f'data `{n}`{" " + p if p else ""}, {e}, {st} steps'
                   for n, p, e, st in budgets)


def render(root: str, table: str, margin: Optional[float] = None,
           strict: bool = False) -> str:
  """The markdown for ``table`` from the runs under ``root``.

  Args:
    root: the folder of points (several: separated by commas).
    table: one of TABLES.
    margin: the equivalence margin of the paired verdicts in nats, or None.
    strict: refuse a cell whose runs were trained by different code
      instead of marking it.

  Raises:
    ValueError: a damaged kept result (`kept.DamagedResult`), two runs of
      one seed, or with ``strict`` runs of different code
      (`kept.MixedCode`); the message is one line.
  """
  runs = load_runs(root)
  options = Options(margin, kept.CodeNotes(strict))
  with open(PAPER_FILE) as f:
    paper = json.load(f)
  if table == 'summary':
    body = _summary(runs)
  elif table == 'seeds':
    body = _seeds(runs, options)
  elif table == 'table1':
    body = _grid_table(runs, paper['table1'],
                       [(500, 2), (500, 3), (1000, 2), (1000, 3)], options)
  elif table == 'table4':
    body = _grid_table(runs, paper['table4'],
                       [(h, l) for h in (500, 1000) for l in (1, 2, 3)],
                       options)
  elif table == 'table2':
    body = _table2(runs, paper['table2'], options)
  elif table == 'stride':
    body = _stride(runs, options)
  elif table == 'remedies':
    body = _remedies(runs, paper, options)
  elif table == 'iwae':  # beside Burda et al.'s IWAE, not the eVAE paper
    body = _table2(runs, paper['iwae'], options, ('IWAE', 'IWAE-eVAE'))
  else:
    body = _table3(runs, paper['table3'])
  note = ('Cells: **ours** / paper; Parzen log-density in nats with active '
          'units in parentheses (Table 2: -log p(x) in nats). Over seeds: '
          'mean ± between-seed SE (Tables 1, 4: active units min-max). '
          'The paper\'s numbers are on MNIST / TFD at full budget.'
          if table not in ('summary', 'stride', 'remedies', 'seeds')
          else 'One row per run; nats.')
  if table in ('table2', 'iwae'):
    note += (' Paired: A = the eVAE, B = the VAE of the row, log p(x) of A '
             'minus B on the same test images, seed by seed (positive: A is '
             'better).')
  if table == 'seeds':
    note = ('One row per point over its training seeds: mean ± between-seed '
            'SE, nats (pairs: `python -m experiments.paired`).')
  if table == 'remedies':
    note = ('Each method at D = 50 on Table 2\'s network, budget and test '
            'images; every number the true bound or log-likelihood (the '
            'remedies change only what is optimised). Cells: mean ± '
            'between-seed SE, nats. Paired: A = the row\'s method, B = the '
            'VAE, log p(x) of A minus B on the same images, seed by seed '
            '(positive: A is better).')
  if table == 'stride':
    note = ('-log p(x) in nats (IW, marginal over epitomes): mean ± '
            'between-seed SE. Paired: A = the row\'s model, B = the VAE '
            'with D = 50, log p(x) of A minus B on the same test images, '
            'seed by seed (positive: A is better).')
  if table == 'iwae':
    note = ('Cells: **ours** / published, -log p(x) in nats (IW, k = 5000). '
            'Beyond the eVAE paper: the published cell is Burda et al. '
            '(2015), IWAE k = 5, at their full budget. Paired: A = the '
            'IWAE-eVAE, B = the IWAE, log p(x) of A minus B on the same test '
            'images, seed by seed (positive: A is better).')
  if table in ('table2', 'iwae', 'stride', 'remedies'):
    note += ' ' + verdicts.RULE
  training = kept.point_dirs(root)[1]
  waiting = (f' Not evaluated yet, not in the table: '
             f'{", ".join(os.path.basename(d) for d in training)}.'
             if training else '')
  footnotes = options.notes.footnotes()
  return (f'{note}\n\nRuns in `{root}`: {_budget(runs) or "none yet"}.'
          f'{waiting}\n\n{body}\n' + (f'\n{footnotes}\n' if footnotes else ''))


def main(argv):
  del argv
  try:
    print(render(flags.FLAGS.root, flags.FLAGS.table, flags.FLAGS.margin,
                 flags.FLAGS.strict))
  except ValueError as e:  # damaged results, two runs of one seed, --strict
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)


if __name__ == '__main__':
  flags.DEFINE_string('root', None, 'Sweep root directory (or several, '
                      'separated by commas).')
  flags.DEFINE_enum('table', 'summary', TABLES, 'Which table.')
  flags.DEFINE_float('margin', None, 'Equivalence margin m in nats of the '
                     'paired verdicts: a difference whose 95% interval lies '
                     'inside (-m, m) is "level within ±m" (default: no such '
                     'verdict).')
  flags.DEFINE_bool('strict', False, 'Refuse (exit 2) a cell whose runs were '
                    'trained by different code instead of marking it †.')
  flags.mark_flags_as_required(['root'])
  app.run(main)
