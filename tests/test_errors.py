"""evae_jax/errors.py: the user-error classes, their documented bases, one
home for each, and the command line's exit status 2 for each.

The messages themselves are tested where they are raised
(tests/test_messages.py, tests/test_workdirs.py, tests/test_files.py); the
exit status of the command line end to end in tests/test_main.py.
"""

import ast
import importlib
import inspect
import os
import pkgutil

import pytest

import evae_jax
from evae_jax import configuration
from evae_jax.configuration import defaults
from evae_jax import errors
from evae_jax.storage import files
from evae_jax import command_line


def _error_classes():
  return [cls for _, cls in inspect.getmembers(errors, inspect.isclass)
          if issubclass(cls, Exception) and cls.__module__ == errors.__name__]


def _exit_2_errors():
  """The exception types of the command line's ``except`` clause that exits
  with status 2, read from command_line.py and evaluated in its namespace (so the
  test follows the tuple wherever it is defined)."""
  with open(command_line.__file__) as f:
    tree = ast.parse(f.read())
  for node in ast.walk(tree):
    if isinstance(node, ast.ExceptHandler) and node.type is not None:
      calls = [c for c in ast.walk(ast.Module(body=node.body, type_ignores=[]))
               if isinstance(c, ast.Call) and c.args and
               isinstance(c.args[0], ast.Constant) and c.args[0].value == 2]
      if calls:
        types = eval(compile(ast.Expression(node.type), command_line.__file__,
                             'eval'), vars(command_line))
        return types if isinstance(types, tuple) else (types,)
  pytest.fail('command_line.py has no except clause that exits with status 2')


def test_the_documented_bases():
  # Callers that predate the module catch ValueError / RuntimeError.
  assert issubclass(errors.ConfigError, ValueError)
  assert issubclass(errors.WorkdirError, RuntimeError)
  assert not issubclass(errors.ConfigError, errors.WorkdirError)
  assert not issubclass(errors.WorkdirError, errors.ConfigError)
  assert {c.__name__ for c in _error_classes()} >= {'ConfigError',
                                                    'WorkdirError'}


def test_the_package_exports_the_errors_own_class():
  assert evae_jax.EpitomeConfigError is errors.EpitomeConfigError


def test_main_exits_2_on_every_user_error_class():
  caught = _exit_2_errors()
  assert caught
  for cls in _error_classes():
    assert issubclass(cls, caught), cls


def _caught_by_main(raise_it):
  try:
    raise_it()
  except _exit_2_errors() as e:
    return e
  pytest.fail('no user error raised')


def test_errors_raised_by_the_layers_are_the_ones_main_catches():
  config = defaults.get_config()
  config.train.optimizer = 'sgd'
  err = _caught_by_main(lambda: configuration.validate(config))
  assert type(err) is errors.ConfigError and 'train.optimizer' in str(err)
  err = _caught_by_main(lambda: files.exists('ftp://host/run'))
  assert type(err) is errors.WorkdirError and 'ftp://' in str(err)


def test_user_errors_have_one_home():
  """Call sites name errors.X: no module defines or re-exports a user-error
  class of its own (a copy would not be caught as errors.X)."""
  names = {cls.__name__ for cls in _error_classes()}
  package = os.path.dirname(evae_jax.__file__)
  for info in pkgutil.iter_modules([package]):
    if info.name in ('errors', 'main'):
      continue
    module = importlib.import_module(f'evae_jax.{info.name}')
    assert not names & set(vars(module)), info.name
