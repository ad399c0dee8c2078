"""evae_jax.storage.files: the same operations on a local folder and in a bucket
(``gs://`` served by tests/gcs_emulator.py), whole files only, and clear
errors for paths that cannot be opened here."""

import importlib.util
import os
import uuid

import pytest

from evae_jax import errors
from evae_jax.storage import files


@pytest.fixture(params=['local', 'gs'])
def folder(request, tmp_path):
  """A fresh folder: a local one, or a prefix in the emulated bucket."""
  if request.param == 'local':
    return str(tmp_path / 'run')
  return f'{request.getfixturevalue("gcs")}/{uuid.uuid4().hex}/run'


def test_whole_files_append_and_listing(folder):
  files.makedirs(folder)
  path = files.join(folder, 'a.json')
  assert not files.exists(path)
  files.write_text(path, '{"x": 1}')
  files.write_text(path, '{"x": 2}')  # replaced, not appended to
  assert files.read_text(path) == '{"x": 2}'
  log = files.join(folder, 'log.jsonl')
  files.append_text(log, 'one\n')
  files.append_text(log, 'two\n')
  assert files.read_text(log) == 'one\ntwo\n'
  files.makedirs(files.join(folder, 'sub'))
  files.write_bytes(files.join(folder, 'sub', 'b.bin'), b'\x00\xff')
  assert files.read_bytes(files.join(folder, 'sub', 'b.bin')) == b'\x00\xff'
  assert files.listdir(folder) == ['a.json', 'log.jsonl', 'sub']
  assert files.isdir(files.join(folder, 'sub'))
  assert files.isfile(path) and not files.isdir(path)
  files.probe(folder, size=4096)
  assert files.listdir(folder) == ['a.json', 'log.jsonl', 'sub']  # no probe left


def test_rename_moves_a_folder_with_its_files(folder):
  files.makedirs(files.join(folder, 'ckpt', '1', 'y'))
  files.write_text(files.join(folder, 'ckpt', '1', 'x'), 'data')
  files.write_text(files.join(folder, 'ckpt', '1', 'y', 'z'), 'more')
  files.rename(files.join(folder, 'ckpt', '1'),
               files.join(folder, 'ckpt', '1.corrupt'))
  assert files.listdir(files.join(folder, 'ckpt')) == ['1.corrupt']
  assert files.read_text(files.join(folder, 'ckpt', '1.corrupt', 'y', 'z')) == 'more'
  files.remove(files.join(folder, 'ckpt', '1.corrupt', 'x'))
  assert files.listdir(files.join(folder, 'ckpt', '1.corrupt')) == ['y']


def test_object_writer_uploads_everything_written_at_each_flush(folder):
  path = files.join(folder, 'events')
  files.makedirs(folder)
  writer = files.ObjectWriter(path)
  writer.write(b'abc')
  writer.flush()
  assert files.read_bytes(path) == b'abc'
  writer.write(b'def')
  writer.close()
  assert files.read_bytes(path) == b'abcdef'
  assert not hasattr(writer, 'fileno')  # tensorboardX would fsync it


def test_local_writes_go_through_a_temporary_name(tmp_path, monkeypatch):
  path = str(tmp_path / 'eval.json')
  files.write_text(path, 'old')
  def killed(*_):
    raise OSError('killed mid-write')
  monkeypatch.setattr(os, 'replace', killed)
  with pytest.raises(OSError):
    files.write_text(path, 'new')
  assert open(path).read() == 'old'


def test_uri_paths_keep_their_scheme():
  assert files.join('gs://b/run', 'checkpoints', '3') == 'gs://b/run/checkpoints/3'
  assert files.absolute('gs://b/run/') == 'gs://b/run'
  assert files.absolute('gs://b//run/./x') == 'gs://b/run/x'
  assert files.absolute('run') == os.path.join(os.getcwd(), 'run')
  assert files.is_remote('gs://b') and not files.is_remote('/tmp/gs:')


def test_a_bucket_without_its_filesystem_package_names_the_install(monkeypatch):
  real = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, 'find_spec', lambda name, *a: (
      None if name in ('gcsfs', 'tensorflow') else real(name, *a)))
  with pytest.raises(errors.WorkdirError, match=r"pip install gcsfs"):
    files.exists('gs://bucket/run/config.json')


def test_an_unsupported_scheme_is_refused():
  with pytest.raises(errors.WorkdirError, match='ftp://'):
    files.makedirs('ftp://host/run')


def test_a_full_disk_is_one_clear_error_and_leaves_no_partial_file(
    tmp_path, monkeypatch):
  import errno
  path = str(tmp_path / 'eval.json')
  files.write_text(path, 'before')
  def full(fd):
    raise OSError(errno.ENOSPC, 'No space left on device')
  monkeypatch.setattr(os, 'fsync', full)
  with pytest.raises(errors.WorkdirError, match='No space left'):
    files.write_text(path, 'after')
  assert open(path).read() == 'before'
  assert os.listdir(tmp_path) == ['eval.json']   # no .tmp left behind


def test_evaluate_on_a_full_disk_exits_2_in_one_paragraph(tmp_path):
  """--mode=evaluate whose writes hit a full disk (os.fsync raising ENOSPC,
  as a filled file system does): status 2, one paragraph, no .tmp."""
  import subprocess
  import sys
  from tests.conftest import ROOT, cli
  workdir = tmp_path / 'run'
  assert cli(str(workdir), '--config.train.num_epochs=1').returncode == 0
  shim = tmp_path / 'shim'
  shim.mkdir()
  (shim / 'sitecustomize.py').write_text(
      'import errno, os\n'
      'def _full(fd):\n'
      '  raise OSError(errno.ENOSPC, "No space left on device")\n'
      'os.fsync = _full\n')
  run = subprocess.run(
      [sys.executable, '-m', 'evae_jax.main', '--config=configs/test.py',
       f'--workdir={workdir}', '--config.train.num_epochs=1',
       '--mode=evaluate'], cwd=ROOT, capture_output=True, text=True,
      timeout=600, env={**os.environ, 'PYTHONPATH': str(shim)})
  assert run.returncode == 2, run.stderr[-2000:]
  assert 'No space left' in run.stderr and 'Traceback' not in run.stderr
  leftovers = [n for n in os.listdir(workdir) if n.endswith('.tmp')]
  assert not leftovers


def test_an_unreachable_storage_server_is_said_so_at_once(monkeypatch):
  """Without network gcsfs retried for about a minute, printed the
  tracebacks, then answered "does not exist" (evaluate: "train first")."""
  if importlib.util.find_spec('gcsfs') is None:
    pytest.skip('gcsfs is not installed')
  import socket
  with socket.socket() as s:  # a port nobody listens on
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
  monkeypatch.setenv('STORAGE_EMULATOR_HOST', f'http://127.0.0.1:{port}')
  for name in ('HTTPS_PROXY', 'https_proxy'):
    monkeypatch.delenv(name, raising=False)
  monkeypatch.setattr(files, '_REACHABLE', {})
  with pytest.raises(errors.WorkdirError,
                     match=f'cannot reach the storage server 127.0.0.1:{port}'):
    files.isdir('gs://bucket/run')
  with pytest.raises(errors.WorkdirError, match='whether it exists is unknown'):
    files.exists('gs://bucket/run/config.json')
