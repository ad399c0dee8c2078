"""tensorflow-datasets image datasets, prepared on first use, failing fast
when the download server cannot be reached."""

import socket
from typing import Dict

import numpy as np

from evae_jax import errors

TFDS_NAMES = ('mnist', 'fashion_mnist', 'binarized_mnist')
# tfds tries its mirror on Google Cloud Storage first for every dataset; if
# that host cannot be reached, a download would only retry for minutes.
_TFDS_PROBE_HOST = ('storage.googleapis.com', 443)


def _network_reachable(host_port, timeout: float) -> bool:
  try:
    socket.create_connection(host_port, timeout=timeout).close()
    return True
  except OSError:
    return False


def load_tfds(name: str, data_dir: str = '', timeout: float = 5.0
              ) -> Dict[str, np.ndarray]:
  """A tfds image dataset as uint8 arrays, preparing it if it is not yet.

  Fails within ``timeout`` seconds, instead of retrying for minutes, when the
  dataset is not prepared and the download server cannot be reached.

  Args:
    name: a tfds name of `TFDS_NAMES`.
    data_dir: the tfds data folder ('' = tfds's default).
    timeout: seconds to wait for the download server.

  Returns:
    {tfds split name: (n, H, W) uint8} (binarized_mnist scaled from {0, 1}
    to {0, 255}).

  Raises:
    errors.DataError: the dataset is not prepared and the download server
      cannot be reached.
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  builder = tfds.builder(name, data_dir=data_dir or None,
                         file_format='array_record')
  if not builder.is_prepared():
    if not _network_reachable(_TFDS_PROBE_HOST, timeout):
      raise errors.DataError(
          f'tfds dataset {name!r} is not prepared in {builder.data_dir} and '
          'its download server cannot be reached (no network?). Either '
          'prepare it on a machine with network and copy the tfds data_dir '
          '(--config.data.data_dir), or use local MNIST-format IDX files: '
          '--config.data.name=idx --config.data.path=DIR.')
    builder.download_and_prepare()
  splits = {}
  for split in builder.info.splits:
    source = builder.as_data_source(split=split)
    images = np.stack([np.asarray(ex['image']) for ex in source])
    splits[split] = images.reshape(images.shape[:3]).astype(np.uint8)
  if name == 'binarized_mnist':  # stored as {0, 1}
    splits = {k: v * np.uint8(255) for k, v in splits.items()}
  return splits
