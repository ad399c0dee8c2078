"""eVAE on Fashion-MNIST from local MNIST-format IDX files (MNIST's protocol).

The config lives in the installed library,
`evae_jax/configs/fashion_mnist.py`, so that it works from any directory; this
file keeps ``--config=configs/fashion_mnist.py`` and
``from configs import fashion_mnist`` working in a checkout. Your own config
file, anywhere: ``from evae_jax.configs import fashion_mnist``.
"""

from evae_jax.configs.fashion_mnist import (  # pylint: disable=unused-import
    get_config)
