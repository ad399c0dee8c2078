"""Many models per program (vmap over seeds / KL weights) and data-parallel
sharding over several devices."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np

from configs import test as test_config
from evae_jax.storage import checkpoints
from evae_jax.train import metric_writers
from evae_jax.evaluate import report
from evae_jax.train import loop as train
from evae_jax import state as state_lib
from tests.conftest import ROOT


def _params(config, workdir):
  state = state_lib.create_train_state(config, 64, jax.random.PRNGKey(0))
  state, _, step = state_lib.restore(checkpoints.Checkpoints(workdir, 3), state, 1300)
  return state.params, step


def test_seeds_and_kl_weights_train_together_like_separate_runs(tmp_path):
  config = test_config.get_config()
  config.train.num_epochs = 1
  config.train.num_seeds = 2
  config.train.kl_weights = (1.0, 0.5)
  together = str(tmp_path / 'together')
  result = train.train_and_evaluate(config, together)
  names = ['seed=0,kl_weight=1', 'seed=0,kl_weight=0.5',
           'seed=1,kl_weight=1', 'seed=1,kl_weight=0.5']
  assert sorted(result) == sorted(names)
  for name in names:
    member_dir = os.path.join(together, name)
    for f in ('config.json', 'metrics.jsonl', 'samples.png'):
      assert os.path.exists(os.path.join(member_dir, f)), (name, f)
    saved = json.load(open(os.path.join(member_dir, 'config.json')))
    seed, weight = int(name[5]), float(name.split('=')[-1])
    assert saved['seed'] == seed and saved['train']['kl_weight'] == weight
    # The same model trained on its own gives the same parameters.
    single = test_config.get_config()
    single.train.num_epochs = 1
    single.seed = seed
    single.train.kl_weight = weight
    alone = str(tmp_path / f'alone_{name}')
    train.train_and_evaluate(single, alone)
    a, step_a = _params(single, alone)
    b, step_b = _params(single, member_dir)
    assert step_a == step_b == 26
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
      np.testing.assert_allclose(x, y, rtol=2e-4, atol=2e-5)
    if name == names[0]:  # different members really are different models
      c, _ = _params(single, os.path.join(together, names[2]))
      assert not np.allclose(jax.tree_util.tree_leaves(a)[0],
                             jax.tree_util.tree_leaves(c)[0])
  # Resuming the group resumes every member; evaluate covers every member.
  config.train.num_epochs = 2
  train.train_and_evaluate(config, together)
  for name in names:
    steps = [r['step'] for r in metric_writers.read_metrics(
        os.path.join(together, name))]
    assert steps == [26, 52]
  config.eval.iw_samples = 2
  config.eval.parzen_samples = 50
  evaluated = report.evaluate_workdir(config, together)
  assert sorted(evaluated) == sorted(names)
  assert all(os.path.exists(os.path.join(together, n, 'eval.json')) for n in names)


def test_sharded_run_matches_single_device(tmp_path):
  script = textwrap.dedent(f'''
      import jax, numpy as np
      from configs import test as test_config
      from evae_jax.storage import checkpoints
      from evae_jax.train import loop as train
      from evae_jax import state as state_lib
      assert jax.device_count() == 8, jax.devices()
      out = {{}}
      for devices in (8, 1):
        config = test_config.get_config()
        config.train.num_devices = devices
        config.train.batch_size = 40
        workdir = '{tmp_path}/run%d' % devices
        train.train_and_evaluate(config, workdir)
        state = state_lib.create_train_state(config, 64, jax.random.PRNGKey(0))
        state, _, step = state_lib.restore(checkpoints.Checkpoints(workdir, 3),
                                           state, 1300)
        out[devices] = (jax.tree_util.tree_leaves(state.params), step)
      assert out[8][1] == out[1][1] == 64
      for a, b in zip(out[8][0], out[1][0]):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4,
                                   atol=1e-5)
      config = test_config.get_config()
      config.train.batch_size = 50
      try:
        train.train_and_evaluate(config, '{tmp_path}/bad')
      except ValueError as e:
        assert 'does not split over 8 devices' in str(e), e
        print('MATCH')
  ''')
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=8',
             JAX_PLATFORMS='cpu')
  result = subprocess.run([sys.executable, '-c', script], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
  assert 'MATCH' in result.stdout, result.stderr[-3000:]
