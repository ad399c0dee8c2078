"""Builds the documentation site: the pages and the API reference.

    python docs/build.py            # writes site/; open site/index.html
    python docs/build.py --out=DIR

The pages are README.md (the site's index) and every ``docs/*.md``,
rendered to HTML with their links between pages kept; the API reference is
rendered from the docstrings of `PUBLIC_MODULES` by pdoc (Google style)
into ``site/api/``. Both come with the ``test`` extra (pdoc, and markdown2,
which pdoc depends on). The build fails on a link to a page that does not
exist.
"""

import argparse
import html
import os
import pathlib
import re
import sys
from typing import Dict, List

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The library API: what `evae_jax` exports, and the modules people import
# directly. The reference documents exactly these (tests check each one's
# docstrings).
PUBLIC_MODULES = ('evae_jax', 'evae_jax.api', 'evae_jax.elbo',
                  'evae_jax.objectives', 'evae_jax.objectives.registry',
                  'evae_jax.objectives.latents', 'evae_jax.objectives.point',
                  'evae_jax.objectives.iwae', 'evae_jax.objectives.free_bits',
                  'evae_jax.objectives.callables', 'evae_jax.epitomes',
                  'evae_jax.likelihoods', 'evae_jax.marginal',
                  'evae_jax.evaluate', 'evae_jax.metrics',
                  'evae_jax.sampling')

_STYLE = """body{max-width:52rem;margin:2rem auto;padding:0 1rem;
font:16px/1.5 system-ui,sans-serif;color:#222}
pre{background:#f6f8fa;padding:.8rem;overflow-x:auto}
code{font-size:90%}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:.2rem .5rem}nav{margin-bottom:1.5rem}
nav a{margin-right:1rem}"""


def pages() -> Dict[str, str]:
  """The site's pages: {output name: markdown source path}.

  Returns:
    'index.html' for README.md, 'NAME.html' for each docs/NAME.md, in the
    order of the navigation bar.
  """
  found = {'index.html': os.path.join(ROOT, 'README.md')}
  folder = os.path.join(ROOT, 'docs')
  for name in sorted(os.listdir(folder)):
    if name.endswith('.md'):
      found[name[:-3] + '.html'] = os.path.join(folder, name)
  return found


def _title(markdown: str, fallback: str) -> str:
  match = re.search(r'^# (.+)$', markdown, re.M)
  return match.group(1).strip() if match else fallback


def _links(markdown: str, source: str, names: Dict[str, str]) -> str:
  """Rewrites links to the pages' .md files into links to their .html.

  Args:
    markdown: a page's text.
    source: its path (links are relative to its folder).
    names: {markdown path: output name}, from `pages`.

  Returns:
    The text with every ``](PATH.md)`` or ``](PATH.md#anchor)`` of a page
    pointing at its HTML.

  Raises:
    SystemExit: a link to a .md file that is no page of the site.
  """
  def swap(match):
    target, anchor = match.group(1), match.group(2) or ''
    path = os.path.normpath(os.path.join(os.path.dirname(source), target))
    if path not in names:
      sys.exit(f'error: {os.path.relpath(source, ROOT)} links to {target}, '
               'which is no page of the site (README.md or docs/*.md).')
    return f']({names[path]}{anchor})'
  return re.sub(r'\]\(([^)\s#]+\.md)(#[^)\s]*)?\)', swap, markdown)


def render_pages(out: str) -> List[str]:
  """Writes every page of `pages` as HTML into ``out``.

  Args:
    out: the output folder (created).

  Returns:
    The paths written.
  """
  import markdown2  # pylint: disable=g-import-not-at-top
  os.makedirs(out, exist_ok=True)
  site = pages()
  names = {path: name for name, path in site.items()}
  texts = {name: open(path, encoding='utf-8').read()
           for name, path in site.items()}
  nav = ' '.join(
      f'<a href="{name}">{html.escape(_title(texts[name], name))}</a>'
      for name in site) + ' <a href="api/index.html">API reference</a>'
  written = []
  for name, path in site.items():
    body = markdown2.markdown(
        _links(texts[name], path, names),
        extras=['tables', 'fenced-code-blocks', 'header-ids', 'strike'])
    title = html.escape(_title(texts[name], name))
    target = os.path.join(out, name)
    with open(target, 'w', encoding='utf-8') as f:
      f.write(f'<!doctype html><meta charset="utf-8"><title>{title}</title>'
              f'<style>{_STYLE}</style><nav>{nav}</nav>\n{body}')
    written.append(target)
  return written


def render_api(out: str) -> None:
  """Writes the API reference of `PUBLIC_MODULES` into ``out``.

  Args:
    out: the output folder (its index.html is the reference's start page).
  """
  import pdoc  # pylint: disable=g-import-not-at-top
  import pdoc.render  # pylint: disable=g-import-not-at-top
  pdoc.render.configure(docformat='google')
  pdoc.pdoc(*PUBLIC_MODULES, output_directory=pathlib.Path(out))


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--out', default=os.path.join(ROOT, 'site'),
                      help='the output folder (default: site/)')
  args = parser.parse_args(argv)
  sys.path.insert(0, ROOT)
  written = render_pages(args.out)
  render_api(os.path.join(args.out, 'api'))
  print(f'Wrote {len(written)} pages and the API reference to {args.out}; '
        f'open {os.path.join(args.out, "index.html")}')


if __name__ == '__main__':
  main()
