"""A non-editable ``pip install .`` installs the library alone (with its
configs, evae_jax.configs, and py.typed), the documented commands run with
it from a checkout's configs/ and experiments/ (the library does not depend
on those folders), and a user's own config outside any checkout builds on
the installed configs."""

import os
import shutil
import subprocess
import sys

from tests.conftest import ROOT


def test_non_editable_install_runs_the_documented_commands(tmp_path):
  source = tmp_path / 'source'  # build from a copy: no build/ in the checkout
  for name in ('evae_jax', 'setup.cfg', 'pyproject.toml', 'README.md',
               'LICENSE'):
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
  package = os.listdir(site / 'evae_jax')
  assert 'py.typed' in package and 'configs' in package, package
  assert {'default.py', 'mnist.py', 'tfd.py', 'test.py'} <= set(
      os.listdir(site / 'evae_jax' / 'configs'))
  licenses = [os.path.join(d, f) for d, _, names in os.walk(site)
              for f in names if f.startswith('LICENSE')]
  assert licenses, 'the wheel carries no LICENSE'

  checkout = tmp_path / 'checkout'  # configs/ and experiments/, no library
  for name in ('configs', 'experiments'):
    shutil.copytree(os.path.join(ROOT, name), checkout / name,
                    ignore=shutil.ignore_patterns('__pycache__', 'results'))
  env = {**os.environ, 'PYTHONPATH': str(site)}
  run = lambda *args, cwd=checkout: subprocess.run(
      [sys.executable, *args], cwd=cwd, env=env, capture_output=True,
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

  # A user's config outside any checkout, on the installed configs, run
  # from its own directory; and the checkout's config by absolute path.
  elsewhere = tmp_path / 'elsewhere'
  elsewhere.mkdir()
  (elsewhere / 'my_config.py').write_text(
      'from evae_jax.configs import test\n\n\n'
      'def get_config():\n'
      '  config = test.get_config()\n'
      '  config.train.num_epochs = 1\n'
      '  return config\n')
  mine = run('-m', 'evae_jax.main', '--config=my_config.py',
             f'--workdir={tmp_path / "mine"}', cwd=elsewhere)
  assert mine.returncode == 0, mine.stderr[-3000:]
  absolute = run('-m', 'evae_jax.main',
                 f'--config={checkout / "configs" / "test.py"}',
                 f'--workdir={workdir}', '--mode=sample', '--num_samples=4',
                 cwd=elsewhere)
  assert absolute.returncode == 0, absolute.stderr[-3000:]

  # The shipped pretrained models load from the installed wheel alone: no
  # data, no checkout, no workdir (run from an empty folder).
  from evae_jax import pretrained  # pylint: disable=g-import-not-at-top
  shipped = set(os.listdir(site / 'evae_jax' / 'pretrained'))
  for name in pretrained.available():
    assert {f'{name}.npz', f'{name}.md'} <= shipped, shipped
    one_line = run('-c', 'import evae_jax; m = evae_jax.load('
                   f'"pretrained:{name}"); print(m); print(m.sample(0, 2).shape)',
                   cwd=elsewhere)
    assert one_line.returncode == 0, one_line.stderr[-3000:]
    assert 'TrainedModel' in one_line.stdout


def test_release_metadata_agrees():
  """One version in setup.cfg, the package, CITATION.cff and CHANGELOG.md;
  the licence is Apache-2.0's full text; the lock pins what setup.cfg asks."""
  import configparser  # pylint: disable=g-import-not-at-top
  import re  # pylint: disable=g-import-not-at-top
  import yaml  # pylint: disable=g-import-not-at-top
  import evae_jax  # pylint: disable=g-import-not-at-top
  from packaging.requirements import Requirement  # pylint: disable=g-import-not-at-top
  from packaging.utils import canonicalize_name  # pylint: disable=g-import-not-at-top
  cfg = configparser.ConfigParser()
  cfg.read(os.path.join(ROOT, 'setup.cfg'))
  version = cfg['metadata']['version']
  assert evae_jax.__version__ == version
  with open(os.path.join(ROOT, 'CITATION.cff')) as f:
    citation = yaml.safe_load(f)
  assert citation['cff-version'] == '1.2.0' and citation['version'] == version
  assert citation['license'] == cfg['metadata']['license'] == 'Apache-2.0'
  paper = citation['references'][0]
  assert [a['family-names'] for a in paper['authors']] == [
      'Yeung', 'Kannan', 'Dauphin', 'Fei-Fei']
  assert paper['year'] == 2017 and '1706.03643' in paper['url']
  with open(os.path.join(ROOT, 'CHANGELOG.md')) as f:
    assert f'## [{version}]' in f.read()
  with open(os.path.join(ROOT, 'LICENSE')) as f:
    text = f.read()
  assert 'Apache License' in text and 'Version 2.0, January 2004' in text
  assert 'END OF TERMS AND CONDITIONS' in text
  with open(os.path.join(ROOT, 'requirements-lock.txt')) as f:
    pins = dict(line.strip().split('==') for line in f
                if line.strip() and not line.startswith('#'))
  pins = {canonicalize_name(k): v for k, v in pins.items()}
  lines = [re.sub(r'#.*', '', line).strip() for line in
           cfg['options']['install_requires'].splitlines()]
  for line in filter(None, lines):
    requirement = Requirement(line)
    name = canonicalize_name(requirement.name)
    assert name in pins, f'{name} is not pinned in requirements-lock.txt'
    assert requirement.specifier.contains(pins[name]), (name, pins[name])
  assert 'importlib_resources' not in cfg['options']['install_requires']
