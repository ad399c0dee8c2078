"""evae_jax: the Epitomic Variational Autoencoder (Yeung et al., 2017) in JAX.

The public, framework-agnostic API: epitome masks and the per-epitome bound.
Everything here is a pure function, safe under jit, vmap, grad and sharding.
"""

import importlib

# Imported on first use (PEP 562), so that `import evae_jax` is instant and
# the command line can handle Ctrl-C before JAX loads.
_EXPORTS = {
    'assign_epitomes': 'elbo', 'elbo_fn': 'elbo',
    'elbo_from_encoding': 'elbo', 'ElboTerms': 'elbo',
    'epitome_loss': 'elbo', 'iw_log_likelihood': 'elbo',
    'iw_log_likelihood_per_epitome': 'elbo', 'iwae_loss': 'elbo',
    'logsumexp_bound': 'elbo', 'point_estimate_bound': 'elbo',
    'EpitomeConfigError': 'epitomes', 'epitome_starts': 'epitomes',
    'make_masks': 'epitomes', 'num_epitomes': 'epitomes',
    'bernoulli_log_prob': 'likelihoods',
    'gaussian_kl_to_standard': 'likelihoods',
    'gaussian_log_prob': 'likelihoods',
}


def __getattr__(name):
  if name in _EXPORTS:
    value = getattr(importlib.import_module(f'evae_jax.{_EXPORTS[name]}'),
                    name)
    globals()[name] = value
    return value
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__():
  return sorted(set(globals()) | set(_EXPORTS))


__version__ = '0.1.0'

__all__ = [
    'ElboTerms', 'EpitomeConfigError', 'assign_epitomes',
    'bernoulli_log_prob', 'elbo_fn', 'elbo_from_encoding', 'epitome_loss',
    'epitome_starts', 'gaussian_kl_to_standard', 'gaussian_log_prob',
    'iw_log_likelihood', 'iw_log_likelihood_per_epitome', 'iwae_loss',
    'logsumexp_bound', 'make_masks', 'num_epitomes',
    'point_estimate_bound',
]
