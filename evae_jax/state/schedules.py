"""Learning-rate schedules and the order in which an epoch visits the data.

- 'constant': Adam at ``train.learning_rate`` for ``train.num_epochs``
  (the paper's Tables 1, 3, 4).
- 'burda': Burda et al.'s schedule (the paper's Table 2): stage i = 0..S-1
  runs 3^i epochs at `burda_stage_rate` (learning_rate * 10^(-i/7), rounded
  as their code rounds it).

KL warm-up (`kl_warmup_factor`): the KL weight rises linearly over the first
``train.kl_warmup_steps`` global steps (an over-pruning remedy).

Epoch order: a uniform permutation per epoch, or, for Algorithm 1, a
stratified shuffle in which every minibatch holds a number of examples of
each epitome proportionate to that epitome's share of the training set.
"""

import jax
import jax.numpy as jnp
import optax

SCHEDULES = ('constant', 'burda')
ASSIGNMENTS = ('step', 'epoch')


def total_epochs(train_config) -> int:
  """Epochs of the whole run."""
  if train_config.schedule == 'burda':
    return sum(3 ** i for i in range(train_config.burda_stages))
  return train_config.num_epochs


def learning_rate(train_config, steps_per_epoch: int) -> optax.Schedule:
  """The learning rate as a function of the step."""
  base = train_config.learning_rate
  if train_config.schedule == 'constant':
    return optax.constant_schedule(base)
  rates = [burda_stage_rate(base, i) for i in range(train_config.burda_stages)]
  boundaries = [sum(3 ** j for j in range(i)) * steps_per_epoch
                for i in range(1, train_config.burda_stages)]
  return optax.join_schedules(
      [optax.constant_schedule(r) for r in rates], boundaries)


def burda_stage_rate(base: float, stage: int) -> float:
  """Learning rate of stage i = 0..7 in Burda et al.'s code (yburda/iwae):
  base * round(10^(1 - i/7), 1) / 10, i.e. 1e-3, 7.2e-4, 5.2e-4, 3.7e-4,
  2.7e-4, 1.9e-4, 1.4e-4, 1e-4 for base 1e-3 (the paper's text writes the
  unrounded base * 10^(-i/7))."""
  return base * round(10.0 ** (1.0 - stage / 7.0), 1) / 10.0


def permutation(rng: jax.Array, num_examples: int) -> jax.Array:
  """A uniform shuffle of range(num_examples)."""
  return jax.random.permutation(rng, num_examples)


def stratified_order(rng: jax.Array, assignments: jax.Array,
                     num_epitomes: int) -> jax.Array:
  """A shuffle whose every window of B consecutive examples holds about
  B * n_y / n examples of each epitome y (Algorithm 1, line 4).

  Each example gets the score (r + u) / n_y, r its rank in a random order
  of its epitome's n_y examples and u ~ U(0, 1); sorting by score
  interleaves the epitomes in proportion to their sizes.

  Args:
    rng: key.
    assignments: (n,) int epitome of every example.
    num_epitomes: E.

  Returns:
    (n,) int32 permutation.
  """
  shuffle_rng, jitter_rng = jax.random.split(rng)
  n = assignments.shape[0]
  shuffled = jax.random.permutation(shuffle_rng, n)
  by_group = shuffled[jnp.argsort(assignments[shuffled], stable=True)]
  group = assignments[by_group]
  counts = jnp.bincount(assignments, length=num_epitomes)
  starts = jnp.cumsum(counts) - counts
  rank = jnp.arange(n) - starts[group]
  score = (rank + jax.random.uniform(jitter_rng, (n,))) / counts[group]
  return by_group[jnp.argsort(score)].astype(jnp.int32)


def kl_warmup_factor(step, warmup_steps: int, start: float = 0.0):
  """The fraction of the KL weight at ``step`` under KL warm-up.

      factor(t) = start + (1 - start) * min(t / N, 1),

  rising linearly from ``start`` at t = 0 to 1 at t = N = ``warmup_steps``
  and 1 after (Bowman et al., 2015; Sønderby et al., 2016). The step is the
  run's global step (it counts across the stages of the 'burda' schedule).
  It changes only what is optimised: bounds and metrics use the true KL.

  Args:
    step: the global step (an int or a traced integer scalar).
    warmup_steps: N >= 1.
    start: the fraction at step 0, in [0, 1].

  Returns:
    float32 scalar in [start, 1].
  """
  t = jnp.asarray(step, jnp.float32) / warmup_steps
  return start + (1.0 - start) * jnp.minimum(t, 1.0)
