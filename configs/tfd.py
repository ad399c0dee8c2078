"""eVAE on the Toronto Face Database, the paper's TFD setting (Table 1).

The config lives in the installed library, `evae_jax/configs/tfd.py`, so that
it works from any directory; this file keeps ``--config=configs/tfd.py``
and ``from configs import tfd`` working in a checkout. Your own config
file, anywhere: ``from evae_jax.configs import tfd``.
"""

from evae_jax.configs.tfd import get_config  # pylint: disable=unused-import
