"""Table 1: Parzen log-densities on TFD; K = 5, non-overlapping.

TFD is not public: add --set=data.path=/path/to/TFD_48x48.mat.
"""

from configs import tfd
from configs.sweeps import grid


def get_config():
  return tfd.get_config()


def sweep():
  return grid(**{'model.latent_dim': [15, 25, 50],
                 'model.kind': ['vae', 'mvae', 'evae'],
                 'model.num_layers': [2, 3],
                 'model.hidden_dim': [500, 1000]})
