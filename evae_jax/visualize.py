"""Image grids and plots written as PNG files."""

import io
import math
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from evae_jax import files


def _write_png(path: str, image: Image.Image) -> None:
  """Writes ``image`` as a PNG through `files.write_bytes`: whole, so a kill
  mid-write never leaves a truncated PNG under the final name."""
  buffer = io.BytesIO()
  image.save(buffer, format='PNG')
  files.write_bytes(path, buffer.getvalue())


def image_grid(images: np.ndarray, num_cols: Optional[int] = None,
               pad: int = 1) -> np.ndarray:
  """Tiles (n, H, W) images in [0, 1] into one uint8 (rows*H', cols*W') image."""
  images = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
  n, h, w = images.shape
  num_cols = num_cols or int(math.ceil(math.sqrt(n)))
  num_rows = int(math.ceil(n / num_cols))
  grid = np.ones((num_rows * (h + pad) + pad, num_cols * (w + pad) + pad),
                 np.float32)
  for i, image in enumerate(images):
    r, c = divmod(i, num_cols)
    grid[pad + r * (h + pad):pad + r * (h + pad) + h,
         pad + c * (w + pad):pad + c * (w + pad) + w] = image
  return (grid * 255).round().astype(np.uint8)


def save_grid(path: str, images: np.ndarray, num_cols: Optional[int] = None,
              min_size: int = 400) -> None:
  """Writes an image grid as PNG, upscaled (nearest) to at least min_size px."""
  grid = image_grid(images, num_cols)
  scale = max(1, math.ceil(min_size / max(grid.shape)))
  _write_png(path, Image.fromarray(grid).resize(
      (grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST))


def save_reconstructions(path: str, originals: np.ndarray,
                         reconstructions: np.ndarray, num_cols: int = 10) -> None:
  """Originals in the top half, their reconstructions below (paper Fig. 9/10)."""
  n = (len(originals) // num_cols) * num_cols or len(originals)
  save_grid(path, np.concatenate([originals[:n], reconstructions[:n]]),
            num_cols=min(num_cols, n))


def save_activity_plot(path: str, activity: np.ndarray, unit_kl: np.ndarray,
                       threshold: float, title: str = '') -> None:
  """Sorted unit activity A_u with each unit's KL (paper Fig. 1/3)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  order = np.argsort(-activity)
  fig, ax = plt.subplots(figsize=(7, 3.5))
  units = np.arange(len(activity))
  ax.bar(units, activity[order], color='tab:blue', label='activity $A_u$')
  ax.axhline(threshold, color='gray', ls='--', lw=1,
             label=f'threshold {threshold:g}')
  ax.set_xlabel('latent unit (sorted by activity)')
  ax.set_ylabel('activity')
  ax2 = ax.twinx()
  ax2.plot(units, unit_kl[order], color='tab:red', marker='.', label='KL')
  ax2.set_ylabel('KL (nats)')
  lines = ax.get_legend_handles_labels()
  lines2 = ax2.get_legend_handles_labels()
  ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc='upper right')
  ax.set_title(title)
  fig.tight_layout()
  buffer = io.BytesIO()
  fig.savefig(buffer, dpi=100, format='png')
  plt.close(fig)
  files.write_bytes(path, buffer.getvalue())


def save_manifolds(path: str, manifolds: Sequence[np.ndarray],
                   grid_size: int) -> None:
  """Several epitome manifolds side by side, each a grid_size^2 grid."""
  tiles = [image_grid(m, grid_size, pad=0) for m in manifolds]
  height = max(t.shape[0] for t in tiles)
  gap = np.full((height, 4), 255, np.uint8)
  row = np.concatenate(sum(([t, gap] for t in tiles), [])[:-1], axis=1)
  scale = max(1, math.ceil(200 / height))
  _write_png(path, Image.fromarray(row).resize(
      (row.shape[1] * scale, row.shape[0] * scale), Image.NEAREST))

