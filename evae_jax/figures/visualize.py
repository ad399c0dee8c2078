"""Image grids and plots written as PNG files.

Each figure has a builder that returns a matplotlib ``Figure`` (to show in a
notebook or inspect) and a ``save_*`` function that writes it as a PNG.
Image grids are drawn at an integer upscale with nearest-neighbour
interpolation, so every image pixel is a crisp square. Images are grey-
scale (n, H, W) or colour (n, H, W, 3); a grid of colour images is RGB.
"""

import io
import math
from typing import Optional, Sequence, Tuple

import numpy as np

from evae_jax.storage import files

DPI = 100
# Margins of the grid figures, in output pixels.
_TITLE_PX = 34
_MARGIN_PX = 10
_LABEL_PX = 18
_DIVIDER_PX = 12
_DIVIDER_COLOR = (0.85, 0.0, 0.0)
_AXIS_PX = 48
_PANEL_GAP_PX = 60


def _matplotlib_figure(**kwargs):
  """A matplotlib Figure outside pyplot: no global backend is chosen or
  changed (a notebook's inline backend stays), nothing to close."""
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  return Figure(**kwargs)


def save_figure(path: str, fig) -> None:
  """Writes a matplotlib figure as a PNG at `DPI`, through
  `files.write_bytes`: whole, so a kill mid-write never leaves a truncated
  PNG under the final name."""
  buffer = io.BytesIO()
  fig.savefig(buffer, dpi=DPI, format='png')
  files.write_bytes(path, buffer.getvalue())


def image_grid(images: np.ndarray, num_cols: Optional[int] = None,
               pad: int = 1) -> np.ndarray:
  """Tiles images in [0, 1] into one uint8 image, white between tiles.

  Args:
    images: (n, H, W) grey-scale or (n, H, W, 3) RGB images in [0, 1]
      (clipped); (n, H, W, 1) counts as grey-scale.
    num_cols: tiles per row; default ceil(sqrt(n)).
    pad: white pixels between tiles and around the grid.

  Returns:
    (rows * (H + pad) + pad, cols * (W + pad) + pad) uint8, with a trailing
    axis of 3 for RGB images; empty cells white.
  """
  images = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
  if images.ndim == 4 and images.shape[-1] == 1:
    images = images[..., 0]
  n, h, w = images.shape[:3]
  num_cols = num_cols or int(math.ceil(math.sqrt(n)))
  num_rows = int(math.ceil(n / num_cols))
  grid = np.ones((num_rows * (h + pad) + pad, num_cols * (w + pad) + pad)
                 + images.shape[3:], np.float32)
  for i, image in enumerate(images):
    r, c = divmod(i, num_cols)
    grid[pad + r * (h + pad):pad + r * (h + pad) + h,
         pad + c * (w + pad):pad + c * (w + pad) + w] = image
  return (grid * 255).round().astype(np.uint8)


BAND_PX = 2    # the gray band between originals and reconstructions
BAND_GRAY = 128


def stacked_grids(top: np.ndarray, bottom: np.ndarray,
                  num_cols: Optional[int] = None) -> np.ndarray:
  """Two `image_grid`s one above the other with a gray band between them
  (originals over their reconstructions, for image loggers that take one
  array, where the PNG figure draws a red line).

  Args:
    top: (n, H, W) or (n, H, W, 3) images in [0, 1].
    bottom: (m, H, W) or (m, H, W, 3) images in [0, 1].
    num_cols: tiles per row of both grids; default ceil(sqrt(n)).

  Returns:
    uint8 (rows_top * (H + 1) + 1 + BAND_PX + rows_bottom * (H + 1) + 1,
    cols * (W + 1) + 1) (and 3 for RGB), the band BAND_GRAY.
  """
  num_cols = num_cols or int(math.ceil(math.sqrt(len(top))))
  upper = image_grid(top, num_cols)
  lower = image_grid(bottom, num_cols)
  band = np.full((BAND_PX,) + upper.shape[1:], BAND_GRAY, np.uint8)
  return np.concatenate([upper, band, lower])


def _scale(grid_shape: Tuple[int, int], min_size: int) -> int:
  return max(1, math.ceil(min_size / max(grid_shape)))


def _figure(width_px: int, height_px: int):
  return _matplotlib_figure(figsize=(width_px / DPI, height_px / DPI),
                            dpi=DPI)


def _text_px(text: str) -> int:
  """A generous width of ``text`` at the titles' font size, in px."""
  return 8 * len(text)


def _figure_title(fig, title: str) -> None:
  """``title`` centred in the top `_TITLE_PX` of the figure."""
  height = fig.get_size_inches()[1] * DPI
  fig.text(0.5, 1 - (_TITLE_PX / 2) / height, title, ha='center',
           va='center', fontsize=10)


def _image_axes(fig, grid: np.ndarray, left_px: int, top_px: int,
                scale: int):
  """Axes showing ``grid`` (grey-scale, or RGB with a trailing axis of 3)
  at ``scale`` output pixels per image pixel, its top-left corner
  ``left_px``, ``top_px`` from the figure's top-left."""
  width, height = fig.get_size_inches() * DPI
  h, w = grid.shape[0] * scale, grid.shape[1] * scale
  ax = fig.add_axes((left_px / width, 1 - (top_px + h) / height,
                     w / width, h / height))
  grey = dict(cmap='gray', vmin=0, vmax=255) if grid.ndim == 2 else {}
  ax.imshow(grid, interpolation='nearest', aspect='auto', **grey)
  ax.set_xticks([])
  ax.set_yticks([])
  return ax


def grid_figure(images: np.ndarray, num_cols: Optional[int] = None,
                min_size: int = 400, title: str = ''):
  """A titled image grid (samples).

  Args:
    images: (n, H, W) or (n, H, W, 3) in [0, 1].
    num_cols: tiles per row; default ceil(sqrt(n)).
    min_size: the grid's longer side is upscaled to at least this many px.
    title: the figure's title.

  Returns:
    A matplotlib Figure.
  """
  grid = image_grid(images, num_cols)
  scale = _scale(grid.shape, min_size)
  w, h = grid.shape[1] * scale, grid.shape[0] * scale
  width = max(w, _text_px(title)) + 2 * _MARGIN_PX
  fig = _figure(width, h + _TITLE_PX + _MARGIN_PX)
  _image_axes(fig, grid, (width - w) // 2, _TITLE_PX, scale)
  _figure_title(fig, title)
  return fig


def save_grid(path: str, images: np.ndarray, num_cols: Optional[int] = None,
              min_size: int = 400, title: str = '') -> None:
  """Writes `grid_figure` as a PNG."""
  save_figure(path, grid_figure(images, num_cols, min_size, title))


def reconstructions_figure(originals: np.ndarray,
                           reconstructions: np.ndarray, num_cols: int = 10,
                           min_size: int = 400, title: str = '',
                           originals_label: str = 'originals'):
  """Originals above a red divider, their reconstructions below, each block
  labelled (paper Fig. 9/10).

  Args:
    originals: (n, H, W) or (n, H, W, 3) in [0, 1].
    reconstructions: the same shape, in the same order.
    num_cols: images per row; n is cut to a multiple of it when n > num_cols.
    min_size: the figure's longer image side, at least, in px.
    title: the figure's title.
    originals_label: the label above the originals (e.g. that they are the
      binarised images the model was scored on).

  Returns:
    A matplotlib Figure.
  """
  n = (len(originals) // num_cols) * num_cols or len(originals)
  num_cols = min(num_cols, n)
  top = image_grid(originals[:n], num_cols)
  bottom = image_grid(reconstructions[:n], num_cols)
  scale = _scale((2 * top.shape[0], top.shape[1]), min_size)
  w, h = top.shape[1] * scale, top.shape[0] * scale
  width = max(w, _text_px(title)) + 2 * _MARGIN_PX
  left = (width - w) // 2
  block = _LABEL_PX + h  # a block's label above its grid
  fig = _figure(width, _TITLE_PX + 2 * block + _DIVIDER_PX + _MARGIN_PX)
  upper = _image_axes(fig, top, left, _TITLE_PX + _LABEL_PX, scale)
  lower = _image_axes(fig, bottom, left,
                      _TITLE_PX + block + _DIVIDER_PX + _LABEL_PX, scale)
  _figure_title(fig, title)
  upper.set_title(originals_label, fontsize=9, loc='left')
  lower.set_title('reconstructions', fontsize=9, loc='left')
  height = fig.get_size_inches()[1] * DPI
  y = 1 - (_TITLE_PX + block + _DIVIDER_PX / 2) / height
  from matplotlib.lines import Line2D  # pylint: disable=g-import-not-at-top
  fig.add_artist(Line2D(
      [0, 1], [y, y], transform=fig.transFigure, color=_DIVIDER_COLOR,
      lw=3 * 72 / DPI))
  return fig


def save_reconstructions(path: str, originals: np.ndarray,
                         reconstructions: np.ndarray, num_cols: int = 10,
                         title: str = '',
                         originals_label: str = 'originals') -> None:
  """Writes `reconstructions_figure` as a PNG."""
  save_figure(path, reconstructions_figure(
      originals, reconstructions, num_cols, title=title,
      originals_label=originals_label))


def activity_figure(activity: np.ndarray, unit_kl: np.ndarray,
                    threshold: float, title: str = ''):
  """Sorted unit activity A_u with each unit's KL (paper Fig. 1/3); both
  y-axes start at 0.

  Args:
    activity: (D,) A_u = Cov_x(E_q[u]).
    unit_kl: (D,) each unit's mean KL in nats.
    threshold: the activity threshold, drawn as a dashed line.
    title: the figure's title.

  Returns:
    A matplotlib Figure.
  """
  activity, unit_kl = np.asarray(activity), np.asarray(unit_kl)
  order = np.argsort(-activity)
  fig = _matplotlib_figure(figsize=(7, 3.8), layout='constrained')
  ax = fig.subplots()
  units = np.arange(len(activity))
  ax.bar(units, activity[order], color='tab:blue', label='activity $A_u$')
  ax.axhline(threshold, color='gray', ls='--', lw=1,
             label=f'threshold {threshold:g}')
  ax.set_xlabel('latent unit (sorted by activity)')
  ax.set_ylabel('activity')
  ax2 = ax.twinx()
  ax2.plot(units, unit_kl[order], color='tab:red', marker='.', label='KL')
  ax2.set_ylabel('KL (nats)')
  for axis in (ax, ax2):
    axis.set_ylim(bottom=0.0, top=1.05 * max(axis.get_ylim()[1], 1e-3))
  lines = ax.get_legend_handles_labels()
  lines2 = ax2.get_legend_handles_labels()
  fig.legend(lines[0] + lines2[0], lines[1] + lines2[1],
             loc='outside lower center', ncols=3, frameon=False)
  ax.set_title(title)
  return fig


def save_activity_plot(path: str, activity: np.ndarray, unit_kl: np.ndarray,
                       threshold: float, title: str = '') -> None:
  """Writes `activity_figure` as a PNG."""
  save_figure(path, activity_figure(activity, unit_kl, threshold, title))


def manifolds_figure(manifolds: Sequence[np.ndarray], grid_size: int,
                     titles: Optional[Sequence[str]] = None,
                     axis_labels: Optional[Sequence[Tuple[str, str]]] = None,
                     axis_values: Optional[np.ndarray] = None,
                     title: str = '', min_size: int = 200):
  """Epitome manifolds side by side (paper Fig. 5), tiles padded apart.

  Args:
    manifolds: per panel, (grid_size**2, H, W[, 3]) images in [0, 1],
      row-major over the grid (rows sweep the first unit, columns the
      second).
    grid_size: tiles per side.
    titles: per panel, its title (which epitome and units).
    axis_labels: per panel, (row unit, column unit) axis labels.
    axis_values: (grid_size,) the value each row / column sets its unit
      to; ticks at the first and last tile.
    title: the figure's title.
    min_size: each panel's side, at least, in px.

  Returns:
    A matplotlib Figure.
  """
  tiles = [image_grid(m, grid_size) for m in manifolds]
  th, tw = tiles[0].shape[:2]
  scale = _scale((th, tw), min_size)
  h, w = th * scale, tw * scale
  num = len(tiles)
  top = _TITLE_PX + (_TITLE_PX if title else 0)
  fig = _figure(_AXIS_PX + num * w + (num - 1) * _PANEL_GAP_PX + _MARGIN_PX,
                top + h + _AXIS_PX)
  _figure_title(fig, title)
  cell = (th - 1) / grid_size  # image pixels per tile, with its pad
  centres = 0.5 + cell * np.arange(grid_size) + (cell - 1) / 2
  chosen = [0, grid_size - 1]
  for i, grid in enumerate(tiles):
    ax = _image_axes(fig, grid, _AXIS_PX + i * (w + _PANEL_GAP_PX), top,
                     scale)
    if titles is not None:
      ax.set_title(titles[i], fontsize=9)
    if axis_labels is not None:
      ax.set_ylabel(axis_labels[i][0])
      ax.set_xlabel(axis_labels[i][1])
    if axis_values is not None:
      labels = [f'{axis_values[j]:.1f}' for j in chosen]
      ax.set_xticks(centres[chosen], labels, fontsize=8)
      ax.set_yticks(centres[chosen], labels, fontsize=8)
  return fig


def save_manifolds(path: str, manifolds: Sequence[np.ndarray],
                   grid_size: int, titles: Optional[Sequence[str]] = None,
                   axis_labels: Optional[Sequence[Tuple[str, str]]] = None,
                   axis_values: Optional[np.ndarray] = None,
                   title: str = '') -> None:
  """Writes `manifolds_figure` as a PNG."""
  save_figure(path, manifolds_figure(manifolds, grid_size, titles,
                                     axis_labels, axis_values, title))
