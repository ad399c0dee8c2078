"""The training numerics of every model kind x objective, as golden values.

For each case (a model kind, a registered objective it supports, and the
remedies and options that change the step's arithmetic) this computes, on
the tiny test config, a fixed batch and fixed keys:

- the loss and its gradient with respect to every parameter, and
- the parameters and metrics after two compiled training steps
  (``steps.train_step``: the loss, the gradient and Adam together),

as float32 arrays. ``tests/golden/numerics-<isa>.npz`` holds them with the
``NUMERICS_VERSION`` they belong to (`evae_jax.storage.provenance`), one
file per CPU instruction set (`instruction_set`: XLA compiles for the host's
vector width, and an AVX-512 and an AVX2 CPU round the same program
differently in the last bits). ``tests/test_golden_numerics.py`` recomputes
them and requires them equal to the bit to this CPU's record, or, on a CPU
with no record, within 1e-4 of another's (and says so). A change that moves
them must bump ``NUMERICS_VERSION`` and re-record, in one commit:

    python -m tests.golden_numerics --record

which writes this CPU's record and refuses to re-record changed values under
an unchanged version, or unchanged values under a bumped one. A bump removes
the records of the other instruction sets, which then hold the old version:
record them again on such a machine.
"""

import argparse
import glob
import os
import platform
import sys
from typing import Dict, List, Optional

import jax
import numpy as np

GOLDEN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          'golden')


def instruction_set(cpuinfo: str = '/proc/cpuinfo') -> str:
  """The CPU's architecture and widest vector extension, which decide how
  XLA compiles (and so rounds) a float32 program on it.

  Args:
    cpuinfo: the file listing the CPU's flags (Linux); elsewhere, or when it
      cannot be read, the level is 'unknown'.

  Returns:
    e.g. 'x86_64-avx512', 'x86_64-avx2', 'aarch64-sve', 'arm64-unknown'.
  """
  machine = platform.machine().lower() or 'unknown'
  machine = {'amd64': 'x86_64'}.get(machine, machine)
  try:
    with open(cpuinfo) as f:
      words = set()
      for line in f:
        if line.lower().startswith(('flags', 'features')):
          words.update(line.split(':', 1)[-1].split())
  except OSError:
    words = set()
  levels = (('avx512', 'avx512f'), ('avx2', 'avx2'), ('avx', 'avx'),
            ('sve', 'sve'), ('neon', 'asimd'))
  level = next((name for name, flag in levels if flag in words),
               'baseline' if words else 'unknown')
  return f'{machine}-{level}'


def golden_path(isa: Optional[str] = None) -> str:
  """The record of instruction set ``isa`` (default: this CPU's)."""
  return os.path.join(GOLDEN_DIR, f'numerics-{isa or instruction_set()}.npz')


GOLDEN = golden_path()  # this CPU's record (it may not exist yet)


def recorded_paths() -> List[str]:
  """Every record, one per instruction set, sorted by name (the records
  beside `GOLDEN`)."""
  return sorted(glob.glob(os.path.join(os.path.dirname(GOLDEN),
                                       'numerics-*.npz')))
NUM_PIXELS = 64
BATCH = 10

# (name, model kind, config overrides): each registered objective for each
# kind it supports, and the options that take other code paths.
CASES = (
    ('evae/point', 'evae', {}),
    ('evae/point_kl_weight', 'evae', {'train.kl_weight': 0.5}),
    ('evae/point_dropout', 'evae', {'train.z_dropout_rate': 0.25}),
    ('evae/point_free_bits', 'evae', {'train.free_bits': 0.3}),
    ('evae/point_free_bits_grouped', 'evae',
     {'train.free_bits': 0.3, 'train.free_bits_group': 2}),
    ('evae/point_warmup', 'evae',
     {'train.kl_warmup_steps': 4, 'train.kl_warmup_start': 0.1}),
    ('evae/point_assigned', 'evae', {'train.assignment': 'epoch'}),
    ('evae/point_overlapping', 'evae', {'model.stride': 1}),
    ('evae/point_gaussian', 'evae', {'model.likelihood': 'gaussian'}),
    ('evae/point_tanh_2_layers', 'evae',
     {'model.activation': 'tanh', 'model.num_layers': 2}),
    ('evae/logsumexp', 'evae', {'train.objective': 'logsumexp'}),
    ('evae/iwae', 'evae', {'train.objective': 'iwae', 'train.num_samples': 3}),
    ('evae/iwae_marginal', 'evae',
     {'train.objective': 'iwae_marginal', 'train.num_samples': 3}),
    ('vae/point', 'vae', {}),
    ('vae/logsumexp', 'vae', {'train.objective': 'logsumexp'}),
    ('vae/iwae', 'vae', {'train.objective': 'iwae', 'train.num_samples': 3}),
    ('vae/iwae_marginal', 'vae',
     {'train.objective': 'iwae_marginal', 'train.num_samples': 3}),
    ('mvae/point', 'mvae', {}),
    ('mvae/point_dropout', 'mvae', {'train.z_dropout_rate': 0.25}),
    ('mvae/point_assigned', 'mvae', {'train.assignment': 'epoch'}),
    ('mvae/logsumexp', 'mvae', {'train.objective': 'logsumexp'}),
)


def _config(kind: str, overrides: Dict):
  from evae_jax.configs import test  # pylint: disable=import-outside-toplevel
  config = test.get_config()
  config.model.kind = kind
  for key, value in overrides.items():
    section, field = key.split('.')
    config[section][field] = value
  return config


def _flat(tree) -> np.ndarray:
  leaves = jax.tree_util.tree_leaves(tree)
  return np.concatenate([np.asarray(x, np.float32).ravel() for x in leaves])


def compute() -> Dict[str, np.ndarray]:
  """Every case's golden arrays, keyed 'case/what'.

  Returns:
    {f'{case}/loss': (), f'{case}/grads': (P,), f'{case}/params': (P,)
    after two steps, f'{case}/metrics': the step metrics, sorted by name,
    of the second step}; all float32.
  """
  # pylint: disable=import-outside-toplevel
  from evae_jax import state as state_lib
  from evae_jax.train import steps
  rs = np.random.RandomState(0)
  batch = (rs.rand(BATCH, NUM_PIXELS) > 0.6).astype(np.float32)
  out = {}
  for name, kind, overrides in CASES:
    config = _config(kind, overrides)
    state = state_lib.create_train_state(config, NUM_PIXELS,
                                         jax.random.PRNGKey(1), 5)
    options = steps.StepOptions.from_config(config)
    assignments = (np.arange(BATCH, dtype=np.int32)
                   % state.model.masks.shape[0]
                   if options.per_epoch_assignment else None)
    rng = jax.random.PRNGKey(2)

    def loss_fn(params, state=state, config=config, options=options,
                assignments=assignments, rng=rng):
      return state.model.loss(
          params, batch, rng, kl_weight=config.train.kl_weight,
          objective=options.objective, assignments=assignments,
          **options.loss._asdict())[0]

    loss, grads = jax.jit(jax.value_and_grad(loss_fn))(state.params)
    metrics = None
    for i in range(2):
      state, metrics = steps.train_step(
          state, batch, jax.random.fold_in(rng, i), config.train.kl_weight,
          assignments, options=options)
    out[f'{name}/loss'] = np.asarray(loss, np.float32)
    out[f'{name}/grads'] = _flat(grads)
    out[f'{name}/params'] = _flat(state.params)
    out[f'{name}/metrics'] = np.asarray(
        [metrics[k] for k in sorted(metrics)], np.float32)
  return out


def load(path: Optional[str] = None):
  """(arrays, numerics_version, jax_version) of a record (default: this
  CPU's, `GOLDEN`)."""
  with np.load(path or GOLDEN) as f:
    arrays = {k: f[k] for k in f.files}
  version = int(arrays.pop('__numerics_version__'))
  jax_version = str(arrays.pop('__jax_version__'))
  return arrays, version, jax_version


def differences(want: Dict[str, np.ndarray], got: Dict[str, np.ndarray]):
  """The keys whose arrays are not bit-identical, with the largest
  absolute difference of each (inf for a missing key or another shape)."""
  diffs = {}
  for key in sorted(set(want) | set(got)):
    a, b = want.get(key), got.get(key)
    if a is None or b is None or a.shape != b.shape:
      diffs[key] = float('inf')
    elif not np.array_equal(a.view(np.uint32), b.view(np.uint32)):
      diffs[key] = float(np.max(np.abs(a.astype(np.float64) - b)))
  return diffs


def record() -> int:
  """Writes this CPU's record, `GOLDEN`, enforcing that the version moves
  with the numbers.

  A first record for this instruction set must carry the version of the
  others (it is the same code, rounded by another CPU). A record under a
  bumped version removes the other instruction sets' records, which hold
  the old one.

  Returns:
    0 when written; 2 when refused (the reason on stderr).
  """
  from evae_jax.storage import provenance  # pylint: disable=import-outside-toplevel
  today = provenance.NUMERICS_VERSION
  got = compute()
  if os.path.exists(GOLDEN):
    want, version, _ = load()
    changed = differences(want, got)
    if changed and version == today:
      print(f'{len(changed)} golden values changed (e.g. {next(iter(changed))})'
            f' but NUMERICS_VERSION is still {version}: bump it in '
            'evae_jax/storage/provenance.py, then record again.',
            file=sys.stderr)
      return 2
    if not changed and version != today:
      print(f'No golden value changed: keep NUMERICS_VERSION at {version}.',
            file=sys.stderr)
      return 2
  else:
    versions = {load(p)[1] for p in recorded_paths()}
    if versions and today not in versions:
      print(f'This CPU has no record yet, and the others hold numerics '
            f'version {max(versions)}, not {today}: record the unchanged code '
            'first (the version bump belongs to the commit that moves the '
            'numbers).', file=sys.stderr)
      return 2
  stale = [p for p in recorded_paths()
           if p != GOLDEN and load(p)[1] != today]
  os.makedirs(os.path.dirname(GOLDEN), exist_ok=True)
  np.savez(GOLDEN, __numerics_version__=np.int64(today),
           __jax_version__=np.asarray(jax.__version__), **got)
  for path in stale:
    os.remove(path)
    print(f'Removed {path}: it holds an older numerics version; record it '
          'again on a CPU of that instruction set.')
  print(f'Recorded {len(got)} arrays of {len(CASES)} cases in {GOLDEN} '
        f'(numerics version {today}, jax {jax.__version__}).')
  return 0


if __name__ == '__main__':
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--record', action='store_true',
                      help="write this CPU's tests/golden/numerics-<isa>.npz")
  if parser.parse_args().record:
    sys.exit(record())
  print('\n'.join(f'{k}: {v}' for k, v in
                  differences(load()[0], compute()).items()) or 'identical')
