"""Runs a sweep file into a root directory.

    python -m experiments.run_sweep --sweep=configs/sweeps/fig3.py --root=runs/fig3 \
        --set=train.num_epochs=10 --set=data.path=/data/mnist

Finished points (an eval.json measured at the budget asked for) are skipped,
failed points are recorded in ROOT/sweep_status.json and the others go on.
A point another runner on ROOT (or another evae_jax process in its workdir)
has is "running elsewhere": skipped, then waited for, and run here if it is
let go unfinished. A SIGKILL of the runner stops its points too (Linux: each
gets SIGTERM, saves a checkpoint and stops).

Exit status: 0 every point done (here or elsewhere); 1 some point failed;
75 none failed but some were interrupted, and 75 with one line on SIGTERM /
Ctrl-C, after passing it on to the running points (each saves a
checkpoint) and recording them: rerun to resume (a point still running
elsewhere then is one more reason to rerun, never a failure). ``--list``
prints what a run would do, point by point, and runs nothing.
"""

import sys

from absl import app
from absl import flags

from experiments import sweeps

flags.DEFINE_string('sweep', None, 'Sweep file with get_config() and sweep().')
flags.DEFINE_string('root', None, 'Directory receiving one workdir per point.')
flags.DEFINE_multi_string('set', [], 'section.field=value for every point.')
flags.DEFINE_multi_string('where', [], 'section.field=value: run only the '
                          'points that agree (e.g. model.num_layers=1).')
flags.DEFINE_integer('workers', 0, 'Points at once; 0 = one per accelerator.')
flags.DEFINE_enum('devices', 'auto', ['auto', 'cpu', 'gpu', 'tpu'],
                  'How workers are pinned to accelerators.')
flags.DEFINE_integer('seeds', 0, 'Training seeds per point (seed=0..N-1, '
                     'separate points); 0 = the config\'s own seed.')
flags.DEFINE_string('keep', '', 'Folder of kept results: finished points are '
                    'copied there (eval.json, eval_examples.npz, PNGs) and '
                    'points already there are skipped.')
flags.DEFINE_bool('list', False, 'Print each point and what a run would do '
                  '(kept / finished / resumes from step N / to run), run '
                  'nothing.')
flags.mark_flags_as_required(['sweep', 'root'])
FLAGS = flags.FLAGS


def main(argv):
  del argv
  extra = [f'--config.{item}' for item in FLAGS.set]
  where = dict(item.split('=', 1) for item in FLAGS.where)
  if FLAGS.list:
    try:
      states = sweeps.plan(FLAGS.sweep, FLAGS.root, extra, where, FLAGS.seeds,
                           FLAGS.keep)
    except ValueError as e:
      print(f'error: {e}', file=sys.stderr)
      sys.exit(2)
    for name, state in states:
      print(f'{state:>24}  {name}')
    left = sum(state not in ('kept', 'finished') for _, state in states)
    print(f'{len(states) - left} of {len(states)} points done, {left} to run')
    return
  try:
    points = sweeps.run_sweep(FLAGS.sweep, FLAGS.root, extra, FLAGS.workers,
                              FLAGS.devices, where, FLAGS.seeds, FLAGS.keep)
  except ValueError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  failed = [n for n, r in points.items() if r['status'] == 'failed']
  interrupted = [n for n, r in points.items() if r['status'] == 'interrupted']
  elsewhere = [n for n, r in points.items()
               if r['status'] == sweeps.RUNNING_ELSEWHERE]
  if sweeps.stopped_by():
    print(f'interrupted: {sweeps.stopped_by()}: stopped the running points '
          f'({", ".join(interrupted) or "none"}; each saved a checkpoint)'
          + (f', stopped waiting for {len(elsewhere)} running elsewhere'
             if elsewhere else '') +
          f'; statuses in {FLAGS.root}/{sweeps.STATUS_FILE}. Rerun the same '
          'command to resume.', flush=True)
    sys.exit(sweeps.EXIT_INTERRUPTED)
  waiting = [n for n, r in points.items() if r['status'] == 'not started']
  done = (len(points) - len(failed) - len(interrupted) - len(waiting)
          - len(elsewhere))
  print(f'{done} done, {len(interrupted)} interrupted (rerun to resume), '
        f'{len(failed)} failed' + (f': {", ".join(failed)}' if failed else '')
        + (f'; {len(waiting)} not started (every point failed the same way)'
           if waiting else '')
        + (f'; {len(elsewhere)} left running elsewhere' if elsewhere else ''))
  sys.exit(1 if failed else (sweeps.EXIT_INTERRUPTED if interrupted else 0))


if __name__ == '__main__':
  app.run(main)
