"""evae_jax.figures.visualize: grids tile images where they belong; files appear
whole under their final name."""

import os

import numpy as np
from PIL import Image

from evae_jax.figures import visualize


def test_image_grid_places_each_image_in_row_major_order():
  images = np.stack([np.full((2, 3), v) for v in (0.0, 0.5, 1.0)])
  grid = visualize.image_grid(images, num_cols=2, pad=1)
  assert grid.shape == (2 * 3 + 1, 2 * 4 + 1) and grid.dtype == np.uint8
  np.testing.assert_array_equal(grid[1:3, 1:4], 0)      # image 0
  np.testing.assert_array_equal(grid[1:3, 5:8], 128)    # image 1 (0.5)
  np.testing.assert_array_equal(grid[4:6, 1:4], 255)    # image 2
  np.testing.assert_array_equal(grid[4:6, 5:8], 255)    # empty cell: white
  assert grid[0].min() == 255 and grid[:, 0].min() == 255  # padding


def test_image_grid_clips_and_defaults_to_a_square():
  grid = visualize.image_grid(np.full((9, 1, 1), 2.0), pad=0)
  assert grid.shape == (3, 3) and (grid == 255).all()


def test_save_grid_writes_a_whole_png_upscaled(tmp_path):
  path = str(tmp_path / 'g.png')
  visualize.save_grid(path, np.random.RandomState(0).rand(4, 8, 8),
                      min_size=100)
  with Image.open(path) as image:
    assert image.format == 'PNG' and max(image.size) >= 100
  assert os.listdir(tmp_path) == ['g.png']  # no .partial left behind


def test_activity_plot_is_written(tmp_path):
  path = str(tmp_path / 'a.png')
  visualize.save_activity_plot(path, np.array([0.5, 0.01, 0.2]),
                               np.array([1.0, 0.0, 0.3]), 0.02, title='t')
  with Image.open(path) as image:
    assert image.format == 'PNG'


def _pixels(path):
  with Image.open(path) as image:
    return np.asarray(image.convert('RGB')).astype(int)


def _red(rgb):
  return (rgb[..., 0] > 180) & (rgb[..., 1] < 80) & (rgb[..., 2] < 80)


def _black(rgb):
  return (rgb < 20).all(-1)


def _grey(rgb):
  """Pixels of images at 0.5 (128): not text, lines or background."""
  return (abs(rgb - 128) <= 3).all(-1)


def test_reconstructions_have_a_red_divider_between_the_halves(tmp_path):
  path = str(tmp_path / 'r.png')
  black = np.zeros((6, 8, 8))
  visualize.save_reconstructions(path, black, black, num_cols=3)
  rgb = _pixels(path)
  black_rows = np.flatnonzero(_black(rgb).sum(1) > 50)
  red_rows = np.flatnonzero(_red(rgb).mean(1) > 0.9)  # across the figure
  assert red_rows.size
  # Originals above the line, reconstructions below it, none on it.
  assert black_rows.min() < red_rows.min() and black_rows.max() > red_rows.max()
  assert not _black(rgb)[red_rows].any()


def test_reconstructions_figure_labels_both_blocks_and_has_a_title():
  fig = visualize.reconstructions_figure(np.zeros((4, 5, 5)),
                                         np.ones((4, 5, 5)), num_cols=2,
                                         title='model X')
  texts = {t.get_text() for t in fig.texts}
  texts |= {ax.get_title(loc='left') for ax in fig.axes}
  assert {'model X', 'originals', 'reconstructions'} <= texts
  top, bottom = fig.axes
  np.testing.assert_array_equal(top.images[0].get_array()[1:6, 1:6], 0)
  labelled = visualize.reconstructions_figure(
      np.zeros((2, 5, 5)), np.ones((2, 5, 5)),
      originals_label='originals, binarised as scored')
  assert labelled.axes[0].get_title(loc='left') == (
      'originals, binarised as scored')
  np.testing.assert_array_equal(bottom.images[0].get_array()[1:6, 1:6], 255)


def test_sample_grid_has_its_title_and_fits_it():
  title = 'evae D=8 K=2: 16 samples (decoder means, y uniform, z ~ N(0, I))'
  fig = visualize.grid_figure(np.zeros((4, 3, 3)), title=title)
  text, = fig.texts
  assert text.get_text() == title
  fig.canvas.draw()
  box = text.get_window_extent()
  width = fig.get_size_inches()[0] * fig.dpi
  assert box.x0 >= 0 and box.x1 <= width  # not cut off


def test_save_grid_keeps_the_min_size_with_a_title(tmp_path):
  path = str(tmp_path / 'g.png')
  visualize.save_grid(path, np.full((4, 8, 8), 0.5), min_size=300,
                      title='t')
  grey = _grey(_pixels(path))
  rows, cols = np.flatnonzero(grey.any(1)), np.flatnonzero(grey.any(0))
  # From the first image's first pixel to the last's: the grid less its pad.
  assert max(np.ptp(rows), np.ptp(cols)) + 1 >= 300 * 17 / 19


def _runs(line):
  """Number of runs of True in a 1-d boolean array."""
  line = np.concatenate([[False], line, [False]]).astype(int)
  return int((np.diff(line) == 1).sum())


def test_manifold_tiles_are_separated_by_background_gaps(tmp_path):
  path = str(tmp_path / 'm.png')
  grid = 3
  visualize.save_manifolds(path, [np.full((grid * grid, 6, 6), 0.5)] * 2,
                           grid)
  grey = _grey(_pixels(path))
  rows = np.flatnonzero(grey.any(1))
  middle = grey[(rows.min() + rows.max()) // 2]
  assert _runs(middle) == 2 * grid  # per panel, grid tiles apart
  columns = np.flatnonzero(grey.any(0))
  assert _runs(grey[:, columns.min() + 2]) == grid


def test_manifold_panels_have_titles_axis_labels_and_values():
  values = np.array([-1.5, 0.0, 1.5])
  fig = visualize.manifolds_figure(
      [np.zeros((9, 4, 4))] * 2, 3,
      titles=['epitome 0 (units 0, 1)', 'epitome 3 (units 6, 7)'],
      axis_labels=[('z0', 'z1'), ('z6', 'z7')], axis_values=values,
      title='manifolds')
  panels = fig.axes
  assert [ax.get_title() for ax in panels] == ['epitome 0 (units 0, 1)',
                                               'epitome 3 (units 6, 7)']
  assert [(ax.get_ylabel(), ax.get_xlabel()) for ax in panels] == [
      ('z0', 'z1'), ('z6', 'z7')]
  assert [t.get_text() for t in fig.texts] == ['manifolds']
  ax = panels[0]
  assert [t.get_text() for t in ax.get_xticklabels()] == ['-1.5', '1.5']
  # Ticks sit on the centres of the first and last tiles (4 px + 1 px pad).
  np.testing.assert_allclose(ax.get_xticks(), [0.5 + 2, 0.5 + 2 * 5 + 2])


def test_activity_axes_start_at_zero():
  fig = visualize.activity_figure(np.array([0.5, 0.3, 0.2]),
                                  np.array([5.0, 4.5, 4.8]), 0.02, title='t')
  activity_ax, kl_ax = fig.axes
  assert activity_ax.get_ylim()[0] == 0.0
  assert kl_ax.get_ylim()[0] == 0.0
  assert kl_ax.get_ylim()[1] > 5.0  # the largest KL is inside the axes


def test_writing_figures_leaves_the_users_backend_alone(tmp_path):
  """A notebook's inline backend: switching it to Agg hid every plot the
  notebook drew after training."""
  import matplotlib
  before = matplotlib.get_backend()
  matplotlib.use('svg')
  try:
    visualize.save_grid(str(tmp_path / 'g.png'), np.zeros((4, 8, 8)))
    assert matplotlib.get_backend() == 'svg'
  finally:
    matplotlib.use(before)
