"""Ships a trained, evaluated workdir as a pretrained model of the package.

    python -m experiments.pretrained --workdir=runs/budget/latent_dim=50,kind=evae,seed=0 \
        --name=mnist-evae --command='STAGES=5 bash experiments/mnist.sh budget ...'

exports the workdir (`evae_jax.export`) to ``evae_jax/pretrained/NAME.npz``
and writes its model card ``NAME.md`` from the file itself (the config, the
budget, the code that trained it and the test numbers of its ``eval.json``),
so the card cannot disagree with the weights it describes. The workdir must
have been evaluated at its newest step (``--mode=evaluate``).
"""

import json
import os
import sys

from absl import app
from absl import flags

import evae_jax
from evae_jax import pretrained
from experiments import kept

FOLDER = os.path.dirname(pretrained.__file__)


def _epochs(train) -> str:
  if train['schedule'] == 'burda':
    n = sum(3 ** i for i in range(train['burda_stages']))
    return (f'{n} epochs (Burda et al.\'s stages 1-{train["burda_stages"]}, '
            f'{100 * n / kept.BURDA_FULL_EPOCHS:.1f}% of their 3,280)')
  return f'{train["num_epochs"]} epochs ({train["schedule"]} schedule)'


def card(name: str, meta, digest: str, command: str, note: str = '') -> str:
  """The model card (markdown) of a model file's description; ``note``, a
  sentence of context (e.g. where the seeds' comparison is), is added as is."""
  c, ev = meta['config'], meta['evaluation']
  m, d, t = c['model'], c['data'], c['train']
  iw = ev['iw_log_likelihood']
  kind = {'evae': 'eVAE', 'vae': 'VAE', 'mvae': 'mVAE'}[m['kind']]
  layout = ('' if m['kind'] == 'vae' else
            f', epitomes of K = {m["epitome_size"]} units, stride '
            f'{m["stride"] or m["epitome_size"]}')
  code = meta['trained_with']
  commits = sorted({r.get('commit') or '?' for r in code})
  units = ev['active_units']
  return f"""# {name}

`evae_jax.load('pretrained:{name}')`: the {kind} of the eVAE paper's Table 2
protocol at D = {m['latent_dim']}{layout}; L = {m['num_layers']} hidden
layers of H = {m['hidden_dim']} {m['activation']} units, {m['likelihood']}
decoder.

- **Data**: MNIST (the original IDX files, `data.name={d['name']}`): the
  training images but the last {d['num_valid']}, which validate;
  {d['binarization']} binarisation.
- **Training**: batch {t['batch_size']}, {t['optimizer']} (lr {t['learning_rate']}),
  {_epochs(t)}; step {meta['step']}; seed {c['seed']}; {m['dtype']}.
- **Command**: `{command}`
- **Code**: evae_jax {code[0]['version'] if code else '?'}, commit(s)
  {', '.join(c_[:12] for c_ in commits)} (numerics version
  {code[0].get('numerics') if code else '?'}).
- **Test numbers** (from its `eval.json`, {ev.get('num_examples', '?')} test
  images, one fixed binarisation): -log p(x) = **{-iw['marginal']['mean']:.2f}**
  ± {iw['marginal']['stderr']:.2f} nats (IW, k = {iw['num_samples']}, marginal
  over epitomes, the first {iw['num_examples']} test images); eq. 7 bound
  {ev['bound']['mean']:.2f}; {units['count']} active units (of
  {m['latent_dim']}, threshold {units['threshold']}); Parzen
  {ev['parzen']['mean']:.1f} nats.
{f'- {note}' + chr(10) if note else ''}- **Not the paper's model**: the paper trains 3,280 epochs; this one far
  fewer (above), so its numbers are below the published ones (Table 2: VAE
  86.76, eVAE 86.13 at D = 50).
- **File**: `{name}.npz`, sha256 `{digest}`.
- **Licence**: the weights are released under the Apache License 2.0, as
  the code. MNIST: Yann LeCun, Corinna Cortes and Christopher J. C.
  Burges.
"""


def main(argv):
  del argv
  f = flags.FLAGS
  path = os.path.join(FOLDER, f'{f.name}.npz')
  # Written aside and moved into place only once it has its evaluation, so
  # a refused export never touches a shipped model or its card.
  staged = f'{path}.staged'
  digest = evae_jax.export(f.workdir, staged)
  meta = evae_jax.load(staged).meta
  if not meta['evaluation']:
    os.remove(staged)
    print(f'error: {f.workdir} has no eval.json of its newest step: run '
          '--mode=evaluate on it first.', file=sys.stderr)
    sys.exit(2)
  os.replace(staged, path)
  with open(os.path.join(FOLDER, f'{f.name}.md'), 'w') as fh:
    fh.write(card(f.name, meta, digest, f.command, f.note))
  print(json.dumps({'path': path, 'sha256': digest,
                    'bytes': os.path.getsize(path)}))


if __name__ == '__main__':
  flags.DEFINE_string('workdir', None, 'The trained, evaluated workdir.')
  flags.DEFINE_string('name', None, 'The pretrained name (pretrained:NAME).')
  flags.DEFINE_string('command', '', 'The command that trained it (for the '
                      'card).')
  flags.DEFINE_string('note', '', 'A sentence of context for the card.')
  flags.mark_flags_as_required(['workdir', 'name'])
  app.run(main)
