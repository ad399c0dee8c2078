"""Fixed-size batches over a dataset, so that memory stays bounded and
one compiled program serves every batch."""

import jax
import jax.numpy as jnp


def pad_batches(x: jax.Array, batch_size: int):
  """Splits a dataset into equal batches, the last one zero-padded.

  Args:
    x: (n, ...) the dataset.
    batch_size: rows per batch (at most n are used).

  Returns:
    (num_batches, batch_size, ...) and n, to drop the padding after.
  """
  n = x.shape[0]
  batch_size = min(batch_size, n)
  num_batches = -(-n // batch_size)
  pad = num_batches * batch_size - n
  x = jnp.concatenate([x, jnp.zeros((pad,) + x.shape[1:], x.dtype)])
  return x.reshape((num_batches, batch_size) + x.shape[1:]), n


def unbatch(tree, n: int):
  """Undoes `pad_batches` on each leaf of a tree of batched results.

  Args:
    tree: leaves (num_batches, batch_size, ...).
    n: the dataset's size.

  Returns:
    The tree with leaves (n, ...), the padding dropped.
  """
  return jax.tree_util.tree_map(
      lambda a: a.reshape((-1,) + a.shape[2:])[:n], tree)
