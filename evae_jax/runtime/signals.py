"""SIGTERM and SIGINT (what a scheduler and Ctrl-C send): how messages name
them, the exit status of a run they stop, and handlers installed for a
while. Standard library only, so that the command line can use it before
JAX loads.
"""

import contextlib
import signal
import weakref
from typing import Callable, Iterator

# A run stopped by SIGTERM / SIGINT (a checkpoint was saved): not finished,
# not failed; rerun to resume (EX_TEMPFAIL of sysexits.h).
EXIT_INTERRUPTED = 75
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# How often `Raiser` raises again until its exception is caught.
RETRY_SECONDS = 0.1


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


class Raiser:
  """A handler that records SIGTERM / SIGINT and raises ``exception(signum)``
  where the program is; if that exception is lost, it raises again.

  Python prints and drops an exception raised inside a finaliser, a weakref
  or a garbage-collector callback ("Exception ignored in ..."): a handler
  that raises once loses the signal whenever it runs there (JAX's
  ``_xla_gc_callback`` runs at any allocation), and the program goes on to
  exit 0. So every `RETRY_SECONDS` (a SIGALRM interval timer) a new one is
  raised while none is on its way up (the last one raised was dropped),
  until `disarm`; ``signum`` also records the signal, so that a caller whose
  work ended before the repeat still exits as interrupted.

  Args:
    exception: called with the signal number; what to raise (a
      ``KeyboardInterrupt`` subclass, which library code does not catch).

  Attributes:
    signum: the first signal received (None: none yet).
  """

  def __init__(self, exception: Callable[[int], BaseException]):
    self._exception = exception
    self._raised = lambda: None  # a weak reference to the last raised
    self.signum = None

  def install(self) -> None:
    """Handles SIGTERM and SIGINT from now on (main thread only)."""
    for sig in STOP_SIGNALS:
      signal.signal(sig, self._received)
    signal.signal(signal.SIGALRM, self._again)

  def disarm(self) -> None:
    """Stops the repeats (``signum`` stays recorded)."""
    signal.setitimer(signal.ITIMER_REAL, 0)

  def _raise(self):
    error = self._exception(self.signum)
    self._raised = weakref.ref(error)
    try:
      raise error
    finally:
      del error  # else this frame, in its traceback, keeps it alive

  def _received(self, signum, frame):
    del frame
    if self.signum is None:
      self.signum = signum
    signal.setitimer(signal.ITIMER_REAL, RETRY_SECONDS, RETRY_SECONDS)
    self._raise()

  def _again(self, signum, frame):
    del signum, frame
    # Alive: on its way up (through finally blocks, or caught); a lost one
    # is freed once printed.
    if self.signum is not None and self._raised() is None:
      self._raise()
