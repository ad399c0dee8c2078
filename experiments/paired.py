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
level: the paired difference of every seed, their mean with the
between-seed standard error (the spread of the training runs, which the
per-image error does not see), the per-image error of that mean beside it,
and a verdict only where mean ± 2 seed-level SE excludes zero ("not
resolved at this budget" otherwise, and always with one seed). With
``--other_root=DIR`` the other workdir is looked up under DIR instead: the
same model trained in two experiments (say on a CPU and on a GPU, or to two
budgets):

    python -m experiments.paired --root=runs/mnist/table2 --other_root=runs/gpu/full \
        --base=latent_dim=50,kind=vae --other=kind=vae
"""

import glob
import io
import json
import math
import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

from absl import app
from absl import flags
import numpy as np

from evae_jax.evaluate import report

EXAMPLES = 'eval_examples.npz'
KEYS = ('iw_marginal', 'iw_assigned', 'bound', 'logsumexp_bound', 'parzen')

FLAGS = flags.FLAGS
UNRESOLVED = 'not resolved at this budget'
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


def seed_statistics(per_seed: Sequence[Dict[str, float]],
                    image_differences: Optional[Sequence[np.ndarray]] = None
                    ) -> Dict:
  """Seed-level summary of one paired difference measured on several seeds.

  Args:
    per_seed: for each training seed, `paired_difference`'s dict (``mean``
      of other - base over the test images, its per-image ``stderr``, ``n``).
    image_differences: optional, for each seed the per-image differences
      other - base, (n,), on the same images in the same order.

  Returns:
    ``seeds``: the per-seed means; ``num_seeds`` S; ``mean``: their mean;
    ``seed_stderr``: std(per-seed means, ddof 1) / sqrt(S), the between-seed
    standard error (NaN for S = 1); ``image_stderr``: the test-image noise
    of ``mean``. Every seed is scored on the same images, so their image
    errors are correlated and do not average out over seeds, nor show in
    ``seed_stderr``: with ``image_differences`` it is std_i(mean_s d_s(x_i),
    ddof 1) / sqrt(n); without, the mean of the per-seed errors (their value
    when fully correlated, an upper bound).
  """
  means = np.array([d['mean'] for d in per_seed], np.float64)
  errors = np.array([d['stderr'] for d in per_seed], np.float64)
  count = len(means)
  seed_stderr = (float(means.std(ddof=1) / math.sqrt(count)) if count > 1
                 else float('nan'))
  if image_differences is not None:
    n = min(len(d) for d in image_differences)
    average = np.mean([np.asarray(d[:n], np.float64)
                       for d in image_differences], axis=0)
    image_stderr = float(average.std(ddof=1) / math.sqrt(n))
  else:
    image_stderr = float(errors.mean())
  return {'seeds': [float(m) for m in means], 'num_seeds': count,
          'mean': float(means.mean()), 'seed_stderr': seed_stderr,
          'image_stderr': image_stderr}


def verdict(stats: Dict, expected_sign: int = 0) -> str:
  """A verdict on a seed-level difference, only where mean ± 2 seed-level SE
  excludes zero.

  Args:
    stats: `seed_statistics`' dict.
    expected_sign: +1 or -1, the sign the paper reports (other better: +1);
      0 when the paper says nothing.

  Returns:
    'agrees' / 'disagrees' with the paper's sign, 'other better' / 'base
    better' without one, or UNRESOLVED (always with a single seed).
  """
  mean, stderr = stats['mean'], stats['seed_stderr']
  if not math.isfinite(stderr) or abs(mean) <= 2 * stderr:
    return UNRESOLVED
  sign = 1 if mean > 0 else -1
  if expected_sign:
    return 'agrees' if sign == expected_sign else 'disagrees'
  return 'other better' if sign > 0 else 'base better'


def load(workdir: str) -> Dict[str, np.ndarray]:
  """The per-example values of ``workdir``, checked against its eval.json
  (both files must come from one evaluation)."""
  with open(os.path.join(workdir, EXAMPLES), 'rb') as f:
    raw = f.read()
  json_path = os.path.join(workdir, 'eval.json')
  if os.path.exists(json_path):
    with open(json_path) as f:
      report.check_examples(json.load(f), raw, workdir)
  with np.load(io.BytesIO(raw)) as f:
    return dict(f)


def compare(base_dir: str, other_dir: str, keys=KEYS) -> Dict[str, Dict]:
  a, b = load(base_dir), load(other_dir)
  return {k: paired_difference(a[k], b[k]) for k in keys if k in a and k in b}


def pairs(root: str, base: str, other: str, other_root: Optional[str] = None,
          keys=KEYS) -> List[Tuple[str, str, Dict[str, Dict]]]:
  """(base workdir name, other workdir, `compare`) for every evaluated
  workdir under ``root`` whose name contains ``base``, against the workdir
  under ``other_root`` (default ``root``) named with ``other`` in its place."""
  out = []
  for path in sorted(glob.glob(os.path.join(root, '*', EXAMPLES))):
    base_dir = os.path.dirname(path)
    name = os.path.basename(base_dir)
    if base not in name:
      continue
    other_dir = os.path.join(other_root or root, name.replace(base, other))
    if os.path.exists(os.path.join(other_dir, EXAMPLES)):
      out.append((name, other_dir, compare(base_dir, other_dir, keys)))
  return out


def differences(base_dir: str, other_dir: str, key: str) -> np.ndarray:
  """other - base of ``key`` per example, over the common prefix, (n,)."""
  a, b = load(base_dir)[key], load(other_dir)[key]
  n = min(len(a), len(b))
  return np.asarray(b[:n], np.float64) - np.asarray(a[:n], np.float64)


def seed_pairs(found: Sequence[Tuple[str, str, Dict[str, Dict]]],
               keys=KEYS, root: Optional[str] = None
               ) -> Dict[str, Dict[str, Dict]]:
  """Groups `pairs`' output by the base name without its seed and gives
  `seed_statistics` of every quantity.

  Args:
    found: `pairs`' output.
    keys: the per-example quantities.
    root: where the base workdirs are (`pairs`' ``root``): given, the
      per-image differences are read for the image error of the mean.

  Returns:
    {group: {key: `seed_statistics`}}.
  """
  groups: Dict[str, Dict[str, List]] = {}
  for name, other_dir, diffs in found:
    group, _ = split_seed(name)
    for key in keys:
      if key in diffs:
        values = (diffs[key], differences(os.path.join(root, name), other_dir,
                                          key) if root else None)
        groups.setdefault(group, {}).setdefault(key, []).append(values)
  out = {}
  for group, by_key in groups.items():
    out[group] = {}
    for key, values in by_key.items():
      images = [v[1] for v in values]
      out[group][key] = seed_statistics(
          [v[0] for v in values], None if root is None else images)
  return out


def format_seed_cell(stats: Dict, expected_sign: int = 0) -> str:
  """'+0.12 ± 0.05 (3 seeds: +0.10, +0.20, +0.06; per-image ± 0.04): verdict'."""
  seeds = ', '.join(f'{m:+.2f}' for m in stats['seeds'])
  seed_se = (f' ± {stats["seed_stderr"]:.2f}'
             if math.isfinite(stats['seed_stderr']) else '')
  count = stats['num_seeds']
  return (f'{stats["mean"]:+.2f}{seed_se} ({count} seed{"s" * (count > 1)}: '
          f'{seeds}; per-image ± {stats["image_stderr"]:.2f}): '
          f'{verdict(stats, expected_sign)}')


def main(argv):
  del argv
  keys = FLAGS.keys
  found = pairs(FLAGS.root, FLAGS.base, FLAGS.other, FLAGS.other_root, keys)
  print(f'Each pair on the same test images ({FLAGS.other} - {FLAGS.base}; '
        'positive: the other is better).\n')
  print('| pair | ' + ' | '.join(f'{k} (n)' for k in keys) + ' |')
  print('|' + ' --- |' * (len(keys) + 1))
  for name, _, diffs in found:
    cells = [f'{diffs[k]["mean"]:+.2f} ± {diffs[k]["stderr"]:.2f} '
             f'({diffs[k]["n"]})' if k in diffs else '' for k in keys]
    print(f'| {name} | ' + ' | '.join(cells) + ' |')
  print('\nOver training seeds: mean ± between-seed SE (the seeds\' '
        'differences), the test-image SE of the mean beside it; a verdict '
        'only where mean ± 2 seed-level SE excludes zero.\n')
  print('| pair | quantity | over seeds |')
  print('| --- | --- | --- |')
  for group, by_key in seed_pairs(found, keys, FLAGS.root).items():
    for key in keys:
      if key in by_key:
        print(f'| {group} | {key} | {format_seed_cell(by_key[key])} |')


if __name__ == '__main__':
  # Defined here, not at import: tables.py imports this module.
  flags.DEFINE_string('root', None, 'Directory of workdirs (a sweep root).')
  flags.DEFINE_string('base', None, 'Substring naming the baseline workdirs.')
  flags.DEFINE_string('other', None,
                      'What replaces it in the compared workdirs.')
  flags.DEFINE_string('other_root', None,
                      'Where the compared workdirs are (default: --root).')
  flags.DEFINE_list('keys', list(KEYS), 'Per-example quantities to compare.')
  flags.mark_flags_as_required(['root', 'base', 'other'])
  app.run(main)
