"""evae_jax.files: the same operations on a local folder and in a bucket
(``gs://`` served by tests/gcs_emulator.py), whole files only, and clear
errors for paths that cannot be opened here."""

import importlib.util
import os
import uuid

import pytest

from evae_jax import errors
from evae_jax import files


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
