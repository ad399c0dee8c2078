"""Paired comparisons of two models on the same test images.

Two means with their own standard errors (~0.8 nats on MNIST) hide real
differences of ~0.5 nats; the per-example difference of two models scored
on the same images has a far smaller standard error. Reads the
``eval_examples.npz`` that ``--mode=evaluate`` writes in each workdir.

    python -m experiments.paired --root=runs/mnist/table2 --base=kind=vae --other=kind=evae

pairs every workdir under ROOT whose name contains BASE with the one whose
name has OTHER in its place, and prints mean(other - base) ± its standard
error for each per-example quantity (positive: OTHER is better). With
``--other_root=DIR`` the other workdir is looked up under DIR instead: the
same model trained in two experiments (say on a CPU and on a GPU, or to two
budgets):

    python -m experiments.paired --root=runs/mnist/table2 --other_root=runs/gpu/full \
        --base=latent_dim=50,kind=vae --other=kind=vae
"""

import glob
import math
import os
from typing import Dict, List, Optional, Tuple

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


def main(argv):
  del argv
  keys = FLAGS.keys
  print(f'| pair ({FLAGS.other} - {FLAGS.base}) | '
        + ' | '.join(f'{k} (n)' for k in keys) + ' |')
  print('|' + ' --- |' * (len(keys) + 1))
  for name, _, diffs in pairs(FLAGS.root, FLAGS.base, FLAGS.other,
                              FLAGS.other_root, keys):
    cells = [f'{diffs[k]["mean"]:+.2f} ± {diffs[k]["stderr"]:.2f} '
             f'({diffs[k]["n"]})' if k in diffs else '' for k in keys]
    print(f'| {name} | ' + ' | '.join(cells) + ' |')


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
