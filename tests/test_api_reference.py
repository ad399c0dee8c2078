"""The API reference is built from the docstrings (pdoc, Google style), and
every public function of the library API documents its arguments, what it
returns and the user errors it raises, so a broken docstring fails here.
The library's own modules (`INTERNAL_MODULES`: training, checkpoints, data,
workdirs) are held to the same check, though not in the reference.


The reference is built with the pages by ``python docs/build.py``, whose
`PUBLIC_MODULES` these tests check.
"""

import ast
import importlib
import importlib.util
import inspect
import os
import re
import subprocess
import sys
import textwrap
import types
import warnings

import pytest

from tests.conftest import ROOT

def _build_module():
  spec = importlib.util.spec_from_file_location(
      'docs_build', os.path.join(ROOT, 'docs', 'build.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


BUILD = _build_module()
# The library API: what `evae_jax` exports, and the modules people import
# directly; the reference documents exactly these.
PUBLIC_MODULES = BUILD.PUBLIC_MODULES

# The library's own modules beyond the API (training, checkpoints, data,
# workdirs): not in the reference, but held to the same docstrings. `main`
# (flags only) and `steps` are left out.
INTERNAL_MODULES = ('evae_jax.storage.workdirs', 'evae_jax.train.loop',
                    'evae_jax.train.setup', 'evae_jax.metrics.batching',
                    'evae_jax.storage.checkpoint_paths',
                    'evae_jax.configuration', 'evae_jax.storage.checkpoints',
                    'evae_jax.runtime.sharding', 'evae_jax.evaluate.report',
                    'evae_jax.models', 'evae_jax.data',
                    'evae_jax.storage.files', 'evae_jax.train.metric_writers',
                    'evae_jax.state',
                    'evae_jax.storage.provenance')

# Public names that are not API of their own, each with the reason.
NOT_API = {
    # The deprecated old name of iw_log_likelihood_per_epitome: the same
    # function object, documented under its current name.
    'evae_jax.elbo.iw_log_likelihood':
        'alias of iw_log_likelihood_per_epitome',
}

_SECTION = re.compile(r'^([A-Z][A-Za-z ]+):\s*$')
# One entry of an Args section: ``name:``, ``name (type):``, ``*args:``,
# or ``a, b: as in f`` for arguments that share a description.
_ENTRY = re.compile(r'^(\*{0,2}\w+(?:\s*,\s*\*{0,2}\w+)*)\s*(?:\([^)]*\))?:')


def _sections(doc):
  """Google-style sections of a (cleaned) docstring: {name: body lines}.

  A section is a line ``Name:`` at the left margin followed by indented (or
  blank) lines, the rule pdoc's Google converter applies.
  """
  sections, name = {}, None
  for line in doc.splitlines():
    match = _SECTION.match(line)
    if match:
      name = match.group(1)
      sections[name] = []
    elif name is not None and (not line.strip() or line[0] in ' \t'):
      sections[name].append(line)
    else:
      name = None
  return {k: textwrap.dedent('\n'.join(v)).strip('\n').splitlines()
          for k, v in sections.items()}


def _entries(lines, where, problems):
  """Names documented by an Args/Attributes body; malformed entries are
  reported in ``problems``."""
  names = set()
  for line in lines:
    if not line.strip() or line[0] in ' \t':
      continue  # the continuation of an entry
    match = _ENTRY.match(line)
    if not match:
      problems.append(f'{where}: malformed entry {line.strip()!r} (want '
                      '"name: description")')
      continue
    names.update(n.strip().lstrip('*') for n in match.group(1).split(','))
  return names


def _own_code(func):
  """The function's own AST (nested functions and classes left out)."""
  try:
    source = textwrap.dedent(inspect.getsource(func))
  except (OSError, TypeError):
    return None
  tree = ast.parse(source).body[0]
  nodes, stack = [], list(ast.iter_child_nodes(tree))
  while stack:
    node = stack.pop()
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda,
                         ast.ClassDef)):
      continue
    nodes.append(node)
    stack.extend(ast.iter_child_nodes(node))
  return nodes


def _returns_something(func):
  annotation = inspect.signature(func).return_annotation
  if annotation is not inspect.Signature.empty:
    return annotation not in (None, type(None), 'None')
  nodes = _own_code(func) or []
  return any(isinstance(n, ast.Return) and n.value is not None
             for n in nodes) or any(
                 isinstance(n, (ast.Yield, ast.YieldFrom)) for n in nodes)


def _raises(func):
  """Whether the body raises an exception itself (``raise X(...)``; a bare
  re-raise does not count)."""
  return any(isinstance(n, ast.Raise) and n.exc is not None
             for n in _own_code(func) or [])


def _arguments(func, skip_first):
  params = list(inspect.signature(func).parameters.values())
  if skip_first:
    params = params[1:]
  return [p.name for p in params]


def _check_function(where, func, problems, skip_first=False):
  doc = inspect.getdoc(func)
  if not doc:
    problems.append(f'{where}: no docstring')
    return
  sections = _sections(doc)
  arguments = _arguments(func, skip_first)
  if arguments:
    if 'Args' not in sections:
      problems.append(f'{where}: no Args section ({", ".join(arguments)})')
    else:
      documented = _entries(sections['Args'], where, problems)
      for name in arguments:
        if name not in documented:
          problems.append(f'{where}: argument {name!r} not in Args')
      for name in sorted(documented - set(arguments)):
        problems.append(f'{where}: Args documents {name!r}, which it does '
                        'not take')
  elif 'Args' in sections:
    problems.append(f'{where}: Args section, but it takes no arguments')
  if _returns_something(func) and not (
      {'Returns', 'Yields'} & set(sections)):
    problems.append(f'{where}: no Returns section')
  if _raises(func) and 'Raises' not in sections:
    problems.append(f'{where}: raises, but has no Raises section')
  for name, body in sections.items():
    if not body:
      problems.append(f'{where}: empty {name} section')


def _framework_arguments(cls):
  """Constructor arguments a framework adds to every subclass: a Flax
  module's ``parent`` and ``name`` (documented by Flax)."""
  import flax.linen as nn
  return ('parent', 'name') if issubclass(cls, nn.Module) else ()


def _defined_here(member):
  """Whether a class member is evae_jax code, not one a framework's class
  decorator put there (``flax.struct``'s ``replace``)."""
  func = getattr(member, '__func__', member)
  if isinstance(member, property):
    func = member.fget
  return getattr(func, '__module__', 'evae_jax').startswith('evae_jax')


def _check_class(where, cls, problems):
  doc = inspect.getdoc(cls)
  if not doc:
    problems.append(f'{where}: no docstring')
    return
  init = cls.__dict__.get('__init__')
  if (inspect.isfunction(init)
      and init.__qualname__ == f'{cls.__qualname__}.__init__'):
    arguments = [a for a in _arguments(init, skip_first=True)
                 if a not in _framework_arguments(cls)]
    documented = set()
    for text in (doc, inspect.getdoc(init) if init.__doc__ else ''):
      for name in ('Args', 'Attributes'):
        documented |= _entries(_sections(text or '').get(name, []),
                               where, problems)
    for name in arguments:
      if name not in documented:
        problems.append(f'{where}: constructor argument {name!r} not in the '
                        'class or __init__ Args/Attributes')
    if _raises(init) and 'Raises' not in _sections(
        doc + '\n' + (inspect.getdoc(init) or '')):
      problems.append(f'{where}.__init__: raises, but has no Raises section')
  elif hasattr(cls, '_fields'):  # a NamedTuple: its fields are its arguments
    documented = _entries(_sections(doc).get('Attributes', []), where,
                          problems)
    for name in cls._fields:
      if name not in documented:
        problems.append(f'{where}: field {name!r} not in Attributes')
  for name, member in vars(cls).items():
    if name.startswith('_') or not _defined_here(member):
      continue
    if isinstance(member, property):
      if not inspect.getdoc(member):
        problems.append(f'{where}.{name}: property without a docstring')
    elif isinstance(member, (staticmethod, classmethod)):
      _check_function(f'{where}.{name}', member.__func__, problems,
                      skip_first=isinstance(member, classmethod))
    elif inspect.isfunction(member):
      _check_function(f'{where}.{name}', member, problems, skip_first=True)


def public_api(modules=PUBLIC_MODULES):
  """(qualified name, object) of every public function and class of
  ``modules`` (the library API by default), each object once (defined in
  evae_jax)."""
  seen, found = set(), []
  for module_name in modules:
    module = importlib.import_module(module_name)
    names = getattr(module, '__all__', None)
    if names is None:
      names = [n for n in vars(module) if not n.startswith('_')]
    for name in names:
      obj = getattr(module, name)
      qualified = f'{module_name}.{name}'
      if qualified in NOT_API or id(obj) in seen:
        continue
      if not (inspect.isfunction(obj) or inspect.isclass(obj)):
        continue
      if not getattr(obj, '__module__', '').startswith('evae_jax'):
        continue
      if obj.__module__ != module_name and module_name != 'evae_jax':
        continue  # imported from elsewhere; checked where it is defined
      seen.add(id(obj))
      found.append((f'{obj.__module__}.{obj.__qualname__}', obj))
  return found


def docstring_problems(modules=PUBLIC_MODULES):
  problems = []
  for where, obj in public_api(modules):
    if inspect.isclass(obj):
      _check_class(where, obj, problems)
    else:
      _check_function(where, obj, problems)
  return problems


@pytest.mark.parametrize('modules', [PUBLIC_MODULES, INTERNAL_MODULES],
                         ids=['public', 'internal'])
def test_every_public_function_documents_args_returns_and_raises(modules):
  problems = docstring_problems(modules)
  assert not problems, (f'{len(problems)} docstring problems:\n'
                        + '\n'.join(problems))


def test_the_check_sees_the_whole_api():
  names = {where for where, _ in public_api()}
  for expected in ('evae_jax.elbo.elbo_fn', 'evae_jax.api.load',
                   'evae_jax.api.TrainedModel', 'evae_jax.epitomes.make_masks',
                   'evae_jax.marginal.iw_log_marginal_likelihood',
                   'evae_jax.metrics.iw_estimates',
                   'evae_jax.metrics.parzen.parzen_log_density',
                   'evae_jax.metrics.information.mutual_information',
                   'evae_jax.sampling.generate', 'evae_jax.objectives.registry.register',
                   'evae_jax.likelihoods.bernoulli_log_prob'):
    assert expected in names
  names = {where for where, _ in public_api(INTERNAL_MODULES)}
  for expected in ('evae_jax.train.loop.train_and_evaluate',
                   'evae_jax.train.setup.set_up',
                   'evae_jax.metrics.batching.pad_batches',
                   'evae_jax.storage.checkpoint_paths.check_path',
                   'evae_jax.storage.checkpoints.Checkpoints',
                   'evae_jax.storage.workdirs.prepare', 'evae_jax.runtime.sharding.make_mesh',
                   'evae_jax.evaluate.report.evaluate_workdir',
                   'evae_jax.data.load',
                   'evae_jax.state.TrainState'):
    assert expected in names


def _scale(x, factor):
  """Multiplies.

  Args:
    x: (B,) values.
    factor: a scalar.

  Returns:
    (B,) x * factor.

  Raises:
    ValueError: factor is 0.
  """
  if not factor:
    raise ValueError('factor is 0')
  return x * factor


@pytest.mark.parametrize('old, new, problem', [
    (None, None, None),
    ('    factor: a scalar.\n', '', "argument 'factor' not in Args"),
    ('    factor: a scalar.\n', '    factor: a scalar.\n    scale: gone.\n',
     "Args documents 'scale', which it does not take"),
    ('    factor: a scalar.\n', '    factor a scalar.\n',
     "malformed entry 'factor a scalar.'"),
    ('  Returns:\n    (B,) x * factor.\n', '', 'no Returns section'),
    ('  Raises:\n    ValueError: factor is 0.\n', '',
     'raises, but has no Raises section'),
])
def test_the_check_catches_a_broken_docstring(old, new, problem):
  func = types.FunctionType(_scale.__code__, globals())
  func.__doc__ = _scale.__doc__ if old is None else _scale.__doc__.replace(
      old, new)
  problems = []
  _check_function('_scale', func, problems)
  if problem is None:
    assert not problems
  else:
    assert any(p.startswith(f'_scale: {problem}') for p in problems), problems


def test_the_reference_builds_without_warnings(tmp_path):
  import pdoc
  import pdoc.render
  for name in PUBLIC_MODULES:  # their own import-time warnings are not pdoc's
    importlib.import_module(name)
  pdoc.render.configure(docformat='google')
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    pdoc.pdoc(*PUBLIC_MODULES, output_directory=tmp_path)
  assert not caught, '\n'.join(str(w.message) for w in caught)
  pages = {name: (tmp_path / (name.replace('.', '/') + '.html'))
           for name in PUBLIC_MODULES}
  for name, page in pages.items():
    assert page.is_file(), name
  assert (tmp_path / 'index.html').is_file()
  for module, functions in {
      'evae_jax': ('elbo_fn', 'make_masks', 'load',
                   'iw_log_marginal_likelihood', 'TrainedModel'),
      'evae_jax.elbo': ('elbo_fn', 'iw_log_likelihood_per_epitome'),
      'evae_jax.objectives.callables': ('epitome_loss', 'iwae_loss'),
      'evae_jax.objectives.point': ('point_loss',),
      'evae_jax.api': ('load', 'TrainedModel.log_likelihood'),
      'evae_jax.marginal': ('iw_log_marginal_likelihood',),
      'evae_jax.epitomes': ('make_masks',)}.items():
    html = pages[module].read_text()
    for function in functions:
      assert f'id="{function}"' in html, (module, function)
  # Google sections rendered as such (not as plain paragraphs).
  assert 'Arguments:' in pages['evae_jax.elbo'].read_text()


def test_one_command_builds_the_pages_and_the_reference(tmp_path):
  """python docs/build.py: README and docs/*.md as HTML with their links
  between pages kept, and the reference of `PUBLIC_MODULES`."""
  result = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'docs', 'build.py'),
       f'--out={tmp_path}'], capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  assert (tmp_path / 'index.html').is_file()
  assert (tmp_path / 'api' / 'evae_jax' / 'api.html').is_file()
  pages = sorted(str(p.relative_to(tmp_path))
                 for p in tmp_path.rglob('*.html')
                 if 'api' not in p.relative_to(tmp_path).parts)
  expected = ['index.html'] + [
      f'docs/{n[:-3]}.html' for n in os.listdir(os.path.join(ROOT, 'docs'))
      if n.endswith('.md')] + ['results/RESULTS.html',
                               'experiments/README.html']
  assert pages == sorted(expected)
  index = (tmp_path / 'index.html').read_text()
  assert 'docs/build.py' in index and '.md"' not in index
  assert 'href="docs/guide.html"' in index
  guide = (tmp_path / 'docs' / 'guide.html').read_text()
  assert '<table>' in guide  # markdown tables rendered
  assert 'href="config.html"' in guide and 'href="../index.html"' in guide
  # The results page shows its figures: they are copied beside it.
  results = (tmp_path / 'results' / 'RESULTS.html').read_text()
  shown = re.findall(r'<img src="([^"]+)"', results)
  assert shown and all((tmp_path / 'results' / src).is_file()
                       for src in shown)


def test_a_link_to_no_page_fails_the_build(tmp_path):
  source = os.path.join(ROOT, 'docs', 'x.md')
  with pytest.raises(SystemExit, match='no page of the site'):
    BUILD._links('see [it](nowhere.md)', source,  # pylint: disable=protected-access
                 {os.path.join(ROOT, 'README.md'): 'index.html'})


def test_a_link_to_a_missing_file_fails_the_build_and_a_file_is_kept():
  source = os.path.join(ROOT, 'docs', 'x.md')
  with pytest.raises(SystemExit, match='does not exist'):
    BUILD._links('![a](no_such.png)', source, {})  # pylint: disable=protected-access
  text, files = BUILD._links(  # pylint: disable=protected-access
      'see [build](build.py), [web](https://x.org/a.md), [here](#top)',
      source, {})
  assert files == ['docs/build.py']
  assert text == ('see [build](build.py), [web](https://x.org/a.md), '
                  '[here](#top)')


def test_the_config_reference_is_generated_and_current():
  """docs/config.md is the output of docs/config_reference.py on today's
  defaults: every field once, with its default and the comment beside it."""
  result = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'docs', 'config_reference.py'),
       '--check'], capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  from evae_jax.configuration import defaults
  from evae_jax import configuration
  with open(os.path.join(ROOT, 'docs', 'config.md')) as f:
    page = f.read()
  rows = re.findall(r'^\| `([a-z_.0-9]+)` \| `(.*?)` \| (.*?) \| (.*?) \|$',
                    page, re.M)
  names = [r[0] for r in rows]
  flat = configuration.flatten(configuration.config_as_dict(
      defaults.get_config()))
  assert sorted(names) == sorted(flat) and len(set(names)) == len(names)
  row = dict((r[0], r[1:]) for r in rows)
  assert row['model.latent_dim'] == ('16', 'D', 'fixed: defines the run '
                                     'and what evaluation scores')
  assert row['train.num_epochs'][2] == 'may change on resume'
  assert row['data.split_seed'][2] == 'fixed: defines the run'
  assert 'linearly over this many (global) steps; 0 = off' in row[
      'train.kl_warmup_steps'][1]


def test_the_config_reference_parser_joins_continuations_and_notes():
  spec = importlib.util.spec_from_file_location(
      'config_reference', os.path.join(ROOT, 'docs', 'config_reference.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  source = textwrap.dedent("""\
      def get_config():
        config.seed = 0
        config.a = ml_collections.ConfigDict()
        config.a.x = 1  # the first
        #   and its second line
        # A note on what follows.
        config.a.y = 'z'
        config.a.w = 2.0  # w; '#' in a comment
      """)
  assert module.fields(source) == [
      ('seed', '', ''), ('a.x', 'the first and its second line', ''),
      ('a.y', '', 'A note on what follows.'),
      ('a.w', "w; '#' in a comment", '')]
