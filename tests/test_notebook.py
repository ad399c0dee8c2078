"""docs/quickstart.ipynb: committed with the outputs a reader sees on
GitHub, those outputs true to the shipped models, and re-executed top to
bottom here (in the default suite): it loads the shipped models, trains,
loads, plots, compares, uses the bound with a Flax NNX network, and leaves
nothing behind."""

import os
import time

import nbformat
from nbclient import NotebookClient

import evae_jax
from tests.conftest import ROOT

NOTEBOOK = os.path.join(ROOT, 'docs', 'quickstart.ipynb')
PHRASES = ("['mnist-evae', 'mnist-vae']", 'TrainedModel(', 'units active',
           'validation bound', 'paired difference eVAE - VAE',
           'ELBO per epitome, (B, E): (5, 4)', 'IW log p(x) of the NNX model',
           '-> True')


def _outputs(notebook):
  return [o for cell in notebook.cells if cell.cell_type == 'code'
          for o in cell.outputs]


def _text(outputs) -> str:
  return ''.join(o.get('text', '') for o in outputs
                 if o.output_type == 'stream')


def _images(outputs):
  return [o for o in outputs if 'image/png' in o.get('data', {})]


def test_committed_with_outputs_that_match_the_shipped_models():
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  nbformat.validate(notebook)
  counts = [cell.execution_count for cell in notebook.cells
            if cell.cell_type == 'code']
  # Executed once, top to bottom, and saved with what it showed.
  assert counts == list(range(1, len(counts) + 1)), counts
  outputs = _outputs(notebook)
  assert not [o for o in outputs if o.output_type == 'error']
  text = _text(outputs)
  for phrase in PHRASES:
    assert phrase in text, phrase
  assert len(_images(outputs)) >= 3  # samples, activity, reconstructions
  # The printed MNIST numbers are those the shipped files carry.
  for label, name in (('VAE', 'mnist-vae'), ('eVAE', 'mnist-evae')):
    e = evae_jax.load(f'pretrained:{name}').meta['evaluation']
    line = (f"{label}: -log p(x) = "
            f"{-e['iw_log_likelihood']['marginal']['mean']:.2f} nats")
    assert line in text, line
    assert f"{e['active_units']['count']} units active" in text


def test_quickstart_runs_and_leaves_nothing_behind(tmp_path, monkeypatch):
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  scratch = tmp_path / 'tmp'
  scratch.mkdir()
  # The kernel is this interpreter (ipykernel's native 'python3' spec); it
  # inherits the environment: the session's XLA compilation cache, and this
  # TMPDIR, where the notebook's tempfile folder goes.
  monkeypatch.setenv('TMPDIR', str(scratch))
  start = time.perf_counter()
  NotebookClient(notebook, timeout=600, kernel_name='python3',
                 resources={'metadata': {'path': str(tmp_path)}}).execute()
  seconds = time.perf_counter() - start
  outputs = _outputs(notebook)
  assert not [o for o in outputs if o.output_type == 'error']
  text = _text(outputs)
  for phrase in PHRASES:
    assert phrase in text, phrase
  assert len(_images(outputs)) >= 3
  assert not [p for p in os.listdir(scratch)
              if p.startswith('evae_quickstart-')]
  print(f'quickstart.ipynb ran in {seconds:.0f} s')
