"""SIGTERM and SIGINT (what a scheduler and Ctrl-C send): how messages name
them, the exit status of a run they stop, and handlers installed for a
while. Standard library only, so that the command line can use it before
JAX loads.
"""

import contextlib
import signal
from typing import Callable, Iterator

# A run stopped by SIGTERM / SIGINT (a checkpoint was saved): not finished,
# not failed; rerun to resume (EX_TEMPFAIL of sysexits.h).
EXIT_INTERRUPTED = 75
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def signal_words(signum: int) -> str:
  """How messages name a signal.

  Args:
    signum: a signal number.

  Returns:
    'Ctrl-C' for SIGINT, else the signal's name ('SIGTERM').
  """
  return 'Ctrl-C' if signum == signal.SIGINT else signal.Signals(signum).name


@contextlib.contextmanager
def handled(handler: Callable) -> Iterator[None]:
  """Installs ``handler`` for SIGTERM and SIGINT meanwhile, then restores
  the handlers before it. Outside the main thread, where Python cannot
  install handlers, signals are left alone.

  Args:
    handler: ``handler(signum, frame)``, as for `signal.signal`.

  Yields:
    None, with the handler installed.
  """
  previous = {}
  try:
    for sig in STOP_SIGNALS:
      previous[sig] = signal.signal(sig, handler)
  except ValueError:  # not the main thread
    pass
  try:
    yield
  finally:
    for sig, old in previous.items():
      signal.signal(sig, old)
