"""The examples of the README and the guide run as written."""

import os
import re

import pytest

from tests.conftest import ROOT


def _blocks(page):
  with open(os.path.join(ROOT, page)) as f:
    return re.findall(r'```python\n(.*?)```', f.read(), re.S)


@pytest.mark.parametrize('page', ['README.md', 'docs/guide.md'])
def test_the_elbo_example_runs(page):
  block, = [b for b in _blocks(page) if 'elbo_fn(' in b]
  namespace = {}
  exec(compile(block, page, 'exec'), namespace)  # pylint: disable=exec-used
  assert namespace['terms'].elbo.shape == (32, 4)
  assert float(namespace['loss']) > 0


def test_the_guides_npz_example_makes_a_loadable_dataset(tmp_path,
                                                         monkeypatch):
  import numpy as np
  from evae_jax import data as input_pipeline
  from evae_jax.configs import default
  block, = [b for b in _blocks('docs/guide.md') if 'np.savez(' in b]
  monkeypatch.chdir(tmp_path)
  rs = np.random.RandomState(0)
  namespace = {'train_images': rs.randint(0, 256, (300, 12, 10), np.uint8),
               'test_images': rs.randint(0, 256, (50, 12, 10), np.uint8)}
  exec(compile(block, 'docs/guide.md', 'exec'), namespace)  # pylint: disable=exec-used
  config = default.get_config()
  config.data.name, config.data.path = 'npz', str(tmp_path / 'mine.npz')
  config.data.num_valid = 20
  splits = input_pipeline.load(config.data)
  assert splits.image_shape == (12, 10) and len(splits.test) == 50
