"""Algorithm 1 against per-step selection, on the §5.2 /
Fig. 3 eVAE (MNIST, L = 2, H = 500, D = 50, K = 5: E = 10 epitomes).

- ``assignment=step``: y* chosen in every step on an independent noise
  draw (the eq. 7 objective as a per-minibatch argmax).
- ``assignment=epoch``: the paper's Algorithm 1: every training example
  assigned at the start of each epoch, minibatches balanced across epitomes;
  ``assignment_samples`` noise draws averaged per example, 1 or 4. With one
  draw this is exactly the Fig. 3 eVAE (configs/sweeps/fig3.py, same config
  and seed); it is a point here too, so that the sweep is complete on any
  one machine and ``python -m experiments.paired`` pairs all three within
  one root (runs on different devices differ in float rounding).

``metrics.jsonl`` logs how many examples change epitome each epoch
(``assignment_changes``).
"""

from configs.sweeps import fig3
from configs.sweeps import grid


def get_config():
  config = fig3.get_config()
  config.model.kind = 'evae'
  return config


def sweep():
  return ([{'train.assignment': 'step'}]
          + grid(**{'train.assignment': ['epoch'],
                    'train.assignment_samples': [1, 4]}))
