"""Sweep files: each has get_config() (the base) and sweep() (the grid).

sweep() returns a list of dicts mapping 'section.field' to a value; every
dict is one run. Run one with
``python -m experiments.run_sweep --sweep=configs/sweeps/NAME.py --root=DIR``.
"""

import itertools
from typing import Dict, List


def grid(**axes) -> List[Dict]:
  """Cartesian product of named axes, e.g.
  grid(**{'model.latent_dim': [8, 24]})."""
  keys = list(axes)
  return [dict(zip(keys, values)) for values in
          itertools.product(*(axes[k] for k in keys))]
