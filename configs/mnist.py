"""eVAE on MNIST from tfds (dynamic binarisation), paper §5.

The config lives in the installed library, `evae_jax/configs/mnist.py`, so that
it works from any directory; this file keeps ``--config=configs/mnist.py``
and ``from configs import mnist`` working in a checkout. Your own config
file, anywhere: ``from evae_jax.configs import mnist``.
"""

from evae_jax.configs.mnist import get_config  # pylint: disable=unused-import
