"""Fig. 3 / §5.2: unit activity of VAE, dropout VAE (rate 0.5) and eVAE at
D = 50."""

from configs import mnist


def get_config():
  config = mnist.get_config()  # L = 2, H = 500, D = 50, K = 5
  return config


def sweep():
  return [{'model.kind': 'vae'},
          {'model.kind': 'vae', 'train.z_dropout_rate': 0.5},
          {'model.kind': 'evae'}]
