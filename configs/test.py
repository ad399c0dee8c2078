"""Tiny config for tests: seconds on one CPU core.

The config lives in the installed library, `evae_jax/configs/test.py`, so that
it works from any directory; this file keeps ``--config=configs/test.py``
and ``from configs import test`` working in a checkout. Your own config
file, anywhere: ``from evae_jax.configs import test``.
"""

from evae_jax.configs.test import get_config  # pylint: disable=unused-import
