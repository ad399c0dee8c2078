"""Which code trained and evaluated a run: a record kept with its results.

A comparison of two models is only as clean as the code behind it: two
seeds trained by code whose numerics differ add that difference to the
seeds' spread. Every start or resume of training appends one line to the
workdir's ``code.jsonl``; evaluation copies them, and its own version, into
``eval.json`` under ``'code'``, so that `experiments.tables` can flag a
comparison whose points were trained by different numerics.

A version record is a dict::

    {'version': evae_jax.__version__, 'commit': git HEAD or None,
     'dirty': uncommitted changes to the package or configs/ (or None),
     'numerics': NUMERICS_VERSION}

``NUMERICS_VERSION`` changes exactly when training numbers change: the
golden test (``tests/test_golden_numerics.py``) records the losses and
gradients of every model kind x objective with the version they belong to,
and fails when either a computation or the version moves without the other.
"""

import functools
import json
import os
import subprocess
from typing import Any, Dict, List, Optional

from evae_jax.storage import files

# Bump together with re-recording tests/golden/numerics-<isa>.npz
# (python -m tests.golden_numerics --record): any change that moves a loss or
# a gradient of training by even one bit.
NUMERICS_VERSION = 1

CODE_JSONL = 'code.jsonl'

# The package's root folder (this file is evae_jax/storage/provenance.py).
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _git(*args: str) -> Optional[str]:
  """The output of ``git -C <package dir> args``, or None if git fails."""
  try:
    out = subprocess.run(['git', '-C', _PACKAGE_DIR, *args],
                         capture_output=True, text=True, timeout=10,
                         check=False)
  except (OSError, subprocess.SubprocessError):
    return None
  return out.stdout.strip() if out.returncode == 0 else None


@functools.lru_cache(maxsize=None)
def _git_state() -> tuple:
  """(commit, dirty) of the checkout this package was imported from;
  (None, None) when it is not a tracked file of a git checkout (an
  installed wheel)."""
  if _git('ls-files', '--error-unmatch', '__init__.py') is None:
    return None, None
  commit = _git('rev-parse', 'HEAD')
  top = _git('rev-parse', '--show-toplevel')
  if commit is None or top is None:
    return None, None
  paths = [os.path.relpath(_PACKAGE_DIR, top)]
  if os.path.isdir(os.path.join(top, 'configs')):
    paths.append('configs')
  status = _git('status', '--porcelain', '--', *[
      os.path.join(top, p) for p in paths])
  return commit, (None if status is None else bool(status))


def code_version() -> Dict[str, Any]:
  """The version record of the running code.

  Returns:
    {'version': str, 'commit': str | None, 'dirty': bool | None,
    'numerics': int} (see the module docstring).
  """
  import evae_jax  # pylint: disable=import-outside-toplevel
  commit, dirty = _git_state()
  return {'version': evae_jax.__version__, 'commit': commit, 'dirty': dirty,
          'numerics': NUMERICS_VERSION}


def record_training_start(workdir: str, step: int) -> None:
  """Appends the running code's record to ``workdir/code.jsonl``.

  Args:
    workdir: the run's folder (local or remote).
    step: the global step training starts (or resumes) from.
  """
  line = dict(step=int(step), **code_version())
  path = files.join(workdir, CODE_JSONL)
  files.append_text(path, json.dumps(line) + '\n')


def trained_with(workdir: str, final_step: Optional[int] = None
                 ) -> List[Dict[str, Any]]:
  """The code that trained the checkpoint at ``final_step``.

  Reads ``code.jsonl`` and keeps the starts that trained at least one step
  before ``final_step``: a start followed by another at the same step (a run
  killed before its first step) or at or after ``final_step`` trained
  nothing of it. Damaged lines are skipped.

  Args:
    workdir: the run's folder.
    final_step: the step of the checkpoint evaluated; None keeps every
      start.

  Returns:
    The records, oldest first, each with its 'step'; [] for a workdir
    trained before the record existed.
  """
  path = files.join(workdir, CODE_JSONL)
  if not files.exists(path):
    return []
  starts = []
  for line in files.read_text(path).splitlines():
    try:
      entry = json.loads(line)
    except ValueError:
      continue
    if isinstance(entry, dict) and isinstance(entry.get('step'), int):
      starts.append(entry)
  kept = []
  for i, entry in enumerate(starts):
    later = [s['step'] for s in starts[i + 1:]]
    if later and min(later) <= entry['step']:
      continue  # the next start began from the same step: nothing trained
    if final_step is not None and entry['step'] >= final_step:
      continue
    kept.append(entry)
  return kept


def evaluation_record(workdir: str, step: int) -> Dict[str, Any]:
  """What ``eval.json`` holds under 'code'.

  Args:
    workdir: the run's folder.
    step: the step of the checkpoint evaluated.

  Returns:
    {'trained_with': `trained_with(workdir, step)`,
    'evaluated_with': `code_version()`}.
  """
  return {'trained_with': trained_with(workdir, step),
          'evaluated_with': code_version()}
