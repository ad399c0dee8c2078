"""main: the command line's own settings (the compilation cache, its log)."""

import os
import subprocess
import sys

from tests.conftest import ROOT


def _train(workdir, *flags, env=None):
  return subprocess.run(
      [sys.executable, '-m', 'evae_jax.main', '--config=configs/test.py',
       f'--workdir={workdir}', '--config.train.num_epochs=1', *flags],
      cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)


def test_compilation_cache_is_on_by_default_and_can_be_turned_off(tmp_path):
  env = {k: v for k, v in os.environ.items()
         if not k.startswith('JAX_COMPILATION_CACHE')}
  env['XDG_CACHE_HOME'] = str(tmp_path / 'home_cache')
  run = _train(tmp_path / 'a', env=env)
  assert run.returncode == 0, run.stderr[-2000:]
  cache = tmp_path / 'home_cache' / 'evae_jax' / 'xla'
  assert len(os.listdir(cache)) > 3   # the programs of a run, cached
  off = tmp_path / 'off'
  run = _train(tmp_path / 'b', '--compilation_cache=', env={
      **env, 'XDG_CACHE_HOME': str(off)})
  assert run.returncode == 0, run.stderr[-2000:]
  assert not off.exists()
  # A CPU run does not log JAX's "no TPU" line, which reads as an error.
  assert 'Unable to initialize backend' not in run.stderr
