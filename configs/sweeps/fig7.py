"""Fig. 7: Parzen log-density against epitome size K for D = 8, 24, 48
(L = 1, H = 500, non-overlapping), with VAE and mVAE for comparison."""

from configs import mnist
from configs.sweeps import grid


def get_config():
  config = mnist.get_config()
  config.model.num_layers = 1
  return config


def sweep():
  points = grid(**{'model.latent_dim': [8, 24, 48], 'model.kind': ['vae']})
  for d in (8, 24, 48):
    for k in (2, 3, 4, 6, 8, 12):
      if k < d:
        points += grid(**{'model.latent_dim': [d], 'model.epitome_size': [k],
                          'model.kind': ['evae', 'mvae']})
  return points
