"""Evaluation: the paper's measurements of a trained model.

Contract: `evae_jax.evaluate.report` evaluates and samples a workdir
(``--mode=evaluate`` and ``--mode=sample``: eval.json, eval_examples.npz,
report.md, figures); the measurements themselves are the pure functions of
`evae_jax.metrics` (bounds, importance-weighted log-likelihood, active units,
mutual information, Parzen window), served here under their public names
(``evae_jax.evaluate.parzen_log_density``, ...).
"""

# pylint: disable=unused-import
from evae_jax.metrics import ACTIVE_THRESHOLDS
from evae_jax.metrics import EVAL_BINARIZATION_SEED_OFFSET
from evae_jax.metrics import Encodings
from evae_jax.metrics import active_unit_counts
from evae_jax.metrics import active_units
from evae_jax.metrics import dataset_bounds
from evae_jax.metrics import encode_dataset
from evae_jax.metrics import epitome_mutual_information
from evae_jax.metrics import epitome_usage
from evae_jax.metrics import eval_inputs
from evae_jax.metrics import iw_estimates
from evae_jax.metrics import mean_bounds
from evae_jax.metrics import mutual_information
from evae_jax.metrics import parzen_log_density
from evae_jax.metrics import per_unit_kl
from evae_jax.metrics import select_parzen_sigma

__all__ = [
    'ACTIVE_THRESHOLDS',
    'EVAL_BINARIZATION_SEED_OFFSET',
    'Encodings',
    'active_unit_counts',
    'active_units',
    'dataset_bounds',
    'encode_dataset',
    'epitome_mutual_information',
    'epitome_usage',
    'eval_inputs',
    'iw_estimates',
    'mean_bounds',
    'mutual_information',
    'parzen_log_density',
    'per_unit_kl',
    'select_parzen_sigma',
]
