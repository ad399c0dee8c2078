"""One process against several on this machine: wall time and parameter
parity of the same config and seed.

    python -m experiments.processes [--config=configs/test.py] [--processes=2]
        [--epochs=30] [--root=runs/processes]

Trains the config once in one process and once in N processes (JAX's CPU
backend, gloo collectives over the loopback, the global batch split across
them), each launched as on a pod: the same command with its own process id.
Prints both wall times (start-up and compilation included) and the largest
absolute difference between the two runs' final parameters.
"""

import os
import shutil
import socket
import subprocess
import sys
import time

from absl import app
from absl import flags
import jax
import numpy as np

flags.DEFINE_string('config', 'configs/test.py', 'Config file.')
flags.DEFINE_integer('processes', 2, 'Processes of the multi-process run.')
flags.DEFINE_integer('epochs', 30, 'Epochs of both runs.')
flags.DEFINE_string('root', 'runs/processes', 'Workdirs (replaced).')
FLAGS = flags.FLAGS


def _command(workdir, *extra):
  return [sys.executable, '-m', 'evae_jax.main', f'--config={FLAGS.config}',
          f'--workdir={workdir}', f'--config.train.num_epochs={FLAGS.epochs}',
          '--config.train.progress_bar=False', *extra]


def _run(commands) -> float:
  start = time.perf_counter()
  procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
           for c in commands]
  for p in procs:
    _, err = p.communicate()
    if p.returncode:
      raise SystemExit(f'a process failed ({p.returncode}): {err[-2000:]}')
  return time.perf_counter() - start


def _final_params(workdir):
  """The parameters of the newest checkpoint of ``workdir``."""
  # pylint: disable=g-import-not-at-top
  import ml_collections
  from evae_jax.evaluate import report
  from evae_jax.storage import workdirs
  config = ml_collections.ConfigDict(workdirs.load_saved_config(workdir))
  state, _ = report.load_trained(config, workdir)
  return jax.tree_util.tree_leaves(jax.device_get(state.params))


def main(argv):
  del argv
  one = os.path.join(FLAGS.root, 'one')
  many = os.path.join(FLAGS.root, f'{FLAGS.processes}')
  for workdir in (one, many):
    shutil.rmtree(workdir, ignore_errors=True)
  one_seconds = _run([_command(one)])
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
  many_seconds = _run([_command(
      many, '--config.train.distributed=True',
      f'--config.train.coordinator_address=127.0.0.1:{port}',
      f'--config.train.num_processes={FLAGS.processes}',
      f'--config.train.process_id={i}') for i in range(FLAGS.processes)])
  error = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
              for a, b in zip(_final_params(one), _final_params(many)))
  print(f'{FLAGS.config}, {FLAGS.epochs} epochs: 1 process {one_seconds:.1f} s, '
        f'{FLAGS.processes} processes {many_seconds:.1f} s (wall, start-up '
        f'included); largest |parameter difference| {error:.2g}')


if __name__ == '__main__':
  app.run(main)
