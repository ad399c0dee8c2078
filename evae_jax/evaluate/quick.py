"""``eval.quick``: a first look at a trained model in seconds.

The quick evaluation caps the costly settings (`QUICK`), says everywhere
that it is not the paper's protocol, and writes its own files
(`output_name`: ``eval_quick.json``, ``eval_examples_quick.npz``,
``report_quick.md``) beside a full evaluation's, never over them.
"""

import ml_collections

from evae_jax import configuration

# eval.quick=True: caps on the costly settings, for a first look in seconds
# (never raised: a config that asks for less keeps its own value; 0 in
# iw_num_examples, the whole split, is capped too). The bounds and active
# units stay on every example: they cost one encoder pass. The mutual
# information's cost grows as the square of its examples (9 s of a quick
# MNIST evaluation on all 10,000), so it is capped too.
QUICK = {'iw_samples': 100, 'iw_num_examples': 500, 'mi_num_examples': 2000,
         'parzen_samples': 1000, 'parzen_valid': 200, 'parzen_num_sigmas': 4}
QUICK_FLAG = '--config.eval.quick=True'


def output_name(name: str, quick: bool) -> str:
  """The file an evaluation writes for ``name`` (one of
  `evae_jax.evaluate.report`'s ``EVAL_JSON``, ``EVAL_EXAMPLES_NPZ``,
  ``REPORT_MD``).

  Args:
    name: the full evaluation's file name, e.g. 'eval.json'.
    quick: ``eval.quick``.

  Returns:
    ``name``, or for a quick evaluation the name with '_quick' before its
    extension ('eval_quick.json').
  """
  if not quick:
    return name
  stem, dot, extension = name.rpartition('.')
  return f'{stem}_quick{dot}{extension}'


def quick_config(config: ml_collections.ConfigDict
                 ) -> ml_collections.ConfigDict:
  """The config an evaluation measures with: ``config`` itself, or with
  ``eval.quick`` a copy whose `QUICK` fields are capped.

  Args:
    config: the run's config.

  Returns:
    ``config`` (not quick) or a new config (quick).
  """
  if not config.eval.quick:
    return config
  config = configuration.config_from_dict(configuration.config_as_dict(config))
  for field, cap in QUICK.items():
    value = config.eval[field]
    config.eval[field] = min(value, cap) if value else cap
  return config


def quick_summary(eval_config: ml_collections.ConfigDict,
                  iw_num_examples: int, mi_num_examples: int) -> str:
  """What a quick evaluation measures, for the console and report_quick.md.

  Args:
    eval_config: the ``eval`` section of `quick_config`'s result.
    iw_num_examples: the examples the IW estimate is computed on.
    mi_num_examples: the examples the mutual information is computed on.

  Returns:
    Two sentences, the second naming the flag to drop for the full
    evaluation.
  """
  e = eval_config
  return (f'Quick evaluation ({QUICK_FLAG}), not the paper\'s protocol: IW '
          f'log-likelihood with k = {e.iw_samples} on the first '
          f'{iw_num_examples} examples, mutual information on the first '
          f'{mi_num_examples}, Parzen with {e.parzen_samples} '
          f'samples, {e.parzen_num_sigmas} sigmas and {e.parzen_valid} '
          f'validation images. Drop {QUICK_FLAG} for the full evaluation '
          '(written to eval.json and report.md).')
