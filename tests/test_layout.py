"""The library's modules form layers: each imports only modules listed
before it here (the README's "Layout" gives the same order), training and
evaluation share `state` without importing each other, and nothing in the
library imports the top-level configs/ or experiments/ folders."""

import ast
import glob
import os

from tests.conftest import ROOT

ORDER = ('errors', 'signals', 'files', 'provenance', 'seeds', 'epitomes', 'likelihoods', 'objectives',
         'elbo', 'marginal', 'optimizers',
         'schedules', 'models', 'input_pipeline', 'defaults', 'configuration',
         'sharding', 'checkpoints', 'state', 'steps', 'evaluate', 'sampling',
         'visualize', 'figures', 'metric_writers', 'workdirs', 'train',
         'report', 'api', 'command_line', 'main')


def _imports(path):
  """Top-level packages and evae_jax modules that ``path`` imports."""
  tree = ast.parse(open(path).read())
  found = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.ImportFrom) and node.module:
      if node.module == 'evae_jax':
        found.update(f'evae_jax.{a.name}' for a in node.names)
      else:
        found.add(node.module)
    elif isinstance(node, ast.Import):
      found.update(a.name for a in node.names)
  return found


def test_every_module_imports_only_the_layers_below_it():
  modules = sorted(os.path.basename(p)[:-3] for p in
                   glob.glob(os.path.join(ROOT, 'evae_jax', '*.py'))
                   if not p.endswith('__init__.py'))
  assert sorted(ORDER) == modules  # a new module needs its place here
  for i, name in enumerate(ORDER):
    imports = _imports(os.path.join(ROOT, 'evae_jax', f'{name}.py'))
    inside = {m.split('.')[1] for m in imports if m.startswith('evae_jax.')}
    above = inside - set(ORDER[:i])
    assert not above, f'{name} imports {above}, which come after it'
    outside = {m.split('.')[0] for m in imports} & {'configs', 'experiments'}
    assert not outside, f'{name} imports the top-level {outside}'
  assert 'train' not in {m.split('.')[-1] for m in _imports(
      os.path.join(ROOT, 'evae_jax', 'report.py'))}
