"""The errors a user can fix, in one place: each names the problem and
the fix, and the command line turns each into one paragraph and exit
status 2 (`USER_ERRORS`).

Their own module so that any layer can raise them without importing the
modules that define the behaviour (configuration imports most of them).
"""


class ConfigError(ValueError):
  """A configuration that cannot run; the message names the fix."""


class EpitomeConfigError(ConfigError):
  """An invalid (latent_dim, epitome_size, stride) triple."""


class ObjectiveError(ConfigError):
  """An objective used with settings or a model kind it does not support."""


class DataError(ValueError):
  """A dataset that cannot be loaded as configured; the message says the fix."""


class WorkdirError(RuntimeError):
  """The workdir cannot be written, or another process is using it."""


class CheckpointError(RuntimeError):
  """No checkpoint in a non-empty checkpoint folder can be restored, or one
  cannot be written (or read back) where it is asked for."""


# What `evae_jax.command_line.run` reports as one paragraph, exit status 2.
USER_ERRORS = (ConfigError, DataError, WorkdirError, CheckpointError)
