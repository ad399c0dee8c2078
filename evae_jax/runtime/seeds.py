"""Every random stream of evae_jax, named in one place.

A run's streams derive from ``config.seed``::

    PRNGKey(seed) --fold_in INIT-->  parameter initialisation
                  --fold_in TRAIN--> training: fold_in STEPS (per-step noise,
                                     then the step), fold_in DATA (the epoch's
                                     order, then the epoch; Algorithm 1's
                                     assignment: fold_in ASSIGN after that)
                  --fold_in VALID--> validation during training

Evaluation (``--mode=evaluate``) and the figures use fixed keys that do not
depend on the seed, so that every model is scored on the same noise and the
same binarisation of the test images (paired comparisons need that).
"""

import jax

INIT, TRAIN, VALID = 0, 1, 2  # streams of PRNGKey(config.seed)
STEPS, DATA = 0, 1  # streams of the TRAIN key
ASSIGN = 1  # Algorithm 1's stream of an epoch's DATA key

EVAL_SEED = 2017  # --mode=evaluate: PRNGKey(EVAL_SEED)
FIGURE_SEED = 12345  # samples.png, reconstructions.png
# Streams of PRNGKey(EVAL_SEED):
EVAL_BOUNDS, EVAL_IW, EVAL_GENERATED, EVAL_MI = 0, 1, 2, 3


def run_key(seed: int, stream: int) -> jax.Array:
  """fold_in(PRNGKey(seed), stream): one of INIT, TRAIN, VALID."""
  return jax.random.fold_in(jax.random.PRNGKey(seed), stream)
