"""The shapes of a model from its config: the latent layout (D, K, s), the
networks' parameter count in closed form, and the mVAE's matched width."""

from typing import Tuple

import ml_collections

from evae_jax import epitomes


MODEL_KINDS = ('evae', 'vae', 'mvae')


def epitome_shape(model_config: ml_collections.ConfigDict
                  ) -> Tuple[int, int, int]:
  """(D, K, s) of the latent layout of ``config.model``.

  Kind 'vae' forces K = s = D. Kind 'mvae' has one component per epitome
  of the eVAE with the same (D, K) and non-overlapping epitomes, E =
  `epitomes.num_epitomes` (D, K, K) components of K units each, laid out
  side by side: E * K units, which is more than D when K does not divide D
  (D = 8, K = 3: E = 3 components, 9 units).

  Args:
    model_config: the ``model`` section (kind, latent_dim, epitome_size,
      stride).

  Returns:
    (D, K, s), the stride resolved (0 = K).

  Raises:
    evae_jax.errors.EpitomeConfigError: for 'mvae', K does not fit D.
  """
  d = model_config.latent_dim
  if model_config.kind == 'vae':
    return d, d, d
  k = model_config.epitome_size
  if model_config.kind == 'mvae':
    epitomes.validate(d, k, k)
    return epitomes.num_epitomes(d, k, k) * k, k, k
  return d, k, epitomes.resolve_stride(k, model_config.stride)


def param_count(output_dim: int, latent_dim: int, hidden_dim: int,
                num_layers: int, likelihood: str) -> int:
  """Number of parameters of a `VAENetwork`, in closed form.

  Args:
    output_dim: N, pixels per example.
    latent_dim: D.
    hidden_dim: H.
    num_layers: L.
    likelihood: 'bernoulli' or 'gaussian' (a second output head).

  Returns:
    The count, equal to `count_params` of its initial parameters.
  """
  def mlp(n_in):
    if num_layers == 0:
      return 0, n_in
    return (n_in * hidden_dim + hidden_dim
            + (num_layers - 1) * (hidden_dim * hidden_dim + hidden_dim),
            hidden_dim)
  enc, h_enc = mlp(output_dim)
  dec, h_dec = mlp(latent_dim)
  heads = 2 if likelihood == 'gaussian' else 1
  return (enc + 2 * (h_enc * latent_dim + latent_dim)
          + dec + heads * (h_dec * output_dim + output_dim))


def mixture_hidden_dim(model_config: ml_collections.ConfigDict,
                       output_dim: int) -> int:
  """H' per mVAE component whose E components together have the parameter
  count closest to the eVAE with the same (L, H, D, K) (paper §5.2).

  Args:
    model_config: the ``model`` section, read as the eVAE's.
    output_dim: N, pixels per example.

  Returns:
    H', in [1, 4 H].
  """
  d, k, s = epitome_shape(model_config)
  e = epitomes.num_epitomes(d, k, s)
  count = lambda latent, h: param_count(output_dim, latent, h,
                                        model_config.num_layers,
                                        model_config.likelihood)
  target = count(model_config.latent_dim, model_config.hidden_dim)
  return min(range(1, 4 * model_config.hidden_dim + 1),
             key=lambda h: abs(e * count(k, h) - target))
