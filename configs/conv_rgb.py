"""A convolutional eVAE for your own colour images (an RGB .npz).

The config lives in the installed library, `evae_jax/configs/conv_rgb.py`, so
that it works from any directory; this file keeps
``--config=configs/conv_rgb.py`` and ``from configs import conv_rgb`` working
in a checkout. Your own config file, anywhere:
``from evae_jax.configs import conv_rgb``.
"""

from evae_jax.configs.conv_rgb import get_config  # pylint: disable=unused-import
