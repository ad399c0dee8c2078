"""A minimal PyTorch eager implementation of one evae_jax training job, the
yardstick of ``experiments.whole_job``.

The job is the Fig. 3 eVAE with per-step y* (``configs/mnist.py`` with
``train.assignment=step``): MNIST from IDX files, the last 10,000 training
images held out for validation, a fresh stochastic binarisation of every
minibatch, an MLP encoder and decoder (L = 2 layers of H = 500 ReLU units),
D = 50 latent units in E = 10 non-overlapping epitomes of K = 5, Adam at
1e-3, batch 100. Each step is eq. 7's two passes: y* chosen without
gradients on one noise draw, the loss of the chosen epitome on an
independent draw. Every epoch ends with the validation bound (every
epitome on two noise draws over all validation images, y* on one, scored on
the other), a checkpoint and a metrics line, as the evae_jax job does.

    pip install -e '.[bench]'
    python -m experiments.torch_job --data=../shared/data/mnist --epochs=3 --out=/tmp/t

``--autocast=bfloat16`` is the counterpart of evae_jax's
``--config.model.dtype=bfloat16``: the training step's encoder and decoder
run under ``torch.autocast('cpu', dtype=torch.bfloat16)``, so each
``nn.Linear`` multiplies bfloat16 inputs by a bfloat16 weight (oneDNN
accumulates in float32) and returns bfloat16, the ReLUs between them run
on those bfloat16 values, and the backward pass's matmuls are bfloat16 too.
Each network's output (the encoder's mean and
log-variance, the decoder's logits) is cast back to float32 where it leaves
the network, and everything after it is float32 outside autocast, as in
evae_jax: the reparameterised z, the Bernoulli log-likelihood, the KL, the
ELBOs the choice of y* compares, the loss; parameters, gradients and
Adam's state stay float32 (autocast casts copies). The one difference from
evae_jax, whose Dense layers return float32 (``preferred_element_type``):
here each layer's output, the networks' last included, is rounded to
bfloat16 once before that cast. The validation bound is float32, as
evae_jax's ``eval.dtype`` default.

It exists to be timed, not to be used: evae_jax is the implementation.
"""

import gzip
import json
import math
import os
import time
from typing import Optional

from absl import app
from absl import flags
import numpy as np
import torch
from torch import nn

LOG_2PI = math.log(2 * math.pi)
# --autocast -> the dtype the training step's networks run in (None: float32).
AUTOCAST = {'off': None, 'bfloat16': torch.bfloat16}


def read_idx(path: str) -> np.ndarray:
  """uint8 images (n, rows * cols) of an IDX3 file (gzipped or not)."""
  opener = gzip.open if path.endswith('.gz') else open
  with opener(path, 'rb') as f:
    data = f.read()
  n, rows, cols = np.frombuffer(data, '>i4', 3, 4)
  return np.frombuffer(data, np.uint8, n * rows * cols, 16).reshape(
      n, rows * cols)


def epitome_masks(latent_dim: int, epitome_size: int) -> torch.Tensor:
  """(E, D) 0/1 masks of non-overlapping epitomes."""
  count = latent_dim // epitome_size
  masks = torch.zeros(count, latent_dim)
  for e in range(count):
    masks[e, e * epitome_size:(e + 1) * epitome_size] = 1
  return masks


class EVAE(nn.Module):
  """Encoder and decoder MLPs of the eVAE (the VAE when E = 1)."""

  def __init__(self, pixels=784, hidden=500, layers=2, latent=50):
    super().__init__()
    enc, dec, width = [], [], pixels
    for _ in range(layers):
      enc += [nn.Linear(width, hidden), nn.ReLU()]
      width = hidden
    width = latent
    for _ in range(layers):
      dec += [nn.Linear(width, hidden), nn.ReLU()]
      width = hidden
    self.encoder = nn.Sequential(*enc, nn.Linear(hidden, 2 * latent))
    self.decoder = nn.Sequential(*dec, nn.Linear(hidden, pixels))

  @staticmethod
  def network(net: nn.Module, inputs: torch.Tensor,
              autocast: Optional[torch.dtype] = None) -> torch.Tensor:
    """``net(inputs)``, under CPU autocast to ``autocast`` if one is given,
    returned in float32 for the float32 arithmetic that follows."""
    with torch.autocast('cpu', dtype=autocast or torch.bfloat16,
                        enabled=autocast is not None):
      return net(inputs).float()

  def elbo(self, x, mean, logvar, masks, autocast=None):
    """ELBO (B, M) of each of the M epitomes in ``masks`` (M, D), one draw;
    the decoder in ``autocast`` (None: float32), the rest in float32."""
    eps = torch.randn_like(mean)
    z = (mean + torch.exp(0.5 * logvar) * eps)[:, None, :] * masks
    logits = self.network(self.decoder, z, autocast)
    log_lik = -nn.functional.binary_cross_entropy_with_logits(
        logits, x[:, None, :].expand_as(logits), reduction='none').sum(-1)
    kl = 0.5 * ((mean ** 2 + logvar.exp() - 1 - logvar)[:, None, :]
                * masks).sum(-1)
    return log_lik - kl

  def encode(self, x, autocast=None):
    """Mean and log-variance (B, D), float32; the encoder in ``autocast``."""
    return self.network(self.encoder, x, autocast).chunk(2, dim=-1)

  def loss(self, x, masks, autocast=None):
    """-mean ELBO_{y*}: y* on one draw without gradients, scored on another;
    both passes' networks in ``autocast`` (None: float32)."""
    mean, logvar = self.encode(x, autocast)
    with torch.no_grad():
      chosen = self.elbo(x, mean, logvar, masks, autocast).argmax(-1)
    return -self.elbo(x, mean, logvar, masks[chosen][:, None, :],
                      autocast)[:, 0].mean()

  @torch.no_grad()
  def bound(self, x, masks):
    """eq. 7 on a validation batch: y* on draw A, ELBO_{y*} on draw B - log E."""
    mean, logvar = self.encode(x)
    chosen = self.elbo(x, mean, logvar, masks).argmax(-1)
    scored = self.elbo(x, mean, logvar, masks)
    return scored.gather(1, chosen[:, None])[:, 0] - math.log(len(masks))


def run(data: str, epochs: int, out: str, batch_size: int = 100,
        num_valid: int = 10000, seed: int = 0,
        autocast: Optional[torch.dtype] = None) -> dict:
  """Trains the job (the steps' networks in ``autocast``, None: float32;
  validation in float32) and returns its last metrics line."""
  torch.manual_seed(seed)
  images = read_idx(os.path.join(data, 'train-images-idx3-ubyte.gz'))
  train = torch.from_numpy(images[:-num_valid].astype(np.float32) / 255)
  valid = torch.from_numpy(images[-num_valid:].astype(np.float32) / 255)
  valid = torch.bernoulli(valid, generator=torch.Generator().manual_seed(1))
  model, masks = EVAE(), epitome_masks(50, 5)
  optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
  os.makedirs(out, exist_ok=True)
  line = {}
  with open(os.path.join(out, 'metrics.jsonl'), 'w') as log:
    for epoch in range(1, epochs + 1):
      start = time.time()
      order = torch.randperm(len(train))
      for i in range(len(train) // batch_size):
        x = torch.bernoulli(train[order[i * batch_size:(i + 1) * batch_size]])
        optimizer.zero_grad()
        loss = model.loss(x, masks, autocast)
        loss.backward()
        optimizer.step()
      seconds = time.time() - start
      bound = torch.cat([model.bound(v, masks)
                         for v in valid.split(batch_size)]).mean()
      torch.save({'model': model.state_dict(),
                  'optimizer': optimizer.state_dict()},
                 os.path.join(out, 'checkpoint.pt'))
      line = {'epoch': epoch, 'train_loss': float(loss),
              'valid_bound': float(bound),
              'examples_per_sec': len(train) / seconds}
      log.write(json.dumps(line) + '\n')
      log.flush()
  return line


def main(argv):
  del argv
  f = flags.FLAGS
  print(json.dumps(run(f.data, f.epochs, f.out,
                       autocast=AUTOCAST[f.autocast])))


if __name__ == '__main__':
  flags.DEFINE_string('data', None, 'Folder of the MNIST IDX files.')
  flags.DEFINE_integer('epochs', 3, 'Training epochs.')
  flags.DEFINE_string('out', None, 'Folder for metrics.jsonl and the checkpoint.')
  flags.DEFINE_enum('autocast', 'off', list(AUTOCAST),
                    'off: float32 throughout; bfloat16: the training step\'s '
                    'networks under torch.autocast (see the docstring).')
  flags.mark_flags_as_required(['data', 'out'])
  app.run(main)
