"""Default config: an eVAE on scikit-learn's bundled 8x8 digits (runs anywhere).

The config lives in the installed library, `evae_jax/configs/default.py`, so
that it works from any directory; this file keeps
``--config=configs/default.py`` and ``from configs import default`` working
in a checkout. Your own config file, anywhere:
``from evae_jax.configs import default``.
"""

from evae_jax.configs.default import get_config  # pylint: disable=unused-import
