"""Burda et al.'s training protocol (the paper's Table 2): their Adam,
output-bias initialisation, validation split and the Table 2 config."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

import configs.test as test_config
from configs.sweeps import table2
from evae_jax import configuration
from evae_jax import data as input_pipeline
from evae_jax import models
from evae_jax.state import optimizers


def _numpy_burda_adam(grads, lrs, b1=0.99, b2=0.999, eps=1e-4):
  """Float64 transcription of the update in their Theano code: all updates
  computed from the values before the step (timestep starts at 1)."""
  param, m, v, t = 0.0, 0.0, 1.0, 1
  out = []
  for g, lr in zip(grads, lrs):
    alpha = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    param, m, v, t = (param - alpha * m / (np.sqrt(v) + eps),
                      b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g, t + 1)
    out.append(param)
  return np.array(out)


def test_burda_adam_matches_their_update():
  grads = np.random.RandomState(0).randn(30) * 3
  lrs = [1e-3] * 15 + [7.2e-4] * 15
  schedule = optax.join_schedules([optax.constant_schedule(1e-3),
                                   optax.constant_schedule(7.2e-4)], [15])
  config = test_config.get_config().train
  config.optimizer, config.adam_b1, config.adam_eps = 'burda_adam', 0.99, 1e-4
  tx = optimizers.make_optimizer(config, schedule)
  param = jnp.zeros(())
  state = tx.init(param)
  got = []
  for g in grads:
    updates, state = tx.update(jnp.float32(g), state, param)
    param = optax.apply_updates(param, updates)
    got.append(float(param))
  want = _numpy_burda_adam(grads, lrs)
  assert want[0] == 0.0  # the first step moves nothing (m_0 = 0)
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-9)
  # ... and it is not optax's Adam.
  plain = optax.adam(1e-3, b1=0.99, eps=1e-4)
  p, s = jnp.zeros(()), plain.init(jnp.zeros(()))
  for g in grads[:15]:
    u, s = plain.update(jnp.float32(g), s, p)
    p = optax.apply_updates(p, u)
  assert abs(float(p) - want[14]) > 1e-4


def test_output_bias_is_the_logit_of_the_clipped_pixel_mean():
  cfg = test_config.get_config().model
  mean = np.array([0.0, 0.25, 0.5, 1.0])
  for kind in ('evae', 'mvae'):
    cfg.kind = kind
    model = models.make_model(cfg, 4)
    params = models.init_output_bias(model.init(jax.random.PRNGKey(0)), mean)
    want = np.log(np.clip(mean, 1e-3, 1 - 1e-3) / (1 - np.clip(mean, 1e-3,
                                                             1 - 1e-3)))
    bias = np.asarray(params['out_head']['bias']).reshape(-1, 4)
    for row in bias:
      np.testing.assert_allclose(row, want, rtol=1e-5)
  # An untrained decoder with zero output weights then predicts the mean.
  cfg.kind = 'vae'
  model = models.make_model(cfg, 4)
  params = models.init_output_bias(model.init(jax.random.PRNGKey(0)), mean)
  params['out_head']['kernel'] = jnp.zeros_like(params['out_head']['kernel'])
  got = model.decode_mean(params, jnp.zeros((1, cfg.latent_dim)), None)
  np.testing.assert_allclose(got[0], np.clip(mean, 1e-3, 1 - 1e-3), rtol=1e-4)


def test_validation_from_the_end_keeps_file_order():
  data = test_config.get_config().data
  data.valid_from, data.num_valid = 'end', 97
  random_order = test_config.get_config().data
  raw_train, _ = input_pipeline.load_digits_images()
  splits = input_pipeline.load(data)
  np.testing.assert_array_equal(splits.valid, raw_train[-97:])
  np.testing.assert_array_equal(splits.train, raw_train[:-97])
  other = input_pipeline.load(random_order)
  assert not np.array_equal(other.train[:50], raw_train[:50])


def test_table2_config_is_burdas_protocol():
  config = table2.get_config()
  configuration.validate(config)
  t, m, d = config.train, config.model, config.data
  assert (t.batch_size, t.optimizer, t.adam_b1, t.adam_b2, t.adam_eps) == (
      20, 'burda_adam', 0.99, 0.999, 1e-4)
  assert (d.num_valid, d.valid_from, d.binarization) == (400, 'end', 'dynamic')
  assert (m.num_layers, m.hidden_dim, m.epitome_size, m.activation,
          m.output_bias_init) == (2, 200, 25, 'tanh', 'train_mean')
  assert (t.schedule, t.burda_stages, t.assignment) == ('burda', 8, 'epoch')
  assert config.eval.iw_samples == 5000
