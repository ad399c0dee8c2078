"""Data parallelism: one mesh over all devices, batch on the 'data' axis.

Parameters, optimizer state and the uint8 dataset are replicated; each
step's batch is split across devices and XLA inserts the gradient all-reduce.
The same code runs on one CPU, 8 TPU cores, or a multi-host pod (call
`initialize_distributed` first there; every host then loads the same data).
"""

import os
import threading
from typing import Any, List, Mapping, Optional


import jax
import numpy as np
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from evae_jax import errors

DATA_AXIS = 'data'


# The environment variables that stand in for the config fields below.
COORDINATOR_ENV = 'JAX_COORDINATOR_ADDRESS'  # also read by JAX itself
NUM_PROCESSES_ENV = 'JAX_NUM_PROCESSES'
PROCESS_ID_ENV = 'JAX_PROCESS_ID'
# How long the processes of a launch wait for each other to connect. JAX's
# own 300 s ends in a C++ abort with a stack trace; this wait ends in a
# ConfigError that says what to check.
INITIALIZATION_TIMEOUT_S = 120
# JAX's own deadline comes this much later, so that ours is the one reported
# (JAX aborts the process at its deadline: the caller must exit on ours).
_JAX_DEADLINE_MARGIN_S = 60


def distributed_args(coordinator_address: str = '', num_processes: int = 0,
                     process_id: int = -1,
                     environ: Optional[Mapping[str, str]] = None) -> dict:
  """The arguments of ``jax.distributed.initialize`` for this process.

  Each value comes from its argument (a config field) or else from its
  environment variable (``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``,
  ``JAX_PROCESS_ID``). With none set, JAX detects the cluster itself (TPU
  pods, SLURM, Open MPI, Kubernetes): ``{}``.

  Args:
    coordinator_address: host:port of process 0 ('' = from the environment).
    num_processes: processes in the launch (0 = from the environment).
    process_id: this process's id in [0, num_processes) (-1 = from the
      environment).
    environ: the environment to read (None: ``os.environ``).

  Returns:
    {'coordinator_address', 'num_processes', 'process_id'} when all three
    are set, or ``{}`` when none is.

  Raises:
    errors.ConfigError: only some of the three are set, the variables are
      not integers, or the id is not in [0, num_processes).
  """
  environ = os.environ if environ is None else environ
  address = coordinator_address or environ.get(COORDINATOR_ENV, '')
  try:
    count = num_processes or int(environ.get(NUM_PROCESSES_ENV, 0))
    index = (process_id if process_id >= 0
             else int(environ.get(PROCESS_ID_ENV, -1)))
  except ValueError as e:
    raise errors.ConfigError(
        f'{NUM_PROCESSES_ENV} and {PROCESS_ID_ENV} must be '
        f'integers: {e}.') from e
  if count < 0:
    raise errors.ConfigError(
        f'train.num_processes={count}: the number of processes '
        'of the launch is at least 1.')
  given = {'train.coordinator_address': bool(address),
           'train.num_processes': count > 0, 'train.process_id': index >= 0}
  if not any(given.values()):
    return {}
  if not all(given.values()):
    missing = ', '.join(k for k, v in given.items() if not v)
    raise errors.ConfigError(
        f'an explicit multi-process launch needs the coordinator address, '
        f'the number of processes and this process\'s id; {missing} (or '
        f'{COORDINATOR_ENV}, {NUM_PROCESSES_ENV}, {PROCESS_ID_ENV}) is not '
        f'set. Set all three, or none to let JAX detect a TPU pod or SLURM.')
  if not 0 <= index < count:
    raise errors.ConfigError(
        f'process id {index} is not in [0, {count}); ids run '
        f'from 0 to num_processes - 1.')
  return {
      'coordinator_address': address,
      'num_processes': count,
      'process_id': index
  }


def initialize_distributed(
    coordinator_address: str = '',
    num_processes: int = 0,
    process_id: int = -1,
    initialization_timeout: int = INITIALIZATION_TIMEOUT_S) -> None:
  """Connects the processes of a multi-process run (see `distributed_args`).

  Every process runs the same command; process 0 also serves as the
  coordinator. On CPU the processes exchange collectives through gloo (so
  the same code runs as several processes on one machine, as the tests do).

  Args:
    coordinator_address: host:port of process 0 ('' = from the environment).
    num_processes: processes in the launch (0 = from the environment).
    process_id: this process's id in [0, num_processes) (-1 = from the
      environment).
    initialization_timeout: seconds to wait for every process to connect.

  Raises:
    errors.ConfigError: the arguments are inconsistent, not every process
      connected within ``initialization_timeout`` (then exit: JAX aborts
      the process a minute later), or the coordinator counts another
      number of processes than ``num_processes``.
  """
  if jax.distributed.is_initialized():
    return
  if initialization_timeout < 1:
    raise errors.ConfigError(
        f'initialization_timeout={initialization_timeout}: '
        'the seconds to wait for the processes are at least 1.')
  args = distributed_args(coordinator_address, num_processes, process_id)
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  _connect(args, initialization_timeout)
  if args and jax.process_count() != args['num_processes']:
    raise errors.ConfigError(
        f'This process was started with num_processes='
        f'{args["num_processes"]}, but the coordinator at '
        f'{args["coordinator_address"]} (process 0) counts '
        f'{jax.process_count()}: give every process the same '
        '--config.train.num_processes.')


def _connect(args: dict, timeout: int) -> None:
  """``jax.distributed.initialize(**args)``, waited for at most ``timeout``
  seconds. It runs in a thread because it blocks in C++ (no signal, no
  exception reaches it) and, at its own deadline, aborts the process."""
  failure = []

  def initialize():
    try:
      jax.distributed.initialize(
          **args, initialization_timeout=timeout + _JAX_DEADLINE_MARGIN_S)
    except Exception as e:  # pylint: disable=broad-except
      failure.append(e)

  thread = threading.Thread(
      target=initialize, daemon=True, name='jax.distributed.initialize')
  thread.start()
  thread.join(timeout)  # Ctrl-C and SIGTERM still interrupt the wait
  if failure:
    raise failure[0]
  if thread.is_alive():
    raise errors.ConfigError(_not_connected(args, timeout))


def _not_connected(args: dict, timeout: int) -> str:
  """What to check when not every process connected in time."""
  if not args:
    return (f'This process waited {timeout} s for the other processes of '
            'the cluster that JAX detected (TPU pod, SLURM, ...) to connect, '
            'and not all did. Check that every process was started, or set '
            'train.coordinator_address, train.num_processes and '
            'train.process_id explicitly.')
  address, count, index = (args['coordinator_address'], args['num_processes'],
                           args['process_id'])
  others = ('processes 1 to ' if count > 2 else 'process ') + str(count - 1)
  where = (f'this process (0) is the coordinator at {address}, and not '
           f'every one of {others} reached it' if index == 0 else
           f'this process ({index}) did not register with the coordinator '
           f'(process 0) at {address}: process 0 was not started, is not '
           'reachable at that address, or not every other process was '
           'started (registration waits for all of them)')
  return (f'Not all {count} processes of the launch connected within '
          f'{timeout} s: {where}. Start every process 0 to {count - 1} '
          f'once, each with the same --config.train.num_processes={count} '
          f'and --config.train.coordinator_address={address} and its own '
          '--config.train.process_id; check that the address is process '
          "0's host and a free port reachable from every host. If the "
          'processes start far apart, allow them longer.')


def make_mesh(num_devices: int = 0) -> Mesh:
  """A 1-d mesh over the first ``num_devices`` devices (0 = all of them).

  Args:
    num_devices: how many of ``jax.devices()`` to use; 0 uses all.

  Returns:
    A mesh of shape (num_devices,) with the one axis 'data' (`DATA_AXIS`).

  Raises:
    errors.ConfigError: more devices asked for than are visible.
  """
  devices = jax.devices()
  if num_devices:
    if num_devices > len(devices):
      raise errors.ConfigError(
          f'train.num_devices={num_devices} but only {len(devices)} devices '
          f'are visible; use --config.train.num_devices=0 (all of them).')
    devices = devices[:num_devices]
  return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicate(tree: Any, mesh: Mesh) -> Any:
  """Places every leaf (host or device array) on all devices of the mesh.

  Args:
    tree: a pytree of arrays (each leaf is read on the host).
    mesh: the mesh (`make_mesh`).

  Returns:
    The same tree of global arrays, each leaf its original shape, fully
    replicated over the mesh.
  """
  sharding = NamedSharding(mesh, P())

  def put(leaf):
    leaf = np.asarray(leaf)
    return jax.make_array_from_callback(leaf.shape, sharding,
                                        lambda index: leaf[index])

  return jax.tree_util.tree_map(put, tree)


def shard_batch(x: jax.Array, mesh: Optional[Mesh]) -> jax.Array:
  """Constrains the leading (batch) axis of x to be split over 'data'.

  For use inside jitted code; without a mesh, or on one device, a no-op.

  Args:
    x: (B, ...) an array whose B is a multiple of the mesh size.
    mesh: the mesh (`make_mesh`), or None.

  Returns:
    (B, ...) ``x``, sharded along B over the mesh.
  """
  if mesh is None or mesh.size == 1:
    return x
  spec = P(DATA_AXIS, *([None] * (x.ndim - 1)))
  return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, spec))


def is_lead() -> bool:
  """Whether this is process 0, the one that writes every shared file.

  Returns:
    True in process 0 (and in a single-process run).
  """
  return jax.process_index() == 0


def _local(leaf):
  if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
    return leaf.addressable_data(0)  # replicated: every copy is the whole
  return leaf


def local_copy(tree: Any) -> Any:
  """This process's copy of replicated arrays, as single-device arrays.

  With several processes, an array replicated over the global mesh cannot be
  read on the host or passed to a computation that only this process runs
  (validation, figures); its local copy can. A no-op in one process.

  Args:
    tree: a pytree of replicated arrays (other leaves pass through).

  Returns:
    The same tree, each array not fully addressable here replaced by its
    copy on one local device (same shape).
  """
  return jax.tree_util.tree_map(_local, tree)


def to_host(tree: Any) -> Any:
  """``jax.device_get`` of replicated values, in one or several processes.

  Args:
    tree: a pytree of replicated arrays.

  Returns:
    The same tree of numpy arrays (same shapes).
  """
  return jax.device_get(local_copy(tree))


def any_process(flag: bool) -> bool:
  """Whether ``flag`` is set in any process (a collective: every process
  must call it at the same point). Used so that all processes stop and save
  together when only some of them received SIGTERM.

  Args:
    flag: this process's flag.

  Returns:
    True if any process passed a true ``flag``.
  """
  if jax.process_count() == 1:
    return bool(flag)
  from jax.experimental import (  # pylint: disable=g-import-not-at-top
      multihost_utils)
  return bool(np.any(multihost_utils.process_allgather(np.int32(flag))))


def processes_differing(digest: str) -> List[int]:
  """The ids of the processes whose ``digest`` is not process 0's (a
  collective: every process must call it at the same point).

  Args:
    digest: this process's hex digest (e.g. of its config), the same length
      in every process.

  Returns:
    The ids, in order; [] alone or when every process agrees.
  """
  if jax.process_count() == 1:
    return []
  from jax.experimental import (  # pylint: disable=g-import-not-at-top
      multihost_utils)
  every = np.asarray(multihost_utils.process_allgather(
      np.frombuffer(bytes.fromhex(digest), np.uint8)))
  return [i for i, row in enumerate(every) if not np.array_equal(row, every[0])]


def barrier(name: str) -> None:
  """Waits until every process reaches the barrier ``name`` (no-op alone).

  Args:
    name: the barrier's name, the same in every process.
  """
  if jax.process_count() > 1:
    from jax.experimental import (  # pylint: disable=g-import-not-at-top
        multihost_utils)
    multihost_utils.sync_global_devices(name)
