"""The registry of training objectives: `register`, `get`, `names`, `loss`.

See `evae_jax.objectives` for the contract an objective meets.
"""

import collections
import dataclasses
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

from evae_jax import errors

# Every model kind of `evae_jax.models.MODEL_KINDS`.
ALL_MODEL_KINDS = ('evae', 'vae', 'mvae')


class LossSettings(NamedTuple):
  """The static part of `LossOptions`: the settings that select code when
  the loss is traced, one field per ``config.train`` field of the same name.

  Hashable, so that `evae_jax.train.steps.StepOptions` (a static argument of
  the compiled step) holds one. A new objective option is a field here (and
  its default in ``evae_jax/configuration/defaults.py``); `LossOptions`,
  ``StepOptions.from_config`` and the step's call of the loss take it from
  this class.

  Attributes:
    z_dropout_rate: dropout on z (the dropout VAE of paper §3.2); 0 off.
    num_samples: k of the importance-weighted objectives.
    free_bits: lambda_FB nats of free bits (Kingma et al., 2016); 0 off. A
      Python number (it selects code at trace time).
    free_bits_group: latent units per free-bits group (1: per unit).
  """
  z_dropout_rate: float = 0.0
  num_samples: int = 1
  free_bits: float = 0.0
  free_bits_group: int = 1

  @classmethod
  def from_config(cls, train_config: Any) -> 'LossSettings':
    """The settings of a run's ``config.train`` (fields read by name).

    Args:
      train_config: ``config.train`` of a configuration (any mapping with
        the fields).

    Returns:
      The `LossSettings` of ``train_config``.
    """
    return cls(**{name: train_config[name] for name in cls._fields})


class LossOptions(collections.namedtuple(
    'LossOptions', ('kl_weight', 'assignments') + LossSettings._fields,
    defaults=(1.0, None) + tuple(LossSettings._field_defaults[name]
                                 for name in LossSettings._fields))):
  """What every objective receives besides the model, the batch and the key:
  the traced values of a call and the static `LossSettings`, field by field.

  Attributes:
    kl_weight: lambda of paper §3.1 (scalar; may be traced, e.g. vmapped over
      models or warmed up by the step).
    assignments: optional (B,) int epitome per example fixed in advance
      (Algorithm 1) from data independent of the key; None: chosen per step.
    z_dropout_rate, num_samples, free_bits, free_bits_group: the fields of
      `LossSettings` (see there).
  """
  __slots__ = ()

  @property
  def settings(self) -> LossSettings:
    """The static part, as a `LossSettings`."""
    return LossSettings(*(getattr(self, n) for n in LossSettings._fields))


class LossAux(NamedTuple):
  """The (B,) per-example diagnostics an objective returns beside its loss,
  without gradients; a field the objective does not compute is None.

  Every built-in objective gives ``bound``, ``elbo`` and ``assignments``.
  'point' and 'logsumexp' add ``log_lik`` and ``kl`` of y*, 'logsumexp' adds
  ``logsumexp_bound``, and with free bits both add ``free_bits_kl``
  (`evae_jax.objectives.point`). 'iwae' and 'iwae_marginal' give the three
  only (`evae_jax.objectives.iwae`).

  A field also reads by name, ``aux['bound']``, as in the dict it replaces;
  it is not a mapping (no ``in``, ``get`` or ``items``).

  Attributes:
    bound: the objective's lower bound on log p(x), in nats: eq. 7 with
      -log E for 'point', the IWAE bound L_k for the IWAE objectives.
    elbo: the true (unweighted) ELBO of y*, without log E (for the IWAE
      objectives, the mean over the k samples of log w of y*).
    assignments: int32 y*, the epitome each example was scored with.
    log_lik: log p(x | y*, z) on the scoring draw.
    kl: the true KL of y* on the scoring draw.
    logsumexp_bound: the true bound of 'logsumexp' (q_A(y|x) = softmax).
    free_bits_kl: the KL term as free bits change it, the one in the loss.
  """
  bound: Any
  elbo: Any
  assignments: Optional[Any] = None
  log_lik: Optional[Any] = None
  kl: Optional[Any] = None
  logsumexp_bound: Optional[Any] = None
  free_bits_kl: Optional[Any] = None

  def __getitem__(self, key):
    """``aux['bound']``: a field by name (KeyError where it is None); an
    integer index as for any tuple."""
    if not isinstance(key, str):
      return tuple.__getitem__(self, key)
    value = getattr(self, key, None) if key in self._fields else None
    if value is None:
      raise KeyError(f'{key!r}: this objective gives {list(self.present())}.')
    return value

  def present(self) -> Dict[str, Any]:
    """The fields this objective computed.

    Returns:
      {field name: (B,) value} of the fields that are not None, in field
      order (the step averages them into its metrics).
    """
    return {k: v for k, v in zip(self._fields, self) if v is not None}


LossFn = Callable[[Any, Any, Any, LossOptions], Tuple[Any, LossAux]]


@dataclasses.dataclass(frozen=True)
class Objective:
  """A registered objective.

  Attributes:
    name: its value of ``train.objective``.
    loss_fn: (latents, x, rng, LossOptions) -> (scalar loss, `LossAux` of
      (B,) diagnostics).
    model_kinds: the model kinds (``model.kind``) it is implemented for.
    uses_num_samples: whether it reads ``num_samples`` (k); if not, k must be 1.
    weights_kl: whether it has a KL term that ``kl_weight``,
      ``z_dropout_rate``, free bits and KL warm-up act on. An objective
      without one (an importance-weighted bound) takes none of them.
    summary: one line for error messages and docs.
  """
  name: str
  loss_fn: LossFn
  model_kinds: Tuple[str, ...]
  uses_num_samples: bool
  weights_kl: bool
  summary: str

  def check(self, model_kinds: Tuple[str, ...], options: LossOptions) -> None:
    """Checks that ``options`` suit this objective and that it is
    implemented for ``model_kinds``.

    Args:
      model_kinds: the model kinds one latent interface of `evae_jax.elbo`
        serves (its ``model_kinds``).
      options: the `LossOptions` of the call.

    Raises:
      errors.ObjectiveError: a model kind it is not implemented for, k != 1
        for an objective without ``num_samples``, or a KL weight, z dropout
        or free bits for one without a KL term (concrete values only).
    """
    missing = [k for k in model_kinds if k not in self.model_kinds]
    if missing:
      raise errors.ObjectiveError(
          f'The objective {self.name!r} is implemented for model kinds '
          f'{self.model_kinds}, not {missing[0]!r}.')
    if not self.uses_num_samples and options.num_samples != 1:
      raise errors.ObjectiveError(
          f'The objective {self.name!r} does not use num_samples '
          f'(got {options.num_samples}); objectives that do: '
          f'{names(uses_num_samples=True)}.')
    given = self.kl_settings_given({'kl_weight': options.kl_weight,
                                    'z_dropout_rate': options.z_dropout_rate,
                                    'free_bits': options.free_bits})
    if given:
      raise errors.ObjectiveError(
          f'The objective {self.name!r} is a bound on log p(x) without a '
          f'separate KL term: it takes no {given[0]} (got '
          f'{getattr(options, given[0])!r}).')

  def kl_settings_given(self, values: Dict[str, Any]) -> List[str]:
    """The settings of `KL_TERM_SETTINGS` that ``values`` set away from
    off, where this objective has no KL term for them to act on.

    The one rule behind the config check (`evae_jax.configuration`), this
    objective's own `check` and the compiled step's KL warm-up check.

    Args:
      values: {setting name: value}, any subset of `KL_TERM_SETTINGS`
        (values that are not concrete numbers, e.g. traced, are skipped).

    Returns:
      Their names in `KL_TERM_SETTINGS` order; [] for an objective with a
      KL term (``weights_kl``).
    """
    if self.weights_kl:
      return []
    given = []
    for name, off in KL_TERM_SETTINGS:
      if name not in values:
        continue
      value = values[name]
      if isinstance(off, tuple):
        value = tuple(value)
      elif not _is_number(value):
        continue
      if value != off:
        given.append(name)
    return given


# The settings that act on an objective's KL term, each with the value that
# turns it off. An objective without a KL term (``weights_kl=False``, an
# importance-weighted bound) takes each only at that value.
KL_TERM_SETTINGS = (('kl_weight', 1.0), ('kl_weights', ()),
                    ('z_dropout_rate', 0.0), ('free_bits', 0.0),
                    ('kl_warmup_steps', 0))


def _is_number(value) -> bool:
  """A concrete Python number (a traced KL weight cannot be checked here;
  `evae_jax.configuration` checks the config's)."""
  return isinstance(value, (int, float)) and not isinstance(value, bool)


REGISTRY: Dict[str, Objective] = {}


def register(name: str, *, model_kinds: Tuple[str, ...] = ALL_MODEL_KINDS,
             uses_num_samples: bool = False, weights_kl: bool = True,
             summary: str = '') -> Callable[[LossFn], LossFn]:
  """Decorator: registers ``loss_fn`` as the objective ``name``.

  Args:
    name: the value of ``train.objective`` that selects it.
    model_kinds: model kinds it is implemented for.
    uses_num_samples: it reads ``options.num_samples``.
    weights_kl: it has a KL term (see `Objective`).
    summary: one line describing it.

  Returns:
    The decorator, which returns ``loss_fn`` unchanged.

  Raises:
    ValueError: (when the decorator is applied) ``name`` is registered
      already.
  """
  def decorate(loss_fn: LossFn) -> LossFn:
    if name in REGISTRY:
      raise ValueError(f'The objective {name!r} is registered twice.')
    REGISTRY[name] = Objective(
        name, loss_fn, tuple(model_kinds), uses_num_samples, weights_kl,
        summary or (loss_fn.__doc__ or '').split('\n')[0])
    return loss_fn
  return decorate


def names(**flags) -> Tuple[str, ...]:
  """Registered objective names, optionally those whose fields equal
  ``flags`` (e.g. ``names(uses_num_samples=True)``).

  Args:
    **flags: `Objective` fields and the values to keep.

  Returns:
    The names, in registration order.
  """
  return tuple(n for n, o in REGISTRY.items()
               if all(getattr(o, k) == v for k, v in flags.items()))


def get(name: str) -> Objective:
  """The registered objective ``name``.

  Args:
    name: a value of ``train.objective``.

  Returns:
    Its `Objective`.

  Raises:
    errors.ObjectiveError: no objective is registered under ``name``.
  """
  if name not in REGISTRY:
    raise errors.ObjectiveError(
        f'objective must be one of {names()}, got {name!r}.')
  return REGISTRY[name]


def loss(latents, x, rng, *, objective: str = 'point',
         **options) -> Tuple[Any, LossAux]:
  """The training loss of ``objective`` for a model kind.

  Args:
    latents: the model as an `evae_jax.objectives.latents.Latents`
      (`SharedLatents`, `MixtureLatents`); its ``model_kinds`` are checked
      against the objective's.
    x: (B, ...) batch.
    rng: PRNG key.
    objective: a registered name.
    **options: fields of `LossOptions`.

  Returns:
    (loss, aux) of the objective's function, aux a `LossAux` (an objective
    of one's own that returns a dict of its fields gets it as a `LossAux`).

  Raises:
    errors.ObjectiveError: unknown objective, one that does not support
      these options or this model kind, or one whose aux is neither a
      `LossAux` nor a dict of its fields.
  """
  spec = get(objective)
  options = LossOptions(**options)
  spec.check(latents.model_kinds, options)
  value, aux = spec.loss_fn(latents, x, rng, options)
  return value, _as_aux(objective, aux)


def _as_aux(objective: str, aux: Any) -> LossAux:
  """``aux`` as a `LossAux` (a dict of its fields is converted)."""
  if isinstance(aux, LossAux):
    return aux
  if isinstance(aux, dict):
    unknown = sorted(set(aux) - set(LossAux._fields))
    missing = [k for k in LossAux._fields[:2] if k not in aux]
    if not unknown and not missing:
      return LossAux(**aux)
    raise errors.ObjectiveError(
        f'The objective {objective!r} returned an aux dict with '
        + (f'unknown keys {unknown}' if unknown else f'no {missing}')
        + f'; return a LossAux (fields {list(LossAux._fields)}; bound and '
        'elbo are required).')
  raise errors.ObjectiveError(
      f'The objective {objective!r} returned an aux of type '
      f'{type(aux).__name__}; return a LossAux.')
