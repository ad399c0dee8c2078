"""Tables 3 and 4: Parzen log-densities on MNIST over (L, H, D); mVAE and
eVAE use non-overlapping epitomes of K = 3 and 4 (the table shows the
better of the two)."""

from configs import mnist
from configs.sweeps import grid


def get_config():
  return mnist.get_config()


def sweep():
  axes = {'model.latent_dim': [8, 24, 48], 'model.num_layers': [1, 2, 3],
          'model.hidden_dim': [500, 1000]}
  return (grid(**{'model.kind': ['vae']}, **axes)
          + grid(**{'model.kind': ['mvae', 'evae'],
                    'model.epitome_size': [3, 4]}, **axes))
