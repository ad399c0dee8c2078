"""A trained model in five lines: ``evae_jax.load(workdir)``.

    import jax, evae_jax
    m = evae_jax.load('runs/digits')          # local folder or gs://bucket/run
    x = m.splits.test[:100]                    # uint8 (100, 8, 8), as loaded
    log_px = m.log_likelihood(x, jax.random.PRNGKey(0), num_samples=1000)
    images = m.sample(jax.random.PRNGKey(1), 16)   # (16, 8, 8) in [0, 1]

`load` reads the workdir's ``config.json`` (checked against the config
recorded with the checkpoints) and newest checkpoint, as ``--mode=evaluate``
does, or a model file (`evae_jax.pretrained`), and returns a `TrainedModel`;
the data are read when ``m.splits`` is first used. Its methods are thin
wrappers of `evae_jax.models`, `evae_jax.sampling` and `evae_jax.evaluate`,
jitted with the model static.

Inputs: images x of shape (B,) + the dataset's ``m.image_shape`` ((H, W),
or (H, W, 3) for RGB), (B, H, W, 1) or (B, N) flat; uint8 in [0, 255]
(scaled by 1/255) or floats in [0, 1]. No binarisation: a Bernoulli decoder
scores grey levels as a cross-entropy; to score images exactly as
``--mode=evaluate`` does (one fixed binarisation of the test images for
``data.binarization=dynamic``), pass ``m.eval_inputs(images)``. Random
keys ``rng``: a ``jax.random`` key or an int seed (the same key, the same
result).
"""

import functools
from typing import Optional, Tuple, Union

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from evae_jax import configuration
from evae_jax import elbo
from evae_jax import errors
from evae_jax import metrics as metrics_lib
from evae_jax.storage import files
from evae_jax import data as input_pipeline
from evae_jax import sampling
from evae_jax import state as state_lib
from evae_jax.storage import workdirs
from evae_jax.train import restored

Key = Union[jax.Array, int]


def _key(rng: Key) -> jax.Array:
  """A PRNG key from a key or an int seed."""
  if isinstance(rng, (int, np.integer)):
    return jax.random.PRNGKey(int(rng))
  return rng


@functools.partial(jax.jit, static_argnums=(0,))
def _encode(model, params, x):
  return model.encode(params, x)


@functools.partial(jax.jit, static_argnums=(0,))
def _elbo_terms(model, params, x, rng):
  return model.elbo_terms(params, x, rng)[0]


@functools.partial(jax.jit, static_argnums=(0,))
def _assign(model, params, x, rng):
  return elbo.assign_epitomes(model.elbo_terms(params, x, rng)[0].elbo)


@functools.partial(jax.jit, static_argnums=(0,))
def _bound(model, params, x, rng):
  score = model.elbo_terms(params, x, rng)[0].elbo
  select = model.elbo_terms(params, x, elbo.selection_key(rng))[0].elbo
  return elbo.point_estimate_bound(select, score)


@functools.partial(jax.jit, static_argnums=(0,))
def _reconstruct(model, params, x, rng):
  y = elbo.assign_epitomes(model.elbo_terms(params, x, rng)[0].elbo)
  return sampling.reconstruct(model, params, x, y)


@functools.partial(jax.jit, static_argnums=(0, 3))
def _generate(model, params, rng, n):
  return sampling.generate(model, params, rng, n)


class TrainedModel:
  """A trained eVAE / VAE / mVAE: its config, parameters and epitome masks.

  Made by `load`, not meant to be constructed directly.

  Attributes:
    workdir: where it was loaded from (a workdir or a model file).
    config: the ``ml_collections.ConfigDict`` it was trained with.
    params: the parameters of the newest checkpoint.
    model: the `evae_jax.models.Model` (pure functions of ``params``).
    masks: (E, D) float32 epitome masks; a VAE has E = 1.
    step: training steps of the checkpoint.

  Args:
    workdir, config: as the attributes.
    state: anything with the restored ``model``, ``params`` and ``step``.
    image_shape: (H, W) or (H, W, C) of the images.
    splits: the dataset as training saw it (None: read when first used).
  """

  def __init__(self, workdir: str, config: ml_collections.ConfigDict,
               state: state_lib.TrainState, image_shape: Tuple[int, int],
               splits: Optional[input_pipeline.Splits] = None):
    self.workdir = workdir
    self.config = config
    self.params = state.params
    self.model = state.model
    self.masks = self.model.masks
    self._image_shape = tuple(image_shape)
    self._splits = splits
    self.step = int(state.step)

  @property
  def splits(self) -> input_pipeline.Splits:
    """The dataset as training saw it (`evae_jax.data.Splits`, uint8 (n, H,
    W) train / valid / test), read from ``config.data`` when first used."""
    if self._splits is None:
      self._splits = restored.load_data(self.config, self.workdir)
    return self._splits

  def __repr__(self) -> str:
    m = self.config.model
    return (f'TrainedModel({self.workdir!r}: {m.kind}, D={self.latent_dim}, '
            f'E={self.num_epitomes}, {m.likelihood} likelihood, '
            f'images {self.image_shape}, step {self.step})')

  @property
  def image_shape(self) -> Tuple[int, int]:
    """(H, W) (or (H, W, C)) of the images the model was trained on."""
    return self._image_shape

  @property
  def num_epitomes(self) -> int:
    """E."""
    return int(self.masks.shape[0])

  @property
  def latent_dim(self) -> int:
    """D, latent units in the flat layout (E * K for an mVAE)."""
    return int(self.masks.shape[1])

  def inputs(self, x) -> jax.Array:
    """Images -> the float32 (B, N) inputs of the network (module docstring).

    Args:
      x: (B,) + image_shape, (B, H, W, 1) or (B, N); uint8 in [0, 255] or
        floats in [0, 1].

    Returns:
      (B, N) float32 in [0, 1], N = H * W (* C).

    Raises:
      ValueError: the shape or the values do not fit the model.
    """
    n = int(np.prod(self.image_shape))
    shape = tuple(np.shape(x))
    if len(shape) == 4 and shape[-1] == 1:
      shape = shape[:-1]
    if len(shape) < 2 or int(np.prod(shape[1:])) != n:
      raise ValueError(
          f'x has shape {np.shape(x)}; this model takes a batch of '
          f'{"x".join(map(str, self.image_shape))} images: (B,) + '
          f'{self.image_shape}, (B, {n}) flat, or (B, H, W, 1) for '
          'grey-scale. '
          'For one image, add a leading axis (x[None]).')
    dtype = np.dtype(x.dtype) if hasattr(x, 'dtype') else np.asarray(x).dtype
    if dtype == np.uint8:
      return jnp.asarray(x).reshape(shape[0], n).astype(jnp.float32) / 255.0
    if dtype == np.bool_ or np.issubdtype(dtype, np.floating):
      if isinstance(x, np.ndarray) and x.size and not (
          np.all(np.isfinite(x)) and x.min() >= 0.0 and x.max() <= 1.0):
        raise ValueError(
            f'x holds floats in [{np.nanmin(x):g}, {np.nanmax(x):g}] (or '
            'NaN/inf); float images must lie in [0, 1]. Pass uint8 images '
            '(scaled by 1/255) or divide by 255 first.')
      return jnp.asarray(x, jnp.float32).reshape(shape[0], n)
    raise ValueError(f'x has dtype {dtype}; pass uint8 images in [0, 255] or '
                     'float images in [0, 1].')

  def eval_inputs(self, images: np.ndarray) -> jax.Array:
    """uint8 images -> (B, N) inputs exactly as ``--mode=evaluate`` scores
    them: with ``data.binarization=dynamic``, one fixed stochastic
    binarisation (`evae_jax.evaluate.eval_inputs`); else x / 255.

    Args:
      images: uint8 (B,) + image_shape (or (B, N)) in [0, 255], as `splits`.

    Returns:
      (B, N) float32 in [0, 1], N = H * W (* C): binary if dynamic.

    Raises:
      ValueError: the images are not uint8.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
      raise ValueError(f'eval_inputs takes uint8 images (as in .splits), not '
                       f'{images.dtype}.')
    return metrics_lib.eval_inputs(images.reshape((len(images),)
                                               + self.image_shape),
                                self.config.data)

  def encode(self, x) -> Tuple[jax.Array, jax.Array]:
    """The Gaussian posterior q(z | x) over all D units.

    Args:
      x: (B, ...) images (see `inputs`).

    Returns:
      (mu, logvar), each (B, D). Epitome y uses the units where
      ``masks[y]`` is 1: q(z | x, y) = N(masks[y] * mu, exp(masks[y] * logvar)).

    Raises:
      ValueError: x does not fit the model (see `inputs`).
    """
    return _encode(self.model, self.params, self.inputs(x))

  def elbo(self, x, rng: Key) -> elbo.ElboTerms:
    """Single-sample ELBO_y(x) of every epitome, one shared noise draw.

        ELBO_y(x) = log p(x | y, z_y)
                    - sum_d masks[y, d] KL(q(z_d | x) || N(0, 1))

    Args:
      x: (B, ...) images (see `inputs`).
      rng: key (or int seed) of the noise.

    Returns:
      `evae_jax.ElboTerms` (elbo, log_lik, kl), each (B, E), in nats.

    Raises:
      ValueError: x does not fit the model (see `inputs`).
    """
    return _elbo_terms(self.model, self.params, self.inputs(x), _key(rng))

  def bound(self, x, rng: Key) -> jax.Array:
    """The eq. 7 lower bound on log p(x): ELBO_{y*}(x) - log E, with y*
    chosen on one noise draw and scored on an independent one (unbiased,
    as ``--mode=evaluate``'s 'bound').

        y* = argmax_y ELBO_y(x; A),   bound = ELBO_{y*}(x; B) - log E

    Args:
      x: (B, ...) images (see `inputs`).
      rng: key (or int seed); draws A and B both derive from it.

    Returns:
      (B,) nats.

    Raises:
      ValueError: x does not fit the model (see `inputs`).
    """
    return _bound(self.model, self.params, self.inputs(x), _key(rng))

  def assign(self, x, rng: Key) -> jax.Array:
    """y*(x) = argmax_y ELBO_y(x) on one noise draw (eq. 7).

    Args:
      x: (B, ...) images (see `inputs`).
      rng: key (or int seed) of the noise.

    Returns:
      (B,) int32 epitome indices in [0, E).

    Raises:
      ValueError: x does not fit the model (see `inputs`).
    """
    return _assign(self.model, self.params, self.inputs(x), _key(rng))

  def reconstruct(self, x, rng: Key) -> jax.Array:
    """Decoder mean at the posterior mean of the assigned epitome,
    E[x | masks[y*] * mu(x)], with y* = `assign` (x, rng).

    Args:
      x: (B, ...) images (see `inputs`).
      rng: key (or int seed) of the noise that chooses y*.

    Returns:
      (B,) + image_shape float32 in [0, 1].

    Raises:
      ValueError: x does not fit the model (see `inputs`).
    """
    x = self.inputs(x)
    out = _reconstruct(self.model, self.params, x, _key(rng))
    return out.reshape((x.shape[0],) + self.image_shape)

  def sample(self, rng: Key, n: int) -> jax.Array:
    """Draws from the generative model: y ~ U{1..E}, z ~ N(0, I), and the
    decoder mean E[x | masks[y] * z].

    Args:
      rng: key (or int seed) of y and z.
      n: how many images.

    Returns:
      (n,) + image_shape float32 in [0, 1].

    Raises:
      ValueError: n < 1.
    """
    if n < 1:
      raise ValueError(f'n={n} must be >= 1.')
    x = _generate(self.model, self.params, _key(rng), int(n))
    return jnp.clip(x, 0.0, 1.0).reshape((n,) + self.image_shape)

  def log_likelihood_per_epitome(self, x, rng: Key, num_samples: int = 5000,
                                 chunk_size: int = 100,
                                 batch_size: int = 100) -> np.ndarray:
    """Importance-weighted estimates of log p(x | y) for every epitome
    (Burda et al.; `evae_jax.iw_log_likelihood_per_epitome`).

    Args:
      x: (B, ...) images (see `inputs`).
      rng: key (or int seed); batch i uses fold_in(rng, i).
      num_samples: k importance samples (5000 in the paper).
      chunk_size: samples drawn at once (bounds memory).
      batch_size: examples per batch (bounds memory).

    Returns:
      (B, E) float32 numpy array, nats.

    Raises:
      ValueError: num_samples < 1, or x does not fit the model.
    """
    return self._iw(x, rng, num_samples, chunk_size, batch_size)['per_epitome']

  def log_likelihood(self, x, rng: Key, num_samples: int = 5000,
                     chunk_size: int = 100, batch_size: int = 100
                     ) -> np.ndarray:
    """Importance-weighted estimate of log p(x), marginal over epitomes with
    the paper's uniform prior p(y) = 1/E:

        log p(x) ~= logsumexp_y log p(x | y) - log E

    with log p(x | y) from `log_likelihood_per_epitome` (same arguments,
    same values). The headline 'IW log-likelihood, marginal' of
    ``--mode=evaluate``; an estimate that tightens (from below, in
    expectation) as ``num_samples`` grows.

    Args:
      x: (B, ...) images (see `inputs`).
      rng: key (or int seed); batch i uses fold_in(rng, i).
      num_samples: k importance samples per epitome (5000 in the paper).
      chunk_size: samples drawn at once (bounds memory).
      batch_size: examples per batch (bounds memory).

    Returns:
      (B,) float numpy array, nats.

    Raises:
      ValueError: num_samples < 1, or x does not fit the model.
    """
    return self._iw(x, rng, num_samples, chunk_size, batch_size)['marginal']

  def _iw(self, x, rng, num_samples, chunk_size, batch_size):
    if num_samples < 1:
      raise ValueError(f'num_samples={num_samples} must be >= 1.')
    return metrics_lib.iw_estimates(self.params, self.model, self.inputs(x),
                                 _key(rng), int(num_samples), int(chunk_size),
                                 int(batch_size))

  def active_units(self, x, rng: Key, threshold: float = 0.02
                   ) -> Tuple[np.ndarray, int]:
    """Unit activity A_u = Cov_x(E_q[u]) over the batch x (paper §3), with
    E_q[u] = mu_u(x) inside the assigned epitome y*(x) and 0 outside.

        A_u = Var_x(M[y*(x), u] mu_u(x))

    Args:
      x: (B, ...) images (see `inputs`); A_u is a variance over these.
      rng: key (or int seed) of the noise that chooses y*.
      threshold: a unit is active if A_u > threshold (0.02 in the paper,
        0.01 in Burda et al.).

    Returns:
      (activity (D,) numpy array, number of units with A_u > threshold).

    Raises:
      ValueError: x does not fit the model (see `inputs`).
    """
    x = self.inputs(x)
    mu, _ = _encode(self.model, self.params, x)
    y = _assign(self.model, self.params, x, _key(rng))
    activity, count = metrics_lib.active_units(mu, y, self.masks, threshold)
    return np.asarray(activity), count


def load(workdir: str, member: Optional[str] = None,
         overrides: Optional[dict] = None,
         sha256: Optional[str] = None) -> TrainedModel:
  """Loads the newest checkpoint of a training run, or a model file.

  Args:
    workdir: the run's --workdir (local path or ``gs://bucket/run``), or
      one member subdirectory of a run that trained several models
      (``train.num_seeds`` / ``train.kl_weights``), e.g. ``runs/x/seed=1``.
      Or a model file (`evae_jax.pretrained`): `evae_jax.export`'s file,
      ``'pretrained:NAME'`` or an ``https://`` URL (with ``sha256``).
    member: for such a run, the member subdirectory's name instead
      (``load('runs/x', member='seed=1')``).
    overrides: config fields to change before loading, flattened, e.g.
      ``{'data.path': '/new/place/data.npz'}`` when the data moved. Fields
      that define the model must stay as trained.
    sha256: a model file's expected SHA-256 (required for a URL).

  Returns:
    A `TrainedModel`, which reads the data only when ``.splits`` is used.

  Raises:
    evae_jax.errors.ConfigError: not a trained workdir, one that holds
      several models and no ``member`` was given (the message lists them),
      or one whose config.json was edited after training.
    evae_jax.errors.DataError: checkpoints of an earlier version (which do
      not record the image size), and the data cannot be loaded.
  """
  from evae_jax import pretrained  # pylint: disable=g-import-not-at-top
  if not member and pretrained.is_model_source(str(workdir)):
    return pretrained.load(str(workdir), sha256, overrides)
  workdir = files.join(str(workdir), member) if member else str(workdir)
  config = workdirs.saved_config(workdir)
  team = state_lib.members(config)
  if len(team) > 1:
    names = [name for name, _ in team]
    raise errors.ConfigError(
        f'{workdir} holds {len(team)} models trained side by side ('
        f'{", ".join(names)}); load one: evae_jax.load({workdir!r}, '
        f'member={names[0]!r}) or evae_jax.load('
        f'{files.join(workdir, names[0])!r}).')
  pinned = dict(configuration.flatten(configuration.config_as_dict(config)))
  for field, value in (overrides or {}).items():
    if field not in pinned:
      raise errors.ConfigError(f'overrides: unknown config field {field!r}.')
    if any(field.startswith(p) for p in workdirs.EVALUATION_PINNED):
      raise errors.ConfigError(
          f'overrides: {field} defines the trained model and cannot change '
          f'(trained: {pinned[field]!r}).')
    section, _, name = field.rpartition('.')
    (config[section] if section else config)[name] = value
  return TrainedModel(workdir, config, *restored.restore(config, workdir))


__all__ = ['TrainedModel', 'load']
