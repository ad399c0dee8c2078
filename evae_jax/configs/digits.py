"""eVAE on scikit-learn's 8x8 digits: the embedded default dataset."""

from evae_jax.configs import default


def get_config():
  return default.get_config()
