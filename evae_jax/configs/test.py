"""Tiny config for tests: seconds on one CPU core."""

from evae_jax.configs import default


def get_config():
  config = default.get_config()
  config.model.latent_dim = 6
  config.model.epitome_size = 2
  config.model.hidden_dim = 16
  config.train.num_epochs = 2
  config.train.batch_size = 50
  config.train.progress_bar = False
  config.eval.iw_samples = 8
  config.eval.iw_chunk = 4
  config.eval.iw_num_examples = 40
  config.eval.parzen_samples = 200
  config.eval.parzen_valid = 50
  config.eval.num_examples = 100
  config.eval.num_image_samples = 16
  return config
