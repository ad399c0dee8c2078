"""eVAE on the fixed binarisation of MNIST (Larochelle & Murray) from tfds.

The config lives in the installed library,
`evae_jax/configs/binarized_mnist.py`, so that it works from any directory;
this file keeps ``--config=configs/binarized_mnist.py`` and
``from configs import binarized_mnist`` working in a checkout. Your own config
file, anywhere: ``from evae_jax.configs import binarized_mnist``.
"""

from evae_jax.configs.binarized_mnist import (  # pylint: disable=unused-import
    get_config)
