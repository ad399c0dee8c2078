"""The command line's contract, behind `evae_jax.main`'s flags: one
paragraph for every mistake a user can make, the exit statuses, and what
SIGTERM / Ctrl-C do at any moment.

Exit status: 0 done; 2 a configuration, data, workdir or checkpoint problem
(one paragraph, no traceback); 3 the loss became NaN/inf; 75 interrupted by
SIGTERM / Ctrl-C (in training a checkpoint was saved first: rerun to
resume).
"""

import ast
import hashlib
import json
import logging as std_logging
import os
import re
import signal
import sys
import traceback

from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from evae_jax import configuration
from evae_jax.configuration import defaults
from evae_jax import errors
from evae_jax.runtime import sharding
from evae_jax.runtime import signals
from evae_jax import train
from evae_jax.storage import files
from evae_jax.storage import workdirs

FLAGS = flags.FLAGS
EXIT_INTERRUPTED = signals.EXIT_INTERRUPTED


class Stopped(KeyboardInterrupt):
  """SIGINT or SIGTERM outside the training loop (which saves and stops on
  them itself): raised where the program is, and, like Ctrl-C, not caught
  by the ``except Exception`` of any library on the way up."""

  def __init__(self, signum):
    super().__init__(signals.signal_words(signum))
    self.words = signals.signal_words(signum)


class _QuietLibraries(std_logging.Filter):
  """Drops the INFO chatter of orbax, and JAX's INFO line on every CPU run
  that it found no TPU ("Unable to initialize backend 'tpu'", which reads
  as an error); warnings and errors still show."""

  def filter(self, record):
    if record.levelno >= std_logging.WARNING:
      return True
    return ('/orbax/' not in record.pathname and
            'Unable to initialize backend' not in record.getMessage())


def use_compilation_cache(folder: str) -> None:
  """Turns on JAX's persistent compilation cache in ``folder`` for every
  program, however quick to compile ('' leaves it off); the environment's
  JAX_COMPILATION_CACHE_DIR wins."""
  if not folder or os.environ.get('JAX_COMPILATION_CACHE_DIR'):
    return
  jax.config.update('jax_compilation_cache_dir', folder)
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', -1)


def run(config_flag, workdir: str, mode: str, num_samples: int,
        compilation_cache: str, export_path: str = '') -> None:
  """Runs one mode of the command line and exits with its status.

  Args:
    config_flag: the ``--config`` flag (``FLAGS['config']``): its value, and
      whether it was given.
    workdir: ``--workdir``.
    mode: 'train', 'evaluate', 'sample' or 'export'.
    num_samples: images to write in sample mode.
    compilation_cache: folder of the persistent XLA cache ('' = off).
    export_path: the model file of export mode ('' = WORKDIR/model.npz).

  Exit status: returns normally (0) when done; exits 2 on a user error
  (`errors.USER_ERRORS`, one paragraph), 3 when the loss became NaN/inf,
  75 when interrupted by SIGTERM / Ctrl-C (never 0 after one, even if the
  work ended before the signal's exception reached this function:
  `signals.Raiser`).
  """
  stop = signals.Raiser(Stopped)
  stop.install()
  logging.get_absl_handler().addFilter(_QuietLibraries())
  use_compilation_cache(compilation_cache)
  try:
    # The run's config (read from the workdir without --config) decides the
    # processes too; reading it touches no device.
    config = _config(config_flag, workdir, mode)
    tc = config.train
    if tc.distributed:  # before anything touches a device
      sharding.initialize_distributed(tc.coordinator_address, tc.num_processes,
                                      tc.process_id, tc.initialization_timeout)
      _check_one_config(config)
    logging.info('JAX process %d/%d, devices: %s', jax.process_index(),
                 jax.process_count(), jax.devices())
    if mode == 'train':
      train.train_and_evaluate(config, workdir)
    elif mode == 'export':
      from evae_jax import pretrained  # pylint: disable=g-import-not-at-top
      path = export_path or files.join(workdir, 'model.npz')
      digest = pretrained.export(workdir, path)
      print(f'wrote {path} (sha256 {digest}); load it anywhere with '
            f'evae_jax.load({path!r}), no data or workdir needed.')
    else:
      # pylint: disable-next=g-import-not-at-top
      from evae_jax.evaluate import report
      if mode == 'evaluate':
        report.evaluate_workdir(config, workdir)
      else:
        report.sample_workdir(config, workdir, num_samples)
    if stop.signum is not None:  # its raise was lost (inside a callback)
      raise Stopped(stop.signum)
  except errors.USER_ERRORS as e:
    _ignore_signals()  # the exit status is decided
    print(f'error: {e}', file=sys.stderr)
    _exit_now(2)
  except train.NonFiniteLossError as e:
    _ignore_signals()
    print(f'error: {e}', file=sys.stderr)
    sys.exit(3)
  except train.Interrupted as e:
    _ignore_signals()
    print(f'interrupted: {e}', file=sys.stderr)
    sys.exit(EXIT_INTERRUPTED)
  except KeyboardInterrupt as e:
    _ignore_signals()
    words = getattr(e, 'words', 'Ctrl-C')
    print(f'interrupted: {words} during --mode={mode}; files already '
          'written are complete (each is written to a temporary name and '
          'renamed). Rerun the same command.', file=sys.stderr)
    # Not sys.exit: the interrupt may have cut a library's clean-up short,
    # and a normal exit would wait for (or tear down) its threads.
    _exit_now(EXIT_INTERRUPTED)
  finally:
    # Shutting down (joining orbax's and XLA's threads) is no moment for a
    # KeyboardInterrupt: the work is done or the exit status decided, and a
    # Ctrl-C (or another SIGTERM) there killed the process by the signal
    # (status -2, -15) or crashed it in native teardown (-11).
    _ignore_signals()
    stop.disarm()


def _config(config_flag, workdir: str, mode: str):
  """--config; without it, the workdir's own config (evaluate and sample)
  with the command line's --config.FIELD overrides applied.

  Raises:
    errors.ConfigError: training without --config, or an override
      that would describe another model than the one trained.
  """
  if config_flag.present:
    return config_flag.value
  if mode == 'train':
    raise errors.ConfigError(
        'training needs --config=FILE (a file with get_config(), e.g. '
        'configs/digits.py); only --mode=evaluate, sample and export read '
        'the config from the workdir.')
  return workdirs.run_config(workdir,
                             config_flags.get_override_values(config_flag))


# Fields that differ between the processes of one launch by design.
_PER_PROCESS = ('train.process_id', 'data.path', 'data.data_dir')


def _check_one_config(config) -> None:
  """Refuses processes of one launch started with different configs, which
  would run different collectives and abort in gloo minutes later.

  Raises:
    errors.ConfigError: naming the processes whose config is not process
      0's.
  """
  shared = {k: v for k, v in configuration.flatten(
      configuration.config_as_dict(config)).items() if k not in _PER_PROCESS}
  digest = hashlib.sha256(json.dumps(shared, sort_keys=True,
                                     default=repr).encode()).hexdigest()
  differing = sharding.processes_differing(digest)
  if differing:
    raise errors.ConfigError(
        f'The processes of this launch were started with different configs: '
        f'process(es) {", ".join(map(str, differing))} differ from process 0 '
        f'(this is process {jax.process_index()}). Start every process with '
        'the same --config and --config.* overrides; only '
        f'{", ".join(_PER_PROCESS)} may differ. Nothing was written.')


def _ignore_signals() -> None:
  for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM):
    signal.signal(sig, signal.SIG_IGN)


def _exit_now(status: int) -> None:
  """Exits without waiting for library threads: after a failed save,
  orbax's signalling threads wait forever for a signal that never comes,
  and a normal exit would wait for them. Our own files are already closed
  (train and report close them in ``finally``) and every result file is
  written atomically."""
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(status)  # pylint: disable=protected-access


def _innermost_message(error: BaseException) -> str:
  """The message of the innermost exception wrapped in ``error``'s args
  (ml_collections wraps a KeyError in an AttributeError), unquoted."""
  while error.args and isinstance(error.args[0], BaseException):
    error = error.args[0]
  message = str(error.args[0]) if error.args else str(error)
  if len(message) > 1 and message[0] == message[-1] and message[0] in '"\'':
    try:  # a repr() of the real message (ml_collections' KeyError)
      message = str(ast.literal_eval(message))
    except (ValueError, SyntaxError):
      pass
  return ' '.join(message.split())


def _sentence(text: str) -> str:
  return text if text.endswith(('.', '?', '!')) else text + '.'


def _config_path(argv) -> str:
  for arg in argv[1:]:
    if arg.startswith('--config='):
      return os.path.abspath(arg.split('=', 1)[1])
  return ''


def _bad_command_line(argv, error: BaseException) -> str:
  """One paragraph for a command line that does not parse: a bug inside the
  user's config file is reported as such (file and line), not as a typo."""
  path = _config_path(argv)
  frames = [f for f in traceback.extract_tb(error.__traceback__)
            if path and os.path.abspath(f.filename) == path]
  message = _innermost_message(error)
  if frames:
    return (f'the config file {path} raised {type(error).__name__} at line '
            f'{frames[-1].lineno}: {_sentence(message)} Fix that file: the '
            'error is inside it, not in the command line.')
  if 'Flag --workdir must have a value' in message:
    return ('--workdir=DIR is missing: the directory for the checkpoints, '
            'metrics and figures (created if missing; rerunning with the same '
            'one resumes).')
  if path and os.path.isdir(path):
    return (f'--config={path} is a directory. Pass --config=PATH to a file '
            'with get_config() (e.g. configs/default.py).')
  if path and not os.path.isfile(path):
    return (f'the config file {path} does not exist. Pass --config=PATH to '
            'an existing file with get_config() (e.g. configs/default.py).')
  hint = _config_field_hint(argv, message)
  if hint:
    return f'{_sentence(message)} {hint}'
  fields = [a[2:].split('=', 1)[0] for a in argv[1:]
            if a.startswith('--config.')]
  named = [f for f in fields if f.rsplit('.', 1)[-1] in message]
  subject = f'--{named[0]}' if named else 'the command line'
  return (f'bad value or unknown field in {subject}: {_sentence(message)} '
          'Fields and their types are listed in '
          'evae_jax/configuration/defaults.py; check '
          'the spelling of --config.SECTION.FIELD=VALUE.')


# Flags people type from other trainers, and the config field they mean.
_FLAG_ALIASES = {'epochs': 'train.num_epochs', 'lr': 'train.learning_rate'}


def _config_field_hint(argv, message: str) -> str:
  """'did you mean --config.train.num_epochs=5?' for an unknown flag such
  as --epochs=5 that names config fields (by their own name or an alias of
  `_FLAG_ALIASES`); '' otherwise."""
  match = re.search(r"Unknown command line flag '([\w-]+)'", message)
  if not match:
    return ''
  name = match.group(1).replace('-', '_')
  fields = [f for f in configuration.flatten(configuration.config_as_dict(
      defaults.get_config())) if f.rsplit('.', 1)[-1] == name]
  if name in _FLAG_ALIASES:
    fields = [_FLAG_ALIASES[name]]
  if not fields:
    return ''
  given = next((a for a in argv[1:] if a.lstrip('-').split('=', 1)[0]
                .replace('-', '_') == name), '')
  value = f'={given.split("=", 1)[1]}' if '=' in given else ''
  return ('Config fields are set as --config.SECTION.FIELD=VALUE: did you '
          'mean ' + ' or '.join(f'--config.{f}{value}' for f in fields) + '?')


# What a command line that does not parse raises: in absl, in ml_collections
# (an unknown field, a value of the wrong type) or inside a config file.
BAD_COMMAND_LINE = (flags.Error, AttributeError, KeyError, TypeError,
                    ValueError, OSError, NameError, ImportError, SyntaxError)


def refuse_command_line(argv, error: BaseException) -> None:
  """Prints the one paragraph for ``error`` (one of `BAD_COMMAND_LINE`) and
  exits with status 2.

  Args:
    argv: the command line (``sys.argv``).
    error: what parsing it raised.
  """
  print(f'error: {_bad_command_line(argv, error)}', file=sys.stderr)
  sys.exit(2)


def parse_flags(argv):
  """absl's parser, but every mistake (an unknown or mistyped config field,
  a bug in the config file, a stray argument) exits with status 2 and one
  paragraph instead of a traceback or the full flag help."""
  try:
    rest = FLAGS(argv)
    FLAGS.config.keys()  # config files load lazily: surface their errors here.
  except BAD_COMMAND_LINE as e:
    refuse_command_line(argv, e)
  if len(rest) > 1:
    print(f'error: unexpected arguments {rest[1:]}: every option is a flag '
          '(--workdir=DIR, --mode=..., --config.SECTION.FIELD=VALUE); quote '
          'values that hold spaces.', file=sys.stderr)
    sys.exit(2)
  return rest
