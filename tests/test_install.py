"""A non-editable ``pip install .`` installs the library alone, and the
documented commands run with it from a checkout's configs/ and experiments/
(issue 12, item 6: the library does not depend on those folders)."""

import os
import shutil
import subprocess
import sys

from tests.conftest import ROOT


def test_non_editable_install_runs_the_documented_commands(tmp_path):
  source = tmp_path / 'source'  # build from a copy: no build/ in the checkout
  for name in ('evae_jax', 'setup.cfg', 'pyproject.toml', 'README.md'):
    path = os.path.join(ROOT, name)
    if os.path.isdir(path):
      shutil.copytree(path, source / name,
                      ignore=shutil.ignore_patterns('__pycache__'))
    else:
      shutil.copy(path, source / name)
  site = tmp_path / 'site'
  install = subprocess.run(
      [sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps',
       '--no-build-isolation', '--no-index', '--target', str(site),
       str(source)], capture_output=True, text=True, timeout=300)
  assert install.returncode == 0, install.stderr[-3000:]
  installed = set(os.listdir(site))
  assert 'evae_jax' in installed
  assert not installed & {'configs', 'experiments', 'tests'}, installed

  checkout = tmp_path / 'checkout'  # configs/ and experiments/, no library
  for name in ('configs', 'experiments'):
    shutil.copytree(os.path.join(ROOT, name), checkout / name,
                    ignore=shutil.ignore_patterns('__pycache__', 'results'))
  env = {**os.environ, 'PYTHONPATH': str(site)}
  run = lambda *args: subprocess.run(
      [sys.executable, *args], cwd=checkout, env=env, capture_output=True,
      text=True, timeout=600)
  where = run('-c', 'import evae_jax.main; print(evae_jax.main.__file__)')
  assert where.stdout.strip().startswith(str(site)), where.stdout + where.stderr
  workdir = str(tmp_path / 'run')
  train = run('-m', 'evae_jax.main', '--config=configs/test.py',
              f'--workdir={workdir}', '--config.train.num_epochs=1',
              '--config.train.progress_bar=False')
  assert train.returncode == 0, train.stderr[-3000:]
  table = run('-m', 'experiments.tables', f'--root={tmp_path}',
              '--table=summary')
  assert table.returncode == 0, table.stderr[-3000:]
  assert 'run' in table.stdout
