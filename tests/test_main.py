"""main: the command line's own settings (the compilation cache, its log)."""

import os
import subprocess
import sys

from tests.conftest import ROOT


def test_compilation_cache_is_on_by_default_and_can_be_turned_off(
    tmp_path, one_epoch_workdir):
  """Without JAX_COMPILATION_CACHE_DIR, a run caches its programs under
  XDG_CACHE_HOME; ``--compilation_cache=`` turns that off. Shown on
  ``--mode=sample`` of a trained workdir: the cheapest command that
  compiles (tens of programs, a few seconds cold)."""
  env = {k: v for k, v in os.environ.items()
         if not k.startswith('JAX_COMPILATION_CACHE')}
  env['XDG_CACHE_HOME'] = str(tmp_path / 'home_cache')
  run = _main(one_epoch_workdir, '--mode=sample', '--num_samples=4', env=env)
  assert run.returncode == 0, run.stderr[-2000:]
  cache = tmp_path / 'home_cache' / 'evae_jax' / 'xla'
  assert len(os.listdir(cache)) > 3   # the programs of a run, cached
  off = tmp_path / 'off'
  run = _main(one_epoch_workdir, '--mode=sample', '--num_samples=4',
              '--compilation_cache=', env={**env, 'XDG_CACHE_HOME': str(off)})
  assert run.returncode == 0, run.stderr[-2000:]
  assert not (off / 'evae_jax').exists()  # (matplotlib keeps its fonts there)
  # A CPU run does not log JAX's "no TPU" line, which reads as an error.
  assert 'Unable to initialize backend' not in run.stderr


def _main(workdir, *flags, env=None):
  return subprocess.run(
      [sys.executable, '-m', 'evae_jax.main', f'--workdir={workdir}', *flags],
      cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)


def test_sample_reads_the_runs_own_config_from_the_workdir(one_epoch_workdir):
  """No need to retype the training overrides (configs/test.py's model is
  not the default one, so sampling with the defaults would fail)."""
  png = os.path.join(one_epoch_workdir, 'sample_mode.png')
  run = _main(one_epoch_workdir, '--mode=sample', '--num_samples=4',
              '--config.eval.batch_size=7')
  assert run.returncode == 0, run.stderr[-2000:]
  assert os.path.exists(png) and png in run.stdout


def test_without_config_only_evaluation_fields_may_be_overridden(
    one_epoch_workdir):
  run = _main(one_epoch_workdir, '--mode=evaluate', '--config.model.kind=vae')
  assert run.returncode == 2
  assert '--config.model.kind cannot be set' in run.stderr
  assert not os.path.exists(os.path.join(one_epoch_workdir, 'eval.json'))


def test_training_without_config_is_one_line_exit_2(tmp_path):
  run = _main(tmp_path / 'run')
  assert run.returncode == 2 and 'training needs --config=FILE' in run.stderr
  assert not os.path.exists(tmp_path / 'run')
