"""Algorithm 1 against per-step selection (issue 14, item 4), on the §5.2 /
Fig. 3 eVAE (MNIST, L = 2, H = 500, D = 50, K = 5: E = 10 epitomes).

- ``assignment=step``: y* chosen in every step on an independent noise
  draw (the eq. 7 objective as a per-minibatch argmax).
- ``assignment=epoch``: the paper's Algorithm 1: every training example
  assigned at the start of each epoch, minibatches balanced across epitomes;
  ``assignment_samples`` noise draws averaged per example (1 and 4).

Compare the points paired on the same test images
(``python -m experiments.paired``); ``metrics.jsonl`` logs how many
examples change epitome each epoch (``assignment_changes``).
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
