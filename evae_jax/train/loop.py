"""Training: the loop around the compiled steps of `evae_jax.train.steps`.

`train_and_evaluate` reads as set-up (workdirs, data on the devices, states
restored or created), loop (Algorithm 1's assignment, a chunk of steps,
validation, metrics, checkpoints, signals) and finish (figures).
"""

import contextlib
import dataclasses
import importlib.util
import logging
import signal
import sys
import time
from typing import Any, Dict, List, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import Mesh
from tqdm import tqdm

from evae_jax import errors
from evae_jax.storage import checkpoints
from evae_jax import configuration
from evae_jax import metrics as metrics_lib
from evae_jax import figures
from evae_jax.storage import files
from evae_jax import data as input_pipeline
from evae_jax.train import metric_writers
from evae_jax import models
from evae_jax.storage import provenance
from evae_jax.runtime import seeds
from evae_jax.state import schedules
from evae_jax.runtime import sharding
from evae_jax.runtime import signals
from evae_jax import state as state_lib
from evae_jax.train import steps
from evae_jax.storage import workdirs

__all__ = ['train_and_evaluate', 'NonFiniteLossError', 'Interrupted']


class NonFiniteLossError(RuntimeError):
  """The loss or the gradients became NaN or infinite."""


class Interrupted(Exception):
  """SIGTERM or SIGINT stopped training after a checkpoint was saved.

  Args:
    signal_name: the signal's name ('SIGTERM', 'SIGINT'), for the message.
    step: the step of the checkpoint saved.
    metrics: the last validation metrics, as `train_and_evaluate` returns.

  Attributes:
    step: the step of that checkpoint.
    metrics: the last validation metrics.
  """

  def __init__(self, signal_name: str, step: int, metrics):
    super().__init__(f'Received {signal_name}: saved a checkpoint at step '
                     f'{step} and stopped. Rerun the same command to resume.')
    self.step, self.metrics = step, metrics


@contextlib.contextmanager
def _stop_on_signals():
  """Yields a dict whose 'signal' is set when SIGTERM or SIGINT arrives."""
  flag = {'signal': None}

  def handler(signum, _):
    flag['signal'] = signal.Signals(signum).name

  with signals.handled(handler):
    yield flag


# A learning rate above this is "high" for Adam on these models (the
# paper's and Burda et al.'s runs use 1e-3 and below).
_HIGH_LEARNING_RATE = 3e-3


def _all_finite(tree) -> np.ndarray:
  """(M,) whether every parameter of each of the M stacked members is finite."""
  leaves = [jnp.all(jnp.isfinite(leaf.reshape(leaf.shape[0], -1)), axis=1)
            for leaf in jax.tree_util.tree_leaves(tree)]
  return sharding.to_host(jnp.all(jnp.stack(leaves), axis=0))


def _check_finite(metrics: Dict[str, np.ndarray], first_step: int,
                  config, last_checkpoint, name: str = '', *,
                  params_finite: bool = True,
                  checkpoint_finite: bool = True) -> None:
  """Raises `NonFiniteLossError` if a step's loss or gradient norm, or the
  parameters after the chunk, are NaN/inf; the message names the step, a
  cause that fits the config, and whether the last checkpoint is usable."""
  bad = ~(np.isfinite(metrics['loss']) & np.isfinite(metrics['grad_norm']))
  if not bad.any() and params_finite:
    return
  if bad.any():
    step, what = first_step + int(np.argmax(bad)) + 1, 'The loss or gradients'
  else:
    step, what = first_step + len(bad), 'The parameters'
  lr = config.train.learning_rate
  if lr > _HIGH_LEARNING_RATE:
    hint = (f'the learning rate (train.learning_rate={lr}) is too high for '
            'this model; try 1e-3 or lower')
  else:
    hint = (f'not the learning rate alone (train.learning_rate={lr} is in the '
            'usual range): check that the data suit model.likelihood (pixels '
            'in [0, 1] for bernoulli) and try a smaller learning rate or '
            'another seed')
  if config.model.likelihood == 'gaussian':
    hint += ('; or the Gaussian decoder variance is too small for the data '
             f'(raise model.min_logvar={config.model.min_logvar})')
  if not last_checkpoint:
    saved = 'No checkpoint had been saved yet. '
  elif checkpoint_finite:
    saved = (f'The last good checkpoint (step {last_checkpoint}) is intact '
             'and its parameters are finite. ')
  else:
    saved = (f'The checkpoint this run resumed from (step {last_checkpoint}) '
             'already holds NaN/inf parameters: do not resume from it. ')
  raise NonFiniteLossError(
      f'{what}{" of " + name if name else ""} became NaN/inf at step {step}. '
      f'Likely cause: {hint}. {saved}Rerun in a new workdir (or here with '
      '--config.train.overwrite=True, which keeps the earlier files).')


def _is_boundary(step: int, steps_per_epoch: int, every: int) -> bool:
  return step % (every or steps_per_epoch) == 0


def _next_boundary(step: int, steps_per_epoch: int, every: int,
                   max_chunk: int = 0) -> int:
  """End of the chunk starting at ``step``: the next epoch end or checkpoint
  step, and at most ``max_chunk`` steps on (1 = the step-by-step path)."""
  end = (step // steps_per_epoch + 1) * steps_per_epoch
  if every:
    end = min(end, (step // every + 1) * every)
  if max_chunk:
    end = min(end, step + max_chunk)
  return end


def _stack(trees):
  return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)


def _member(tree, i):
  return jax.tree_util.tree_map(lambda a: a[i], tree)


def _initial_states(team, ckpts, template: state_lib.TrainState, num_train: int,
                    pixel_mean: np.ndarray):
  """Stacked states and Algorithm 1 assignments of every member, restored
  from the newest step that every member has saved, and that step.

  Members share the model and optimizer (the static fields of ``template``)
  and differ in their arrays, so that they stack for jax.vmap.
  """
  common = set.intersection(*(set(c.steps()) for c in ckpts))
  resume_at = max(common) if common else None
  if len(ckpts) > 1:
    for ckpt in ckpts:
      ckpt.set_aside_after(resume_at)
  states, assignments, last_saved = [], [], None
  for (_, member), ckpt in zip(team, ckpts):
    params = template.model.init(
        seeds.run_key(member.seed, seeds.INIT))
    if member.model.output_bias_init == 'train_mean':
      params = models.init_output_bias(params, pixel_mean)
    state = template.replace(params=params, opt_state=template.tx.init(params))
    member_assignments = jnp.full((num_train,), -1, jnp.int32)
    if resume_at is not None:
      state, member_assignments, last_saved = state_lib.restore(
          ckpt, state, num_train, resume_at)
    states.append(state)
    assignments.append(member_assignments)
  return _stack(states), jnp.stack(assignments), last_saved


def train_and_evaluate(config: ml_collections.ConfigDict,
                       workdir: str) -> Dict[str, float]:
  """Trains (or resumes) the model(s) of ``config`` in ``workdir``.

  Writes ``checkpoints/``, ``metrics.jsonl``, TensorBoard events in
  ``tensorboard/``, and at the end ``samples.png``,
  ``reconstructions.png`` (``manifolds.png`` for 2-d epitomes) and, last,
  ``finished.json``. Rerunning on the same workdir resumes from the
  newest readable checkpoint. With several models (`members`), each gets
  these in its own subdirectory.

  Args:
    config: the configuration (see ``evae_jax/configuration/defaults.py``).
    workdir: output directory.

  Returns:
    The last validation metrics ('valid_bound', 'valid_logsumexp_bound',
    ...); with several models, a dict of those per subdirectory.

  Raises:
    errors.WorkdirError: another process is using ``workdir`` (process 0
      holds an exclusive lock on it for the whole run).
  """
  configuration.validate(config)
  workdirs.check_path(workdir)  # before the lock creates the workdir
  lock = (workdirs.locked(workdir) if jax.process_index() == 0
          else contextlib.nullcontext())
  with lock:
    return _train_and_evaluate(config, workdir)


@dataclasses.dataclass
class _Member:
  """What belongs to one of the models a run trains (`members`): its config,
  workdir, checkpoints, metric writer (process 0 only), evaluation key and
  last validation metrics."""
  name: str  # its subdirectory; '' = the workdir itself
  config: ml_collections.ConfigDict
  workdir: str
  checkpoints: checkpoints.Checkpoints
  eval_rng: jax.Array
  data_digest: str = ''  # of the images it trains and validates on
  # Their size, so that a trained model loads without them (evae_jax.load).
  images: Dict[str, Any] = dataclasses.field(default_factory=dict)
  writer: Optional[metric_writers.MetricWriter] = None
  valid_metrics: Dict[str, float] = dataclasses.field(default_factory=dict)

  def validate(self, state, valid) -> Dict[str, float]:
    self.valid_metrics = _valid_metrics(sharding.local_copy(state), valid,
                                        self.eval_rng, self.config)
    return self.valid_metrics

  def log(self, step: int, summary: Dict[str, float]) -> None:
    if self.writer:
      self.writer.write(step, summary)

  def save(self, step: int, state, assignments) -> None:
    # The config travels with the step: with config.json lost, a resume
    # with another config is still refused (workdirs.load_saved_config).
    self.checkpoints.save(step, state_lib.state_tree(state, assignments),
                          {'config': configuration.config_as_dict(self.config),
                           'data': self.data_digest, 'images': self.images})

  def close(self) -> None:
    if self.writer:
      self.writer.close()
    self.checkpoints.close()


@dataclasses.dataclass
class _Run:
  """A training run after set-up: the data and states on the devices, the
  members, and where the loop stands (``step``, the last saved step)."""
  config: ml_collections.ConfigDict
  members: List[_Member]
  splits: Any
  options: steps.StepOptions
  mesh: Mesh
  images: jax.Array  # (n, N) uint8 on every device
  valid: jax.Array
  steps_per_epoch: int
  total_steps: int
  states: state_lib.TrainState  # stacked over members, replicated
  assignments: jax.Array  # (M, n) Algorithm 1
  rngs: jax.Array  # (M,) training keys
  kl_weights: jax.Array  # (M,)
  step: int
  last_saved: Optional[int]
  saved_finite: np.ndarray  # (M,) whether the last saved params are finite
  lead: bool


def _train_and_evaluate(config, workdir):
  try:
    run = _set_up(config, workdir)
  except _AlreadyFinished as done:
    if sharding.is_lead():
      print(done.message, flush=True)
    return done.metrics
  try:
    with _stop_on_signals() as stop:
      _loop(run, stop)
    return _finish(run)
  finally:
    for member in run.members:
      member.close()


class _AlreadyFinished(Exception):
  """The checkpoint restored is the end of the budget: nothing to train.

  A rerun of a finished run touches nothing (no figures re-rendered, no
  second TensorBoard file); it says so and how to continue. ``metrics``
  are the last validation metrics of metrics.jsonl, as a finished run
  returns them.
  """

  def __init__(self, config, workdir, team, dirs, step, steps_per_epoch):
    super().__init__()
    budget = ('train.burda_stages (the Burda schedule sets the epochs)'
              if config.train.schedule == 'burda' else 'train.num_epochs')
    self.message = (
        f'{workdir} already finished at epoch {step // steps_per_epoch} '
        f'(step {step}); nothing was trained or rewritten. Raise {budget} to '
        'continue it, or evaluate it with --mode=evaluate.')
    found = [_last_validation(d) for d in dirs]
    self.metrics = (found[0] if len(team) == 1 else
                    {name: m for (name, _), m in zip(team, found)})


def _last_validation(workdir: str) -> Dict[str, float]:
  """The valid_* values of the last metrics record that has them."""
  try:
    records = metric_writers.read_metrics(workdir)
  except (OSError, ValueError):
    return {}
  for record in reversed(records):
    found = {k: v for k, v in record.items() if k.startswith('valid_')}
    if found:
      return found
  return {}


def _set_up(config, workdir) -> _Run:
  """Prepares the workdirs, loads the data, restores or creates the states
  and places everything on the devices."""
  tc = config.train
  if config.model.dtype == 'bfloat16' and not models.native_bfloat16():
    logging.warning('model.dtype=bfloat16 on a CPU without avx512_bf16 or '
                    'amx_bf16: bfloat16 matmuls may be slower than float32 '
                    'here.')
  # Every process loads the whole training set: each epoch's shuffle (and
  # Algorithm 1's assignment) is computed on the device over all of it, and
  # each step gathers its batch there, split over the devices of the mesh.
  splits = input_pipeline.load(config.data)
  configuration.check_memory(config, splits.image_shape)
  num_train = len(splits.train)
  steps_per_epoch = num_train // tc.batch_size
  if steps_per_epoch == 0:
    raise errors.ConfigError(
        f'train.batch_size={tc.batch_size} exceeds the {num_train} training '
        f'images; use --config.train.batch_size={min(100, num_train)}.')
  mesh = sharding.make_mesh(tc.num_devices)
  if tc.batch_size % mesh.size:
    raise errors.ConfigError(
        f'train.batch_size={tc.batch_size} does not split over {mesh.size} '
        f'devices; use a multiple of {mesh.size}, or train.num_devices.')
  # Only now, with the data loaded and the sizes checked, is the config
  # pinned (config.json): a run that fails before this point leaves nothing
  # that would refuse its corrected rerun as "a different config".
  workdirs.prepare(config, workdir)
  team = state_lib.members(config)
  dirs = [files.join(workdir, name) if name else workdir for name, _ in team]
  for (name, member), member_dir in zip(team, dirs):
    if name:
      workdirs.prepare(member, member_dir)
  sharding.barrier('workdirs prepared')  # process 0 wrote config.json

  # Several members save one after another: keep one more step each, so
  # that a kill between two members' saves leaves a step they all hold.
  keep = tc.keep_checkpoints + (len(team) > 1)
  ckpts = [checkpoints.Checkpoints(d, keep) for d in dirs]
  try:
    template = state_lib.create_train_state(config, splits.image_shape,
                                            jax.random.PRNGKey(0),
                                            steps_per_epoch)
    states, assignments, last_saved = _initial_states(
        team, ckpts, template, num_train,
        input_pipeline.pixel_mean(splits.train))
    data_digest = checkpoints.tree_checksum((splits.train, splits.valid))
    if last_saved is not None:
      _check_resumable(config, ckpts, last_saved, data_digest)
      total_steps = schedules.total_epochs(tc) * steps_per_epoch
      # Finished = trained to the end and everything the end writes there
      # (recorded last); a run stopped between its last save and the end of
      # its figures gets them now.
      if last_saved >= total_steps and all(
          workdirs.is_finished(d, last_saved) for d in dirs):
        raise _AlreadyFinished(config, workdir, team, dirs, last_saved,
                               steps_per_epoch)
      logging.info('Resumed from the checkpoint at step %d.', last_saved)
  except BaseException:
    for ckpt in ckpts:  # no member owns them yet
      ckpt.close()
    raise
  # Checkpoints this run writes are finite (checked before saving); the one
  # it resumed from may not be (an older version wrote it).
  saved_finite = _all_finite(states.params)
  states = sharding.replicate(states, mesh)
  step = int(sharding.to_host(states.step)[0])
  lead = sharding.is_lead()
  if lead:
    for member_dir in dirs:
      metric_writers.keep_damaged_lines(member_dir)
      provenance.record_training_start(member_dir, step)
  team = [_Member(name, member, member_dir, ckpt,
                  eval_rng=seeds.run_key(member.seed, seeds.VALID),
                  data_digest=data_digest,
                  images={'shape': list(splits.image_shape),
                          'num_train': num_train},
                  # Records past the restored step (written before a kill)
                  # are dropped: every step appears once in the metrics.
                  writer=(metric_writers.MetricWriter(member_dir,
                                                      resume_step=step)
                          if lead else None))
          for (name, member), member_dir, ckpt in zip(team, dirs, ckpts)]
  return _Run(
      config=config, members=team, splits=splits,
      options=steps.StepOptions.from_config(config), mesh=mesh,
      images=sharding.replicate(splits.train.reshape(num_train, -1), mesh),
      valid=metrics_lib.eval_inputs(splits.valid, config.data),
      steps_per_epoch=steps_per_epoch,
      total_steps=schedules.total_epochs(tc) * steps_per_epoch,
      states=states, assignments=sharding.replicate(assignments, mesh),
      rngs=jnp.stack([seeds.run_key(m.config.seed, seeds.TRAIN) for m in team]),
      kl_weights=jnp.asarray([m.config.train.kl_weight for m in team],
                             jnp.float32),
      step=step, last_saved=last_saved, saved_finite=saved_finite, lead=lead)


def _check_resumable(config, ckpts, step: int, digest: str) -> None:
  """Refuses to resume with another config than the checkpoint of ``step``
  was trained with (whatever config.json says), or on other images (data.path
  may change, to the same files elsewhere).

  Raises:
    errors.ConfigError: the config or the digest saved with the step
      differs.
  """
  for ckpt, (_, member) in zip(ckpts, state_lib.members(config)):
    record = ckpt.record(step) or {}
    if isinstance(record.get('config'), dict):
      changed = workdirs.config_changes(
          record['config'], configuration.config_as_dict(member))
      if changed:
        raise errors.ConfigError(
            f'The checkpoint of step {step} in {ckpt.directory} was trained '
            f'with another config than the one given now (changed: '
            f'{", ".join(changed)}), although config.json agrees with it '
            '(it was rewritten). Pass the config the checkpoints were '
            'trained with, or train in a new --workdir. Nothing was trained.')
    saved = record.get('data')
    if saved and saved != digest:
      raise errors.ConfigError(
          f'The data loaded now (data.name={config.data.name!r}, '
          f'data.path={config.data.path!r}) are not the images the '
          f'checkpoint of step {step} in {ckpt.directory} was trained on. '
          'data.path may change between runs only to the same files; point '
          'it back at them, or train in a new --workdir. The checkpoints were '
          'not touched.')


def _is_terminal() -> bool:
  try:
    return sys.stderr.isatty()
  except (AttributeError, ValueError):  # replaced or closed stderr
    return False


def _loop(run: _Run, stop: Dict[str, Optional[str]]) -> None:
  """Trains chunk by chunk to the end of the budget; validates, logs and
  checkpoints at the boundaries; stops (after saving) when ``stop`` says.

  Raises:
    NonFiniteLossError: a loss or the parameters became NaN/inf.
    Interrupted: SIGTERM/SIGINT in any process; a checkpoint was saved.
  """
  tc = run.config.train
  # Not into a log file (stderr not a terminal): there every redraw is a
  # carriage-return line; the per-epoch log lines say as much.
  bar = tqdm(total=run.total_steps, initial=run.step,
             disable=not (tc.progress_bar and run.lead and _is_terminal()),
             unit='step', dynamic_ncols=True)
  try:
    while run.step < run.total_steps:
      _train_chunk_of(run, stop, bar)
  finally:
    bar.close()


def _train_chunk_of(run: _Run, stop, bar) -> None:
  """One chunk (to the next epoch end or checkpoint) and what follows it."""
  tc, per_epoch = run.config.train, run.steps_per_epoch
  epoch, offset = divmod(run.step, per_epoch)
  end = _next_boundary(run.step, per_epoch, tc.checkpoint_every_steps,
                       tc.max_chunk_steps)
  changes = None
  if run.options.per_epoch_assignment and offset == 0:
    previous = run.assignments
    run.assignments = steps.assign_dataset(run.states, run.images, run.rngs,
                                     run.kl_weights, epoch,
                                     options=run.options)
    changes = sharding.to_host(jnp.mean(run.assignments != previous, axis=1))
  start_time = time.perf_counter()
  run.states, metrics = steps.train_chunks(
      run.states, run.images, run.assignments, run.rngs,
      run.kl_weights, epoch, offset, num_steps=end - run.step,
      options=run.options, mesh=run.mesh)
  metrics = sharding.to_host(metrics)
  elapsed = time.perf_counter() - start_time
  params_finite = _all_finite(run.states.params)  # never save NaN/inf
  for i, member in enumerate(run.members):
    _check_finite(_member(metrics, i), run.step, member.config, run.last_saved,
                  member.name, params_finite=bool(params_finite[i]),
                  checkpoint_finite=bool(run.saved_finite[i]))
  lr = float(schedules.learning_rate(tc, per_epoch)(end - 1))
  num_steps, step = end - run.step, end
  run.step = step
  bar.update(num_steps)
  bar.set_postfix(
      loss=f'{np.mean(metrics["loss"]):.2f}',
      ex_s=f'{num_steps * tc.batch_size * len(run.members) / elapsed:.0f}')
  evaluate_now = step % per_epoch == 0 and (
      (step // per_epoch) % tc.eval_every_epochs == 0
      or step == run.total_steps)
  # Every process stops (and saves) if any received the signal.
  stopping = sharding.any_process(stop['signal'] is not None)
  save_now = (_is_boundary(step, per_epoch, tc.checkpoint_every_steps)
              or step == run.total_steps or stopping)
  for i, member in enumerate(run.members):
    summary = {f'train_{k}': float(np.mean(v))
               for k, v in _member(metrics, i).items()}
    summary.update(examples_per_sec=num_steps * tc.batch_size / elapsed,
                   epoch=step / per_epoch, learning_rate=lr)
    if changes is not None:
      summary['assignment_changes'] = float(changes[i])
    if evaluate_now:
      summary.update(member.validate(_member(run.states, i), run.valid))
      if run.lead:
        bar.write(f'{member.name + ": " if member.name else ""}epoch '
                  f'{step // per_epoch}: valid bound '
                  f'{member.valid_metrics["valid_bound"]:.3f} nats')
    member.log(step, summary)
    if save_now:
      member.save(step, _member(run.states, i), run.assignments[i])
  if save_now:
    run.last_saved, run.saved_finite = step, params_finite
  if stopping:
    raise Interrupted(stop['signal'] or 'SIGTERM (in another process)', step,
                      _result(run.members))


# What `figures.write_sample_figures` may write (manifolds.png for 2-d
# epitomes only).
_END_OF_RUN_FIGURES = (figures.SAMPLES_PNG, figures.RECONSTRUCTIONS_PNG,
                       figures.MANIFOLDS_PNG)


def _finish(run: _Run):
  """Validation (if the loop did none), the sample figures of each model and,
  last, its `workdirs.FINISHED_FILE`; returns the last validation metrics."""
  for i, member in enumerate(run.members):
    state = sharding.local_copy(_member(run.states, i))
    if not member.valid_metrics:  # the run had already finished before.
      member.validate(state, run.valid)
    if run.lead:
      grids = figures.write_sample_figures(state.params, state.model,
                                           run.splits, member.config,
                                           member.workdir)
      member.writer.write_images(run.step, grids)  # the run's one event file
      workdirs.record_finished(member.workdir, run.step, [
          name for name in _END_OF_RUN_FIGURES
          if files.exists(files.join(member.workdir, name))])
      _print_summary(member, run.step)
  return _result(run.members)


def _print_summary(member: '_Member', step: int) -> None:
  """Where a finished run's results are, and the next command."""
  w = member.workdir
  bound = member.valid_metrics.get('valid_bound', float('nan'))
  events = files.join(w, 'tensorboard')
  # No dependency installs TensorBoard itself (tensorboardX writes events).
  viewer = (f'tensorboard --logdir {events}'
            if importlib.util.find_spec('tensorboard') is not None else
            f'events in {events}: pip install tensorboard to view them')
  print(f'Finished {w} at step {step}: validation bound {bound:.3f} nats. '
        f'Checkpoints: {files.join(w, "checkpoints")}; metrics: '
        f'{files.join(w, "metrics.jsonl")} ({viewer}); figures: '
        f'{files.join(w, figures.SAMPLES_PNG)}, '
        f'{files.join(w, figures.RECONSTRUCTIONS_PNG)}. Next: the same '
        'command with --mode=evaluate (IW log-likelihood, active units, '
        'Parzen; add --config.eval.quick=True for a first look in seconds).',
        flush=True)


def _result(team: List[_Member]):
  if len(team) == 1:
    return team[0].valid_metrics
  return {member.name: member.valid_metrics for member in team}


def _valid_metrics(state, valid, rng, config) -> Dict[str, float]:
  # In eval.dtype (float32 by default) like --mode=evaluate, whatever dtype
  model = state.model  # the steps train in.
  if models.evaluation_dtype(config) != config.model.dtype:
    model = models.evaluation_model(config, model.image_shape)
  return {f'valid_{k}': v for k, v in metrics_lib.mean_bounds(
      state.params, model, valid, rng, config.eval.batch_size).items()}
