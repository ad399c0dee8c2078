"""eVAE on the fixed binarisation of MNIST (Larochelle & Murray) from tfds."""

from evae_jax.configs import mnist


def get_config():
  config = mnist.get_config()
  config.data.name = 'binarized_mnist'
  config.data.binarization = 'none'  # the data are already binary
  return config
