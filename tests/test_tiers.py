"""The test tiers name real tests: a renamed file or test would otherwise
drop out of the smoke tier without a word."""

import ast
import os

from tests import conftest

HERE = os.path.dirname(os.path.abspath(__file__))


def test_every_smoke_file_and_test_exists():
  for name in conftest.SMOKE_FILES:
    assert os.path.isfile(os.path.join(HERE, name)), name
  for node in conftest.SMOKE_TESTS:
    name, test = node.split('::')
    tree = ast.parse(open(os.path.join(HERE, name)).read())
    assert test in {f.name for f in tree.body
                    if isinstance(f, ast.FunctionDef)}, node
