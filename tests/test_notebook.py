"""docs/quickstart.ipynb runs top to bottom (in the default suite): trains,
loads, plots, compares and uses the bound with a Flax NNX network. Its
outputs are not committed."""

import os
import time

import nbformat
from nbclient import NotebookClient

from tests.conftest import ROOT

NOTEBOOK = os.path.join(ROOT, 'docs', 'quickstart.ipynb')


def test_committed_without_outputs():
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  nbformat.validate(notebook)
  for cell in notebook.cells:
    if cell.cell_type == 'code':
      assert not cell.outputs and cell.execution_count is None, cell.source[:80]


def test_quickstart_runs(tmp_path):
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  start = time.perf_counter()
  # The kernel is this interpreter (ipykernel's native 'python3' spec); it
  # inherits the session's XLA compilation cache through the environment.
  NotebookClient(notebook, timeout=600, kernel_name='python3',
                 resources={'metadata': {'path': str(tmp_path)}}).execute()
  seconds = time.perf_counter() - start
  outputs = [o for cell in notebook.cells if cell.cell_type == 'code'
             for o in cell.outputs]
  assert not [o for o in outputs if o.output_type == 'error']
  text = ''.join(o.get('text', '') for o in outputs if o.output_type == 'stream')
  for phrase in ('validation bound', 'TrainedModel(', 'units active',
                 'paired difference eVAE - VAE', 'ELBO per epitome, (B, E): '
                 '(5, 4)', 'IW log p(x) of the NNX model'):
    assert phrase in text, phrase
  images = [o for o in outputs if 'image/png' in o.get('data', {})]
  assert len(images) >= 2  # samples, reconstructions
  print(f'quickstart.ipynb ran in {seconds:.0f} s')
