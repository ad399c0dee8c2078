"""evae_jax.visualize: grids tile images where they belong; files appear
whole under their final name."""

import os

import numpy as np
from PIL import Image

from evae_jax import visualize


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
