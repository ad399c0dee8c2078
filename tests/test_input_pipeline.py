"""Loaders on small files of the real layouts, written by the tests."""

import gzip
import os
import struct
import time

import jax
import numpy as np
import pytest
import scipy.io

from configs import default
from evae_jax import errors
from evae_jax import data as input_pipeline
from tests.conftest import FASHION_MNIST


def write_idx(path, array, compress=True):
  array = np.asarray(array, np.uint8)
  header = struct.pack('>BBBB', 0, 0, 0x08, array.ndim)
  header += struct.pack('>' + 'I' * array.ndim, *array.shape)
  raw = header + array.tobytes()
  with (gzip.open if compress else open)(path, 'wb') as f:
    f.write(raw)


def write_idx_dir(directory, num_train=30, num_test=10, shape=(5, 4), seed=0):
  rs = np.random.RandomState(seed)
  os.makedirs(directory, exist_ok=True)
  arrays = {}
  for prefix, n in (('train', num_train), ('t10k', num_test)):
    images = rs.randint(0, 256, (n,) + shape).astype(np.uint8)
    write_idx(os.path.join(directory, f'{prefix}-images-idx3-ubyte.gz'), images)
    write_idx(os.path.join(directory, f'{prefix}-labels-idx1-ubyte.gz'),
              rs.randint(0, 10, n))
    arrays[prefix] = images
  return arrays


def write_tfd(path, n=40, seed=0):
  """A small file with TFD_48x48.mat's variables and layout."""
  rs = np.random.RandomState(seed)
  images = rs.randint(0, 256, (n, 48, 48)).astype(np.uint8)
  folds = rs.randint(0, 4, (n, 5)).astype(np.float64)
  scipy.io.savemat(path, {'images': images, 'folds': folds,
                          'labs_ex': rs.randint(0, 8, (n, 1)),
                          'labs_id': rs.randint(0, 100, (n, 1))})
  return images, folds


def data_config(**overrides):
  config = default.get_config().data
  config.update(overrides)
  return config


def test_read_idx_roundtrip_gzip_and_plain(tmp_path):
  a = np.arange(60, dtype=np.uint8).reshape(3, 4, 5)
  write_idx(tmp_path / 'a.gz', a)
  write_idx(tmp_path / 'a', a, compress=False)
  np.testing.assert_array_equal(input_pipeline.read_idx(str(tmp_path / 'a.gz')), a)
  np.testing.assert_array_equal(input_pipeline.read_idx(str(tmp_path / 'a')), a)


def test_idx_directory_splits_and_validation_carving(tmp_path):
  arrays = write_idx_dir(str(tmp_path))
  splits = input_pipeline.load(data_config(name='idx', path=str(tmp_path),
                                           num_valid=6))
  assert splits.train.shape == (24, 5, 4) and splits.valid.shape == (6, 5, 4)
  np.testing.assert_array_equal(splits.test, arrays['t10k'])
  # Validation comes from the training images, never from the test split.
  rows = {r.tobytes() for r in arrays['train']}
  assert all(r.tobytes() in rows for r in splits.valid)
  assert len({r.tobytes() for r in splits.train} | {r.tobytes() for r in splits.valid}) == 30


def _truncate_gzip(path):
  raw = open(path, 'rb').read()
  open(path, 'wb').write(raw[:len(raw) // 2])


@pytest.mark.parametrize('damage,needle', [
    (lambda p: open(p, 'wb').write(b'hello world, not idx'), 'not an IDX'),
    (_truncate_gzip, 'truncated or corrupt'),
    (lambda p: os.remove(p), 'has no train-images'),
])
def test_damaged_idx_files_give_clear_errors(tmp_path, damage, needle):
  write_idx_dir(str(tmp_path))
  damage(str(tmp_path / 'train-images-idx3-ubyte.gz'))
  with pytest.raises(errors.DataError, match=needle):
    input_pipeline.load(data_config(name='idx', path=str(tmp_path), num_valid=5))


def test_truncated_idx_payload(tmp_path):
  write_idx_dir(str(tmp_path))
  path = str(tmp_path / 't10k-images-idx3-ubyte.gz')
  raw = gzip.decompress(open(path, 'rb').read())
  with gzip.open(path, 'wb') as f:
    f.write(raw[:-7])
  with pytest.raises(errors.DataError, match='truncated'):
    input_pipeline.load(data_config(name='idx', path=str(tmp_path), num_valid=5))


def test_label_count_mismatch(tmp_path):
  write_idx_dir(str(tmp_path))
  write_idx(str(tmp_path / 'train-labels-idx1-ubyte.gz'), np.zeros(29))
  with pytest.raises(errors.DataError, match='30 train images but 29'):
    input_pipeline.load(data_config(name='idx', path=str(tmp_path), num_valid=5))


def test_missing_directory(tmp_path):
  with pytest.raises(errors.DataError, match='not a directory'):
    input_pipeline.load(data_config(name='idx', path=str(tmp_path / 'nope')))


def test_tfd_folds(tmp_path):
  path = str(tmp_path / 'TFD_48x48.mat')
  images, folds = write_tfd(path)
  for fold in (0, 3):
    splits = input_pipeline.load(data_config(name='tfd', path=path,
                                             tfd_fold=fold, binarization='none'))
    f = folds[:, fold]
    np.testing.assert_array_equal(splits.train, images[(f == 0) | (f == 1)])
    np.testing.assert_array_equal(splits.valid, images[f == 2])
    np.testing.assert_array_equal(splits.test, images[f == 3])
  splits = input_pipeline.load(data_config(name='tfd', path=path,
                                           tfd_include_unlabeled=False))
  np.testing.assert_array_equal(splits.train, images[folds[:, 0] == 1])


def test_tfd_missing_and_malformed(tmp_path):
  with pytest.raises(errors.DataError, match='TFD_48x48.mat'):
    input_pipeline.load(data_config(name='tfd', path=str(tmp_path / 'x.mat')))
  bad = tmp_path / 'bad.mat'
  bad.write_bytes(b'\x00' * 300)
  with pytest.raises(errors.DataError, match='not a readable'):
    input_pipeline.load(data_config(name='tfd', path=str(bad)))
  other = str(tmp_path / 'other.mat')
  scipy.io.savemat(other, {'x': np.zeros(3)})
  with pytest.raises(errors.DataError, match='"images" and "folds"'):
    input_pipeline.load(data_config(name='tfd', path=other))


def test_digits_default():
  splits = input_pipeline.load(data_config())
  assert splits.image_shape == (8, 8)
  assert len(splits.train) + len(splits.valid) == 1500 and len(splits.test) == 297
  assert splits.train.dtype == np.uint8 and splits.train.max() == 255


def test_digits_are_scikit_learns_read_without_importing_it():
  """The embedded digits are exactly scikit-learn's `load_digits` images
  (scaled to 0-255, shuffled with the fixed order), read from its bundled
  file without importing scikit-learn, whose import costs over a second of
  every run's start."""
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  from sklearn import datasets  # pylint: disable=import-outside-toplevel
  from evae_jax.data import digits  # pylint: disable=import-outside-toplevel
  images = np.rint(datasets.load_digits().images * (255.0 / 16.0))
  images = images.astype(np.uint8)[np.random.RandomState(0).permutation(1797)]
  train, test = digits.load_digits_images()
  np.testing.assert_array_equal(train, images[:1500])
  np.testing.assert_array_equal(test, images[1500:])
  probe = ('import sys; from evae_jax.data import digits; '
           'digits.load_digits_images(); print("sklearn" in sys.modules)')
  out = subprocess.run([sys.executable, '-c', probe], check=True,
                       capture_output=True, text=True).stdout
  assert out.strip() == 'False'


def test_binarizations():
  pixels = np.array([[0, 255, 128, 64]], np.uint8)
  x = input_pipeline.preprocess(pixels, None, 'none')
  np.testing.assert_allclose(x, pixels / 255.0, rtol=1e-6)
  draws = np.stack([input_pipeline.preprocess(pixels, jax.random.PRNGKey(i),
                                              'dynamic') for i in range(400)])
  assert set(np.unique(draws)) <= {0.0, 1.0}
  np.testing.assert_allclose(draws.mean(0)[0], pixels[0] / 255.0, atol=0.08)
  fixed = input_pipeline.load(data_config(binarization='fixed'))
  assert set(np.unique(fixed.train)) == {0, 255}
  again = input_pipeline.load(data_config(binarization='fixed'))
  np.testing.assert_array_equal(fixed.train, again.train)


def test_tfds_fails_fast_without_network(tmp_path):
  start = time.time()
  with pytest.raises(errors.DataError, match='data.name=idx'):
    input_pipeline.load(data_config(name='mnist', data_dir=str(tmp_path)))
  assert time.time() - start < 30


@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST),
                    reason='shared Fashion-MNIST not present')
def test_real_fashion_mnist_idx():
  splits = input_pipeline.load(data_config(name='idx', path=FASHION_MNIST,
                                           num_valid=10000))
  assert splits.train.shape == (50000, 28, 28)
  assert splits.valid.shape == (10000, 28, 28)
  assert splits.test.shape == (10000, 28, 28)
