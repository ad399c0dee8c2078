r"""``import evae_jax`` timed for two source trees, alternating.

Runs ``python -X importtime -c 'import evae_jax'`` with each tree first on
``PYTHONPATH``, in alternation, and prints the median of the cumulative
time of the ``evae_jax`` entry for each, and their ratio. Another git
commit is checked out as a tree with ``git worktree add --detach DIR REF``::

  git worktree add --detach /tmp/before 074effd^
  python -m experiments.import_time --trees=/tmp/before,. --repeats=21
"""

import re
import statistics
import subprocess
import sys

from absl import app
from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_list('trees', None, 'Two (or more) source trees, each holding '
                  'an evae_jax package; the first is the baseline.')
flags.DEFINE_integer('repeats', 21, 'Imports per tree (alternating).')

_ENTRY = re.compile(r'^import time:\s+\d+ \|\s+(\d+) \| evae_jax$')


def import_microseconds(tree: str) -> int:
  """The cumulative import time of ``evae_jax`` from ``tree``.

  Args:
    tree: a folder holding the ``evae_jax`` package.

  Returns:
    Microseconds, as ``-X importtime`` reports them (the package and all it
    imports that was not imported already by Python's start-up).

  Raises:
    RuntimeError: the report has no ``evae_jax`` line.
  """
  out = subprocess.run(
      [sys.executable, '-X', 'importtime', '-c', 'import evae_jax'],
      env={'PYTHONPATH': tree, 'PATH': '/usr/bin:/bin'}, cwd=tree,
      capture_output=True, text=True, check=True).stderr
  for line in out.splitlines():
    match = _ENTRY.match(line.strip())
    if match:
      return int(match.group(1))
  raise RuntimeError(f'no evae_jax line in the importtime report of {tree}')


def main(argv):
  del argv
  if not FLAGS.trees or len(FLAGS.trees) < 2:
    raise app.UsageError('--trees needs two folders, e.g. --trees=/tmp/old,.')
  times = {tree: [] for tree in FLAGS.trees}
  for _ in range(FLAGS.repeats):
    for tree in FLAGS.trees:
      times[tree].append(import_microseconds(tree))
  base = statistics.median(times[FLAGS.trees[0]])
  for tree in FLAGS.trees:
    median = statistics.median(times[tree])
    print(f'{tree}: median {median / 1000:.2f} ms over {FLAGS.repeats} '
          f'(min {min(times[tree]) / 1000:.2f}, max '
          f'{max(times[tree]) / 1000:.2f}); {median / base:.2f}x the first')


if __name__ == '__main__':
  app.run(main)
