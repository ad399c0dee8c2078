"""eVAE on Fashion-MNIST from local MNIST-format IDX files (MNIST's protocol).

Defaults to where Debian's `dataset-fashion-mnist` package installs the
files; point --config.data.path elsewhere for your own copy. L = 2, H = 200,
D = 50, K = 5 (Table 2's architecture).
"""

from evae_jax.configs import mnist


def get_config():
  config = mnist.get_config()
  config.data.name = 'idx'
  config.data.path = '/usr/share/datasets/fashion-mnist'
  config.model.hidden_dim = 200
  return config
