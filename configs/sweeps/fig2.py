"""Fig. 2 / Fig. 9: a 50-d VAE (L = 1, H = 500) on MNIST for KL weights
lambda."""

from configs import mnist
from configs.sweeps import grid


def get_config():
  config = mnist.get_config()
  config.model.kind = 'vae'
  config.model.num_layers = 1
  return config


def sweep():
  return grid(**{'train.kl_weight': [1.0, 0.5, 0.2]})
