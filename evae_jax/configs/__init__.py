"""The shipped configs, installed with the library, so that they work from
any directory and a user's own config file can build on them:

    # my_config.py, anywhere
    from evae_jax.configs import mnist

    def get_config():
      config = mnist.get_config()
      config.model.latent_dim = 48
      return config

    python -m evae_jax.main --config=my_config.py --workdir=runs/mine

Each module has ``get_config()``: `default` / `digits` (the embedded 8x8
digits), `mnist`, `binarized_mnist`, `fashion_mnist` (local IDX files),
`tfd` (the paper's TFD setting), `conv_rgb` (a convolutional eVAE for your
own RGB .npz) and `test` (tiny, for tests). The checkout's
``configs/*.py`` are thin files that re-export these. Every field, its
default and its meaning: `evae_jax.configuration.defaults`.
"""
