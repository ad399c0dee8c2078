"""Two runs' validation bounds at the epochs both logged (their
metrics.jsonl): the comparison at equal training when only the last
checkpoints were kept.

    python -m experiments.equal_epochs \
        --base=results/mnist/table2_h200/kind=vae,latent_dim=50.metrics.jsonl \
        --other=results/mnist/table2_h200/kind=evae,latent_dim=50.metrics.jsonl \
        --ranges=1-40,122-229,190-229

prints, for each epoch range, mean(other - base) of the validation bound
over the common epochs in it ± its standard error (positive: other better).
"""

import json
import math
from typing import Dict, Tuple

from absl import app
from absl import flags
import numpy as np


def valid_bounds(path: str) -> Dict[int, float]:
  """{epoch: valid_bound} of a metrics.jsonl."""
  out = {}
  with open(path) as f:
    for line in f:
      record = json.loads(line)
      if 'valid_bound' in record:
        out[round(record['epoch'])] = record['valid_bound']
  return out


def difference(base: Dict[int, float], other: Dict[int, float],
               low: int, high: int) -> Tuple[float, float, int]:
  """(mean, standard error, count) of other - base over the common epochs
  in [low, high]."""
  epochs = [e for e in sorted(set(base) & set(other)) if low <= e <= high]
  d = np.array([other[e] - base[e] for e in epochs], np.float64)
  stderr = d.std(ddof=1) / math.sqrt(len(d)) if len(d) > 1 else float('nan')
  return float(d.mean()), float(stderr), len(d)


def main(argv):
  del argv
  f = flags.FLAGS
  base, other = valid_bounds(f.base), valid_bounds(f.other)
  for item in f.ranges:
    low, high = (int(v) for v in item.split('-'))
    mean, stderr, count = difference(base, other, low, high)
    print(f'epochs {low}-{high}: {mean:+.2f} ± {stderr:.2f} nats '
          f'({count} common epochs)')


if __name__ == '__main__':
  flags.DEFINE_string('base', None, 'metrics.jsonl of the baseline run.')
  flags.DEFINE_string('other', None, 'metrics.jsonl of the compared run.')
  flags.DEFINE_list('ranges', ['1-40', '122-229', '190-229'],
                    'Epoch ranges, low-high.')
  flags.mark_flags_as_required(['base', 'other'])
  app.run(main)
