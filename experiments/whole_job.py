"""The whole training job, evae_jax against PyTorch eager, as a user runs it.

    pip install -e '.[bench]'      # PyTorch, for the yardstick
    python -m experiments.whole_job --data=../shared/data/mnist --epochs=10 --pairs=3

times, in alternating runs (so that a slow spell of the machine hits both),
the command line's whole job (start-up, data, compilation, training,
per-epoch validation, checkpoints, metrics, figures) on the Fig. 3 eVAE with
per-step y* (configs/mnist.py, ``train.assignment=step``, MNIST IDX files,
50,000 training and 10,000 validation images, batch 100), and
``experiments/torch_job.py``, the same job in plain PyTorch eager. Prints
each side's median wall time and their ratio, and writes every time to
``--out`` (a temporary file by default: nothing tracked is overwritten).
Takes about epochs x (pairs + 1) x 30 s on a 2-core CPU (one untimed round
first fills the compilation cache, ``--nowarmup`` to skip it).

Where evae_jax's time goes: run the same command under a profiler, e.g.
``python -m pyinstrument -m evae_jax.main ...`` (the command is printed).
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Sequence

from absl import app
from absl import flags


def evae_jax_command(data: str, epochs: int, workdir: str) -> List[str]:
  """The command line of evae_jax's job."""
  return [sys.executable, '-m', 'evae_jax.main', '--config=configs/mnist.py',
          f'--workdir={workdir}', '--config.data.name=idx',
          f'--config.data.path={data}', '--config.train.assignment=step',
          f'--config.train.num_epochs={epochs}',
          '--config.train.progress_bar=False']


def torch_command(data: str, epochs: int, workdir: str) -> List[str]:
  """The command line of the PyTorch eager job."""
  return [sys.executable, '-m', 'experiments.torch_job', f'--data={data}',
          f'--epochs={epochs}', f'--out={workdir}']


def alternate(jobs: Dict[str, Callable[[str], List[str]]], pairs: int,
              run: Callable[[List[str]], float]) -> Dict[str, List[float]]:
  """Runs every job once per round, ``pairs`` rounds, each in a fresh
  workdir, alternating which goes first; {job: [seconds per round]}."""
  times = {name: [] for name in jobs}
  names = list(jobs)
  for round_ in range(pairs):
    order = names if round_ % 2 == 0 else names[::-1]
    for name in order:
      with tempfile.TemporaryDirectory() as workdir:
        times[name].append(run(jobs[name](os.path.join(workdir, 'run'))))
  return times


def timed(command: Sequence[str]) -> float:
  """Wall seconds of a command (which must succeed)."""
  start = time.perf_counter()
  subprocess.run(command, check=True, stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL)
  return time.perf_counter() - start


def summary(times: Dict[str, List[float]]) -> Dict[str, float]:
  """Medians and the ratio evae_jax / pytorch (below 1: evae_jax faster)."""
  medians = {name: statistics.median(t) for name, t in times.items()}
  return {**{f'{n}_median_s': m for n, m in medians.items()},
          'ratio': medians['evae_jax'] / medians['pytorch']}


def main(argv):
  del argv
  f = flags.FLAGS
  jobs = {'evae_jax': lambda w: evae_jax_command(f.data, f.epochs, w),
          'pytorch': lambda w: torch_command(f.data, f.epochs, w)}
  print('evae_jax:', ' '.join(evae_jax_command(f.data, f.epochs, 'WORKDIR')))
  if f.warmup:  # fills evae_jax's compilation cache, as any earlier run has
    alternate(jobs, 1, timed)
  times = alternate(jobs, f.pairs, timed)
  result = {'epochs': f.epochs, 'pairs': f.pairs, 'warmup': f.warmup,
            'times_s': times,
            **summary(times)}
  out = f.out or os.path.join(tempfile.gettempdir(), 'whole_job.json')
  with open(out, 'w') as fh:
    json.dump(result, fh, indent=1)
  print(json.dumps({k: v for k, v in result.items() if k != 'times_s'}))
  print(f'every time: {out}')


if __name__ == '__main__':
  flags.DEFINE_string('data', None, 'Folder of the MNIST IDX files.')
  flags.DEFINE_integer('epochs', 10, 'Training epochs of each job.')
  flags.DEFINE_integer('pairs', 3, 'Rounds of one run of each.')
  flags.DEFINE_string('out', '', 'JSON of every time (default: a temp file).')
  flags.DEFINE_bool('warmup', True, 'One untimed round first: evae_jax then '
                    'runs with its compilation cache filled, as a rerun, a '
                    'resume or a sweep\'s next point does (--nowarmup: the '
                    'first run on a machine, cache empty or as it is).')
  flags.mark_flags_as_required(['data'])
  app.run(main)
