"""report: what --mode=evaluate writes, and that its files belong together."""

import json
import os
import shutil

import numpy as np
import pytest

from evae_jax.evaluate import report


@pytest.fixture(scope='module')
def evaluated(tmp_path_factory):
  """configs/test.py trained 1 epoch and evaluated, then 1 more epoch and
  evaluated again into a copy: two evaluations of two checkpoints. In this
  process: what --mode=train and --mode=evaluate call (the command line
  itself is tested in test_train and test_evaluate)."""
  from configs import test as test_config
  from evae_jax.train import loop as train
  root = tmp_path_factory.mktemp('evaluated')
  first, second = str(root / 'first'), str(root / 'second')
  config = test_config.get_config()
  config.train.num_epochs = 1
  train.train_and_evaluate(config, first)
  report.evaluate_workdir(config, first)
  shutil.copytree(first, second)
  config.train.num_epochs = 2
  train.train_and_evaluate(config, second)
  report.evaluate_workdir(config, second)
  return first, second


def _eval(workdir):
  with open(os.path.join(workdir, report.EVAL_JSON)) as f:
    return json.load(f)


def test_eval_files_name_their_checkpoint_and_each_other(evaluated):
  for workdir in evaluated:
    results = _eval(workdir)
    with np.load(os.path.join(workdir, report.EVAL_EXAMPLES_NPZ)) as f:
      assert int(f['step']) == results['step']
    with open(os.path.join(workdir, report.EVAL_EXAMPLES_NPZ), 'rb') as f:
      report.check_examples(results, f.read())   # a matching pair passes
  assert _eval(evaluated[0])['step'] < _eval(evaluated[1])['step']


def test_a_mixed_pair_is_refused_by_paired_comparisons(evaluated):
  """An evaluation killed between its two files leaves eval.json of one
  checkpoint beside eval_examples.npz of another: refused, not mixed."""
  from experiments import paired
  first, second = evaluated
  mixed = os.path.join(os.path.dirname(first), 'mixed')
  shutil.copytree(first, mixed)
  shutil.copy(os.path.join(second, report.EVAL_EXAMPLES_NPZ),
              os.path.join(mixed, report.EVAL_EXAMPLES_NPZ))
  with pytest.raises(ValueError, match='rerun --mode=evaluate'):
    paired.load(mixed)
  assert 'iw_marginal' in paired.load(first)


def test_mutual_information_and_both_thresholds_are_reported(evaluated):
  results = _eval(evaluated[0])
  units = results['active_units']
  assert units['count_at_0.02'] == units['count']
  activity = np.asarray(units['activity'])
  assert units['count_at_0.01'] == int((activity > 0.01).sum())
  mi = results['mutual_information']
  # He et al.'s estimator is at most log n (q(z) mixes n posteriors).
  assert 0.0 <= mi['marginal'] <= np.log(mi['num_examples']) + 1e-6
  assert len(mi['per_epitome']) == results['num_epitomes']
  text = open(os.path.join(evaluated[0], report.REPORT_MD)).read()
  assert 'mutual information I_q(x; z)' in text
  assert 'A_u > 0.01' in text


def test_evaluation_draws_the_sample_figures_only_where_training_did_not(
    one_epoch_workdir, tmp_path):
  """The end of training drew samples.png and reconstructions.png of its
  last checkpoint; an evaluation of that checkpoint with the same figure
  settings keeps them (they are the bytes it would draw), and draws them
  again when the record is gone or a setting differs."""
  from configs import test as test_config
  from evae_jax import figures
  from evae_jax.storage import workdirs
  workdir = str(tmp_path / 'run')
  shutil.copytree(one_epoch_workdir, workdir)
  config = test_config.get_config()
  config.train.num_epochs = 1
  pngs = [os.path.join(workdir, n) for n in (figures.SAMPLES_PNG,
                                             figures.RECONSTRUCTIONS_PNG)]
  drawn = [open(p, 'rb').read() for p in pngs]
  stamps = [os.stat(p).st_mtime_ns for p in pngs]
  report.evaluate_workdir(config, workdir)
  assert [os.stat(p).st_mtime_ns for p in pngs] == stamps   # not redrawn
  os.remove(os.path.join(workdir, workdirs.FINISHED_FILE))
  report.evaluate_workdir(config, workdir)
  assert [os.stat(p).st_mtime_ns for p in pngs] != stamps   # redrawn...
  assert [open(p, 'rb').read() for p in pngs] == drawn      # ...the same
  # Each difference alone redraws: an older record without settings...
  step = _eval(workdir)['step']
  outputs = [figures.SAMPLES_PNG, figures.RECONSTRUCTIONS_PNG]
  workdirs.record_finished(workdir, step, outputs)
  stamps = [os.stat(p).st_mtime_ns for p in pngs]
  report.evaluate_workdir(config, workdir)
  assert [os.stat(p).st_mtime_ns for p in pngs] != stamps
  # ...another dtype (then the record says what the files show)...
  config.eval.dtype = 'bfloat16'
  stamps = [os.stat(p).st_mtime_ns for p in pngs]
  report.evaluate_workdir(config, workdir)
  assert [os.stat(p).st_mtime_ns for p in pngs] != stamps
  config.eval.dtype = 'float32'
  report.evaluate_workdir(config, workdir)   # back: drawn again, in float32
  assert [open(p, 'rb').read() for p in pngs] == drawn
  # ...and another number of samples.
  config.eval.num_image_samples = 4
  report.evaluate_workdir(config, workdir)
  assert open(pngs[0], 'rb').read() != drawn[0]
  stamps = [os.stat(p).st_mtime_ns for p in pngs]
  report.evaluate_workdir(config, workdir)   # the same again: kept
  assert [os.stat(p).st_mtime_ns for p in pngs] == stamps
