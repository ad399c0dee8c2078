"""evae_jax/runtime/seeds.py: the run's random streams are the documented
fold_in tree, stable for the same inputs, and distinct for every purpose.

That a resumed run repeats the interrupted one bit for bit (what stable
keys are for) is tested end to end in tests/test_train.py and
tests/test_reliability.py.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from evae_jax.runtime import seeds


def _bits(key):
  return tuple(np.asarray(jax.random.key_data(key)).ravel().tolist())


def test_run_key_is_fold_in_of_the_seed_key():
  for seed, stream in itertools.product((0, 1, 123456), (seeds.INIT,
                                                         seeds.TRAIN,
                                                         seeds.VALID)):
    want = jax.random.fold_in(jax.random.PRNGKey(seed), stream)
    assert _bits(seeds.run_key(seed, stream)) == _bits(want)


def test_same_inputs_same_key_eager_jitted_and_vmapped():
  eager = [_bits(seeds.run_key(s, seeds.TRAIN)) for s in range(4)]
  assert eager == [_bits(seeds.run_key(s, seeds.TRAIN)) for s in range(4)]
  jitted = jax.jit(seeds.run_key, static_argnums=1)
  assert eager == [_bits(jitted(jnp.int32(s), seeds.TRAIN)) for s in range(4)]
  vmapped = jax.vmap(lambda s: seeds.run_key(s, seeds.TRAIN))(jnp.arange(4))
  assert eager == [_bits(k) for k in vmapped]


def test_stream_numbers_are_distinct_at_each_level():
  assert len({seeds.INIT, seeds.TRAIN, seeds.VALID}) == 3
  assert len({seeds.STEPS, seeds.DATA}) == 2
  assert len({seeds.EVAL_BOUNDS, seeds.EVAL_IW, seeds.EVAL_GENERATED,
              seeds.EVAL_MI}) == 4
  assert seeds.EVAL_SEED != seeds.FIGURE_SEED


def test_every_purpose_of_a_run_gets_its_own_key():
  """The module docstring's tree for seeds 0 and 1: initialisation,
  validation, 40 steps' noise, 6 epochs' orders and their Algorithm 1
  assignments, and the seed-free evaluation streams: no two alike."""
  keys = {}
  for seed in (0, 1):
    keys[seed, 'init'] = seeds.run_key(seed, seeds.INIT)
    keys[seed, 'valid'] = seeds.run_key(seed, seeds.VALID)
    train = seeds.run_key(seed, seeds.TRAIN)
    keys[seed, 'train'] = train
    steps_key = jax.random.fold_in(train, seeds.STEPS)
    data_key = jax.random.fold_in(train, seeds.DATA)
    for step in range(40):
      keys[seed, 'step', step] = jax.random.fold_in(steps_key, step)
    for epoch in range(6):
      epoch_key = jax.random.fold_in(data_key, epoch)
      keys[seed, 'epoch', epoch] = epoch_key
      keys[seed, 'assign', epoch] = jax.random.fold_in(epoch_key, seeds.ASSIGN)
  evaluation = jax.random.PRNGKey(seeds.EVAL_SEED)
  for stream in (seeds.EVAL_BOUNDS, seeds.EVAL_IW, seeds.EVAL_GENERATED,
                 seeds.EVAL_MI):
    keys['eval', stream] = jax.random.fold_in(evaluation, stream)
  keys['figures'] = jax.random.PRNGKey(seeds.FIGURE_SEED)
  bits = {name: _bits(key) for name, key in keys.items()}
  assert len(set(bits.values())) == len(bits)
