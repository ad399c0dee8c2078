"""Default config: an eVAE on scikit-learn's bundled 8x8 digits (runs anywhere).

Every other config starts from this one and overrides a few fields. The
fields, their defaults and their meaning are in
``evae_jax/configuration/defaults.py``
(the library checks every config against them).
"""

from evae_jax.configuration import defaults

get_config = defaults.get_config
