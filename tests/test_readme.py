"""The README's elbo_fn example runs as written."""

import os
import re

from tests.conftest import ROOT


def test_readme_elbo_example_runs():
  text = open(os.path.join(ROOT, 'README.md')).read()
  blocks = re.findall(r'```python\n(.*?)```', text, re.S)
  assert blocks, 'README has no python example'
  namespace = {}
  exec(compile(blocks[0], 'README.md', 'exec'), namespace)  # pylint: disable=exec-used
  assert namespace['terms'].elbo.shape == (32, 4)
  assert float(namespace['loss']) > 0
