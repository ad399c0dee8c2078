"""The one rule by which the tables and the paired comparisons call a
difference between two models resolved, not resolved or level.

A paired difference of model A minus model B (in the tables and in
`experiments.paired`: the *other* model minus the *base*; positive: A is
better), over S training seeds, every seed of both models scored on the same
n test images: ``d[s, i]`` = A's value minus B's on image i, seeds s paired
(seed s of A against seed s of B). Then::

    d_s       = mean_i d[s, i]                    the seed's paired difference
    estimate  = mean_s d_s
    SE_seed   = sd_s(d_s) / sqrt(S)               between training seeds (ddof 1)
    SE_image  = sd_i(mean_s d[s, i]) / sqrt(n)    over the test images (ddof 1)
    SE        = sqrt(SE_seed^2 + SE_image^2)
    q         = t_{S-1}^{-1}(0.975)               t quantile, S - 1 df (4.303 at S = 3)
    95% CI    = estimate ± q * SE

Both parts, because every seed is scored on the *same* images: their
sampling error is common to all seeds, so it does not show in the seeds'
spread (SE_seed), and a second draw of n test images would move every d_s
together. The quantile has the seeds' S - 1 degrees of freedom, not 1.96
and not 2: with S = 3, 'mean ± 2 SE_seed excludes 0' calls ~18% of
differences that are truly 0 (`tests/test_verdicts.py` simulates it).
The rule errs on the safe side elsewhere: S - 1 degrees of freedom are too
few where SE_image dominates (it is known to n - 1), and the seed x image
noise enters both parts; there it rejects a true 0 less often than 5%.

Outcomes (the interval is the 95% one above):

- ``'resolved: A better'`` / ``'resolved: A worse'``: the interval excludes 0;
- ``'level within ±m'``: only when an equivalence margin m (nats) is given,
  and the interval lies inside (-m, +m) without excluding 0. This is TOST
  (two one-sided tests) run on the printed 95% interval, i.e. each one-sided
  test at alpha = 0.025: stricter than textbook TOST at alpha = 0.05, which
  uses the 90% interval (1 - 2 alpha). One interval decides every outcome
  and is the one printed beside it. A resolved difference whose interval
  also lies inside (-m, +m) is reported as resolved, with 'within ±m'
  added (`Verdict.within_margin`);
- ``'not resolved'`` otherwise;
- ``'one seed: no verdict'`` with S = 1 (the spread of training runs is
  unknown, whatever the image SE).
"""

import dataclasses
import math
from typing import Optional, Sequence, Tuple

import numpy as np
from scipy import stats

LEVEL = 0.95
A_BETTER = 'resolved: A better'
A_WORSE = 'resolved: A worse'
NOT_RESOLVED = 'not resolved'
ONE_SEED = 'one seed: no verdict'


def level_within(margin: float) -> str:
  """The outcome 'level within ±m' for margin m (nats)."""
  return f'level within ±{margin:g}'


def t_quantile(df: int, level: float = LEVEL) -> float:
  """The two-sided t quantile, t_df^{-1}((1 + level) / 2).

  Args:
    df: degrees of freedom, >= 1.
    level: the interval's coverage (0.95: the 0.975 quantile).

  Returns:
    The quantile (12.706 at df = 1, 4.303 at df = 2, 1.960 as df -> inf).
  """
  if df < 1:
    raise ValueError(f'a t quantile needs df >= 1, not {df}')
  return float(stats.t.ppf((1 + level) / 2, df))


@dataclasses.dataclass(frozen=True)
class Verdict:
  """A paired difference A - B over seeds, its error and the outcome.

  Attributes:
    seeds: the per-seed paired differences d_s, (S,).
    num_images: n, the test images every seed was scored on.
    estimate: mean_s d_s.
    seed_stderr: SE_seed (NaN for S = 1).
    image_stderr: SE_image.
    stderr: sqrt(SE_seed^2 + SE_image^2) (NaN for S = 1).
    df: S - 1.
    quantile: t_{S-1}^{-1}(0.975) (NaN for S = 1).
    interval: the 95% interval (low, high) ((NaN, NaN) for S = 1).
    margin: the equivalence margin m, or None.
    outcome: one of the module docstring's outcomes (A = the first model).
    within_margin: the interval lies inside (-m, +m).
  """
  seeds: Tuple[float, ...]
  num_images: int
  estimate: float
  seed_stderr: float
  image_stderr: float
  stderr: float
  df: int
  quantile: float
  interval: Tuple[float, float]
  margin: Optional[float]
  outcome: str
  within_margin: bool

  @property
  def num_seeds(self) -> int:
    return len(self.seeds)


def decide(differences: Sequence[np.ndarray],
           margin: Optional[float] = None) -> Verdict:
  """The verdict on A - B from its per-image paired differences.

  Args:
    differences: for each seed s, d[s, :] = A's per-image value minus B's,
      (n_s,), on the same images in the same order; seeds scored on more
      images than others are cut to the common first n = min_s n_s (every
      part of the rule needs the same images in every seed).
    margin: the equivalence margin m in nats (> 0), or None: no 'level'
      outcome.

  Returns:
    The `Verdict` (the formula is the module docstring's).
  """
  if not len(differences):
    raise ValueError('a verdict needs at least one seed')
  if margin is not None and not margin > 0:
    raise ValueError(f'the equivalence margin must be > 0, not {margin}')
  n = min(len(d) for d in differences)
  d = np.stack([np.asarray(x[:n], np.float64) for x in differences])
  per_seed = d.mean(axis=1)
  count = len(per_seed)
  estimate = float(per_seed.mean())
  image_stderr = float(d.mean(axis=0).std(ddof=1) / math.sqrt(n))
  if count == 1:
    nan = float('nan')
    return Verdict(tuple(map(float, per_seed)), n, estimate, nan,
                   image_stderr, nan, 0, nan, (nan, nan), margin, ONE_SEED,
                   False)
  seed_stderr = float(per_seed.std(ddof=1) / math.sqrt(count))
  stderr = math.hypot(seed_stderr, image_stderr)
  quantile = t_quantile(count - 1)
  low, high = estimate - quantile * stderr, estimate + quantile * stderr
  within = margin is not None and -margin < low and high < margin
  if low > 0:
    outcome = A_BETTER
  elif high < 0:
    outcome = A_WORSE
  elif within:
    outcome = level_within(margin)
  else:
    outcome = NOT_RESOLVED
  return Verdict(tuple(map(float, per_seed)), n, estimate, seed_stderr,
                 image_stderr, stderr, count - 1, quantile, (low, high),
                 margin, outcome, within)


def describe(verdict: Verdict, a: str = 'A', expected_sign: int = 0) -> str:
  """One line: the estimate, the seeds, the SE with its two parts, df,
  quantile, interval and outcome.

  '+0.77 (3 seeds: +0.53, +0.90, +0.86; 2000 images), SE 0.13 (seed 0.12,
  image 0.05), df 2, t 4.30, 95% CI [+0.21, +1.33]: resolved: A better,
  the sign of the paper's gap'

  Args:
    verdict: `decide`'s result.
    a: the name that replaces 'A' in the outcome.
    expected_sign: +1 (A better) or -1, the sign the paper reports; 0 when
      it reports none. A resolved outcome then says whether its sign is
      the paper's; never that the sizes agree (budgets differ).
  """
  v = verdict
  seeds = ', '.join(f'{m:+.2f}' for m in v.seeds)
  head = (f'{v.estimate:+.2f} ({v.num_seeds} seed'
          f'{"s" * (v.num_seeds > 1)}: {seeds}; {v.num_images} images)')
  outcome = v.outcome.replace('A', a, 1) if v.outcome.startswith(
      'resolved') else v.outcome
  if v.num_seeds == 1:
    return f'{head}, image SE {v.image_stderr:.2f}: {outcome}'
  if v.outcome in (A_BETTER, A_WORSE):
    if v.within_margin:
      outcome += f', within ±{v.margin:g}'
    if expected_sign:
      sign = 1 if v.outcome == A_BETTER else -1
      # The sign only: the paper's gap is at its full budget, ours
      # usually at a few per cent of it, so sizes are not compared here.
      outcome += (", the sign of the paper's gap" if sign == expected_sign
                  else ", against the sign of the paper's gap")
  low, high = v.interval
  return (f'{head}, SE {v.stderr:.2f} (seed {v.seed_stderr:.2f}, image '
          f'{v.image_stderr:.2f}), df {v.df}, t {v.quantile:.2f}, 95% CI '
          f'[{low:+.2f}, {high:+.2f}]: {outcome}')


RULE = ('Verdicts (experiments/verdicts.py): SE = sqrt(SE_seed^2 + '
        'SE_image^2), SE_seed = sd of the per-seed paired differences / '
        'sqrt(S), SE_image = sd over the test images of the difference '
        'averaged over seeds / sqrt(n); 95% CI = estimate ± t(S - 1) SE; '
        'resolved where it excludes 0; level within ±m only for a margin '
        'given and the interval inside (-m, m); one seed: no verdict.')
