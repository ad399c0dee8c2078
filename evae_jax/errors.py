"""The error a user can fix: a configuration or input that cannot run.

Its own module so that any layer can raise it without importing the
configuration module (which imports the implementation modules).
"""


class ConfigError(ValueError):
  """A configuration that cannot run; the message names the fix."""
