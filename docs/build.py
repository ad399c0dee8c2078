"""Builds the documentation site: the pages and the API reference.

    python docs/build.py            # writes site/; open site/index.html
    python docs/build.py --out=DIR

The pages are README.md (the site's index), every ``docs/*.md`` and the
results (`EXTRA_PAGES`), rendered to HTML at their repository paths with
their links between pages kept and the images they show copied; the API
reference is rendered from the docstrings of `PUBLIC_MODULES` by pdoc
(Google style) into ``site/api/``. Both come with the ``test`` extra
(pdoc, and markdown2, which pdoc depends on). The build fails on a link
to a page that does not exist or to a local file that is missing.
"""

import argparse
import html
import os
import pathlib
import re
import shutil
import sys
from typing import Dict, List, Tuple

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
                  'evae_jax.metrics.information', 'evae_jax.metrics.parzen',
                  'evae_jax.sampling')

_STYLE = """body{max-width:52rem;margin:2rem auto;padding:0 1rem;
font:16px/1.5 system-ui,sans-serif;color:#222}
pre{background:#f6f8fa;padding:.8rem;overflow-x:auto}
code{font-size:90%}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:.2rem .5rem}nav{margin-bottom:1.5rem}
nav a{margin-right:1rem}"""


# Pages beyond README.md and docs/*.md: the results and how to rerun them.
EXTRA_PAGES = ('results/RESULTS.md', 'experiments/README.md')


def pages() -> Dict[str, str]:
  """The site's pages: {output name: markdown source path}.

  Returns:
    'index.html' for README.md, then 'docs/NAME.html' for each docs/NAME.md
    and the `EXTRA_PAGES` at their paths with .html for .md, in the order
    of the navigation bar: the site mirrors the repository, so a page's
    relative links (to another page or to an image) keep working.
  """
  found = {'index.html': os.path.join(ROOT, 'README.md')}
  folder = os.path.join(ROOT, 'docs')
  for name in sorted(os.listdir(folder)):
    if name.endswith('.md'):
      found[f'docs/{name[:-3]}.html'] = os.path.join(folder, name)
  for relative in EXTRA_PAGES:
    found[relative[:-3] + '.html'] = os.path.join(ROOT, relative)
  return found


def _title(markdown: str, fallback: str) -> str:
  match = re.search(r'^# (.+)$', markdown, re.M)
  return match.group(1).strip() if match else fallback


def _links(markdown: str, source: str, names: Dict[str, str],
           page: str = 'index.html') -> Tuple[str, List[str]]:
  """Rewrites links to the pages' .md files into links to their .html.

  Args:
    markdown: a page's text.
    source: its path (links are relative to its folder).
    names: {markdown path: output name}, from `pages`.
    page: the page's output name (links are made relative to it).

  Returns:
    The text with every ``](PATH.md)`` or ``](PATH.md#anchor)`` of a page
    pointing at its HTML, and the other local files it links to (images,
    scripts; repository paths, for the site to copy).

  Raises:
    SystemExit: a link to a .md file that is no page of the site, or to a
      local file that does not exist.
  """
  files = []

  def swap(match):
    target, anchor = match.group(1), match.group(2) or ''
    if re.match(r'[a-z]+:', target) or not target:
      return match.group(0)
    path = os.path.normpath(os.path.join(os.path.dirname(source), target))
    if target.endswith('.md'):
      if path not in names:
        sys.exit(f'error: {os.path.relpath(source, ROOT)} links to {target}, '
                 'which is no page of the site (README.md, docs/*.md, '
                 f'{", ".join(EXTRA_PAGES)}).')
      return ']({}{})'.format(
          os.path.relpath(names[path], os.path.dirname(page) or '.'), anchor)
    if not os.path.exists(path):
      sys.exit(f'error: {os.path.relpath(source, ROOT)} links to {target}, '
               'which does not exist.')
    if os.path.isfile(path):  # a folder is linked, not copied
      files.append(os.path.relpath(path, ROOT))
    return match.group(0)
  text = re.sub(r'\]\(([^)\s#]*)(#[^)\s]*)?\)', swap, markdown)
  return text, files


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
  written = []
  for name, path in site.items():
    here = os.path.dirname(name) or '.'
    nav = ' '.join(
        f'<a href="{os.path.relpath(other, here)}">'
        f'{html.escape(_title(texts[other], other))}</a>'
        for other in site) + (
            f' <a href="{os.path.relpath("api/index.html", here)}">'
            'API reference</a>')
    text, files = _links(texts[name], path, names, name)
    for relative in files:
      os.makedirs(os.path.join(out, os.path.dirname(relative)),
                  exist_ok=True)
      shutil.copyfile(os.path.join(ROOT, relative),
                      os.path.join(out, relative))
    body = markdown2.markdown(
        text, extras=['tables', 'fenced-code-blocks', 'header-ids', 'strike'])
    title = html.escape(_title(texts[name], name))
    target = os.path.join(out, name)
    os.makedirs(os.path.dirname(target), exist_ok=True)
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
