"""Regenerates the tables of a results page from the kept results.

A page (``results/RESULTS.md``) marks each generated block with the command
that prints it::

    <!-- begin: python -m experiments.tables --root=results/mnist/fig3 --table=seeds -->
    ...whatever that command printed...
    <!-- end -->

    python -m experiments.refresh results/RESULTS.md           # rewrite the blocks
    python -m experiments.refresh --check results/RESULTS.md   # exit 1 if one is stale

Each command is one of ``python -m experiments.tables``, ``python -m
experiments.paired`` (on kept results) or ``python -m
experiments.dtype_selection --table=FILE`` (a saved result printed again) with
their flags, run in this process from the repository root (the same functions
their ``main`` prints: `tables.render`, `paired.report`,
`dtype_selection.table`), so a page cannot run anything else and a page of
twenty tables refreshes in seconds. A command that fails leaves the page
untouched and exits 2 with its message. Prose between the blocks is never
changed: a sentence that quotes a number must be checked against its block by
whoever writes it (``--check`` says which block moved). """

import json
import os
import re
import shlex
import sys
from typing import Callable, Dict, List, Tuple

from absl import app
from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALLOWED = ('experiments.tables', 'experiments.paired',
           'experiments.dtype_selection')
BLOCK = re.compile(r'(<!-- begin: (?P<command>[^\n]*?) -->\n)(?P<body>.*?)'
                   r'(<!-- end -->)', re.S)


class RefreshError(ValueError):
  """A block's command is not allowed or did not succeed."""


def parse(command: str) -> Tuple[str, Dict[str, str]]:
  """The module and the flags of a block's command.

  Args:
    command: ``python -m experiments.tables --flag=value ...`` (or
      ``.paired``, ``.dtype_selection``); every argument a
      ``--flag=value``.

  Returns:
    ('tables', 'paired' or 'dtype_selection', {flag: value}).

  Raises:
    RefreshError: any other command, or an argument not of that form.
  """
  words = shlex.split(command)
  if len(words) < 3 or words[0] != 'python' or words[1] != '-m' or (
      words[2] not in ALLOWED):
    raise RefreshError(
        f'a block may only run python -m {" or ".join(ALLOWED)}, not '
        f'{command!r}')
  args = {}
  for word in words[3:]:
    match = re.fullmatch(r'--(\w+)=(.*)', word, re.S)
    if not match:
      raise RefreshError(f'{command!r}: write every argument as '
                         f'--flag=value, not {word!r}')
    args[match.group(1)] = match.group(2)
  return words[2].split('.')[1], args


def run(command: str) -> str:
  """What ``command`` prints (its ``main``'s markdown), from the repository
  root.

  Raises:
    RefreshError: the command is not allowed, names an unknown flag, or
      its results are damaged (the message of the command's exit 2).
  """
  from experiments import kept  # pylint: disable=g-import-not-at-top
  from experiments import dtype_selection  # pylint: disable=g-import-not-at-top
  from experiments import paired  # pylint: disable=g-import-not-at-top
  from experiments import tables  # pylint: disable=g-import-not-at-top
  module, args = parse(command)
  known = {'tables': {'root', 'table', 'margin', 'strict'},
           'dtype_selection': {'table'}}.get(
               module, {'root', 'base', 'other', 'other_root', 'keys',
                        'margin', 'strict', 'paper_epochs', 'then_root',
                        'assignments'})
  unknown = sorted(set(args) - known)
  if unknown:
    raise RefreshError(f'{command!r}: unknown flag --{unknown[0]}')
  margin = float(args['margin']) if 'margin' in args else None
  strict = args.get('strict', 'false').lower() in ('1', 'true')
  cwd = os.getcwd()
  os.chdir(ROOT)
  try:
    if module == 'tables':
      text = tables.render(args['root'], args.get('table', 'summary'),
                           margin, strict)
    elif module == 'dtype_selection':  # a saved result (no workdirs needed)
      with open(args['table']) as f:
        text = dtype_selection.table(json.load(f))
    else:
      keys = args['keys'].split(',') if 'keys' in args else paired.KEYS
      text = paired.report(
          args['root'], args['base'], args['other'], args.get('other_root'),
          keys, margin, strict,
          int(args.get('paper_epochs', kept.BURDA_FULL_EPOCHS)),
          args.get('then_root'),
          args.get('assignments', 'false').lower() in ('1', 'true'))
  except (KeyError, ValueError, OSError) as e:  # missing flag, damaged results
    raise RefreshError(f'{command!r}: {e}') from e
  finally:
    os.chdir(cwd)
  return text.rstrip('\n') + '\n'


def refresh(text: str, runner: Callable[[str], str] = run
            ) -> Tuple[str, List[str]]:
  """The page with every block replaced by its command's output.

  Args:
    text: the page.
    runner: command -> output (`run`; tests pass their own).

  Returns:
    The new page and the commands whose blocks changed.
  """
  changed = []

  def replace(match):
    body = runner(match.group('command'))
    if body != match.group('body'):
      changed.append(match.group('command'))
    return match.group(1) + body + match.group(4)

  return BLOCK.sub(replace, text), changed


def main(argv):
  if len(argv) != 2:
    print('usage: python -m experiments.refresh [--check] PAGE.md',
          file=sys.stderr)
    sys.exit(2)
  path = argv[1]
  with open(path) as f:
    text = f.read()
  try:
    new, changed = refresh(text)
  except RefreshError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  blocks = len(BLOCK.findall(text))
  if flags.FLAGS.check:
    for command in changed:
      print(f'stale: {command}')
    print(f'{blocks - len(changed)} of {blocks} blocks current')
    sys.exit(1 if changed else 0)
  if changed:
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
      f.write(new)
    os.replace(tmp, path)
  print(f'{len(changed)} of {blocks} blocks rewritten in {path}')


if __name__ == '__main__':
  flags.DEFINE_bool('check', False, 'Only say which blocks are stale '
                    '(exit 1 if any), writing nothing.')
  app.run(main)
