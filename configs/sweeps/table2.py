"""Table 2: importance-weighted log-likelihood (k = 5000) of VAE and eVAE on
MNIST, L = 2, H = 200, K = 25, Burda et al.'s 8-stage schedule."""

from configs import mnist
from configs.sweeps import grid


def get_config():
  config = mnist.get_config()
  config.model.hidden_dim = 200
  config.model.epitome_size = 25
  config.train.schedule = 'burda'
  config.eval.iw_samples = 5000
  return config


def sweep():
  return grid(**{'model.latent_dim': [50, 100, 200],
                 'model.kind': ['vae', 'evae']})
