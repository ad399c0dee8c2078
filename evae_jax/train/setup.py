"""Training set-up: from a config and a workdir to a run ready to loop.

`set_up` prepares the workdirs (config pinned only once the data loaded and
the sizes are checked), loads the data, restores every member's state from
the newest step they all saved (refusing another config or other images)
or creates it, and places data and states on the devices; `Run` and
`Member` are what the loop (`evae_jax.train.loop`) then works on.
"""

import dataclasses
import logging
from typing import Any, Dict, List, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import Mesh

from evae_jax import errors
from evae_jax.storage import checkpoints
from evae_jax import configuration
from evae_jax import metrics as metrics_lib
from evae_jax.storage import files
from evae_jax import data as input_pipeline
from evae_jax.train import metric_writers
from evae_jax import models
from evae_jax.storage import provenance
from evae_jax.runtime import seeds
from evae_jax.state import schedules
from evae_jax.runtime import sharding
from evae_jax import state as state_lib
from evae_jax.train import steps
from evae_jax.storage import workdirs


def all_finite(tree) -> np.ndarray:
  """Whether every parameter of each stacked member is finite.

  Args:
    tree: parameters stacked over M members on a leading axis.

  Returns:
    (M,) bool on the host.
  """
  leaves = [jnp.all(jnp.isfinite(leaf.reshape(leaf.shape[0], -1)), axis=1)
            for leaf in jax.tree_util.tree_leaves(tree)]
  return sharding.to_host(jnp.all(jnp.stack(leaves), axis=0))


def _stack(trees):
  return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)


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


@dataclasses.dataclass
class Member:
  """What belongs to one of the models a run trains (`state.members`).

  Attributes:
    name: its subdirectory; '' = the workdir itself.
    config: its config (its own seed and KL weight).
    workdir: where its checkpoints, metrics and figures go.
    checkpoints: its `checkpoints.Checkpoints`.
    eval_rng: its validation key, the same every epoch.
    data_digest: checksum of the images it trains and validates on.
    images: their shape and count, saved so that a trained model loads
      without them (`evae_jax.load`).
    writer: its metric writer (process 0 only, else None).
    valid_metrics: its last validation metrics.
  """
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
    """Validates ``state`` on ``valid`` (`valid_metrics`) and keeps the
    result as ``valid_metrics``.

    Args:
      state: this member's train state.
      valid: (n, N) validation inputs.

    Returns:
      The metrics, 'valid_bound', ...
    """
    self.valid_metrics = valid_metrics(sharding.local_copy(state), valid,
                                        self.eval_rng, self.config)
    return self.valid_metrics

  def log(self, step: int, summary: Dict[str, float]) -> None:
    """Writes one metrics record (process 0 only).

    Args:
      step: the global step it belongs to.
      summary: {name: value}.
    """
    if self.writer:
      self.writer.write(step, summary)

  def save(self, step: int, state, assignments) -> None:
    """Saves a checkpoint of this member with its config, data digest and
    image sizes.

    Args:
      step: the global step.
      state: its train state.
      assignments: (n,) its Algorithm 1 epitome per training image.
    """
    # The config travels with the step: with config.json lost, a resume
    # with another config is still refused (workdirs.load_saved_config).
    self.checkpoints.save(step, state_lib.state_tree(state, assignments),
                          {'config': configuration.config_as_dict(self.config),
                           'data': self.data_digest, 'images': self.images})

  def close(self) -> None:
    """Closes its metric writer and checkpoints."""
    if self.writer:
      self.writer.close()
    self.checkpoints.close()


@dataclasses.dataclass
class Run:
  """A training run after set-up: the data and states on the devices, the
  members, and where the loop stands.

  Attributes:
    config: the run's config.
    members: one `Member` per model trained side by side.
    splits: the loaded data (`evae_jax.data.Splits`).
    options: the static options of the compiled steps.
    mesh: the devices' data-parallel mesh.
    images: (n, N) uint8 training images on every device.
    valid: (n_valid, N) validation inputs as evaluation scores them.
    steps_per_epoch: training steps per epoch.
    total_steps: the budget, in steps.
    states: the members' train states, stacked, replicated.
    assignments: (M, n) Algorithm 1's epitome per training image.
    rngs: (M,) training keys.
    kl_weights: (M,) each member's KL weight.
    step: the global step reached.
    last_saved: the last step saved (None before the first save).
    saved_finite: (M,) whether the last saved parameters are finite.
    lead: whether this process writes (process 0).
  """
  config: ml_collections.ConfigDict
  members: List[Member]
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


class AlreadyFinished(Exception):
  """The checkpoint restored is the end of the budget: nothing to train.

  A rerun of a finished run touches nothing (no figures re-rendered, no
  second TensorBoard file); it says so and how to continue.

  Args:
    config: the run's config.
    workdir: its workdir.
    team: its (name, config) members (`state.members`).
    dirs: each member's directory.
    step: the step restored.
    steps_per_epoch: training steps per epoch.

  Attributes:
    message: what to print: finished at which epoch, how to continue.
    metrics: the last validation metrics of metrics.jsonl, as a finished
      run returns them (per member name for several).
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


def set_up(config: ml_collections.ConfigDict, workdir: str) -> Run:
  """Prepares the workdirs, loads the data, restores or creates the states
  and places everything on the devices.

  Args:
    config: the run's validated config.
    workdir: its output directory (members in subdirectories).

  Returns:
    The `Run` the loop trains.

  Raises:
    AlreadyFinished: the restored step is the end of the budget.
    errors.ConfigError: a batch size the data or devices cannot take, or a
      checkpoint trained with another config or on other images.
  """
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
        raise AlreadyFinished(config, workdir, team, dirs, last_saved,
                               steps_per_epoch)
      logging.info('Resumed from the checkpoint at step %d.', last_saved)
  except BaseException:
    for ckpt in ckpts:  # no member owns them yet
      ckpt.close()
    raise
  # Checkpoints this run writes are finite (checked before saving); the one
  # it resumed from may not be (an older version wrote it).
  saved_finite = all_finite(states.params)
  states = sharding.replicate(states, mesh)
  step = int(sharding.to_host(states.step)[0])
  lead = sharding.is_lead()
  if lead:
    for member_dir in dirs:
      metric_writers.keep_damaged_lines(member_dir)
      provenance.record_training_start(member_dir, step)
  team = [Member(name, member, member_dir, ckpt,
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
  return Run(
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


def valid_metrics(state, valid, rng, config) -> Dict[str, float]:
  """The validation bounds of one member, in ``eval.dtype`` (float32 by
  default) as --mode=evaluate computes them, whatever dtype it trains in.

  Args:
    state: the member's train state (on this host).
    valid: (n, N) validation inputs as evaluation scores them.
    rng: the member's validation key (the same every epoch).
    config: the member's config.

  Returns:
    {'valid_bound': ..., 'valid_logsumexp_bound': ..., ...}: means over
    the images.
  """
  model = state.model
  if models.evaluation_dtype(config) != config.model.dtype:
    model = models.evaluation_model(config, model.image_shape)
  return {f'valid_{k}': v for k, v in metrics_lib.mean_bounds(
      state.params, model, valid, rng, config.eval.batch_size).items()}
