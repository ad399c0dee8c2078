"""Paired comparisons of two models on the same test images.

Two means with their own standard errors (~0.8 nats on MNIST) hide real
differences of ~0.5 nats; the per-example difference of two models scored
on the same images has a far smaller standard error. Reads the
``eval_examples.npz`` that ``--mode=evaluate`` writes in each workdir.

    python -m experiments.paired --root=runs/mnist/table2 --base=kind=vae --other=kind=evae

pairs every workdir under ROOT whose name contains BASE with the one whose
name has OTHER in its place, and prints mean(other - base) ± its standard
error for each per-example quantity (positive: OTHER is better).
"""

import glob
import math
import os
from typing import Dict

from absl import app
from absl import flags
import numpy as np

EXAMPLES = 'eval_examples.npz'
KEYS = ('iw_marginal', 'iw_assigned', 'bound', 'logsumexp_bound', 'parzen')

FLAGS = flags.FLAGS


def paired_difference(base: np.ndarray, other: np.ndarray) -> Dict[str, float]:
  """mean(other - base) over the common prefix of examples, its standard
  error std / sqrt(n) (ddof 1), and n."""
  n = min(len(base), len(other))
  d = np.asarray(other[:n], np.float64) - np.asarray(base[:n], np.float64)
  return {'mean': float(d.mean()),
          'stderr': float(d.std(ddof=1) / math.sqrt(n)), 'n': n}


def load(workdir: str) -> Dict[str, np.ndarray]:
  with np.load(os.path.join(workdir, EXAMPLES)) as f:
    return dict(f)


def compare(base_dir: str, other_dir: str, keys=KEYS) -> Dict[str, Dict]:
  a, b = load(base_dir), load(other_dir)
  return {k: paired_difference(a[k], b[k]) for k in keys if k in a and k in b}


def main(argv):
  del argv
  keys = FLAGS.keys
  print(f'| pair ({FLAGS.other} - {FLAGS.base}) | '
        + ' | '.join(f'{k} (n)' for k in keys) + ' |')
  print('|' + ' --- |' * (len(keys) + 1))
  for path in sorted(glob.glob(os.path.join(FLAGS.root, '*', EXAMPLES))):
    base_dir = os.path.dirname(path)
    name = os.path.basename(base_dir)
    if FLAGS.base not in name:
      continue
    other_dir = os.path.join(FLAGS.root, name.replace(FLAGS.base, FLAGS.other))
    if not os.path.exists(os.path.join(other_dir, EXAMPLES)):
      continue
    diffs = compare(base_dir, other_dir, keys)
    cells = [f'{diffs[k]["mean"]:+.2f} ± {diffs[k]["stderr"]:.2f} '
             f'({diffs[k]["n"]})' if k in diffs else '' for k in keys]
    print(f'| {name} | ' + ' | '.join(cells) + ' |')


if __name__ == '__main__':
  # Defined here, not at import: tables.py imports this module.
  flags.DEFINE_string('root', None, 'Directory of workdirs (a sweep root).')
  flags.DEFINE_string('base', None, 'Substring naming the baseline workdirs.')
  flags.DEFINE_string('other', None,
                      'What replaces it in the compared workdirs.')
  flags.DEFINE_list('keys', list(KEYS), 'Per-example quantities to compare.')
  flags.mark_flags_as_required(['root', 'base', 'other'])
  app.run(main)
