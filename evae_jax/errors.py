"""The errors a user can fix: a configuration that cannot run, a workdir
that cannot be written.

Their own module so that any layer can raise them without importing the
configuration module (which imports the implementation modules).
"""


class ConfigError(ValueError):
  """A configuration that cannot run; the message names the fix."""


class WorkdirError(RuntimeError):
  """The workdir cannot be written, or another process is using it."""
