"""Training objectives: one registry, one file per family.

An objective is one function with one signature,

    loss_fn(latents, x, rng, options: LossOptions) -> (loss, LossAux)

registered with `register`, which records what it supports (model kinds,
whether it reads ``options.num_samples``, whether it has a KL term that the
KL weight, z dropout and the over-pruning remedies act on). ``latents`` is a
model kind seen through the interface `evae_jax.objectives.latents.Latents`
(`SharedLatents` for the eVAE and VAE, `MixtureLatents` for the mVAE), so
one function serves every kind it supports.

The families: `evae_jax.objectives.point` ('point', eq. 7 of the paper, and
'logsumexp'), `evae_jax.objectives.iwae` ('iwae', 'iwae_marginal');
`evae_jax.objectives.free_bits` (a remedy acting on the KL term) and
`evae_jax.objectives.callables` (`epitome_loss`, `iwae_loss`: the same
objectives for a user's own encode/decode callables). Importing this package
registers all of them.

Everything that depends on the objective reads this registry:
`evae_jax.configuration.validate` (which settings are allowed),
`evae_jax.train.steps` (the compiled step calls the model's ``loss``) and
both model kinds (`evae_jax.models`, through `loss`). An unsupported
combination raises `errors.ObjectiveError` here, whoever calls.

Adding an objective: write the function in a file of this package (or any
module imported before the run starts), decorate it with
``@register(name, ...)``, import it below, and test it; nothing else changes.
"""

# pylint: disable=unused-import
from evae_jax.objectives.registry import ALL_MODEL_KINDS
from evae_jax.objectives.registry import KL_TERM_SETTINGS
from evae_jax.objectives.registry import LossAux
from evae_jax.objectives.registry import LossFn
from evae_jax.objectives.registry import LossOptions
from evae_jax.objectives.registry import LossSettings
from evae_jax.objectives.registry import Objective
from evae_jax.objectives.registry import REGISTRY
from evae_jax.objectives.registry import get
from evae_jax.objectives.registry import loss
from evae_jax.objectives.registry import names
from evae_jax.objectives.registry import register
# The families register themselves on import.
from evae_jax.objectives import point
from evae_jax.objectives import iwae
from evae_jax.objectives import callables

__all__ = ['ALL_MODEL_KINDS', 'KL_TERM_SETTINGS', 'LossAux', 'LossFn',
           'LossOptions', 'LossSettings',
           'Objective', 'REGISTRY', 'get', 'loss', 'names', 'register']
