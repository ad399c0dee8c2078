"""Paired comparisons of two models on the same test images.

Two means with their own standard errors (~0.8 nats on MNIST) hide real
differences of ~0.5 nats; the per-example difference of two models scored
on the same images has a far smaller standard error. Reads the
``eval_examples.npz`` that ``--mode=evaluate`` writes in each workdir.

    python -m experiments.paired --root=runs/mnist/table2 --base=kind=vae --other=kind=evae

pairs every workdir under ROOT whose name contains BASE with the one whose
name has OTHER in its place, and prints mean(other - base) ± its standard
error for each per-example quantity (positive: OTHER is better).

Training seeds. Workdirs named ``...,seed=S`` (``run_sweep --seeds``) are
paired seed by seed, and each pair of models is then summarised at the seed
level by `experiments.verdicts` (the one rule the tables use too): the
paired difference of every seed, their mean, its SE from the between-seed
spread and the test-image noise together, the t quantile with S - 1
degrees of freedom, the 95% interval and the verdict ("resolved: A
better/worse" where it excludes zero, "not resolved" otherwise, "level
within ±m" only with ``--margin=m``; "one seed: no verdict"). A is OTHER,
B is BASE. A base seed without its counterpart is named, not dropped
silently; rows whose runs were trained by different code are marked (†)
with a footnote, or refused with ``--strict``; a damaged result (torn
eval.json, missing or mismatched eval_examples.npz, an empty point folder)
stops the comparison with exit status 2 and a line saying what to do.
With ``--other_root=DIR`` the other workdir is looked up under DIR instead:
the same model trained in two experiments (say on a CPU and on a GPU, or
to two budgets):

    python -m experiments.paired --root=runs/mnist/table2 --other_root=runs/gpu/full \
        --base=latent_dim=50,kind=vae --other=kind=vae
"""

import math
import os
import re
import sys
from typing import Dict, List, Optional, Sequence, Tuple

from absl import app
from absl import flags
import numpy as np

from experiments import kept
from experiments import verdicts

EXAMPLES = kept.EXAMPLES
KEYS = ('iw_marginal', 'iw_assigned', 'bound', 'logsumexp_bound', 'parzen')

FLAGS = flags.FLAGS
_SEED = re.compile(r'(^|,)seed=(\d+)(?=,|$)')


def paired_difference(base: np.ndarray, other: np.ndarray) -> Dict[str, float]:
  """mean(other - base) over the common prefix of examples, its standard
  error std / sqrt(n) (ddof 1), and n."""
  n = min(len(base), len(other))
  d = np.asarray(other[:n], np.float64) - np.asarray(base[:n], np.float64)
  return {'mean': float(d.mean()),
          'stderr': float(d.std(ddof=1) / math.sqrt(n)), 'n': n}


def split_seed(name: str) -> Tuple[str, Optional[int]]:
  """('kind=vae,latent_dim=50', 1) for 'kind=vae,latent_dim=50,seed=1';
  (name, None) for a name without a seed."""
  match = _SEED.search(name)
  if not match:
    return name, None
  rest = (name[:match.start()] + name[match.end():]).strip(',')
  return rest.replace(',,', ','), int(match.group(2))


def load(workdir: str) -> Dict[str, np.ndarray]:
  """The per-example values of ``workdir``, checked against its eval.json
  (both files must come from one evaluation; `kept.load_examples`).

  Raises:
    kept.DamagedResult: missing, torn or mismatched.
  """
  return kept.load_examples(workdir)


def compare(base_dir: str, other_dir: str, keys=KEYS) -> Dict[str, Dict]:
  a, b = load(base_dir), load(other_dir)
  return {k: paired_difference(a[k], b[k]) for k in keys if k in a and k in b}


def _partner(name: str, base: str, other: str,
             other_root: Optional[str], root: str) -> str:
  return os.path.join(other_root or root, name.replace(base, other))


def pairs(root: str, base: str, other: str, other_root: Optional[str] = None,
          keys=KEYS) -> List[Tuple[str, str, Dict[str, Dict]]]:
  """(base workdir name, other workdir, `compare`) for every point under
  ``root`` whose name contains ``base``, against the point under
  ``other_root`` (default ``root``) named with ``other`` in its place;
  a base point without that counterpart is left out (`unpaired` names it).

  Raises:
    kept.DamagedResult: a point folder or its files are damaged.
  """
  out = []
  for base_dir in kept.point_dirs(root)[0]:
    name = os.path.basename(base_dir)
    if base not in name:
      continue
    other_dir = _partner(name, base, other, other_root, root)
    if os.path.isdir(other_dir):
      out.append((name, other_dir, compare(base_dir, other_dir, keys)))
  return out


def unpaired(root: str, base: str, other: str,
             other_root: Optional[str] = None) -> List[str]:
  """The base points under ``root`` that `pairs` finds no counterpart for."""
  names = [os.path.basename(d) for d in kept.point_dirs(root)[0]]
  return [n for n in names if base in n and not os.path.isdir(
      _partner(n, base, other, other_root, root))]


def differences(base_dir: str, other_dir: str, key: str) -> np.ndarray:
  """other - base of ``key`` per example, over the common prefix, (n,)."""
  a, b = load(base_dir)[key], load(other_dir)[key]
  n = min(len(a), len(b))
  return np.asarray(b[:n], np.float64) - np.asarray(a[:n], np.float64)


def seed_pairs(found: Sequence[Tuple[str, str, Dict[str, Dict]]],
               root: str, keys=KEYS, margin: Optional[float] = None
               ) -> Dict[str, Dict[str, verdicts.Verdict]]:
  """Groups `pairs`' output by the base name without its seed and gives
  the verdict (`verdicts.decide`, other - base) of every quantity.

  Args:
    found: `pairs`' output.
    root: where the base workdirs are (`pairs`' ``root``).
    keys: the per-example quantities.
    margin: the equivalence margin in nats, or None.

  Returns:
    {group: {key: `verdicts.Verdict`}}.
  """
  groups: Dict[str, Dict[str, List[np.ndarray]]] = {}
  for name, other_dir, diffs in found:
    group, _ = split_seed(name)
    for key in keys:
      if key in diffs:
        groups.setdefault(group, {}).setdefault(key, []).append(
            differences(os.path.join(root, name), other_dir, key))
  return {group: {key: verdicts.decide(images, margin)
                  for key, images in by_key.items()}
          for group, by_key in groups.items()}


def gap_change(root: str, then_root: str, base: str, other: str,
               keys=('iw_marginal',), margin: Optional[float] = None
               ) -> Dict[str, Dict[str, verdicts.Verdict]]:
  """How the gap other - base moves from ``root`` to ``then_root``.

  The same points trained to two budgets (say 13 and 40 epochs), each
  budget's points under its own root with the same names. For every seed
  and test image::

      c[s, i] = (other - base)[s, i] at then_root - (other - base)[s, i] at root

  and `verdicts.decide` on c: positive where the gap grew in the other's
  favour. Pairing by seed and image removes what both budgets share.

  Args:
    root, then_root: the two budgets' folders of points.
    base, other: as for `pairs` (within each root).
    keys: the per-example quantities.
    margin: the equivalence margin in nats, or None.

  Returns:
    {group: {key: `verdicts.Verdict`}}, groups as in `seed_pairs`.

  Raises:
    kept.DamagedResult: a damaged point.
  """
  groups: Dict[str, Dict[str, List[np.ndarray]]] = {}
  for name, other_dir, _ in pairs(root, base, other, None, keys):
    then_base = os.path.join(then_root, name)
    then_other = os.path.join(then_root, os.path.basename(other_dir))
    if not (os.path.isdir(then_base) and os.path.isdir(then_other)):
      continue
    for key in keys:
      before = differences(os.path.join(root, name), other_dir, key)
      after = differences(then_base, then_other, key)
      n = min(len(before), len(after))
      groups.setdefault(split_seed(name)[0], {}).setdefault(key, []).append(
          after[:n] - before[:n])
  return {group: {key: verdicts.decide(images, margin)
                  for key, images in by_key.items()}
          for group, by_key in groups.items()}


def _group_runs(found, root: str) -> Dict[str, List[Dict]]:
  """{group: the eval.json of every base and other run in it}."""
  runs: Dict[str, List[Dict]] = {}
  for name, other_dir, _ in found:
    group = runs.setdefault(split_seed(name)[0], [])
    group += [kept.load_point(os.path.join(root, name)),
              kept.load_point(other_dir)]
  return runs


def report(root: str, base: str, other: str, other_root: Optional[str],
           keys: Sequence[str], margin: Optional[float] = None,
           strict: bool = False,
           paper_epochs: int = kept.BURDA_FULL_EPOCHS,
           then_root: Optional[str] = None,
           assignments: bool = False) -> str:
  """The markdown `main` prints: every pair, then the verdicts over seeds,
  whose header gives the runs' epochs as a share of ``paper_epochs``; with
  ``then_root``, how each gap moves to the same points there (`gap_change`);
  with ``assignments``, how often the two choose different y*
  (`assignment_disagreement`).

  Raises:
    kept.DamagedResult: a damaged point.
    kept.MixedCode: with ``strict``, a group trained by different code.
  """
  found = pairs(root, base, other, other_root, keys)
  lines = [f'Each pair on the same test images ({other} - {base}; '
           'positive: the other is better).', '',
           '| pair | ' + ' | '.join(f'{k} (n)' for k in keys) + ' |',
           '|' + ' --- |' * (len(keys) + 1)]
  for name, _, diffs in found:
    cells = [f'{diffs[k]["mean"]:+.2f} ± {diffs[k]["stderr"]:.2f} '
             f'({diffs[k]["n"]})' if k in diffs else '' for k in keys]
    lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
  missing = unpaired(root, base, other, other_root)
  if missing:
    lines += ['', 'Without a counterpart (not compared): '
              + ', '.join(missing) + '.']
  notes = kept.CodeNotes(strict)
  runs = _group_runs(found, root)
  budget = kept.budget_label([r for rs in runs.values() for r in rs],
                             paper_epochs)
  lines += ['', f'Over training seeds, A = {other}, B = {base}. '
            + verdicts.RULE, '', f'| pair | quantity | over seeds, {budget} |',
            '| --- | --- | --- |']
  for group, by_key in seed_pairs(found, root, keys, margin).items():
    mark = notes.mark(runs[group])
    for key in keys:
      if key in by_key:
        lines.append(f'| {group} | {key} | '
                     f'{verdicts.describe(by_key[key])}{mark} |')
  if then_root:
    lines += ['', f'How the gap ({other} - {base}) moves from `{root}` to '
              f'`{then_root}`: per seed and test image, the gap there minus '
              'the gap here (positive: it moved towards A).', '',
              '| pair | quantity | gap change over seeds |',
              '| --- | --- | --- |']
    for group, by_key in gap_change(root, then_root, base, other, keys,
                                    margin).items():
      for key in keys:
        if key in by_key:
          lines.append(f'| {group} | {key} | '
                       f'{verdicts.describe(by_key[key])} |')
  if assignments:
    lines += ['', f'How often {other} and {base} choose a different epitome '
              'y* for the same test image (epitomes are the same units in '
              'both; a VAE has one):', '',
              '| pair | y* differs on | test images |', '| --- | --- | --- |']
    for name, other_dir, _ in found:
      got = assignment_disagreement(os.path.join(root, name), other_dir)
      if got == ONE_EPITOME:
        cells = 'one epitome: never | '
      elif got is None:
        cells = 'not recorded (no assignments in eval_examples.npz) | '
      else:
        cells = f'{100 * got[0]:.2f}% | {got[1]}'
      lines.append(f'| {name} | {cells} |')
  if notes.notes:
    lines += ['', notes.footnotes()]
  return '\n'.join(lines)


ONE_EPITOME = 'one epitome'


def assignment_disagreement(base_dir: str, other_dir: str):
  """The share of test images on which two points choose different y*.

  Args:
    base_dir: a kept point whose eval_examples.npz holds 'assignments',
      (n,) the epitome each test image is assigned.
    other_dir: the point it is compared with (same test images).

  Returns:
    (fraction in [0, 1], number of images compared: their common prefix);
    `ONE_EPITOME` where both eval.json say one epitome (y* is always the
    same); None where a point lacks the assignments or its epitome count.
  """
  a, b = load(base_dir), load(other_dir)
  if 'assignments' not in a or 'assignments' not in b:
    return None
  counts = [kept.load_point(d).get('num_epitomes')
            for d in (base_dir, other_dir)]
  if None in counts:
    return None
  if max(counts) < 2:
    return ONE_EPITOME
  n = min(len(a['assignments']), len(b['assignments']))
  return float(np.mean(a['assignments'][:n] != b['assignments'][:n])), n


def main(argv):
  del argv
  try:
    print(report(FLAGS.root, FLAGS.base, FLAGS.other, FLAGS.other_root,
                 FLAGS.keys, FLAGS.margin, FLAGS.strict,
                 FLAGS.paper_epochs, FLAGS.then_root, FLAGS.assignments))
  except ValueError as e:  # damaged results, --strict: say which, exit 2
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)


if __name__ == '__main__':
  # Defined here, not at import: tables.py imports this module.
  flags.DEFINE_string('root', None, 'Directory of workdirs (a sweep root).')
  flags.DEFINE_string('base', None, 'Substring naming the baseline workdirs.')
  flags.DEFINE_string('other', None,
                      'What replaces it in the compared workdirs.')
  flags.DEFINE_string('other_root', None,
                      'Where the compared workdirs are (default: --root).')
  flags.DEFINE_list('keys', list(KEYS), 'Per-example quantities to compare.')
  flags.DEFINE_string('then_root', None, 'The same points trained to another '
                      'budget (same names): also print how each gap moves '
                      'from --root to here, seed by seed and image by image.')
  flags.DEFINE_float('margin', None, 'Equivalence margin m in nats: a '
                     'difference whose 95% interval lies inside (-m, m) is '
                     '"level within ±m" (default: no such verdict).')
  flags.DEFINE_integer('paper_epochs', kept.BURDA_FULL_EPOCHS, 'The '
                       "paper's training budget for these models, in epochs "
                       "(3,280 for Table 2's protocol, 200 for Figs. 2-7 and "
                       'Tables 1, 3, 4): the verdict header gives the runs\' '
                       'epochs as a share of it.')
  flags.DEFINE_bool('assignments', False, 'Also say how often the paired '
                    'models choose a different epitome y* per test image.')
  flags.DEFINE_bool('strict', False, 'Refuse (exit 2) a comparison of runs '
                    'trained by different code instead of marking it.')
  flags.mark_flags_as_required(['root', 'base', 'other'])
  app.run(main)
