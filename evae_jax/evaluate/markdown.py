"""``report.md``: an evaluation's ``eval.json`` written for people, with
the notes that say how each figure was made."""

from typing import Any, Dict

import ml_collections

from evae_jax import figures
from evae_jax.storage import files


def report_markdown(results: Dict[str, Any],
                    config: ml_collections.ConfigDict, workdir: str) -> str:
  """``report.md``: the figures of ``eval.json`` for people, with the
  settings that produced them.

  Args:
    results: the ``eval.json`` dict of `evae_jax.evaluate.report`.
    config: the run's config.
    workdir: the evaluated workdir (named in the title).

  Returns:
    The Markdown text, ending in a newline.
  """
  r = results
  nats = lambda d: f'{d["mean"]:.2f} ± {d["stderr"]:.2f}'
  shape = r['epitome_shape']
  quick = ([f'**{r["quick_note"]}**', ''] if r.get('quick') else [])
  lines = [
      f'# {"Quick evaluation" if quick else "Evaluation"} of `{workdir}`', '',
  ] + quick + [
      f'Model: {config.model.kind}, L={config.model.num_layers}, '
      f'H={config.model.hidden_dim}, D={shape["latent_dim"]}, '
      f'K={shape["epitome_size"]}, s={shape["stride"]} '
      f'(E={r["num_epitomes"]} epitomes), {config.model.likelihood} '
      f'likelihood, {r["num_params"]:,} parameters, trained {r["step"]} steps '
      f'on `{config.data.name}`'
      + (f' in {r["dtype"]["train"]}, evaluated in {r["dtype"]["eval"]}'
         if 'dtype' in r else '') + '.', '',
      '| measurement | value |', '| --- | --- |',
      f'| bound of eq. 7 (max_y ELBO_y - log E), nats | {nats(r["bound"])} |',
      f'| logsumexp bound (logsumexp_y ELBO_y - log E), nats | '
      f'{nats(r["logsumexp_bound"])} |',
      f'| IW log-likelihood, marginal over epitomes, nats | '
      f'{nats(r["iw_log_likelihood"]["marginal"])} |',
      f'| IW log-likelihood, y* only (log p(x|y*) - log E), nats | '
      f'{nats(r["iw_log_likelihood"]["assigned_epitome"])} |',
      f'| active units (A_u > {r["active_units"]["threshold"]}) | '
      f'{r["active_units"]["count"]} of {shape["latent_dim"]} |',
      f'| active units (A_u > 0.01, Burda et al.) | '
      f'{r["active_units"]["count_at_0.01"]} of {shape["latent_dim"]} |',
      f'| mutual information I_q(x; z), nats | '
      f'{r["mutual_information"]["marginal"]:.2f} (at most log n = '
      f'{r["mutual_information"]["upper_limit"]:.2f}) |',
      f'| Parzen log-density, nats | {nats(r["parzen"])} |', '',
      '## Settings', '',
      f'- split: `{r["split"]}`, {r["num_examples"]} examples; binarisation '
      f'`{config.data.binarization}`'
      + (' (bounds and IW on one fixed binarisation)'
         if config.data.binarization == 'dynamic' else ''),
      '- bounds: single-sample ELBO per epitome with common noise; y* (and '
      'q(y|x) for the logsumexp bound) chosen on one draw and scored on an '
      'independent draw, so both are unbiased estimates of lower bounds',
      f'- IW: k = {r["iw_log_likelihood"]["num_samples"]} samples on the first '
      f'{r["iw_log_likelihood"]["num_examples"]} examples '
      f'({r["iw_log_likelihood"]["seconds"]:.1f} s)',
      f'- active units: A_u = Cov_x(E_q[u]) with E_q[u] = 0 outside y*(x); '
      f'threshold {r["active_units"]["threshold"]}',
      f'- Parzen: {r["parzen"]["num_samples"]} generated samples (decoder '
      f'means), sigma = {r["parzen"]["sigma"]:.4g} chosen from '
      f'logspace({config.eval.parzen_sigma_min_log10:g}, '
      f'{config.eval.parzen_sigma_max_log10:g}, '
      f'{config.eval.parzen_num_sigmas})'
      f' on {r["parzen"]["num_valid"]} validation images'
      + (' (**at an edge of the grid: widen it**)'
         if r['parzen']['sigma_at_edge'] else '')
      + f', scored on {r["parzen"]["pixels"]} pixels; mean ± std/sqrt(n)',
      f'- mutual information: He et al. (2019)\'s estimator, q(z) the '
      f'mixture of the {r["mutual_information"]["num_examples"]} examples\' '
      'posteriors under their assigned epitome (units outside y* at the '
      'prior); at most log n',
  ] + _dropout_note(config) + _remedies_note(config) + _code_note(r) + [
      '', '## Units and epitomes', '',
      'Sorted activity: ' + ', '.join(
          f'{a:.3f}' for a in r['active_units']['sorted_activity']), '',
      'Per-unit KL (nats): ' + ', '.join(
          f'{a:.3f}' for a in r['active_units']['per_unit_kl']), '',
      'Examples assigned to each epitome: ' + ', '.join(
          str(u) for u in r['epitome_usage']), '',
      'Mutual information per epitome (nats; I_q(x; z_y | y* = y), - = no '
      'example): ' + ', '.join(
          '-' if v is None else f'{v:.2f}'
          for v in r['mutual_information']['per_epitome']), '',
      '## Figures', '',
      f'![samples]({figures.SAMPLES_PNG}) ',
      f'![reconstructions]({figures.RECONSTRUCTIONS_PNG}) ',
      f'![activity]({figures.ACTIVITY_PNG})',
  ]
  if files.exists(files.join(workdir, figures.MANIFOLDS_PNG)):
    lines.append(f'![manifolds]({figures.MANIFOLDS_PNG})')
  return '\n'.join(lines) + '\n'


def _code_note(results):
  """The settings line naming the code that trained and evaluated."""
  code = results.get('code')
  if not code:
    return []
  name = lambda c: (f'{c["version"]} (commit '
                    f'{(c["commit"] or "unknown")[:12]}'
                    f'{", with uncommitted changes" if c["dirty"] else ""}'
                    f', numerics {c["numerics"]})')
  trained = code['trained_with']
  starts = '; '.join(f'{name(c)} from step {c["step"]}' for c in trained)
  return [f'- code: trained by {starts or "code older than the record"}; '
          f'evaluated by {name(code["evaluated_with"])}']


def parzen_pixels(binarization: str) -> str:
  """What the Parzen estimate's pixels are, for ``eval.json`` and the report.

  Args:
    binarization: ``data.binarization``.

  Returns:
    'binary (...)' for 'fixed', else 'real-valued (grey-level)'.
  """
  return ('binary (data.binarization=fixed binarises at load time)'
          if binarization == 'fixed' else 'real-valued (grey-level)')


def _remedies_note(config):
  t = config.train
  used = []
  if t.free_bits:
    used.append(f'free bits (lambda = {t.free_bits:g} nats per group of '
                f'{t.free_bits_group} unit(s))')
  if t.kl_warmup_steps:
    used.append(f'KL warm-up over {t.kl_warmup_steps} steps from '
                f'{t.kl_warmup_start:g} x the KL weight')
  if not used:
    return []
  return ['- trained with ' + ' and '.join(used) + ': these change only the '
          'training loss; every bound, IW estimate and metric here is the '
          'true ELBO / log-likelihood of the trained model.']


def _dropout_note(config):
  rate = config.train.z_dropout_rate
  if not rate:
    return []
  return [f'- dropout VAE: trained with dropout (rate {rate:g}) on z; '
          'evaluated, as usual for dropout, as the same network without '
          'dropout. The bounds, IW estimate and samples are those of that '
          'dropout-free model, not the quantity training optimised (the '
          'ELBO of a decoder that sees dropped-out z).']
