"""eVAE on scikit-learn's 8x8 digits: the embedded default dataset.

The config lives in the installed library, `evae_jax/configs/digits.py`, so that
it works from any directory; this file keeps ``--config=configs/digits.py``
and ``from configs import digits`` working in a checkout. Your own config
file, anywhere: ``from evae_jax.configs import digits``.
"""

from evae_jax.configs.digits import get_config  # pylint: disable=unused-import
