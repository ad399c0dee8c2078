"""Training and evaluation speed, measured in one process so ratios compare.

    python -m experiments.benchmark [--out=FILE]    # a few minutes on a 2-core CPU

writes every number to --out (a temporary file by default; the numbers
docs/performance.md quotes are kept in results/benchmarks/benchmark*.json:
pass that path to replace them on purpose) and prints the tables.

For one architecture (default L = 2, H = 500, D = 50, K = 5, batch 100,
784 binary pixels, synthetic data) it measures the median train-step time of
the VAE and the eVAE, examples/s, the analytic matmul FLOPs per step, the
achieved FLOP/s as a fraction of a dense f32 matmul's FLOP/s measured in the
same run, the eVAE/VAE step-time ratio beside the analytic FLOP ratio, the
time of an on-device epoch (one lax.scan) against steps x isolated step
time, the train step with ``model.dtype=bfloat16`` beside float32 (timed
interleaved) and their ratio, M models trained at once with vmap against M
sequential runs, the IW-evaluation throughput, and the step time of the
IWAE objectives (k = 5, 50) beside the point objective (``--objectives_only`` for just those).
"""

import json
import os
import statistics
import tempfile
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp

from configs import default
from evae_jax import configuration
from evae_jax import metrics
from evae_jax import models
from evae_jax import objectives
from evae_jax import state as state_lib
from evae_jax.train import steps

flags.DEFINE_integer('num_layers', 2, 'L.')
flags.DEFINE_integer('hidden_dim', 500, 'H.')
flags.DEFINE_integer('latent_dim', 50, 'D.')
flags.DEFINE_integer('epitome_size', 5, 'K.')
flags.DEFINE_integer('batch_size', 100, 'B.')
flags.DEFINE_integer('num_pixels', 784, 'N.')
flags.DEFINE_integer('repeats', 50, 'Timed calls per median.')
flags.DEFINE_integer('epoch_steps', 200, 'Steps of the timed on-device epoch.')
flags.DEFINE_integer('num_models', 8, 'Models trained at once with vmap.')
flags.DEFINE_integer('iw_samples', 1000, 'k for the IW throughput.')
flags.DEFINE_integer('matmul_size', 1024, 'Side of the reference matmul.')
flags.DEFINE_list('objective_samples', ['5', '50'],
                  'k of the IWAE objectives timed beside the point objective.')
flags.DEFINE_bool('objectives_only', False,
                  'Time only the training objectives (writes --out).')
flags.DEFINE_string('out', os.path.join(tempfile.gettempdir(),
                                        'evae_jax_benchmark.json'),
                    'JSON output (default: a temporary file, so that the '
                    'tracked results/benchmarks/benchmark.json is replaced only on '
                    'purpose).')
FLAGS = flags.FLAGS


def _median_seconds(fn, repeats):
  jax.block_until_ready(fn())  # compile and warm up
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def _interleaved_medians(calls, repeats):
  """{key: median seconds of calls[key]()}, timed in rounds of one call of
  each, so that load from other processes affects every call alike."""
  for call in calls.values():
    jax.block_until_ready(call())  # compile and warm up
  times = {key: [] for key in calls}
  for _ in range(repeats):
    for key, call in calls.items():
      start = time.perf_counter()
      jax.block_until_ready(call())
      times[key].append(time.perf_counter() - start)
  return {key: statistics.median(ts) for key, ts in times.items()}


def _config(kind, dtype='float32'):
  config = default.get_config()
  config.model.kind = kind
  config.model.dtype = dtype
  config.model.num_layers = FLAGS.num_layers
  config.model.hidden_dim = FLAGS.hidden_dim
  config.model.latent_dim = FLAGS.latent_dim
  config.model.epitome_size = FLAGS.epitome_size
  config.train.batch_size = FLAGS.batch_size
  config.data.binarization = 'dynamic'
  return config


def step_flops(config, num_pixels) -> dict:
  """Analytic matmul FLOPs (2 per multiply-add) of one training step.

  Encoder: forward + backward = 3x its forward. eVAE: the selection pass
  runs the decoder forward for all E epitomes without gradients, then the
  chosen epitome's decoder runs forward + backward (3x). VAE: no selection.
  """
  m = config.model
  h, layers, d = m.hidden_dim, m.num_layers, m.latent_dim
  def mlp_macs(n_in):
    return (n_in * h + (layers - 1) * h * h) if layers else 0
  encoder = mlp_macs(num_pixels) + 2 * (h if layers else num_pixels) * d
  decoder = mlp_macs(d) + (h if layers else d) * num_pixels
  e = configuration.masks_from_config(m).shape[0]
  selection = e * decoder if e > 1 else 0
  per_example = 2 * (3 * encoder + selection + 3 * decoder)
  return {'per_step': per_example * config.train.batch_size,
          'num_epitomes': e}


def objective_step_times(n, b, rng, repeats) -> dict:
  """Median train-step seconds of each objective, VAE and eVAE.

  Rounds of one call per variant, interleaved, so that load from other
  processes affects every variant alike; ratios are to the point objective.
  """
  batch = (jax.random.uniform(rng, (b, n)) > 0.5).astype(jnp.float32)
  variants = [('point', 1)] + [(o, int(k)) for o in ('iwae', 'iwae_marginal')
                               for k in FLAGS.objective_samples]
  calls = {}
  for kind in ('vae', 'evae'):
    config = _config(kind)
    state = state_lib.create_train_state(config, n, rng)
    for objective, k in variants:
      if kind == 'vae' and objective == 'iwae_marginal':
        continue  # one epitome: the same as 'iwae'
      options = steps.StepOptions(
          objective=objective, loss=objectives.LossSettings(num_samples=k))
      calls[(kind, objective, k)] = (
          lambda s=state, o=options: steps.train_step(
              s, batch, rng, options=o)[1]['loss'])
  medians = _interleaved_medians(calls, repeats)
  out = {}
  for (kind, objective, k), t in medians.items():
    point = medians[(kind, 'point', 1)]
    out[f'{kind}/{objective}/k={k}'] = {'step_seconds': t,
                                        'over_point': t / point}
  return out


def format_objectives(r) -> str:
  lines = ['| objective | k | VAE step (ms) | VAE / point | eVAE step (ms) '
           '| eVAE / point |', '| --- | --- | --- | --- | --- | --- |']
  keys = sorted({tuple(k.split('/')[1:]) for k in r},
                key=lambda ok: (ok[0] != 'point', ok[0], int(ok[1][2:])))
  for objective, k in keys:
    cells = []
    for kind in ('vae', 'evae'):
      v = r.get(f'{kind}/{objective}/{k}')
      cells += ([f'{1e3 * v["step_seconds"]:.2f}', f'{v["over_point"]:.2f}']
                if v else ['(= iwae)', ''])
    lines.append(f'| {objective} | {k[2:]} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def main(argv):
  del argv
  rng = jax.random.PRNGKey(0)
  if FLAGS.objectives_only:
    r = objective_step_times(FLAGS.num_pixels, FLAGS.batch_size, rng,
                             FLAGS.repeats)
    with open(FLAGS.out, 'w') as f:
      json.dump({'device': str(jax.devices()[0]), 'objectives': r}, f,
                indent=1)
    print(format_objectives(r))
    return
  n, b = FLAGS.num_pixels, FLAGS.batch_size
  results = {'device': str(jax.devices()[0]), 'backend': jax.default_backend(),
             'native_bfloat16': models.native_bfloat16(),
             'architecture': dict(L=FLAGS.num_layers, H=FLAGS.hidden_dim,
                                  D=FLAGS.latent_dim, K=FLAGS.epitome_size,
                                  batch=b, pixels=n)}

  a = jax.random.normal(rng, (FLAGS.matmul_size, FLAGS.matmul_size))
  matmul = jax.jit(lambda x: x @ x)
  t = _median_seconds(lambda: matmul(a), FLAGS.repeats)
  results['matmul_flops_per_sec'] = 2 * FLAGS.matmul_size ** 3 / t
  shaped = jax.random.normal(rng, (b, n))
  w = jax.random.normal(rng, (n, FLAGS.hidden_dim))
  product = jax.jit(lambda x, y: x @ y)
  t = _median_seconds(lambda: product(shaped, w), FLAGS.repeats)
  results['matmul_at_step_shape_flops_per_sec'] = 2 * b * n * FLAGS.hidden_dim / t

  images = jax.random.randint(rng, (FLAGS.epoch_steps * b, n), 0, 256
                              ).astype(jnp.uint8)
  batch = (jax.random.uniform(rng, (b, n)) > 0.5).astype(jnp.float32)
  for kind in ('vae', 'evae'):
    config = _config(kind)
    state = state_lib.create_train_state(config, n, rng)
    bf16_state = state_lib.create_train_state(_config(kind, 'bfloat16'), n,
                                              rng)
    step = _interleaved_medians(
        {dtype: lambda s=s: steps.train_step(s, batch, rng)[1]
         for dtype, s in (('float32', state), ('bfloat16', bf16_state))},
        FLAGS.repeats)
    t = step['float32']
    # The Adam update alone: memory-bound elementwise work on every parameter.
    update = jax.jit(lambda s, g: s.apply_gradients(grads=g).params)
    adam = _median_seconds(lambda: update(state, state.params), FLAGS.repeats)
    flops = step_flops(config, n)
    options = steps.StepOptions.from_config(config)
    assignments = jnp.zeros((images.shape[0],), jnp.int32)

    def epoch(state=state):
      return steps.train_chunk(jax.tree_util.tree_map(jnp.copy, state), images,
                               assignments, rng, 1.0, 0, 0,
                               num_steps=FLAGS.epoch_steps,
                               options=options)[1]['loss']
    epoch_time = _median_seconds(epoch, 3)
    results[kind] = {
        'step_seconds': t,
        'bf16_step_seconds': step['bfloat16'],
        'bf16_over_f32_step_time': step['bfloat16'] / t,
        'adam_update_seconds': adam,
        'num_params': models.count_params(state.params),
        'examples_per_sec': b / t,
        'flops_per_step': flops['per_step'],
        'num_epitomes': flops['num_epitomes'],
        'achieved_flops_per_sec': flops['per_step'] / t,
        'fraction_of_matmul': flops['per_step'] / t / results['matmul_flops_per_sec'],
        'epoch_steps': FLAGS.epoch_steps,
        'epoch_seconds': epoch_time,
        'epoch_over_steps_times_step': epoch_time / (FLAGS.epoch_steps * t),
        'scan_step_seconds': epoch_time / FLAGS.epoch_steps,
    }

  v, e = results['vae'], results['evae']
  results['evae_over_vae_step_time'] = e['step_seconds'] / v['step_seconds']
  results['evae_over_vae_flops'] = e['flops_per_step'] / v['flops_per_step']
  results['evae_over_vae_scan_step_time'] = (e['scan_step_seconds']
                                             / v['scan_step_seconds'])

  # M models at once (vmap) against M sequential runs of the same chunk.
  config = _config('evae')
  options = steps.StepOptions.from_config(config)
  m = FLAGS.num_models
  state = state_lib.create_train_state(config, n, rng)
  stacked = jax.tree_util.tree_map(lambda x: jnp.stack([x] * m), state)
  assignments = jnp.zeros((m, images.shape[0]), jnp.int32)
  rngs = jax.random.split(rng, m)
  num_steps = max(1, FLAGS.epoch_steps // 4)
  together = _median_seconds(lambda: steps.train_chunks(
      jax.tree_util.tree_map(jnp.copy, stacked), images, assignments, rngs,
      jnp.ones(m), 0, 0, num_steps=num_steps, options=options)[1]['loss'], 3)
  one = _median_seconds(lambda: steps.train_chunk(
      jax.tree_util.tree_map(jnp.copy, state), images, assignments[0], rng,
      1.0, 0, 0, num_steps=num_steps, options=options)[1]['loss'], 3)
  results['vmap_models'] = {'num_models': m, 'steps': num_steps,
                            'together_seconds': together,
                            'sequential_seconds': m * one,
                            'ratio': together / (m * one)}

  # IW evaluation throughput (examples x samples per second).
  model = state.model
  k = FLAGS.iw_samples
  t = _median_seconds(lambda: metrics._iw_batch(  # pylint: disable=protected-access
      state.params, model, batch, rng, k, 100), 3)
  results['iw'] = {'num_samples': k, 'examples_per_sec': b / t,
                   'samples_per_sec': b * k / t}

  results['objectives'] = objective_step_times(n, b, rng, FLAGS.repeats)

  with open(FLAGS.out, 'w') as f:
    json.dump(results, f, indent=1)
  print(f'every number: {FLAGS.out}')
  print(format_table(results))
  print()
  print(format_objectives(results['objectives']))


def format_table(r) -> str:
  """The results as a markdown table."""
  v, e = r['vae'], r['evae']
  rows = [
      ('median train step (ms)', f'{1e3 * v["step_seconds"]:.2f}',
       f'{1e3 * e["step_seconds"]:.2f}'),
      ('of which the Adam update alone (ms)',
       f'{1e3 * v["adam_update_seconds"]:.2f}',
       f'{1e3 * e["adam_update_seconds"]:.2f}'),
      ('median train step, model.dtype=bfloat16 (ms)',
       f'{1e3 * v["bf16_step_seconds"]:.2f}',
       f'{1e3 * e["bf16_step_seconds"]:.2f}'),
      ('bfloat16 / float32 step time', f'{v["bf16_over_f32_step_time"]:.2f}',
       f'{e["bf16_over_f32_step_time"]:.2f}'),
      ('examples/s (isolated steps)', f'{v["examples_per_sec"]:,.0f}',
       f'{e["examples_per_sec"]:,.0f}'),
      ('analytic matmul FLOPs / step', f'{v["flops_per_step"] / 1e6:.1f} M',
       f'{e["flops_per_step"] / 1e6:.1f} M'),
      ('achieved GFLOP/s', f'{v["achieved_flops_per_sec"] / 1e9:.1f}',
       f'{e["achieved_flops_per_sec"] / 1e9:.1f}'),
      ('fraction of dense matmul FLOP/s', f'{v["fraction_of_matmul"]:.2f}',
       f'{e["fraction_of_matmul"]:.2f}'),
      ('same, without the Adam update',
       f'{v["flops_per_step"] / (v["step_seconds"] - v["adam_update_seconds"]) / r["matmul_flops_per_sec"]:.2f}',
       f'{e["flops_per_step"] / (e["step_seconds"] - e["adam_update_seconds"]) / r["matmul_flops_per_sec"]:.2f}'),
      (f'on-device epoch of {v["epoch_steps"]} steps (s)',
       f'{v["epoch_seconds"]:.2f}', f'{e["epoch_seconds"]:.2f}'),
      ('epoch / (steps x isolated step)',
       f'{v["epoch_over_steps_times_step"]:.3f}',
       f'{e["epoch_over_steps_times_step"]:.3f}'),
  ]
  lines = [f'Device: {r["device"]}; architecture {r["architecture"]}', '',
           '| | VAE | eVAE |', '| --- | --- | --- |']
  lines += [f'| {a} | {b} | {c} |' for a, b, c in rows]
  vm = r['vmap_models']
  lines += [
      '',
      f'- dense f32 matmul ({FLAGS.matmul_size}^3): '
      f'{r["matmul_flops_per_sec"] / 1e9:.1f} GFLOP/s; at the step\'s first-layer '
      f'shape: {r["matmul_at_step_shape_flops_per_sec"] / 1e9:.1f} GFLOP/s',
      f'- eVAE / VAE step time: {r["evae_over_vae_step_time"]:.2f} '
      f'(in-scan: {r["evae_over_vae_scan_step_time"]:.2f}); analytic FLOP '
      f'ratio: {r["evae_over_vae_flops"]:.2f}',
      f'- {vm["num_models"]} eVAEs at once with vmap: '
      f'{vm["together_seconds"]:.2f} s vs {vm["sequential_seconds"]:.2f} s '
      f'sequential ({vm["steps"]} steps each): ratio {vm["ratio"]:.2f}',
      f'- IW evaluation (eVAE, k={r["iw"]["num_samples"]}): '
      f'{r["iw"]["examples_per_sec"]:.1f} examples/s '
      f'({r["iw"]["samples_per_sec"]:,.0f} importance samples/s)',
  ]
  return '\n'.join(lines)


if __name__ == '__main__':
  app.run(main)
