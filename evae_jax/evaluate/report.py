"""``--mode=evaluate`` and ``--mode=sample`` on a trained workdir.

Evaluate writes ``eval.json`` (every figure, machine-readable),
``eval_examples.npz`` (per-example values, for paired comparisons),
``report.md`` (the same for people, with the settings used) and the PNG
figures; sample writes ``samples.npz`` and a PNG grid. With
``eval.quick=True`` (`evae_jax.evaluate.quick`) the three files are ``eval_quick.json``,
``eval_examples_quick.npz`` and ``report_quick.md``, beside a full
evaluation's, never over them.
"""

import contextlib
import hashlib
import io
import json
import logging
import math
import time
from typing import Any, Dict, Tuple, Union

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np


from evae_jax.storage import checkpoints
from evae_jax import configuration
from evae_jax import errors
from evae_jax import metrics as metrics_lib
from evae_jax import figures
from evae_jax.evaluate import markdown
from evae_jax.evaluate import quick as quick_lib
from evae_jax.storage import files
from evae_jax import data as input_pipeline
from evae_jax import models
from evae_jax.storage import provenance
from evae_jax.runtime import seeds
from evae_jax import sampling
from evae_jax.runtime import sharding
from evae_jax import state as state_lib
from evae_jax.storage import workdirs

EVAL_JSON = 'eval.json'
# Per-example values on the first n examples of the split, in split order
# (IW on the first eval.iw_num_examples), for paired comparisons of models.
EVAL_EXAMPLES_NPZ = 'eval_examples.npz'
REPORT_MD = 'report.md'
SAMPLES_NPZ = 'samples.npz'


def load_trained(config: ml_collections.ConfigDict, workdir: str
                 ) -> Tuple[state_lib.TrainState, input_pipeline.Splits]:
  """(state, splits) of the newest checkpoint in ``workdir``.

  Args:
    config: the config the workdir was trained with (validated here).
    workdir: the trained run's workdir.

  Returns:
    (state, splits): the restored `evae_jax.state.TrainState` (its model
    computing in ``eval.dtype``, see `evae_jax.models.evaluation_dtype`)
    and the dataset ``config.data`` loads (`evae_jax.data.Splits`).

  Raises:
    errors.ConfigError: the config is invalid, or the workdir has no
      checkpoint.
  """
  configuration.validate(config)
  if not files.isdir(files.join(workdir, 'checkpoints')):
    raise errors.ConfigError(
        f'{workdir} has no checkpoints/: train first with the same --config '
        f'and --workdir={workdir} (without --mode).')
  splits = input_pipeline.load(config.data)
  configuration.check_memory(config, splits.image_shape)
  state = state_lib.create_train_state(config, splits.image_shape,
                                       jax.random.PRNGKey(0))
  ckpts = checkpoints.Checkpoints(workdir, config.train.keep_checkpoints)
  try:
    state, _, step = state_lib.restore(ckpts, state, len(splits.train))
  finally:
    ckpts.close()
  if step is None:
    raise errors.ConfigError(
        f'{workdir}/checkpoints holds no checkpoint: train first.')
  state = state.replace(model=models.evaluation_model(config,
                                                      splits.image_shape))
  return state, splits


def _mean_and_stderr(values) -> Dict[str, float]:
  values = np.asarray(values, np.float64)
  return {'mean': float(values.mean()),
          'stderr': float(values.std() / math.sqrt(len(values)))}


def _limit(x, n):
  return x if not n else x[:n]


def compute_metrics(state: state_lib.TrainState,
                    splits: input_pipeline.Splits,
                    config: ml_collections.ConfigDict) -> Dict[str, Any]:
  """Every measurement of the paper on ``config.eval.split``.

  Args:
    state: the trained state (`load_trained`).
    splits: the dataset; ``config.eval.split`` is measured, the validation
      split picks the Parzen sigma.
    config: the run's config (``eval`` section: sizes, samples, seeds).

  Returns:
    What eval.json holds: the bounds of eq. 7 and the logsumexp bound, the
    IW log-likelihood (marginal and of y*), active units, mutual
    information, epitome usage and Parzen log-density, each as mean and
    stderr where it is an average over examples; plus 'per_example': numpy
    arrays of shape (n,) per example (what eval_examples.npz holds).
  """
  ec = config.eval
  rng = jax.random.PRNGKey(seeds.EVAL_SEED)
  params, model = state.params, state.model
  masks = model.masks
  images = _limit(splits.split(ec.split), ec.num_examples)
  x = metrics_lib.eval_inputs(images, config.data)
  enc = metrics_lib.encode_dataset(params, model, x,
                                jax.random.fold_in(rng, seeds.EVAL_BOUNDS),
                                ec.batch_size)
  assignments = enc.assignments
  bounds = metrics_lib.dataset_bounds(enc)
  activity, num_active = metrics_lib.active_units(
      enc.mu, assignments, masks, ec.active_threshold)
  unit_kl = metrics_lib.per_unit_kl(enc.mu, enc.logvar, assignments, masks)
  active_counts = metrics_lib.active_unit_counts(activity)  # at 0.02 and 0.01
  mi_n = min(ec.mi_num_examples or len(x), len(x))
  mi = metrics_lib.epitome_mutual_information(
      enc.mu[:mi_n], enc.logvar[:mi_n], assignments[:mi_n], masks,
      jax.random.fold_in(rng, seeds.EVAL_MI))

  iw_n = min(ec.iw_num_examples or len(x), len(x))
  start = time.perf_counter()
  iw = metrics_lib.iw_estimates(
      params, model, x[:iw_n], jax.random.fold_in(rng, seeds.EVAL_IW),
      ec.iw_samples, ec.iw_chunk, ec.batch_size, assignments[:iw_n],
      progress=config.train.progress_bar and sharding.is_lead())
  iw_seconds = time.perf_counter() - start

  sigmas = np.logspace(ec.parzen_sigma_min_log10, ec.parzen_sigma_max_log10,
                       ec.parzen_num_sigmas)
  generated = jax.random.fold_in(rng, seeds.EVAL_GENERATED)
  samples = sampling.generate(model, params, generated, ec.parzen_samples)
  # Parzen scores the pixels as loaded: real-valued grey levels (the
  # protocol of Table 3's baselines), or binary with binarization='fixed',
  # which binarises at load time.
  gray = lambda a: input_pipeline.preprocess(
      jnp.asarray(a).reshape(len(a), -1), None, 'none')
  parzen_valid = gray(splits.valid[:ec.parzen_valid])
  sigma, sigma_scores = metrics_lib.select_parzen_sigma(parzen_valid, samples,
                                                     sigmas)
  parzen = metrics_lib.parzen_log_density(gray(images), samples, sigma)
  sigma_at_edge = sigma in (float(sigmas[0]), float(sigmas[-1]))
  if sigma_at_edge:
    logging.warning(
        'Parzen sigma %.4g lies at an edge of the grid logspace(%g, %g, %d): '
        'the best sigma may lie outside it; widen eval.parzen_sigma_min_log10 '
        '/ eval.parzen_sigma_max_log10.', sigma, ec.parzen_sigma_min_log10,
        ec.parzen_sigma_max_log10, ec.parzen_num_sigmas)

  return {
      'per_example': {  # written to EVAL_EXAMPLES_NPZ, not to eval.json
          'iw_marginal': np.asarray(iw['marginal'], np.float64),
          'iw_assigned': np.asarray(iw['assigned'], np.float64),
          'bound': np.asarray(bounds['bound'], np.float64),
          'logsumexp_bound': np.asarray(bounds['logsumexp_bound'], np.float64),
          'parzen': np.asarray(parzen, np.float64),
          'assignments': np.asarray(assignments)},
      'split': ec.split,
      'num_examples': int(len(x)),
      'num_params': models.count_params(params),
      'num_epitomes': int(masks.shape[0]),
      'epitome_shape': dict(zip(('latent_dim', 'epitome_size', 'stride'),
                                configuration.epitome_shape(config.model))),
      'step': int(state.step),
      'bound': _mean_and_stderr(bounds['bound']),
      'logsumexp_bound': _mean_and_stderr(bounds['logsumexp_bound']),
      'iw_log_likelihood': {
          'marginal': _mean_and_stderr(iw['marginal']),
          'assigned_epitome': _mean_and_stderr(iw['assigned']),
          'num_samples': ec.iw_samples, 'num_examples': iw_n,
          'seconds': iw_seconds},
      'active_units': {
          'count': num_active, 'threshold': ec.active_threshold,
          'count_at_0.01': active_counts[0.01],
          'count_at_0.02': active_counts[0.02],
          'activity': np.asarray(activity).tolist(),
          'sorted_activity': np.sort(np.asarray(activity))[::-1].tolist(),
          'per_unit_kl': np.asarray(unit_kl).tolist()},
      'mutual_information': {
          'marginal': mi['marginal'],
          'per_epitome': [None if math.isnan(v) else v  # JSON has no NaN
                          for v in mi['per_epitome']],
          'num_examples': int(mi_n),
          # q(z) mixes n posteriors, so the estimate cannot exceed log n;
          # an estimate near it says only "at least this much".
          'upper_limit': math.log(mi_n)},
      'epitome_usage': metrics_lib.epitome_usage(assignments,
                                              masks.shape[0]).tolist(),
      'parzen': dict(_mean_and_stderr(parzen), sigma=sigma,
                     num_samples=ec.parzen_samples,
                     num_valid=int(len(parzen_valid)),
                     sigma_at_edge=sigma_at_edge,
                     pixels=markdown.parzen_pixels(config.data.binarization),
                     sigma_grid=sigmas.tolist(),
                     valid_log_density=sigma_scores.tolist()),
  }


def _npz_bytes(**arrays) -> bytes:
  buffer = io.BytesIO()
  np.savez(buffer, **arrays)
  return buffer.getvalue()


def _write_npz(path: str, **arrays) -> None:
  """An .npz written whole through `files` (local or in a bucket)."""
  files.write_bytes(path, _npz_bytes(**arrays))


def check_examples(eval_json: Dict[str, Any], examples: bytes,
                   where: str = '') -> None:
  """Checks that ``examples`` are the per-example values of the evaluation
  ``eval_json`` describes (an evaluation stopped between its two files
  leaves them from two checkpoints). Files written before the digest
  existed pass unchecked.

  Args:
    eval_json: the parsed eval.json (its 'examples_sha256').
    examples: the bytes of eval_examples.npz.
    where: the workdir, for the message ('' = "this workdir").

  Raises:
    ValueError: the digest of ``examples`` differs from the one eval.json
      was written with.
  """
  want = eval_json.get('examples_sha256')
  if want and hashlib.sha256(examples).hexdigest() != want:
    raise ValueError(
        f'{where or "this workdir"}: {EVAL_EXAMPLES_NPZ} is not the one '
        f'{EVAL_JSON} was written with (an evaluation was stopped between '
        'the two files, or one was replaced): rerun --mode=evaluate.')


def _per_member(fn, config, workdir, *args):
  """fn on the workdir of each trained model, holding the workdir's lock and
  after checking that ``config`` is the config it was trained with."""
  configuration.validate(config)
  try:
    present = files.isdir(workdir)
  except errors.WorkdirError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    # An object store's own types: no credentials, no network, no bucket.
    raise errors.WorkdirError(
        f'Cannot read workdir {workdir} ({type(e).__name__}: {e}). Check the '
        'path and, for a bucket, your credentials (gcloud auth '
        'application-default login) and network; nothing was changed.') from e
  if not present:
    raise errors.ConfigError(
        f'{workdir} does not exist: train first with the same --config and '
        f'--workdir={workdir} (without --mode).')
  team = state_lib.members(config)
  # With several processes each computes the same (local) evaluation and
  # process 0 alone holds the lock and writes the files.
  lock = (workdirs.locked(workdir) if sharding.is_lead()
          else contextlib.nullcontext())
  with lock:
    if len(team) == 1:
      workdirs.check_evaluation_config(config, workdir)
      return fn(config, workdir, *args)
    out = {}
    for name, member in team:
      workdirs.check_evaluation_config(member, files.join(workdir, name))
      out[name] = fn(member, files.join(workdir, name), *args)
    return out


def evaluate_workdir(config: ml_collections.ConfigDict,
                     workdir: str) -> Dict[str, Any]:
  """Measures the newest checkpoint of ``workdir``; writes eval.json,
  eval_examples.npz, report.md and the figures (process 0 only), holding
  the workdir's lock. With ``eval.quick`` it measures with `quick.QUICK`'s caps
  and writes eval_quick.json, eval_examples_quick.npz and report_quick.md
  instead (`quick.output_name`), each saying that it is no full
  evaluation.

  Args:
    config: the config the workdir was trained with.
    workdir: the trained run's workdir.

  Returns:
    The eval.json contents; with several models trained side by side,
    {subdirectory: contents} for each.

  Raises:
    errors.ConfigError: the config is invalid or not the one the workdir
      was trained with, or the workdir or its checkpoints are missing.
    errors.WorkdirError: the workdir cannot be read, or is locked by
      another process.
  """
  return _per_member(_evaluate_one, config, workdir)


def sample_workdir(config: ml_collections.ConfigDict, workdir: str,
                   num_samples: int) -> Union[np.ndarray,
                                              Dict[str, np.ndarray]]:
  """Writes ``samples.npz`` (key x: (n, H, W) float32 decoder means in
  [0, 1]) and its grid ``sample_mode.png`` (so that the ``samples.png``
  which report.md shows is not replaced).

  Args:
    config: the config the workdir was trained with.
    workdir: the trained run's workdir.
    num_samples: n, the number of samples.

  Returns:
    (n, H, W) float32 the samples; with several models trained side by
    side, {subdirectory: samples} for each.

  Raises:
    errors.ConfigError: ``num_samples`` < 1, the config is invalid or not
      the one the workdir was trained with, or the workdir or its
      checkpoints are missing.
    errors.WorkdirError: the workdir cannot be read, or is locked by
      another process.
  """
  if num_samples < 1:
    raise errors.ConfigError(f'--num_samples={num_samples} must be >= 1.')
  return _per_member(_sample_one, config, workdir, num_samples)


def _evaluate_one(config, workdir: str) -> Dict[str, Any]:
  start = time.perf_counter()
  quick = config.eval.quick
  config = quick_lib.quick_config(config)
  state, splits = load_trained(config, workdir)
  note = ''
  if quick:
    ec = config.eval
    examples = len(_limit(splits.split(ec.split), ec.num_examples))
    note = quick_lib.quick_summary(ec, min(ec.iw_num_examples, examples),
                                   min(ec.mi_num_examples, examples))
    if sharding.is_lead():
      print(note, flush=True)
  results = compute_metrics(state, splits, config)
  # eval_quick.json says what it is on its own, for whoever reads it later.
  results['quick'] = quick
  if quick:
    results['quick_settings'] = {
        field: config.eval[field] for field in quick_lib.QUICK}
    results['quick_note'] = note
  # Which checkpoint was measured ('step' is its step): a run stopped early
  # (SIGTERM, a time limit) is evaluated where it stopped, not at the budget.
  results['checkpoint_epochs'] = int(state.step) / (
      len(splits.train) // config.train.batch_size)
  results['config'] = configuration.config_as_dict(config)
  results['code'] = provenance.evaluation_record(workdir, results['step'])
  results['dtype'] = {'train': config.model.dtype,
                      'eval': models.evaluation_dtype(config)}
  per_example = results.pop('per_example')
  if not sharding.is_lead():
    return results
  if not quick:  # the figures report.md shows stay the full evaluation's
    # The end of training drew the same figures of this checkpoint unless a
    # setting they depend on differs (or a file is gone): not drawn twice.
    settings = figures.figure_settings(config, models.evaluation_dtype(config),
                                       splits)
    if workdirs.finished_figures(workdir, int(state.step)) != settings:
      figures.write_sample_figures(state.params, state.model, splits,
                                   config, workdir)
      # What the files now show, for the next evaluation's comparison.
      workdirs.update_finished_figures(workdir, int(state.step), settings)
    figures.write_activity_figure(results['active_units'], config, workdir)
  # One evaluation's files name their checkpoint and each other: the
  # per-example values carry the step, eval.json the digest of those exact
  # bytes, and eval.json is written last, so an evaluation killed half way
  # leaves a pair that `check_examples` refuses, never a silent mix.
  examples = _npz_bytes(step=np.int64(results['step']), **per_example)
  path = lambda name: files.join(workdir, quick_lib.output_name(name, quick))
  files.write_bytes(path(EVAL_EXAMPLES_NPZ), examples)
  results['examples_sha256'] = hashlib.sha256(examples).hexdigest()
  files.write_text(path(EVAL_JSON), json.dumps(results, indent=1))
  files.write_text(path(REPORT_MD),
                   markdown.report_markdown(results, config, workdir))
  print(f'Wrote {path(REPORT_MD)} ({time.perf_counter() - start:.1f} s'
        + (f'; quick: drop {quick_lib.QUICK_FLAG} for the full evaluation'
           if quick else '') + ').', flush=True)
  return results


def _sample_one(config, workdir: str, num_samples: int) -> np.ndarray:
  state, splits = load_trained(config, workdir)
  x = figures.samples(state.params, state.model, num_samples,
                      splits.image_shape, seed=config.seed)
  x = np.clip(x, 0.0, 1.0).astype(np.float32)
  if not sharding.is_lead():
    return x
  path = files.join(workdir, SAMPLES_NPZ)
  _write_npz(path, x=x)
  figures.write_sample_mode_figure(x, config, int(state.model.masks.shape[0]),
                                   int(state.step), workdir)
  print(f'Wrote {path} and its grid '
        f'{files.join(workdir, figures.SAMPLE_MODE_PNG)}', flush=True)
  return x
