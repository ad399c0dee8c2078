"""The README's elbo_fn example runs as written."""

import os
import re

from tests.conftest import ROOT


def test_readme_elbo_example_runs():
  text = open(os.path.join(ROOT, 'README.md')).read()
  blocks = re.findall(r'```python\n(.*?)```', text, re.S)
  assert blocks, 'README has no python example'
  block, = [b for b in blocks if 'elbo_fn(' in b]
  namespace = {}
  exec(compile(block, 'README.md', 'exec'), namespace)  # pylint: disable=exec-used
  assert namespace['terms'].elbo.shape == (32, 4)
  assert float(namespace['loss']) > 0


def test_readme_npz_example_makes_a_loadable_dataset(tmp_path, monkeypatch):
  import numpy as np
  from evae_jax import data as input_pipeline
  from evae_jax.configs import default
  text = open(os.path.join(ROOT, 'README.md')).read()
  block, = [b for b in re.findall(r'```python\n(.*?)```', text, re.S)
            if 'np.savez(' in b]
  monkeypatch.chdir(tmp_path)
  rs = np.random.RandomState(0)
  namespace = {'train_images': rs.randint(0, 256, (300, 12, 10), np.uint8),
               'test_images': rs.randint(0, 256, (50, 12, 10), np.uint8)}
  exec(compile(block, 'README.md', 'exec'), namespace)  # pylint: disable=exec-used
  config = default.get_config()
  config.data.name, config.data.path = 'npz', str(tmp_path / 'mine.npz')
  config.data.num_valid = 20
  splits = input_pipeline.load(config.data)
  assert splits.image_shape == (12, 10) and len(splits.test) == 50
