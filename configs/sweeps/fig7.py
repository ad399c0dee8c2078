"""Fig. 7: Parzen log-density against epitome size K for D = 8, 24, 48
(L = 1, H = 500, non-overlapping), with VAE and mVAE for comparison: K = 2, 4
at D = 8 and K = 2, 3, 4, 6, 8, 12 at D = 24 and 48."""

from configs import mnist
from configs.sweeps import grid


def get_config():
  config = mnist.get_config()
  config.model.num_layers = 1
  return config


def sweep():
  points = grid(**{'model.latent_dim': [8, 24, 48], 'model.kind': ['vae']})
  sizes = {8: (2, 4), 24: (2, 3, 4, 6, 8, 12), 48: (2, 3, 4, 6, 8, 12)}
  for d, ks in sizes.items():
    for k in ks:
      points += grid(**{'model.latent_dim': [d], 'model.epitome_size': [k],
                        'model.kind': ['evae', 'mvae']})
  return points
