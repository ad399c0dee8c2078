"""evae_jax/errors.py: the user-error classes, their documented bases, one
class object wherever a module re-exports them, and main's exit status 2
for each.

The messages themselves are tested where they are raised
(tests/test_messages.py, tests/test_workdirs.py, tests/test_files.py); the
exit status of the command line end to end in tests/test_main.py.
"""

import inspect

import pytest

from evae_jax import checkpoints
from evae_jax import configuration
from evae_jax import defaults
from evae_jax import errors
from evae_jax import files
from evae_jax import main
from evae_jax import objectives
from evae_jax import workdirs


def _error_classes():
  return [cls for _, cls in inspect.getmembers(errors, inspect.isclass)
          if issubclass(cls, Exception) and cls.__module__ == errors.__name__]


def test_the_documented_bases():
  # Callers that predate the module catch ValueError / RuntimeError.
  assert issubclass(errors.ConfigError, ValueError)
  assert issubclass(errors.WorkdirError, RuntimeError)
  assert not issubclass(errors.ConfigError, errors.WorkdirError)
  assert not issubclass(errors.WorkdirError, errors.ConfigError)
  assert {c.__name__ for c in _error_classes()} >= {'ConfigError',
                                                    'WorkdirError'}


def test_modules_reexport_the_same_class_objects():
  """A module that defined its own ConfigError would raise a class that
  ``except errors.ConfigError`` (and main) does not catch."""
  assert configuration.ConfigError is errors.ConfigError
  assert workdirs.WorkdirError is errors.WorkdirError
  assert checkpoints.WorkdirError is errors.WorkdirError
  assert issubclass(objectives.ObjectiveError, errors.ConfigError)


def test_main_exits_2_on_every_user_error_class():
  for cls in _error_classes():
    assert issubclass(cls, main.USER_ERRORS), cls
  assert issubclass(objectives.ObjectiveError, main.USER_ERRORS)


def _caught_by_main(raise_it):
  try:
    raise_it()
  except main.USER_ERRORS as e:
    return e
  pytest.fail('no user error raised')


def test_errors_raised_by_the_layers_are_the_ones_main_catches():
  config = defaults.get_config()
  config.train.optimizer = 'sgd'
  err = _caught_by_main(lambda: configuration.validate(config))
  assert type(err) is errors.ConfigError and 'train.optimizer' in str(err)
  err = _caught_by_main(lambda: files.exists('ftp://host/run'))
  assert type(err) is errors.WorkdirError and 'ftp://' in str(err)
