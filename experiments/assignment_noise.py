"""How noisy is Algorithm 1's per-epoch assignment?

At fixed parameters, two independent assignment passes over the training
set should agree: every example whose epitome differs between them changes
epitome from noise alone, not from learning. For S = 1, 4, 16 noise draws
averaged per example (train.assignment_samples), prints the fraction of
examples whose y* differs between two passes, and the time of one pass.

    python -m experiments.assignment_noise --workdir=runs/table2/latent_dim=50,kind=evae
"""

import json
import os
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from evae_jax.evaluate import report
from evae_jax.train import steps
from evae_jax.storage import workdirs

flags.DEFINE_string('workdir', None, 'A trained eVAE workdir.')
flags.DEFINE_list('samples', ['1', '4', '16'], 'Draws averaged per example.')
flags.mark_flag_as_required('workdir')
FLAGS = flags.FLAGS


def disagreement(state, images, config, samples: int):
  """(fraction of examples whose y* differs between two passes, seconds)."""
  options = steps.StepOptions.from_config(config)
  options = options.__class__(**{**options.__dict__,
                                 'assignment_samples': samples})
  states = jax.tree_util.tree_map(lambda a: jnp.asarray(a)[None], state)
  rngs = jax.random.PRNGKey(config.seed)[None]
  weights = jnp.asarray([config.train.kl_weight])
  passes = []
  for epoch in (10_001, 10_002):  # epochs no run reaches: fresh noise
    start = time.perf_counter()
    y = steps.assign_dataset(states, images, rngs, weights, epoch,
                             options=options)
    passes.append(np.asarray(y[0]))
    seconds = time.perf_counter() - start
  return float(np.mean(passes[0] != passes[1])), seconds


def main(argv):
  del argv
  with open(os.path.join(FLAGS.workdir, workdirs.CONFIG_FILE)) as f:
    config = ml_collections.ConfigDict(json.load(f))
  config.train.progress_bar = False
  state, splits = report.load_trained(config, FLAGS.workdir)
  masks = state.model.masks
  images = jnp.asarray(splits.train.reshape(len(splits.train), -1))
  print(f'{FLAGS.workdir}: step {int(state.step)}, E = {masks.shape[0]}, '
        f'{len(images)} training images')
  print('| draws averaged | examples changing epitome between two passes | '
        'seconds per pass |')
  print('| --- | --- | --- |')
  for s in FLAGS.samples:
    frac, sec = disagreement(state, images, config, int(s))
    print(f'| {s} | {100 * frac:.1f}% | {sec:.1f} |', flush=True)


if __name__ == '__main__':
  app.run(main)
