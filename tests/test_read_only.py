"""Read-only places in a workdir: a clear error, exit 2, no hang,
nothing existing modified. Made read-only with chmod, or as root (where
chmod does not stop writes) with a read-only bind mount."""

import contextlib
import hashlib
import os
import shutil
import stat
import subprocess

import pytest

from tests.conftest import cli


@contextlib.contextmanager
def read_only(path):
  if os.geteuid() != 0:
    mode = os.stat(path).st_mode
    os.chmod(path, 0o555 if os.path.isdir(path) else 0o444)
    try:
      yield
    finally:
      os.chmod(path, stat.S_IMODE(mode))
    return
  mount = shutil.which('mount')
  ok = mount and subprocess.run(
      [mount, '--bind', '-o', 'ro', path, path], capture_output=True
  ).returncode == 0
  if not ok:
    pytest.skip('running as root without permission to mount read-only')
  try:
    yield
  finally:
    subprocess.run(['umount', path], check=True)


def _digest(directory):
  out = {}
  for base, _, files in os.walk(directory):
    for name in files:
      if name == '.lock':  # holds the pid of the last process to lock it
        continue
      path = os.path.join(base, name)
      out[os.path.relpath(path, directory)] = hashlib.sha256(
          open(path, 'rb').read()).hexdigest()
  return out


@pytest.mark.parametrize('target', ['checkpoints', 'metrics.jsonl',
                                    'tensorboard'])
def test_training_with_a_read_only_part_fails_in_one_paragraph(
    one_epoch_workdir, target):
  before = _digest(one_epoch_workdir)
  with read_only(os.path.join(one_epoch_workdir, target)):
    result = cli(one_epoch_workdir, '--config.train.num_epochs=2', timeout=150)
  assert result.returncode == 2, result.stderr[-3000:]
  assert target in result.stderr.strip().splitlines()[-1]
  assert 'Traceback' not in result.stderr
  assert _digest(one_epoch_workdir) == before


@pytest.mark.parametrize('mode', ['evaluate', 'sample'])
def test_evaluate_and_sample_in_a_read_only_workdir(one_epoch_workdir, mode):
  before = _digest(one_epoch_workdir)
  with read_only(one_epoch_workdir):
    result = cli(one_epoch_workdir, '--config.train.num_epochs=1', mode=mode,
                 timeout=150)
  assert result.returncode == 2, result.stderr[-3000:]
  assert 'Traceback' not in result.stderr
  assert 'writ' in result.stderr.strip().splitlines()[-1]
  assert _digest(one_epoch_workdir) == before
