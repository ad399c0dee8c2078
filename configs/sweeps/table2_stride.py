"""Table 2 at D = 50, settled: which epitome layout, if any, beats the VAE.

The paper gives K = 25 for Table 2 but no stride. Non-overlapping epitomes
(stride 25, E = 2) were our first reading; the paper's Fig. 6 uses
overlapping ones, so this sweep runs the eVAE at stride 25 (E = 2), 5
(E = 6) and 1 (E = 26, every window of 25 units), beside the VAE at D = 50
and a VAE with D = 25 (one epitome's worth of units: the control for "an
eVAE is only a smaller VAE"). Everything else is Table 2's config
(`table2.py`: Burda et al.'s network, optimiser, schedule and evaluation).

Run it with seeds, each seed a point of its own (`--seeds=3`); see
`experiments/mnist.sh table2_stride`.
"""

from configs.sweeps import table2


def get_config():
  return table2.get_config()


def sweep():
  return [{'model.kind': 'vae', 'model.latent_dim': 50},
          {'model.kind': 'evae', 'model.latent_dim': 50, 'model.stride': 25},
          {'model.kind': 'evae', 'model.latent_dim': 50, 'model.stride': 5},
          {'model.kind': 'vae', 'model.latent_dim': 25},
          {'model.kind': 'evae', 'model.latent_dim': 50, 'model.stride': 1}]
