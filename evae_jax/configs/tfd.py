"""eVAE on the Toronto Face Database, the paper's TFD setting (Table 1).

Gaussian likelihood, L = 2, H = 500, D = 25, K = 5, 250 epochs. TFD is not
public: pass --config.data.path=/path/to/TFD_48x48.mat.
"""

from evae_jax.configs import default


def get_config():
  config = default.get_config()
  config.data.name = 'tfd'
  config.data.path = 'TFD_48x48.mat'
  config.data.binarization = 'none'
  config.model.likelihood = 'gaussian'
  config.model.latent_dim = 25
  config.model.epitome_size = 5
  config.model.num_layers = 2
  config.model.hidden_dim = 500
  config.train.num_epochs = 250
  config.train.assignment = 'epoch'  # the paper's Algorithm 1
  return config
