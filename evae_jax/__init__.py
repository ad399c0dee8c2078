"""evae_jax: the Epitomic Variational Autoencoder (Yeung et al., 2017) in JAX.

The public, framework-agnostic API: epitome masks and the per-epitome bound.
Everything here is a pure function, safe under jit, vmap, grad and sharding.
"""

from evae_jax.elbo import assign_epitomes
from evae_jax.elbo import elbo_fn
from evae_jax.elbo import elbo_from_encoding
from evae_jax.elbo import ElboTerms
from evae_jax.elbo import epitome_loss
from evae_jax.elbo import iw_log_likelihood
from evae_jax.elbo import iwae_loss
from evae_jax.elbo import logsumexp_bound
from evae_jax.elbo import point_estimate_bound
from evae_jax.epitomes import EpitomeConfigError
from evae_jax.epitomes import epitome_starts
from evae_jax.epitomes import make_masks
from evae_jax.epitomes import num_epitomes
from evae_jax.likelihoods import bernoulli_log_prob
from evae_jax.likelihoods import gaussian_kl_to_standard
from evae_jax.likelihoods import gaussian_log_prob

__version__ = '0.1.0'

__all__ = [
    'ElboTerms', 'EpitomeConfigError', 'assign_epitomes',
    'bernoulli_log_prob', 'elbo_fn', 'elbo_from_encoding', 'epitome_loss',
    'epitome_starts', 'gaussian_kl_to_standard', 'gaussian_log_prob',
    'iw_log_likelihood', 'iwae_loss', 'logsumexp_bound', 'make_masks', 'num_epitomes',
    'point_estimate_bound',
]
