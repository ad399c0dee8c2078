"""Over-pruning remedies against the eVAE, on Table 2's network and protocol.

The paper dismisses KL warm-up (Bowman et al. 2015; Sønderby et al. 2016)
and free bits (Kingma et al. 2016) as hand-tuned without comparing them.
This sweep trains them on the same network, budget and test images as
Table 2 at D = 50 (`table2.py`: L = 2, H = 200, Burda et al.'s optimiser
and schedule, IW k = 5000), each changing only what is optimised: every
bound and log-likelihood evaluate reports is the true one.

- KL warm-up: the KL weight rises linearly from 0 over the first 10 epochs
  (29,800 steps of 20 examples).
- Free bits: each unit's minibatch-average KL counts at least lambda nats
  in the training loss, lambda = 0.1 and 0.5 per unit.
- Dropout VAE (paper §3.2), rate 0.5 on z.
- IWAE, k = 5 (Burda et al.).

The VAE and the eVAEs are the stride sweep's points (`table2_stride.py`,
the same configs and seeds), not trained twice: the comparison table reads
both roots (`experiments/mnist.sh remedies`).
"""

from configs.sweeps import table2


def get_config():
  config = table2.get_config()
  config.model.kind = 'vae'
  config.model.latent_dim = 50
  return config


def sweep():
  return [{'train.kl_warmup_steps': 29800},
          {'train.free_bits': 0.1},
          {'train.free_bits': 0.5},
          {'train.z_dropout_rate': 0.5},
          {'train.objective': 'iwae', 'train.num_samples': 5}]
