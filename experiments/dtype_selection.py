"""How much evaluating one trained model in bfloat16 moves what it reports.

    python -m experiments.dtype_selection --out=FILE.json WORKDIR [WORKDIR ...]
    python -m experiments.dtype_selection --table=FILE.json   # print it again

For each trained workdir, on its test images (binarised as --mode=evaluate
does), the same parameters are run with float32 networks and with bfloat16
networks (`evae_jax.models.evaluation_model`, float32 accumulation, the
log-densities, KL and argmax in float32), on the same noise: the share of
images whose y* = argmax_y ELBO_y(x) differs, and the paired difference of
the eq. 7 bound (bfloat16 - float32, mean ± standard error over the images).
This is the question behind ``eval.dtype``: whether the networks' dtype
alone, with the model held fixed, changes the choice of y* or the bound.
"""

import copy
import json
import os
import sys
from typing import Dict

import jax
import ml_collections
import numpy as np
from absl import app
from absl import flags

import evae_jax
from evae_jax import models
from evae_jax.storage import provenance

FLAGS = flags.FLAGS


def in_dtype(m: evae_jax.TrainedModel, dtype: str) -> evae_jax.TrainedModel:
  """A copy of ``m`` whose networks compute in ``dtype`` (same parameters).

  Args:
    m: a trained model (`evae_jax.load`).
    dtype: 'float32' or 'bfloat16'.

  Returns:
    The copy; ``m`` is left as it was.
  """
  config = ml_collections.ConfigDict(m.config.to_dict())
  config.eval.dtype = dtype
  out = copy.copy(m)
  out.model = models.evaluation_model(config, m.image_shape)
  return out


def compare(m: evae_jax.TrainedModel, x: np.ndarray, seed: int = 0,
            batch_size: int = 500) -> Dict[str, float]:
  """float32 against bfloat16 networks of one model, on the same noise.

  Args:
    m: a trained model.
    x: (n, ...) images as `TrainedModel.eval_inputs` gives them.
    seed: the noise; batch i uses fold_in(PRNGKey(seed), i).
    batch_size: images per call.

  Returns:
    {'images': n, 'y_differs': share of images whose y* differs,
    'bound_float32', 'bound_bfloat16': mean eq. 7 bounds (nats),
    'bound_difference', 'bound_difference_se': their paired difference,
    bfloat16 - float32, and its standard error over the images}.
  """
  lo, hi = in_dtype(m, 'float32'), in_dtype(m, 'bfloat16')
  differs, b32, b16 = [], [], []
  for i, start in enumerate(range(0, len(x), batch_size)):
    batch = x[start:start + batch_size]
    rng = jax.random.fold_in(jax.random.PRNGKey(seed), i)
    differs.append(np.asarray(lo.assign(batch, rng) != hi.assign(batch, rng)))
    b32.append(np.asarray(lo.bound(batch, rng), np.float64))
    b16.append(np.asarray(hi.bound(batch, rng), np.float64))
  differs, b32, b16 = map(np.concatenate, (differs, b32, b16))
  diff = b16 - b32
  return {'images': int(len(x)), 'y_differs': float(differs.mean()),
          'bound_float32': float(b32.mean()),
          'bound_bfloat16': float(b16.mean()),
          'bound_difference': float(diff.mean()),
          'bound_difference_se': float(diff.std(ddof=1) / np.sqrt(len(diff)))}


def table(found: Dict[str, Dict[str, float]]) -> str:
  """The markdown table of `compare`'s results, one row per workdir.

  Args:
    found: {workdir name: `compare`'s dict}, or a saved --out file's
      {'models': that, 'code': ..., ...}.

  Returns:
    The table, with a line saying what the columns are.
  """
  found = found.get('models', found)
  lines = ['The same parameters with float32 and with bfloat16 networks, on '
           'the same noise, on every test image (bound: eq. 7, nats; '
           'bf16 - f32: mean ± SE over the images).', '',
           '| workdir | y* differs | bound f32 | bound bf16 | bf16 - f32 |',
           '| --- | --- | --- | --- | --- |']
  for name, got in found.items():
    lines.append(
        f'| {name} | {100 * got["y_differs"]:.2f}% of {got["images"]} | '
        f'{got["bound_float32"]:.3f} | {got["bound_bfloat16"]:.3f} | '
        f'{got["bound_difference"]:+.4f} ± '
        f'{got["bound_difference_se"]:.4f} |')
  return '\n'.join(lines)


def main(argv):
  if FLAGS.table:  # a saved result, printed again
    with open(FLAGS.table) as f:
      print(table(json.load(f)))
    return
  workdirs = argv[1:]
  not_dirs = [w for w in workdirs if not os.path.isdir(w)]
  if not workdirs or not_dirs:
    print('error: name trained workdirs (folders)'
          + (f'; not folders: {", ".join(not_dirs)}' if not_dirs else '')
          + '.', file=sys.stderr)
    sys.exit(2)
  found = {}
  for workdir in workdirs:
    m = evae_jax.load(workdir)
    name = os.path.basename(os.path.normpath(workdir))
    found[name] = compare(m, np.asarray(m.eval_inputs(m.splits.test)))
  print(table(found))
  if FLAGS.out:  # keyed by the workdirs' folder names
    with open(FLAGS.out, 'w') as f:
      json.dump({'code': provenance.code_version(), 'seed': 0,
                 'batch_size': 500, 'models': found}, f, indent=1)


if __name__ == '__main__':
  flags.DEFINE_string('out', '', 'JSON of every number (default: none).')
  flags.DEFINE_string('table', '', 'Print the table of a saved --out file '
                      'instead (no workdirs needed).')
  app.run(main)
