"""data.name=npz: the user's own images in an .npz file, every malformed
file one paragraph (DataError, exit 2 on the command line), and the command
line end to end."""

import json
import os

import numpy as np
import pytest

from configs import default
from evae_jax import errors
from evae_jax import data as input_pipeline
from tests.conftest import cli


def data_config(path, **overrides):
  config = default.get_config().data
  config.name = 'npz'
  config.path = str(path)
  config.update(overrides)
  return config


def images(n, shape=(12, 10), seed=0):
  return np.random.RandomState(seed).randint(0, 256, (n,) + shape).astype(
      np.uint8)


def test_uint8_with_carved_validation(tmp_path):
  path = tmp_path / 'mine.npz'
  train, test = images(300), images(40, seed=1)
  np.savez(path, train=train, test=test, labels=np.zeros(300))
  splits = input_pipeline.load(data_config(path, num_valid=50))
  assert splits.image_shape == (12, 10)
  assert (len(splits.train), len(splits.valid), len(splits.test)) == (250, 50,
                                                                      40)
  np.testing.assert_array_equal(splits.test, test)
  together = np.concatenate([splits.train, splits.valid])
  np.testing.assert_array_equal(np.sort(together, axis=0),
                                np.sort(train, axis=0))
  assert all(a.dtype == np.uint8 for a in (splits.train, splits.valid,
                                           splits.test))


def test_floats_with_channel_axis_and_own_validation(tmp_path):
  path = tmp_path / 'mine.npz'
  rs = np.random.RandomState(0)
  train, valid, test = (rs.rand(n, 7, 9, 1).astype(np.float32)
                        for n in (30, 6, 5))
  np.savez_compressed(path, train=train, valid=valid, test=test)
  splits = input_pipeline.load(data_config(path))
  assert splits.image_shape == (7, 9) and len(splits.valid) == 6
  np.testing.assert_allclose(splits.test / 255.0, test[..., 0], atol=0.5 / 255)
  np.testing.assert_array_equal(splits.train,
                                np.rint(train[..., 0] * 255).astype(np.uint8))


def test_fixed_binarization_and_bool(tmp_path):
  path = tmp_path / 'mine.npz'
  np.savez(path, train=images(60) > 128, test=images(10) > 128)
  splits = input_pipeline.load(data_config(path, num_valid=10,
                                           binarization='fixed'))
  assert set(np.unique(splits.train)) <= {0, 255}


def _malformed(tmp_path):
  """(name, how to write the file, a phrase the message must hold)."""
  good = images(20)
  return [
      ('missing file', None, 'is not a file'),
      ('no test', dict(train=good), "'train' and 'test'"),
      ('wrong keys', dict(x_train=good, x_test=good), "'train' and 'test'"),
      ('int64', dict(train=good.astype(np.int64), test=good),
       'dtype int64'),
      ('complex', dict(train=good.astype(np.complex64), test=good),
       'dtype complex64'),
      ('float 0-255', dict(train=good.astype(np.float32), test=good),
       'divide by 255'),
      ('negative', dict(train=good / 255.0 - 0.5, test=good), '[0, 1]'),
      ('nan', dict(train=np.where(good > 250, np.nan, good / 255.0),
                   test=good), 'NaN'),
      ('inf', dict(train=np.where(good > 250, np.inf, good / 255.0),
                   test=good), 'NaN or infinite'),
      ('empty test', dict(train=good, test=good[:0]), 'empty'),
      ('zero width', dict(train=good[:, :, :0], test=good), 'empty'),
      ('one train image', dict(train=good[:1], test=good), 'at least 2'),
      ('mismatched', dict(train=good, test=images(5, (10, 12))),
       'different sizes'),
      ('rgb', dict(train=np.stack([good] * 3, -1), test=good), 'channels'),
      ('flat', dict(train=good.reshape(20, -1), test=good), 'shape (20, 120)'),
      ('ragged', 'ragged', 'ragged'),
      ('not npz', 'text', 'not a readable .npz'),
      ('truncated', 'truncated', 'not a readable .npz'),
      ('npy', 'npy', 'not a readable .npz'),
  ]


def _write(tmp_path, name, content):
  path = tmp_path / (name.replace(' ', '_') + '.npz')
  if content is None:
    return path
  if content == 'ragged':
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = images(1)[0], images(1, (3, 3))[0]
    np.savez(path, train=ragged, test=images(3))
  elif content == 'text':
    path.write_text('train,test\n1,2\n')
  elif content == 'truncated':
    np.savez(path, train=images(20), test=images(5))
    path.write_bytes(path.read_bytes()[:300])
  elif content == 'npy':
    with open(path, 'wb') as f:
      np.save(f, images(20))
  else:
    np.savez(path, **content)
  return path


@pytest.mark.parametrize('case', range(19))
def test_malformed_files_are_one_paragraph(tmp_path, case):
  name, content, phrase = _malformed(tmp_path)[case]
  path = _write(tmp_path, name, content)
  with pytest.raises(errors.DataError) as info:
    input_pipeline.load(data_config(path, num_valid=2))
  message = str(info.value)
  assert phrase in message, (name, message)
  assert '\n' not in message and 'numpy.savez' in message, (name, message)


def test_no_path():
  with pytest.raises(errors.DataError, match='needs data.path'):
    input_pipeline.load(data_config(''))


def test_command_line_end_to_end(tmp_path):
  path = tmp_path / 'mine.npz'
  rs = np.random.RandomState(0)
  np.savez(path, train=rs.rand(300, 12, 10).astype(np.float32),
           test=images(60, seed=2))
  workdir = str(tmp_path / 'run')
  flags = ('--config.data.name=npz', f'--config.data.path={path}')
  train = cli(workdir, *flags, '--config.train.num_epochs=1')
  assert train.returncode == 0, train.stderr[-3000:]
  evaluate = cli(workdir, *flags, mode='evaluate')
  assert evaluate.returncode == 0, evaluate.stderr[-3000:]
  with open(os.path.join(workdir, 'eval.json')) as f:
    results = json.load(f)
  assert results['num_examples'] == 60
  assert np.isfinite(results['iw_log_likelihood']['marginal']['mean'])
  assert os.path.isfile(os.path.join(workdir, 'samples.png'))

  # A Gaussian likelihood on the same file, as for the built-in sets.
  gaussian = cli(str(tmp_path / 'gauss'), *flags,
                 '--config.train.num_epochs=1',
                 '--config.model.likelihood=gaussian',
                 '--config.data.binarization=none')
  assert gaussian.returncode == 0, gaussian.stderr[-3000:]

  # A malformed file: one paragraph, exit status 2, nothing trained.
  bad = tmp_path / 'bad.npz'
  np.savez(bad, train=images(30), test=images(5, (3, 3)))
  run = cli(str(tmp_path / 'bad_run'), '--config.data.name=npz',
            f'--config.data.path={bad}')
  assert run.returncode == 2, run.stderr[-3000:]
  assert 'different sizes' in run.stderr and 'Traceback' not in run.stderr
  assert not os.path.isdir(tmp_path / 'bad_run' / 'checkpoints')
