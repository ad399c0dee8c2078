"""Training: ``train_and_evaluate(config, workdir)``.

Contract: the loop (`evae_jax.train.loop`), after its set-up
(`evae_jax.train.setup`: workdirs, data, states restored or created), trains
one model, or several side by side, from a config into a workdir, resumes
exactly where it stopped and writes checkpoints, metrics and figures; the
compiled steps (`evae_jax.train.steps`) take the loss from the model's
objective (`evae_jax.objectives`); metrics go through
`evae_jax.train.metric_writers`. Training never imports evaluation's modes
(`evae_jax.evaluate`): both restore the same `evae_jax.state.TrainState`.
"""

from evae_jax.train.loop import Interrupted
from evae_jax.train.loop import NonFiniteLossError
from evae_jax.train.loop import train_and_evaluate

__all__ = ['train_and_evaluate', 'NonFiniteLossError', 'Interrupted']
