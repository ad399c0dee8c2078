"""Beyond the paper: importance-weighted epitomic training (IWAE-eVAE).

The paper's §5.4 says "epitomic training can also improve IWAE" and never
tests it. Same protocol as Table 2 (Burda et al.'s, see table2.py), with
the IWAE bound of k = 5 samples as the objective: Burda et al.'s IWAE for
the VAE, and for the eVAE the IWAE bound of the epitome y* chosen by eq. 7
(elbo.iwae_loss), at D = 50 and D = 200.
"""

from configs.sweeps import grid
from configs.sweeps import table2


def get_config():
  config = table2.get_config()
  config.train.objective = 'iwae'
  config.train.num_samples = 5
  return config


def sweep():
  return grid(**{'model.latent_dim': [50, 200],
                 'model.kind': ['vae', 'evae']})
