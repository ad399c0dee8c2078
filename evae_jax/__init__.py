"""evae_jax: the Epitomic Variational Autoencoder (Yeung et al., 2017) in JAX.

A trained model: ``evae_jax.load(workdir)`` (`evae_jax.api`) returns a
`TrainedModel` with encode, elbo, log_likelihood, sample, reconstruct and
assign.

The framework-agnostic API: epitome masks, the per-epitome bound and the
importance-weighted estimates of log p(x | y) (per epitome, (B, E)) and of
log p(x) (marginal over epitomes, (B,)). These are pure functions, safe
under jit, vmap, grad and sharding.
"""

import importlib
import importlib.machinery
import sys
import warnings

# Imported on first use (PEP 562), so that `import evae_jax` is instant and
# the command line can handle Ctrl-C before JAX loads.
_EXPORTS = {
    'assign_epitomes': 'elbo', 'elbo_fn': 'elbo',
    'elbo_from_encoding': 'elbo', 'ElboTerms': 'elbo',
    'epitome_loss': 'objectives.callables',
    'iw_log_likelihood_per_epitome': 'elbo', 
    'iwae_loss': 'objectives.callables',
    'logsumexp_bound': 'elbo', 'point_estimate_bound': 'elbo',
    'EpitomeConfigError': 'errors', 'epitome_starts': 'epitomes',
    'make_masks': 'epitomes', 'num_epitomes': 'epitomes',
    'bernoulli_log_prob': 'likelihoods',
    'gaussian_kl_to_standard': 'likelihoods',
    'gaussian_log_prob': 'likelihoods',
    'iw_log_marginal_likelihood': 'marginal',
    'log_marginal_from_per_epitome': 'marginal',
    'load': 'api', 'TrainedModel': 'api', 'export': 'pretrained',
}
# Old names: still served, with a DeprecationWarning on every access (they
# are never cached in the module's globals, so each use warns).
_DEPRECATED = {
    'iw_log_likelihood': (
        'elbo', 'iw_log_likelihood_per_epitome',
        'evae_jax.iw_log_likelihood returns log p(x | y) per epitome, shape '
        '(B, E), not log p(x). Use evae_jax.iw_log_likelihood_per_epitome '
        'for those values (the same function) or '
        'evae_jax.iw_log_marginal_likelihood for log p(x), shape (B,); the '
        'old name will be removed.'),
}

# Modules that moved into packages: the old paths still import, with a
# DeprecationWarning, and give the same module object (so monkeypatching
# either name patches both); they will be removed.
_MOVED_MODULES = {
    'checkpoints': 'evae_jax.storage.checkpoints',
    'defaults': 'evae_jax.configuration.defaults',
    'files': 'evae_jax.storage.files',
    'input_pipeline': 'evae_jax.data',
    'metric_writers': 'evae_jax.train.metric_writers',
    'optimizers': 'evae_jax.state.optimizers',
    'report': 'evae_jax.evaluate.report',
    'schedules': 'evae_jax.state.schedules',
    'seeds': 'evae_jax.runtime.seeds',
    'sharding': 'evae_jax.runtime.sharding',
    'signals': 'evae_jax.runtime.signals',
    'steps': 'evae_jax.train.steps',
    'visualize': 'evae_jax.figures.visualize',
    'workdirs': 'evae_jax.storage.workdirs',
}


class _MovedModules:
  """Serves ``evae_jax.<old name>`` as the module at its new path.

  A meta path finder and loader by protocol (``find_spec``,
  ``create_module``, ``exec_module``): subclassing ``importlib.abc``'s would
  import ``importlib.resources``, ``pathlib`` and ``tempfile`` with
  ``import evae_jax``, several times its own import time.
  """

  def find_spec(self, fullname, path=None, target=None):
    del path, target
    prefix, _, name = fullname.partition('.')
    if prefix == __name__ and name in _MOVED_MODULES:
      return importlib.machinery.ModuleSpec(fullname, self)
    return None

  def create_module(self, spec):
    new = _MOVED_MODULES[spec.name.partition('.')[2]]
    warnings.warn(f'{spec.name} moved to {new}; import it from there (the '
                  'old path will be removed).', DeprecationWarning,
                  stacklevel=2)
    module = importlib.import_module(new)
    # The import system sets the returned module's ``__spec__`` to this
    # (old-name) spec after this call; exec_module puts the real one back.
    spec.loader_state = module.__spec__
    return module

  def exec_module(self, module):
    # The module at the new path is already executed: only its own spec,
    # which the import system replaced, is restored.
    module.__spec__ = module.__spec__.loader_state


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
  sys.meta_path.append(_MovedModules())


# Subpackages reached as attributes without their own import
# (`evae_jax.pretrained.available()`).
_SUBPACKAGES = ('pretrained',)


def __getattr__(name):
  if name in _SUBPACKAGES:
    return importlib.import_module(f'evae_jax.{name}')
  if name in _DEPRECATED:
    module, target, message = _DEPRECATED[name]
    warnings.warn(message, DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module(f'evae_jax.{module}'), target)
  if name in _EXPORTS:
    value = getattr(importlib.import_module(f'evae_jax.{_EXPORTS[name]}'),
                    name)
    globals()[name] = value
    return value
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__():
  return sorted(set(globals()) | set(_EXPORTS) | set(_DEPRECATED)
                | set(_SUBPACKAGES))


__version__ = '0.1.0'

__all__ = [
    'ElboTerms', 'EpitomeConfigError', 'TrainedModel', 'assign_epitomes',
    'bernoulli_log_prob', 'elbo_fn', 'elbo_from_encoding', 'epitome_loss',
    'epitome_starts', 'gaussian_kl_to_standard', 'gaussian_log_prob',
    'iw_log_likelihood_per_epitome', 'iw_log_marginal_likelihood',
    'iwae_loss', 'load', 'log_marginal_from_per_epitome', 'logsumexp_bound',
    'make_masks', 'num_epitomes', 'point_estimate_bound',
]
