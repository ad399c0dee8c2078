"""A convolutional eVAE for your own colour images (an RGB .npz).

Strided convolutions of 32 and 64 channels (4 x 4 kernels), one Dense layer
of 256 units, D = 32, K = 8, and a Gaussian likelihood per channel value on
the grey levels (no binarisation). Point it at your images with
--config.data.path=/path/to/images.npz: ``train`` and ``test`` (optional
``valid``) uint8 arrays of shape (n, H, W, 3), or grey-scale (n, H, W).
"""

from evae_jax.configs import default


def get_config():
  config = default.get_config()
  config.data.name = 'npz'
  config.data.path = 'images.npz'
  config.data.binarization = 'none'
  config.model.network = 'conv'
  config.model.conv_channels = (32, 64)
  config.model.conv_kernel_size = 4
  config.model.num_layers = 1
  config.model.hidden_dim = 256
  config.model.latent_dim = 32
  config.model.epitome_size = 8
  config.model.likelihood = 'gaussian'
  config.train.num_epochs = 50
  return config
