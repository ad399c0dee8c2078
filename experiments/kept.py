"""Reading kept results: the point folders of a sweep root, each point's
eval.json and per-image values, what is damaged, and which points were
trained by different code.

A root (``results/mnist/<experiment>/``, or a sweep's scratch root) holds
one folder per point, ``<point>[,seed=S]/``, with ``eval.json`` and
``eval_examples.npz`` (`experiments.sweeps.KEPT_FILES`). Folders whose name
starts with a dot are set aside (``.superseded``) and not read; a folder
holding none of a point's files (neither results nor a workdir's
checkpoints) is not a point. Anything else that cannot be read is damage,
raised as `DamagedResult` with one line naming the file and what to do:
a table or a comparison is never computed from what is left.
"""

import io
import json
import math
import os
import zipfile
import zlib
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

EVAL_JSON = 'eval.json'
EXAMPLES = 'eval_examples.npz'
# A kept point's files (`experiments.sweeps.KEPT_FILES`) and a workdir's.
_POINT_FILES = (EVAL_JSON, EXAMPLES, 'metrics.jsonl', 'report.md')
_WORKDIR_FILES = ('checkpoints', 'code.jsonl', 'config.json')


class DamagedResult(ValueError):
  """A kept result that cannot be read; the message is one line naming the
  file and how to repair it."""


def _repair(directory: str) -> str:
  """What to do about a damaged point in ``directory``."""
  if os.path.isdir(os.path.join(directory, 'checkpoints')):
    again = f'python -m evae_jax.main --workdir={directory} --mode=evaluate'
  else:  # a kept folder: the checkpoints are in the sweep's workdir
    again = (f'python -m evae_jax.main --workdir=W --mode=evaluate, W the '
             f'workdir of {os.path.basename(directory)}, then keep it again '
             'with run_sweep --keep')
  return f're-evaluate ({again}) or delete {directory} to retrain the point'


def damaged(path: str, problem: str) -> DamagedResult:
  """The error for ``path`` (a point's file or folder): problem and repair."""
  directory = path if os.path.isdir(path) else os.path.dirname(path)
  return DamagedResult(f'{path}: {problem}; {_repair(directory)}.')


def point_dirs(root: str) -> Tuple[List[str], List[str]]:
  """The point folders under ``root``, and the workdirs not evaluated yet.

  Args:
    root: a folder of points, or several separated by commas.

  Returns:
    (folders with an eval.json, sorted by name within each root; folders of
    a workdir still training, with checkpoints but no eval.json).

  Raises:
    DamagedResult: a root that is not a folder; an empty point folder; a
      point's files without its eval.json; a ``<point>.tmp`` / ``.old``
      folder left by an interrupted copy of kept results.
  """
  points, training = [], []
  for folder in root.split(','):
    if not os.path.isdir(folder):
      raise DamagedResult(f'{folder}: no such folder of results; check '
                          '--root (several roots: separated by commas).')
    for name in sorted(os.listdir(folder)):
      path = os.path.join(folder, name)
      if name.startswith('.') or not os.path.isdir(path):
        continue
      if name.endswith(('.tmp', '.old')):
        raise DamagedResult(
            f'{path}: left by an interrupted copy of kept results; delete '
            'it (the point beside it, or a rerun of the sweep with --keep, '
            'holds the results).')
      present = os.listdir(path)
      if EVAL_JSON in present:
        points.append(path)
      elif not present:
        raise damaged(path, 'empty point folder')
      elif any(f in present for f in _WORKDIR_FILES):
        training.append(path)
      elif (any(f in present for f in _POINT_FILES)
            or any(f.endswith('.png') for f in present)):
        raise damaged(os.path.join(path, EVAL_JSON), 'missing')
  return points, training


def load_point(directory: str) -> Dict[str, Any]:
  """The eval.json of the point in ``directory``, with its ``name`` (the
  folder's) and ``dir``.

  Raises:
    DamagedResult: eval.json unreadable, torn, or not an evaluation (a
      dict with its 'config').
  """
  path = os.path.join(directory, EVAL_JSON)
  try:
    with open(path) as f:
      run = json.load(f)
  except OSError as e:
    raise damaged(path, f'cannot be read ({e.strerror})') from e
  except ValueError as e:
    raise damaged(path, f'is not valid JSON ({e}): torn by an interrupted '
                  'write') from e
  if not isinstance(run, dict) or not isinstance(run.get('config'), dict):
    raise damaged(path, 'holds no evaluation (' + (
        "no 'config'" if isinstance(run, dict) else
        f"a JSON {type(run).__name__}, not an object with its 'config'")
                  + ')')
  run['dir'] = directory
  run['name'] = os.path.basename(directory)
  return run


def load_points(root: str) -> List[Dict[str, Any]]:
  """`load_point` of every point folder under ``root`` (`point_dirs`)."""
  return [load_point(d) for d in point_dirs(root)[0]]


def load_examples(directory: str) -> Dict[str, np.ndarray]:
  """The per-image values of the point in ``directory``, checked against
  its eval.json where there is one: the digest eval.json was written with
  (`report.check_examples`), and, for files written before the digest,
  the number of images and the mean IW log-likelihood it reports.

  Returns:
    {quantity: (n,) values}, e.g. 'iw_marginal'.

  Raises:
    DamagedResult: the file is missing, torn, or not the one eval.json was
      written with.
  """
  path = os.path.join(directory, EXAMPLES)
  try:
    with open(path, 'rb') as f:
      raw = f.read()
  except FileNotFoundError as e:
    raise damaged(path, 'missing (the paired comparisons need the '
                  'per-image values)') from e
  except OSError as e:
    raise damaged(path, f'cannot be read ({e.strerror})') from e
  run = (load_point(directory)
         if os.path.exists(os.path.join(directory, EVAL_JSON)) else None)
  if run is not None:
    # Here, not at the top: it imports JAX, which a table without paired
    # cells does not need.
    from evae_jax.evaluate import report  # pylint: disable=g-import-not-at-top
    try:
      report.check_examples(run, raw, directory)
    except ValueError as e:
      raise DamagedResult(f'{e} Or delete {directory} to retrain the '
                          'point.') from e
  try:
    with np.load(io.BytesIO(raw)) as f:
      values = {k: np.asarray(f[k]) for k in f.files}
  except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile,
          zlib.error) as e:
    raise damaged(path, f'is torn, not a readable .npz ({type(e).__name__})'
                  ) from e
  if run is not None:
    _check_against(run, values, path)
  return values


def _check_against(run: Dict, values: Dict[str, np.ndarray], path: str):
  """Raises DamagedResult where ``values`` contradict eval.json's IW
  log-likelihood (its number of images and mean)."""
  iw = run.get('iw_log_likelihood')
  if not isinstance(iw, dict) or 'iw_marginal' not in values:
    return
  per_image = np.asarray(values['iw_marginal'], np.float64)
  count = iw.get('num_examples')
  mean = (iw.get('marginal') or {}).get('mean')
  wrong = None
  if isinstance(count, int) and count != len(per_image):
    wrong = f'{len(per_image)} images where eval.json reports {count}'
  elif isinstance(mean, (int, float)) and len(per_image) and not math.isclose(
      float(per_image.mean()), mean, rel_tol=1e-6, abs_tol=1e-6):
    wrong = (f'mean IW log-likelihood {per_image.mean():.4f} where '
             f'eval.json reports {mean:.4f}')
  if wrong:
    raise damaged(path, f'is not the one eval.json was written with '
                  f'({wrong})')


def _flat(config: Dict, prefix: str = '') -> Dict[str, Any]:
  out = {}
  for key, value in config.items():
    if isinstance(value, dict):
      out.update(_flat(value, f'{prefix}{key}.'))
    else:
      out[f'{prefix}{key}'] = value
  return out


def numerics(run: Dict) -> Tuple[int, ...]:
  """The NUMERICS_VERSIONs of the code that trained ``run`` (each start or
  resume in eval.json's code.trained_with), sorted; () without a record."""
  code = run.get('code')
  starts = code.get('trained_with') if isinstance(code, dict) else None
  if not isinstance(starts, list):
    return ()
  return tuple(sorted({s['numerics'] for s in starts
                       if isinstance(s, dict) and 'numerics' in s}))


def _names(runs: Sequence[Dict]) -> str:
  """'kind=vae,latent_dim=50 (seeds 0, 1)' for runs named with seeds."""
  from experiments import paired  # pylint: disable=g-import-not-at-top
  groups: Dict[str, List] = {}
  for r in runs:
    point, seed = paired.split_seed(r['name'])
    groups.setdefault(point, []).append(seed)
  return ', '.join(
      f'`{point}`' + ('' if seeds == [None] else
               f' (seed{"s" * (len(seeds) > 1)} '
               f'{", ".join(str(s) for s in sorted(seeds, key=str))})')
      for point, seeds in groups.items())


def code_differences(runs: Sequence[Dict]) -> List[str]:
  """Why the runs of one comparison (or of one mean over seeds) may not
  have been trained by the same code; [] when nothing says so.

  Two signs, from eval.json: the runs with a code record (its
  'code'.'trained_with', one entry per start or resume of training) were
  trained by different numerics versions, or one of them by several; a run
  without a record (trained before it existed) lacks config fields that
  the others' configs have (e.g. train.free_bits), i.e. it was trained by
  older code.

  Args:
    runs: eval.json dicts with their 'name' (`load_point`).

  Returns:
    One sentence per reason, naming the points.
  """
  reasons = []
  recorded = [(r, numerics(r)) for r in runs if numerics(r)]
  for r, versions in recorded:
    if len(versions) > 1:
      reasons.append(f'{_names([r])} was trained by numerics versions '
                     f'{", ".join(map(str, versions))} (resumed by other '
                     'code)')
  if len({v for _, v in recorded}) > 1:
    by_version: Dict[Tuple, List] = {}
    for r, versions in recorded:
      by_version.setdefault(versions, []).append(r)
    reasons.append('trained by different numerics versions: ' + '; '.join(
        f'{"+".join(map(str, v))} for {_names(rs)}'
        for v, rs in sorted(by_version.items())))
  fields = [set(_flat(r['config'])) for r in runs]
  every = set().union(*fields) if fields else set()
  missing: Dict[Tuple[str, ...], List] = {}
  for r, have in zip(runs, fields):
    if not numerics(r) and every - have:
      missing.setdefault(tuple(sorted(every - have)), []).append(r)
  for lack, rs in missing.items():
    reasons.append(f'{_names(rs)}: no code record, and the config lacks '
                   f'{", ".join(lack)}, which the other runs of the cell '
                   'have: trained by older code')
  return reasons


class MixedCode(ValueError):
  """A comparison of runs trained by different code, refused (--strict)."""


class CodeNotes:
  """Marks the cells whose runs may have been trained by different code
  (`code_differences`) with †1, †2, ... and collects the footnotes; with
  ``strict``, refuses such a cell instead (`MixedCode`)."""

  def __init__(self, strict: bool = False):
    self.strict = strict
    self.notes: List[str] = []

  def mark(self, runs: Sequence[Dict]) -> str:
    """' †N' (' †N,M' for several reasons) for a cell computed from
    ``runs``; '' when nothing differs.

    Raises:
      MixedCode: with ``strict``, a one-line refusal naming the points.
    """
    reasons = code_differences(runs)
    if not reasons:
      return ''
    if self.strict:
      raise MixedCode('refused (--strict): a comparison of runs trained by '
                      f'different code: {"; ".join(reasons)}.')
    for text in reasons:
      if text not in self.notes:
        self.notes.append(text)
    return ' †' + ','.join(str(self.notes.index(t) + 1) for t in reasons)

  def footnotes(self) -> str:
    """The footnotes, one a line ('' for none)."""
    return '\n'.join(f'†{i} {text}.' for i, text in enumerate(self.notes, 1))


# The training budget of the paper's models, in epochs: Table 2's (and
# Burda et al.'s) eight stages of 3^(i-1) epochs.
BURDA_FULL_EPOCHS = sum(3 ** i for i in range(8))


def budget_label(runs, paper_epochs: int = BURDA_FULL_EPOCHS) -> str:
  """'at 40 of 3,280 epochs (1.2%)': the epochs the runs trained, as a
  share of the paper's, for a verdict column's header (a gap at a few per
  cent of the budget is not the paper's gap)."""
  epochs = sorted({float(r.get('checkpoint_epochs') or 0) for r in runs})
  if not epochs or epochs == [0.0]:
    return 'at an unrecorded budget'
  shares = ', '.join(f'{e:g}' for e in epochs)
  low, high = (100 * e / paper_epochs for e in (epochs[0], epochs[-1]))
  share = f'{low:.1f}%' if low == high else f'{low:.1f}-{high:.1f}%'
  return f'at {shares} of {paper_epochs:,} epochs ({share})'
