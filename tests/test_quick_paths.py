"""The quick paths of a first look: ``--config.eval.quick=True`` (capped
settings, its own files, saying everywhere that it is not the paper's
protocol) and progress that stays readable in a log file."""

import json
import os
import subprocess
import sys

import pytest

from configs import test as test_config
from evae_jax.evaluate import quick
from evae_jax.evaluate import report
from tests.conftest import ROOT


def test_quick_caps_the_costly_settings_and_never_raises_them():
  config = test_config.get_config()
  assert quick.quick_config(config) is config  # eval.quick off: untouched
  config.eval.quick = True
  config.eval.iw_num_examples = 0  # the whole split
  config.eval.parzen_samples = 50_000
  capped = quick.quick_config(config)
  assert capped.eval.iw_num_examples == quick.QUICK['iw_num_examples']
  assert capped.eval.parzen_samples == quick.QUICK['parzen_samples']
  assert capped.eval.iw_samples == 8  # configs/test.py asks for fewer
  assert capped.eval.num_examples == config.eval.num_examples
  assert config.eval.parzen_samples == 50_000  # the caller's config is kept


def test_mutual_information_on_the_first_mi_num_examples():
  """eval.mi_num_examples scores the mutual information on the first N
  examples (He et al.'s estimator of `metrics.epitome_mutual_information`
  on those posteriors, bounded by log N); 0 keeps every example, and the
  quick preset caps it."""
  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  from evae_jax import data as input_pipeline  # pylint: disable=import-outside-toplevel
  from evae_jax import metrics  # pylint: disable=import-outside-toplevel
  from evae_jax import state as state_lib  # pylint: disable=import-outside-toplevel
  from evae_jax.runtime import seeds  # pylint: disable=import-outside-toplevel
  config = test_config.get_config()
  splits = input_pipeline.load(config.data)
  state = state_lib.create_train_state(config, splits.num_pixels,
                                       jax.random.PRNGKey(0))
  full = report.compute_metrics(state, splits, config)['mutual_information']
  assert full['num_examples'] == config.eval.num_examples
  config.eval.mi_num_examples = 30
  part = report.compute_metrics(state, splits, config)['mutual_information']
  assert part['num_examples'] == 30
  assert part['upper_limit'] == pytest.approx(np.log(30))
  assert part['marginal'] <= np.log(30) + 1e-6
  assert part['marginal'] != full['marginal']
  # The same estimator on the first 30 posteriors of the evaluation pass.
  x = metrics.eval_inputs(splits.test[:config.eval.num_examples],
                          config.data)
  rng = jax.random.PRNGKey(seeds.EVAL_SEED)
  enc = metrics.encode_dataset(state.params, state.model, x,
                               jax.random.fold_in(rng, seeds.EVAL_BOUNDS),
                               config.eval.batch_size)
  want = metrics.epitome_mutual_information(
      enc.mu[:30], enc.logvar[:30], enc.assignments[:30], state.model.masks,
      jax.random.fold_in(rng, seeds.EVAL_MI))
  assert part['marginal'] == pytest.approx(want['marginal'], rel=1e-6)
  config.eval.quick = True
  config.eval.mi_num_examples = 0
  assert (quick.quick_config(config).eval.mi_num_examples
          == quick.QUICK['mi_num_examples'])


def test_quick_files_are_named_apart_from_a_full_evaluation():
  assert quick.output_name(report.EVAL_JSON, True) == 'eval_quick.json'
  assert quick.output_name(report.REPORT_MD, True) == 'report_quick.md'
  assert (quick.output_name(report.EVAL_EXAMPLES_NPZ, True)
          == 'eval_examples_quick.npz')
  assert quick.output_name(report.EVAL_JSON, False) == report.EVAL_JSON


_IW_WITH_PROGRESS = '''
import jax
from configs import test as test_config
from evae_jax import data, metrics, state
config = test_config.get_config()
splits = data.load(config.data)
s = state.create_train_state(config, splits.num_pixels, jax.random.PRNGKey(0))
x = metrics.eval_inputs(splits.test[:40], config.data)
metrics.iw_estimates(s.params, s.model, x, jax.random.PRNGKey(1), 4, 4, 2,
                     progress=True)
'''


def test_iw_progress_in_a_log_file_is_plain_lines(tmp_path):
  """Off a terminal (nohup, SLURM) a tqdm bar writes a carriage return per
  redraw; the IW estimate prints a plain line every ~10 % instead."""
  out, err = tmp_path / 'stdout', tmp_path / 'stderr'
  with open(out, 'w') as stdout, open(err, 'w') as stderr:
    run = subprocess.run([sys.executable, '-c', _IW_WITH_PROGRESS], cwd=ROOT,
                         stdout=stdout, stderr=stderr, timeout=300)
  # Bytes: reading text would turn each '\r' into a newline.
  logged = (out.read_bytes() + err.read_bytes()).decode()
  assert run.returncode == 0, logged[-2000:]
  assert '\r' not in logged
  lines = [l for l in logged.splitlines()
           if l.startswith('IW log-likelihood (k=4): ')]
  assert len(lines) == 10 and '20/20 (100%)' in lines[-1], logged[-2000:]


@pytest.fixture(scope='module')
def quick_evaluated(one_epoch_workdir):
  """A full evaluation, then a quick one on the command line, its stdout and
  stderr files (as under nohup), with the progress on."""
  config = test_config.get_config()
  config.train.num_epochs = 1
  report.evaluate_workdir(config, one_epoch_workdir)
  with open(os.path.join(one_epoch_workdir, report.EVAL_JSON), 'rb') as f:
    full = f.read()
  # Stand-ins for figures of an earlier checkpoint, which report.md shows
  # (training may have gone on since the full evaluation).
  for name in os.listdir(one_epoch_workdir):
    if name.endswith('.png'):
      with open(os.path.join(one_epoch_workdir, name), 'ab') as f:
        f.write(b'earlier checkpoint')
  before = _snapshot(one_epoch_workdir)
  out = os.path.join(one_epoch_workdir, 'quick.stdout')
  err = os.path.join(one_epoch_workdir, 'quick.stderr')
  with open(out, 'w') as stdout, open(err, 'w') as stderr:
    run = subprocess.run(
        [sys.executable, '-m', 'evae_jax.main',
         f'--workdir={one_epoch_workdir}', '--mode=evaluate',
         '--config.eval.quick=True', '--config.train.progress_bar=True'],
        cwd=ROOT, stdout=stdout, stderr=stderr, timeout=600)
  read = lambda path: open(path, 'rb').read().decode()  # keeps any '\r'
  logged = read(out) + read(err)
  assert run.returncode == 0, logged[-3000:]
  after = _snapshot(one_epoch_workdir)
  changed = sorted(n for n in before if after.get(n) != before[n])
  assert not changed, f'the quick evaluation rewrote {changed}'
  return one_epoch_workdir, full, read(out), logged


def _snapshot(workdir):
  """{name: bytes} of the full evaluation's files (eval.json, the
  per-example values, report.md and every figure) in ``workdir``."""
  return {n: open(os.path.join(workdir, n), 'rb').read()
          for n in os.listdir(workdir)
          if n.endswith(('.png', '.md', '.npz', '.json'))
          and '_quick' not in n}


def test_quick_evaluation_leaves_the_full_one_alone(quick_evaluated):
  workdir, full, _, _ = quick_evaluated
  with open(os.path.join(workdir, report.EVAL_JSON), 'rb') as f:
    assert f.read() == full
  assert not json.loads(full)['quick']
  with open(os.path.join(workdir, 'eval_examples_quick.npz'), 'rb') as f:
    report.check_examples(
        json.load(open(os.path.join(workdir, 'eval_quick.json'))), f.read())


def test_quick_evaluation_says_what_it_is_everywhere(quick_evaluated):
  workdir, _, stdout, logged = quick_evaluated
  results = json.load(open(os.path.join(workdir, 'eval_quick.json')))
  assert results['quick'] is True
  settings = results['quick_settings']
  assert settings == {**quick.QUICK, 'iw_samples': 8, 'iw_num_examples': 40,
                      'parzen_samples': 200, 'parzen_valid': 50}
  assert results['iw_log_likelihood']['num_samples'] == 8
  assert len(results['parzen']['sigma_grid']) == quick.QUICK[
      'parzen_num_sigmas']
  assert results['config']['eval']['quick'] is True
  note = results['quick_note']
  assert "not the paper's protocol" in note and quick.QUICK_FLAG in note
  text = open(os.path.join(workdir, 'report_quick.md')).read()
  assert text.startswith('# Quick evaluation') and note in text
  assert note in stdout and 'report_quick.md' in stdout
  assert '\r' not in logged  # the IW progress, in a log file
  assert 'IW log-likelihood (k=8): ' in logged
