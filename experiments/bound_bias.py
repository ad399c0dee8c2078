"""Old (same-draw) vs new (independent-draw) reported bounds of one trained
workdir, beside its importance-weighted log-likelihood.

Before the fix, y* (and the logsumexp weights) were chosen on the same
noise draw that was then reported; now one draw chooses and an independent
one scores. Both are computed here from the same checkpoint, on the same
test images as the workdir's IW estimate (eval_examples.npz), so the
differences are paired.

    python -m experiments.bound_bias --workdir=runs/mnist/table2/latent_dim=50,kind=evae
"""

import json
import os

from absl import app
from absl import flags
import jax
import ml_collections
import numpy as np

from evae_jax import elbo
from evae_jax import evaluate
from evae_jax.evaluate import report
from evae_jax.runtime import seeds
from evae_jax.storage import workdirs
from experiments import paired

flags.DEFINE_string('workdir', None, 'An evaluated workdir.')
flags.mark_flag_as_required('workdir')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  with open(os.path.join(FLAGS.workdir, workdirs.CONFIG_FILE)) as f:
    config = ml_collections.ConfigDict(json.load(f))
  state, splits = report.load_trained(config, FLAGS.workdir)
  masks = state.model.masks
  iw = paired.load(FLAGS.workdir)['iw_marginal']
  n = len(iw)
  x = evaluate.eval_inputs(splits.test[:n], config.data)
  enc = evaluate.encode_dataset(state.params, state.model, x,
                                jax.random.PRNGKey(seeds.EVAL_SEED))
  a, b = enc.select.elbo, enc.terms.elbo
  rows = {
      'eq. 7 bound, old (choose and score on draw A)':
          elbo.point_estimate_bound(a, a),
      'eq. 7 bound, new (choose on A, score on B)':
          elbo.point_estimate_bound(a, b),
      'logsumexp bound, old (weights and scores from A)':
          elbo.logsumexp_bound(a, a),
      'logsumexp bound, new (weights from A, scores from B)':
          elbo.logsumexp_bound(a, b),
  }
  k = json.load(open(os.path.join(FLAGS.workdir, report.EVAL_JSON)))
  k = k['iw_log_likelihood']['num_samples']
  print(f'{FLAGS.workdir}: E = {masks.shape[0]}, step {int(state.step)}, '
        f'first {n} test images\n')
  print(f'| quantity | mean (nats) | minus IW k={k}, paired | '
        'examples above their IW estimate |')
  print('| --- | --- | --- | --- |')
  print(f'| IW log-likelihood (marginal), k={k} | {iw.mean():.2f} | | |')
  for name, values in rows.items():
    values = np.asarray(values, np.float64)
    d = paired.paired_difference(iw, values)
    print(f'| {name} | {values.mean():.2f} | {d["mean"]:+.2f} ± '
          f'{d["stderr"]:.2f} | {100 * np.mean(values > iw):.1f}% |')


if __name__ == '__main__':
  app.run(main)
