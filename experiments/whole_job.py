"""The whole training job, evae_jax against PyTorch eager, as a user runs it,
in float32 and in bfloat16.

    pip install -e '.[bench]'      # PyTorch, for the yardstick
    python -m experiments.whole_job --data=../shared/data/mnist --epochs=10 --pairs=3

times, round by round (so that a slow spell of the machine hits every job),
the command line's whole job (start-up, data, compilation, training,
per-epoch validation, checkpoints, metrics, figures) on the Fig. 3 eVAE with
per-step y* (configs/mnist.py, ``train.assignment=step``, MNIST IDX files,
50,000 training and 10,000 validation images, batch 100), and
``experiments/torch_job.py``, the same job in plain PyTorch eager. The jobs
(``--jobs``, all four by default; ``--jobs=evae_jax,pytorch`` is the
float32 comparison alone):

- ``evae_jax``: float32;
- ``evae_jax_bf16``: ``--config.model.dtype=bfloat16`` (bf16 matmul inputs,
  float32 accumulation, parameters, optimizer and log-densities);
- ``pytorch``: float32;
- ``pytorch_autocast``: ``--autocast=bfloat16``, the training step's
  networks under ``torch.autocast('cpu', dtype=torch.bfloat16)``, the loss
  in float32 (``experiments/torch_job.py`` says what runs in which dtype).

Both sides validate in float32. Each round runs every job once, in an order
rotated by one job from the last round's, so that every job takes every
place in turn. Prints each job's median wall time and the ratio of each
evae_jax job's median to each PyTorch job's (below 1: evae_jax is faster;
``evae_jax_bf16 / pytorch_autocast`` is the bfloat16 comparison,
``evae_jax / pytorch`` the float32 one), and writes every time to
``--out`` (a temporary file by default: nothing tracked is overwritten).
Takes about jobs x epochs x (pairs + 1) x 30 s on a 2-core CPU (one untimed
round first fills the compilation cache, ``--nowarmup`` to skip it).
bfloat16 pays only on a CPU with native bfloat16 (``avx512_bf16`` or
``amx_bf16`` in ``lscpu``'s flags, recorded in the output); elsewhere
either side's bfloat16 job can be slower than its float32 one.

Where evae_jax's time goes: run the same command under a profiler, e.g.
``python -m pyinstrument -m evae_jax.main ...`` (the commands are printed).
"""

import functools
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Sequence

from absl import app
from absl import flags


def evae_jax_command(data: str, epochs: int, workdir: str,
                     dtype: str = 'float32') -> List[str]:
  """The command line of evae_jax's job, its networks in ``dtype``."""
  return [sys.executable, '-m', 'evae_jax.main', '--config=configs/mnist.py',
          f'--workdir={workdir}', '--config.data.name=idx',
          f'--config.data.path={data}', '--config.train.assignment=step',
          f'--config.train.num_epochs={epochs}',
          '--config.train.progress_bar=False'] + (
              [f'--config.model.dtype={dtype}'] if dtype != 'float32' else [])


def torch_command(data: str, epochs: int, workdir: str,
                  autocast: str = 'off') -> List[str]:
  """The command line of the PyTorch eager job (``autocast``: off or
  bfloat16, torch_job's ``--autocast``)."""
  return [sys.executable, '-m', 'experiments.torch_job', f'--data={data}',
          f'--epochs={epochs}', f'--out={workdir}'] + (
              [f'--autocast={autocast}'] if autocast != 'off' else [])


# Each job: its command line as a function of (data, epochs, workdir).
JOBS = {
    'evae_jax': evae_jax_command,
    'evae_jax_bf16': functools.partial(evae_jax_command, dtype='bfloat16'),
    'pytorch': torch_command,
    'pytorch_autocast': functools.partial(torch_command, autocast='bfloat16'),
}
# The bfloat16 pair, the first of the ratios printed when both ran.
HEADLINE = ('evae_jax_bf16', 'pytorch_autocast')


def rotated(names: Sequence[str], round_: int) -> List[str]:
  """The order of round ``round_``: ``names`` rotated left by ``round_``
  (with two jobs: ab, ba, ab, ...)."""
  shift = round_ % len(names)
  return list(names[shift:]) + list(names[:shift])


def alternate(jobs: Dict[str, Callable[[str], List[str]]], pairs: int,
              run: Callable[[List[str]], float]) -> Dict[str, List[float]]:
  """Runs every job once per round, ``pairs`` rounds, each in a fresh
  workdir, the order rotated each round (`rotated`).

  Args:
    jobs: {name: the job's command line as a function of its workdir}.
    pairs: the number of rounds.
    run: runs a command line and returns its wall seconds.

  Returns:
    {name: [seconds, one per round]}.
  """
  times = {name: [] for name in jobs}
  for round_ in range(pairs):
    for name in rotated(list(jobs), round_):
      with tempfile.TemporaryDirectory() as workdir:
        times[name].append(run(jobs[name](os.path.join(workdir, 'run'))))
  return times


def timed(command: Sequence[str]) -> float:
  """Wall seconds of a command, which must succeed (else its stderr's end
  is in the error)."""
  start = time.perf_counter()
  done = subprocess.run(command, stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE, text=True)
  seconds = time.perf_counter() - start
  if done.returncode:
    raise RuntimeError(f'{" ".join(command)} exited {done.returncode}:\n'
                       f'{done.stderr[-3000:]}')
  return seconds


def ratio_name(jax_job: str, torch_job: str) -> str:
  return f'{jax_job} / {torch_job}'


def summary(times: Dict[str, List[float]]) -> dict:
  """Medians and the ratios of evae_jax's jobs to PyTorch's.

  Args:
    times: {job: [seconds per round]}, jobs named as in `JOBS`.

  Returns:
    ``{job}_median_s`` for every job; ``ratios``: {'J / T': median J /
    median T} for every evae_jax job J and PyTorch job T that ran (below 1:
    evae_jax is faster), the bfloat16 pair first; ``ratio``: evae_jax /
    pytorch, the float32 pair (the key of the float32-only files), where
    both ran.
  """
  medians = {name: statistics.median(t) for name, t in times.items()}
  jax_jobs = [n for n in medians if n.startswith('evae_jax')]
  torch_jobs = [n for n in medians if n.startswith('pytorch')]
  pairs = [(j, t) for j in jax_jobs for t in torch_jobs]
  pairs.sort(key=lambda pair: pair != HEADLINE)
  result = {f'{n}_median_s': m for n, m in medians.items()}
  result['ratios'] = {ratio_name(j, t): medians[j] / medians[t]
                      for j, t in pairs}
  if 'evae_jax' in medians and 'pytorch' in medians:
    result['ratio'] = medians['evae_jax'] / medians['pytorch']
  return result


def format_summary(times: Dict[str, List[float]], got: dict) -> str:
  """The medians (with each job's range) and the ratios, as text."""
  width = max(len(n) for n in times)
  lines = [f'{"job":<{width}}  median s  (min-max)']
  for name, t in times.items():
    lines.append(f'{name:<{width}}  {got[f"{name}_median_s"]:8.1f}  '
                 f'({min(t):.1f}-{max(t):.1f})')
  if got['ratios']:
    lines += ['', 'median ratios (below 1: evae_jax faster)']
    name_width = max(len(n) for n in got['ratios'])
    for name, value in got['ratios'].items():
      note = {ratio_name(*HEADLINE): '  bfloat16 against bfloat16',
              'evae_jax / pytorch': '  float32 against float32'}.get(name, '')
      lines.append(f'  {name:<{name_width}}  {value:.3f}{note}')
  return '\n'.join(lines)


def cpu_bfloat16_flags() -> List[str]:
  """Which of avx512_bf16 and amx_bf16 this CPU's flags name (Linux)."""
  try:
    with open('/proc/cpuinfo') as f:
      words = set(f.read().split())
  except OSError:
    return []
  return [flag for flag in ('avx512_bf16', 'amx_bf16') if flag in words]


def machine() -> Dict[str, object]:
  """What a reader on another machine needs to tell why their times differ.

  Returns:
    {'cpu_model': the CPU's model name ('' where /proc/cpuinfo is not
    readable), 'cores': the cores this process may use, 'bfloat16_flags':
    `cpu_bfloat16_flags`, 'platform': the OS and architecture}.
  """
  model = ''
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.lower().startswith('model name'):
          model = line.split(':', 1)[1].strip()
          break
  except OSError:
    pass
  cores = (len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity')
           else os.cpu_count())
  return {'cpu_model': model or platform.processor(), 'cores': cores,
          'bfloat16_flags': cpu_bfloat16_flags(),
          'platform': platform.platform()}


def versions() -> Dict[str, str]:
  """The installed versions of the libraries the jobs time."""
  found = {}
  for package in ('jax', 'jaxlib', 'flax', 'torch'):
    try:
      found[package] = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
      found[package] = 'not installed'
  return found


def main(argv):
  del argv
  f = flags.FLAGS
  unknown = [n for n in f.jobs if n not in JOBS]
  if unknown or not f.jobs or len(set(f.jobs)) != len(f.jobs):
    raise app.UsageError(f'--jobs={",".join(f.jobs)}: give each of '
                         f'{", ".join(JOBS)} at most once.')
  jobs = {n: functools.partial(JOBS[n], f.data, f.epochs) for n in f.jobs}
  for name, command in jobs.items():
    print(f'{name}: {" ".join(command("WORKDIR"))}')
  if f.warmup:  # fills evae_jax's compilation cache, as any earlier run has
    alternate(jobs, 1, timed)
  times = alternate(jobs, f.pairs, timed)
  got = summary(times)
  result = {'epochs': f.epochs, 'pairs': f.pairs, 'warmup': f.warmup,
            'jobs': list(jobs), 'cpu_bfloat16_flags': cpu_bfloat16_flags(),
            'machine': machine(), 'versions': versions(),
            'commands': {n: c('WORKDIR') for n, c in jobs.items()},
            'times_s': times, **got}
  out = f.out or os.path.join(tempfile.gettempdir(), 'whole_job.json')
  with open(out, 'w') as fh:
    json.dump(result, fh, indent=1)
  print()
  print(format_summary(times, got))
  m = result['machine']
  print(f"\nmachine: {m['cpu_model']}, {m['cores']} cores, bfloat16 flags: "
        f"{', '.join(m['bfloat16_flags']) or 'none'}; "
        + ', '.join(f'{k} {v}' for k, v in result['versions'].items()))
  print(f'every time: {out}')


if __name__ == '__main__':
  flags.DEFINE_string('data', None, 'Folder of the MNIST IDX files.')
  flags.DEFINE_integer('epochs', 10, 'Training epochs of each job.')
  flags.DEFINE_integer('pairs', 3, 'Rounds, each one run of every job.')
  flags.DEFINE_list('jobs', list(JOBS), 'The jobs to time, of '
                    f'{", ".join(JOBS)} (evae_jax,pytorch: float32 only).')
  flags.DEFINE_string('out', '', 'JSON of every time (default: a temp file).')
  flags.DEFINE_bool('warmup', True, 'One untimed round first: evae_jax then '
                    'runs with its compilation cache filled, as a rerun, a '
                    'resume or a sweep\'s next point does (--nowarmup: the '
                    'first run on a machine, cache empty or as it is).')
  flags.mark_flags_as_required(['data'])
  app.run(main)
