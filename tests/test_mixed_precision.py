"""model.dtype=bfloat16: the networks' matmuls take bfloat16 inputs and
accumulate in float32, everything else stays float32, each bf16 path agrees
with its float32 twin within a stated tolerance, and the command line trains,
records, evaluates (in float32) and refuses other dtypes. float32 is the
default and bit-identical to before (tests/test_golden_numerics.py)."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import test as test_config
from evae_jax import elbo
from evae_jax import models
from evae_jax import state as state_lib
from evae_jax.train import steps
from tests.conftest import cli

N = 64
# bfloat16 keeps 8 significant bits: 2^-8 = 0.4% per rounding.
RTOL = 2e-2


def _pair(kind='evae'):
  configs = []
  for dtype in ('float32', 'bfloat16'):
    c = test_config.get_config()
    c.model.kind = kind
    c.model.dtype = dtype
    configs.append(c)
  f32, bf16 = (models.make_model(c.model, N) for c in configs)
  params = f32.init(jax.random.PRNGKey(0))
  return configs, f32, bf16, params


def _batch(n=50):
  return (np.random.RandomState(0).rand(n, N) > 0.6).astype(np.float32)


@pytest.mark.parametrize('kind', ['evae', 'vae', 'mvae'])
def test_bfloat16_bounds_match_float32_and_are_float32(kind):
  _, f32, bf16, params = _pair(kind)
  x = _batch()
  rng = jax.random.PRNGKey(3)
  want = f32.loss(params, x, rng)
  got = bf16.loss(params, x, rng)
  assert got[0].dtype == jnp.float32
  for key in ('bound', 'elbo', 'log_lik', 'kl'):
    assert got[1][key].dtype == jnp.float32, key
    np.testing.assert_allclose(got[1][key], want[1][key], rtol=RTOL,
                               atol=0.05, err_msg=key)
  np.testing.assert_allclose(got[0], want[0], rtol=RTOL)


def test_bfloat16_parameters_and_optimizer_stay_float32_and_finite():
  configs, _, _, _ = _pair()
  state = state_lib.create_train_state(configs[1], N, jax.random.PRNGKey(1))
  options = steps.StepOptions.from_config(configs[1])
  for i in range(3):
    state, metrics = steps.train_step(state, _batch(), jax.random.PRNGKey(i),
                                      options=options)
  leaves = jax.tree_util.tree_leaves((state.params, state.opt_state))
  assert all(l.dtype != jnp.bfloat16 for l in leaves)
  assert all(np.all(np.isfinite(l)) for l in leaves
             if jnp.issubdtype(l.dtype, jnp.floating))
  assert np.isfinite(metrics['grad_norm'])


def test_bfloat16_chooses_the_same_epitomes_on_a_fixed_batch():
  _, f32, bf16, params = _pair()
  x = _batch(200)
  terms = []
  for model in (f32, bf16):
    encode, decode_log_prob = models.bind(model.module.apply, params)
    terms.append(elbo.elbo_fn(encode, decode_log_prob, x, model.masks,
                              jax.random.PRNGKey(5)).elbo)
  want, got = (np.asarray(elbo.assign_epitomes(t)) for t in terms)
  # Ties within bfloat16's rounding may flip; the measured rate here is 0.
  assert np.mean(want != got) <= 0.02, np.mean(want != got)


def test_elbo_fn_takes_a_users_bfloat16_network():
  masks = jnp.asarray([[1., 1., 0., 0.], [0., 0., 1., 1.]])
  x = jnp.asarray(_batch(8)[:, :4])

  def encode(x):
    h = x.astype(jnp.bfloat16)
    return h - 0.5, -h

  def decode_log_prob(z, x):
    logits = (z.astype(jnp.bfloat16) * 2.0)
    return -jnp.sum(jnp.logaddexp(0., logits) - x * logits, -1)

  terms = elbo.elbo_fn(encode, decode_log_prob, x, masks,
                       jax.random.PRNGKey(0))
  assert terms.elbo.dtype == jnp.float32
  assert np.all(np.isfinite(terms.elbo))


def test_other_dtypes_are_refused(tmp_path):
  run = cli(tmp_path / 'run', '--config.model.dtype=float16')
  assert run.returncode == 2, run.stderr
  assert "model.dtype='float16'" in run.stderr and 'bfloat16' in run.stderr
  assert not os.path.exists(tmp_path / 'run' / 'checkpoints')


def test_a_bfloat16_run_trains_resumes_in_float32_and_evaluates_in_float32(
    tmp_path):
  workdir = tmp_path / 'run'
  first = cli(workdir, '--config.model.dtype=bfloat16',
              '--config.train.num_epochs=1')
  assert first.returncode == 0, first.stderr
  saved = json.load(open(workdir / 'config.json'))
  assert saved['model']['dtype'] == 'bfloat16'
  # Another dtype on resume is allowed and said.
  second = cli(workdir, '--config.model.dtype=float32')
  assert second.returncode == 0, second.stderr
  assert 'model.dtype' in second.stderr
  evaluate = cli(workdir, '--config.model.dtype=float32', mode='evaluate')
  assert evaluate.returncode == 0, evaluate.stderr
  results = json.load(open(workdir / 'eval.json'))
  assert results['dtype'] == {'train': 'float32', 'eval': 'float32'}
  assert 'evaluated in float32' in open(workdir / 'report.md').read()


def test_dtype_selection_holds_the_model_and_changes_only_its_networks(
    one_epoch_workdir):
  """experiments.dtype_selection: the same parameters with float32 and
  bfloat16 networks. Its float32 side is the loaded model itself; bfloat16
  changes the bound by a little, never the parameters."""
  import evae_jax
  from experiments import dtype_selection
  m = evae_jax.load(one_epoch_workdir)
  x = np.asarray(m.eval_inputs(m.splits.test[:60]))
  got = dtype_selection.compare(m, x, seed=3, batch_size=25)
  keys = [jax.random.fold_in(jax.random.PRNGKey(3), i) for i in range(3)]
  bounds = np.concatenate([np.asarray(m.bound(x[25 * i:25 * i + 25], k),
                                      np.float64)
                           for i, k in enumerate(keys)])
  assert got['images'] == 60
  np.testing.assert_allclose(got['bound_float32'], bounds.mean(), rtol=1e-6)
  low = dtype_selection.in_dtype(m, 'bfloat16')
  assert low.params is m.params and low.model is not m.model
  # bfloat16 networks did run: the bound moved, by a little.
  assert 0 < abs(got['bound_difference']) < 0.5
  differs = np.concatenate([
      np.asarray(m.assign(x[25 * i:25 * i + 25], k))
      != np.asarray(low.assign(x[25 * i:25 * i + 25], k))
      for i, k in enumerate(keys)])
  assert got['y_differs'] == differs.mean()
