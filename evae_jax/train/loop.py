"""Training: the loop around the compiled steps of `evae_jax.train.steps`.

`train_and_evaluate` reads as set-up (`evae_jax.train.setup`: workdirs,
data on the devices, states restored or created), loop (Algorithm 1's
assignment, a chunk of steps, validation, metrics, checkpoints, signals)
and finish (figures).
"""

import contextlib
import importlib.util
import signal
import sys
import time
from typing import Dict, List, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from tqdm import tqdm

from evae_jax import configuration
from evae_jax import figures
from evae_jax.storage import files
from evae_jax.state import schedules
from evae_jax.runtime import sharding
from evae_jax.runtime import signals
from evae_jax.train import setup
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


def _member(tree, i):
  return jax.tree_util.tree_map(lambda a: a[i], tree)


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


def _train_and_evaluate(config, workdir):
  try:
    run = setup.set_up(config, workdir)
  except setup.AlreadyFinished as done:
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


def _is_terminal() -> bool:
  try:
    return sys.stderr.isatty()
  except (AttributeError, ValueError):  # replaced or closed stderr
    return False


def _loop(run: setup.Run, stop: Dict[str, Optional[str]]) -> None:
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


def _train_chunk_of(run: setup.Run, stop, bar) -> None:
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
  params_finite = setup.all_finite(run.states.params)  # never save NaN/inf
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


def _finish(run: setup.Run):
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
          if files.exists(files.join(member.workdir, name))],
          figures.figure_settings(member.config, member.config.model.dtype,
                                  run.splits))
      _print_summary(member, run.step)
  return _result(run.members)


def _print_summary(member: 'setup.Member', step: int) -> None:
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


def _result(team: List[setup.Member]):
  if len(team) == 1:
    return team[0].valid_metrics
  return {member.name: member.valid_metrics for member in team}


