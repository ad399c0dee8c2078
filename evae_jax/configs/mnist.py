"""eVAE on MNIST from tfds (dynamic binarisation), paper §5.

For Fashion-MNIST or MNIST files on disk: --config.data.name=idx
--config.data.path=DIR (a folder of MNIST-format IDX .gz files).
"""

from evae_jax.configs import default


def get_config():
  config = default.get_config()
  config.data.name = 'mnist'
  config.data.num_valid = 10000
  config.model.latent_dim = 50
  config.model.epitome_size = 5
  config.model.num_layers = 2
  config.model.hidden_dim = 500
  config.train.num_epochs = 200
  config.train.assignment = 'epoch'  # the paper's Algorithm 1
  return config
