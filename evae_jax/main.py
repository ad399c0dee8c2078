"""Command line: train, evaluate, sample or export an eVAE.

    python -m evae_jax.main --config=configs/tfd.py --workdir=DIR
    python -m evae_jax.main --workdir=DIR --mode=evaluate
    python -m evae_jax.main --workdir=DIR --mode=sample --num_samples=64
    python -m evae_jax.main --workdir=DIR --mode=export --export_path=m.npz

Exit status: 0 done; 2 a configuration, data, workdir or checkpoint problem
(one paragraph, no traceback); 3 the loss became NaN/inf; 75 interrupted by
SIGTERM / Ctrl-C at any moment (in training a checkpoint was saved first:
rerun to resume). The contract lives in `evae_jax.command_line`.
"""

import os
import signal
import sys


from evae_jax.runtime import signals  # the standard library only: instant


def _interrupted_at_start_up(signum, frame):
  del frame
  sys.stderr.write(f'interrupted: {signals.signal_words(signum)} during '
                   'start-up; nothing was written. Rerun the same command.\n')
  os._exit(signals.EXIT_INTERRUPTED)  # pylint: disable=protected-access


# Before the heavy imports below (JAX takes seconds to load): a Ctrl-C or
# SIGTERM there is one line, not a traceback.
signal.signal(signal.SIGINT, _interrupted_at_start_up)
signal.signal(signal.SIGTERM, _interrupted_at_start_up)

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags
from ml_collections import config_flags

from evae_jax import command_line

FLAGS = flags.FLAGS
flags.DEFINE_string('workdir', None,
                    'Directory for checkpoints, metrics, figures.')
flags.DEFINE_enum('mode', 'train', ['train', 'evaluate', 'sample', 'export'],
                  'train (resumes automatically), evaluate, sample, or export '
                  '(the trained model as one file, see --export_path).')
flags.DEFINE_integer('num_samples', 100, 'Images to write in --mode=sample.')
flags.DEFINE_string('export_path', '', 'The model file --mode=export writes '
                    '(default WORKDIR/model.npz); evae_jax.load(path) reads '
                    'it without the data or the workdir.')
try:
  # Without --config, the default file loads here, with the command line's
  # --config.FIELD overrides applied to it: their mistakes surface now.
  config_flags.DEFINE_config_file(
      'config', os.path.join(os.path.dirname(__file__), 'configuration',
                             'defaults.py'),
      'Config file (get_config()). Required to train; --mode=evaluate and '
      "--mode=sample read the run's own config from the workdir without it "
      '(--config.eval.FIELD=... still applies).', lock_config=True)
except command_line.BAD_COMMAND_LINE as e:
  command_line.refuse_command_line(sys.argv, e)
flags.DEFINE_string(
    'compilation_cache',
    os.path.join(os.environ.get('XDG_CACHE_HOME') or
                 os.path.join(os.path.expanduser('~'), '.cache'),
                 'evae_jax', 'xla'),
    'Folder of the persistent XLA compilation cache, so that a rerun, a '
    'resume or the next point of a sweep does not compile again (a cached '
    'program is the one XLA compiled); "" turns it off. '
    'JAX_COMPILATION_CACHE_DIR, if set, takes precedence.')
flags.mark_flags_as_required(['workdir'])


def main(argv):
  """Runs --mode on --workdir (`command_line.run`); exits with its status.

  Args:
    argv: what absl left of the command line (nothing: `parse_flags`
      refuses positional arguments).
  """
  del argv
  command_line.run(FLAGS['config'], FLAGS.workdir, FLAGS.mode,
                   FLAGS.num_samples, FLAGS.compilation_cache,
                   FLAGS.export_path)


if __name__ == '__main__':
  app.run(main, flags_parser=command_line.parse_flags)
