"""Fig. 6 / Fig. 10: VAE and eVAE (2-d overlapping epitomes, s = 1) for
D = 2, 5, 10, 20, with one hidden layer of 500 units."""

from configs import mnist
from configs.sweeps import grid


def get_config():
  config = mnist.get_config()
  config.model.num_layers = 1
  config.model.epitome_size = 2
  config.model.stride = 1
  return config


def sweep():
  return grid(**{'model.kind': ['vae', 'evae'],
                 'model.latent_dim': [2, 5, 10, 20]})
