"""Command line: train, evaluate or sample an eVAE.

    python -m evae_jax.main --config=configs/tfd.py --workdir=DIR
    python -m evae_jax.main --config=configs/tfd.py --workdir=DIR --mode=evaluate
    python -m evae_jax.main --config=... --workdir=DIR --mode=sample --num_samples=64

Exit status: 0 done; 2 a configuration, data, workdir or checkpoint problem
(one paragraph, no traceback); 3 the loss became NaN/inf; 75 interrupted by
SIGTERM / Ctrl-C (a checkpoint was saved: rerun to resume).
"""

import logging as std_logging
import sys

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from evae_jax import checkpoints
from evae_jax import configuration
from evae_jax import input_pipeline
from evae_jax import train
from evae_jax import workdirs

FLAGS = flags.FLAGS
flags.DEFINE_string('workdir', None, 'Directory for checkpoints, metrics, figures.')
flags.DEFINE_enum('mode', 'train', ['train', 'evaluate', 'sample'],
                  'train (resumes automatically), evaluate, or sample.')
flags.DEFINE_integer('num_samples', 100, 'Images to write in --mode=sample.')
config_flags.DEFINE_config_file('config', None, 'Config file (get_config()).',
                                lock_config=True)
flags.mark_flags_as_required(['config', 'workdir'])

# A run stopped by SIGTERM / SIGINT (a checkpoint was saved): not finished,
# not failed; rerun to resume (EX_TEMPFAIL of sysexits.h).
EXIT_INTERRUPTED = 75
USER_ERRORS = (configuration.ConfigError, input_pipeline.DataError,
               workdirs.WorkdirError, checkpoints.CheckpointError)


class _QuietLibraries(std_logging.Filter):
  """Drops the INFO chatter of orbax; its warnings and errors still show."""

  def filter(self, record):
    return record.levelno >= std_logging.WARNING or '/orbax/' not in record.pathname


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.get_absl_handler().addFilter(_QuietLibraries())
  logging.info('JAX process %d/%d, devices: %s', jax.process_index(),
               jax.process_count(), jax.devices())
  try:
    if FLAGS.mode == 'train':
      train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    else:
      from evae_jax import report  # pylint: disable=g-import-not-at-top
      if FLAGS.mode == 'evaluate':
        report.evaluate_workdir(FLAGS.config, FLAGS.workdir)
      else:
        report.sample_workdir(FLAGS.config, FLAGS.workdir, FLAGS.num_samples)
  except USER_ERRORS as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  except train.NonFiniteLossError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(3)
  except train.Interrupted as e:
    print(f'interrupted: {e}', file=sys.stderr)
    sys.exit(EXIT_INTERRUPTED)
  except KeyboardInterrupt:
    print(f'interrupted: Ctrl-C during --mode={FLAGS.mode}; files already '
          'written are complete (each is written to a temporary name and '
          'renamed). Rerun the same command.', file=sys.stderr)
    sys.exit(EXIT_INTERRUPTED)


def parse_flags(argv):
  """absl's parser, but a mistyped or unknown config field exits with status
  2 and one line naming it instead of a traceback."""
  try:
    argv = FLAGS(argv)
    FLAGS.config.keys()  # config files load lazily: surface their errors here.
    return argv
  except (flags.Error, AttributeError, KeyError, TypeError, ValueError,
          OSError) as e:
    message = ' '.join(str(e).replace('\\n', ' ').split()).strip('"\'\\')
    print(f'error: bad command line: {message}. Fields and their types are '
          'listed in configs/default.py; check the spelling of '
          '--config.SECTION.FIELD=VALUE.', file=sys.stderr)
    sys.exit(2)


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
