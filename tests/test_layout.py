"""The library is layered by package: each room imports only the rooms
below it (the README's "Layout" draws the same tree), training and
evaluation share `state` without importing each other, and nothing in the
library imports the top-level configs/ or experiments/ folders."""

import ast
import glob
import os

from tests.conftest import ROOT

PACKAGE = os.path.join(ROOT, 'evae_jax')

# Bottom up: a room may import the rooms of its own layer and of the layers
# before it. Top-level modules are rooms of their own; a package is one room.
LAYERS = (
    ('errors',),
    ('epitomes', 'likelihoods', 'objectives', 'elbo', 'marginal',
     'sampling'),                                     # the maths
    ('runtime',),                                     # signals, devices, keys
    ('storage',),                                     # files, checkpoints
    ('models',),                                      # networks, model kinds
    ('data',),                                        # datasets
    ('state',),                                       # train state, optimizer
    ('configuration',),                               # fields, checks
    ('metrics',),                                     # the paper's measures
    ('figures',),                                     # PNGs
    ('train', 'evaluate'),                            # the two modes
    ('api', 'command_line', 'main', 'pretrained'),    # the surface
)
MATHS = {'errors', *LAYERS[1]}
# Pairs of rooms in one layer that must not import each other.
APART = {('train', 'evaluate'), ('evaluate', 'train')}
# Known exceptions, each with its reason.
EXCEPTIONS = {
    # A workdir pins its config: workdirs reads configuration's field table
    # to compare a saved config.json with the one given now.
    ('storage', 'configuration'),
}


def _imports(path):
  """Top-level packages and evae_jax modules that ``path`` imports."""
  tree = ast.parse(open(path).read())
  found = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.ImportFrom) and node.module:
      if node.module == 'evae_jax':
        found.update(f'evae_jax.{a.name}' for a in node.names)
      else:
        found.add(node.module)
    elif isinstance(node, ast.Import):
      found.update(a.name for a in node.names)
  return found


def _room(relative):
  """The room of a path relative to evae_jax/ ('storage/files.py' ->
  'storage', 'elbo.py' -> 'elbo'), or of an evae_jax module name."""
  first = relative.replace('.', '/').split('/')[0]
  return first[:-3] if first.endswith('.py') else first


def _library_files():
  return sorted(p for p in glob.glob(os.path.join(PACKAGE, '**', '*.py'),
                                     recursive=True)
                if os.sep + 'configs' + os.sep not in p)


def test_every_room_has_its_layer():
  layer_of = {room for layer in LAYERS for room in layer}
  rooms = {_room(os.path.relpath(p, PACKAGE)) for p in _library_files()}
  rooms.discard('__init__')
  assert rooms == layer_of  # a new module or package needs its place here


def test_every_room_imports_only_the_layers_below_it():
  layer = {room: i for i, rooms in enumerate(LAYERS) for room in rooms}
  for path in _library_files():
    relative = os.path.relpath(path, PACKAGE)
    room = _room(relative)
    if room == '__init__':
      continue
    imports = _imports(path)
    inside = {_room(m.split('.', 1)[1]) for m in imports
              if m.startswith('evae_jax.')}
    for other in inside - {room}:
      assert (room, other) not in APART, f'{relative} imports {other}'
      if (room, other) in EXCEPTIONS:
        continue
      assert layer[other] <= layer[room], (
          f'{relative} ({room}) imports {other}, a layer above it')
    if room in MATHS:
      assert inside <= MATHS, f'{relative} (maths) imports {inside - MATHS}'
    if room == 'models':
      assert inside <= MATHS | {'models'}, relative
    outside = {m.split('.')[0] for m in imports} & {'configs', 'experiments'}
    assert not outside, f'{relative} imports the top-level {outside}'


def test_the_top_level_is_the_public_surface_and_the_maths():
  top = sorted(os.path.basename(p) for p in glob.glob(
      os.path.join(PACKAGE, '*.py')))
  assert len(top) <= 11, top
  packages = sorted(d for d in os.listdir(PACKAGE)
                    if os.path.isfile(os.path.join(PACKAGE, d, '__init__.py')))
  for name in packages:
    doc = ast.get_docstring(ast.parse(open(
        os.path.join(PACKAGE, name, '__init__.py')).read()))
    assert doc, f'evae_jax/{name}/__init__.py states no contract'


def test_no_library_module_is_over_the_size_limit():
  # Grows past the limit get split: one job per module.
  sizes = {os.path.relpath(p, PACKAGE): sum(1 for _ in open(p))
           for p in _library_files()}
  too_long = {p: n for p, n in sizes.items() if n > LIMIT.get(p, 450)}
  assert not too_long, too_long


# Modules allowed past 450 lines, with their size: none today (a module
# that grows past the limit is split along its jobs, not listed here).
LIMIT = {}


def test_importing_the_package_imports_none_of_its_machinery():
  """``import evae_jax`` stays as cheap as it was before the move into
  packages (``python -X importtime -c 'import evae_jax'``): the public names
  and the moved modules' old paths resolve on first use, so the import
  itself loads no JAX, no subpackage and no ``importlib.abc`` (which pulls
  in ``importlib.resources``, ``pathlib`` and ``tempfile``)."""
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  probe = ('import sys; before = set(sys.modules); import evae_jax; '
           'print(sorted(set(sys.modules) - before))')
  out = subprocess.run([sys.executable, '-c', probe], cwd=ROOT, check=True,
                       capture_output=True, text=True).stdout
  loaded = eval(out)  # pylint: disable=eval-used
  assert loaded == ['evae_jax'], loaded


def test_every_moved_module_still_imports_from_its_old_path_with_a_warning():
  """The flat paths of before the move (``evae_jax.steps``, ...) serve the
  module at its new path, once per import, with a DeprecationWarning naming
  it, and leave that module's own spec as it was; a name that never was a module is still an ImportError."""
  import importlib  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  import warnings  # pylint: disable=import-outside-toplevel
  import evae_jax  # pylint: disable=import-outside-toplevel
  for old, new in evae_jax._MOVED_MODULES.items():  # pylint: disable=protected-access
    sys.modules.pop(f'evae_jax.{old}', None)
    with warnings.catch_warnings(record=True) as caught:
      warnings.simplefilter('always')
      module = importlib.import_module(f'evae_jax.{old}')
    assert module is importlib.import_module(new), old
    assert any(issubclass(w.category, DeprecationWarning)
               and f'moved to {new}' in str(w.message) for w in caught), old
    # The module keeps its own spec, so importlib.reload and pickling by
    # module name still find it at its new path.
    assert module.__spec__.name == new, (old, module.__spec__.name)
    assert module.__name__ == new, old
  try:
    importlib.import_module('evae_jax.no_such_module')
  except ImportError:
    pass
  else:
    raise AssertionError('evae_jax.no_such_module imported')
