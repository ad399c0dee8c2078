"""Progress over a long evaluation loop that reads well wherever it goes:
a tqdm bar on a terminal, plain lines in a log file (nohup, SLURM)."""

import math
import sys
import time
from typing import Iterator

from tqdm import tqdm


def _is_terminal() -> bool:
  """Whether stderr, where tqdm draws, is a terminal (the training bar's
  rule too)."""
  try:
    return sys.stderr.isatty()
  except (AttributeError, ValueError):  # replaced or closed stderr
    return False


def progress_steps(total: int, desc: str,
                    enabled: bool = True) -> Iterator[int]:
  """range(total), with a tqdm bar on a terminal; elsewhere (a log file of
  nohup or SLURM, where every redraw of a bar is a carriage-return line) a
  plain line on stderr at about every 10 % instead.

  Args:
    total: the number of steps.
    desc: what is counted, at the start of the bar or of each line.
    enabled: False shows nothing.

  Returns:
    An iterator over 0, ..., total - 1.
  """
  if not enabled:
    return iter(range(total))
  if _is_terminal():
    return iter(tqdm(range(total), desc=desc))
  return _plain_progress(total, desc)


def _plain_progress(total: int, desc: str) -> Iterator[int]:
  start = time.perf_counter()
  every = max(1, math.ceil(total / 10))
  for i in range(total):
    yield i
    done = i + 1
    if done % every == 0 or done == total:
      print(f'{desc}: {done}/{total} ({100 * done // total}%), '
            f'{time.perf_counter() - start:.1f} s', file=sys.stderr,
            flush=True)
