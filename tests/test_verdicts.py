"""experiments.verdicts: the one rule of every paired comparison, against
tabulated t quantiles, an independent computation and a simulation."""

import math

import numpy as np
import pytest

from experiments import verdicts

# Two-sided 95% t quantiles, t_{df}(0.975), from printed tables.
TABULATED = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 9: 2.262,
             10: 2.228, 30: 2.042, 120: 1.980}


@pytest.mark.parametrize('df', sorted(TABULATED))
def test_t_quantiles_are_the_tabulated_ones(df):
  assert verdicts.t_quantile(df) == pytest.approx(TABULATED[df], abs=5e-4)


def test_t_quantile_at_90_percent_and_its_limits():
  assert verdicts.t_quantile(2, 0.90) == pytest.approx(2.920, abs=5e-4)
  assert verdicts.t_quantile(10 ** 7) == pytest.approx(1.960, abs=5e-4)
  with pytest.raises(ValueError, match='df >= 1'):
    verdicts.t_quantile(0)


def test_decide_against_an_independent_computation():
  rs = np.random.RandomState(0)
  d = 0.3 + rs.randn(3, 1) * 0.2 + rs.randn(1, 400) + rs.randn(3, 400) * 0.3
  v = verdicts.decide(list(d))
  seed_means = [sum(row) / len(row) for row in d.tolist()]
  mean = sum(seed_means) / 3
  seed_se = math.sqrt(sum((m - mean) ** 2 for m in seed_means) / 2 / 3)
  per_image = [sum(col) / 3 for col in zip(*d.tolist())]
  image_mean = sum(per_image) / 400
  image_se = math.sqrt(sum((x - image_mean) ** 2 for x in per_image)
                       / 399 / 400)
  se = math.sqrt(seed_se ** 2 + image_se ** 2)
  assert v.estimate == pytest.approx(mean)
  assert v.seed_stderr == pytest.approx(seed_se)
  assert v.image_stderr == pytest.approx(image_se)
  assert v.stderr == pytest.approx(se)
  assert (v.df, v.num_seeds, v.num_images) == (2, 3, 400)
  assert v.quantile == pytest.approx(4.303, abs=5e-4)
  assert v.interval == pytest.approx((mean - v.quantile * se,
                                      mean + v.quantile * se))


def _seeds(means, n=200, image_sd=0.01, seed=0):
  rs = np.random.RandomState(seed)
  shared = rs.randn(n) * image_sd
  return [m + shared - shared.mean() for m in means]


def test_outcomes():
  better = verdicts.decide(_seeds([0.30, 0.35, 0.40]))
  assert better.outcome == verdicts.A_BETTER
  assert verdicts.decide(_seeds([-0.30, -0.35, -0.40])).outcome == (
      verdicts.A_WORSE)
  # +0.13 ± 0.13 between seeds: the interval holds zero.
  wide = verdicts.decide(_seeds([0.31, -0.12, 0.20]))
  assert wide.outcome == verdicts.NOT_RESOLVED
  # Resolved by mean ± 2 SE_seed, not by the t quantile with 2 df.
  near = verdicts.decide(_seeds([0.05, 0.15, 0.25]))
  assert near.estimate > 2 * near.seed_stderr
  assert near.outcome == verdicts.NOT_RESOLVED
  # Level only with a margin, and only inside it.
  small = _seeds([0.01, -0.02, 0.02])
  assert verdicts.decide(small).outcome == verdicts.NOT_RESOLVED
  assert verdicts.decide(small, margin=0.5).outcome == 'level within ±0.5'
  assert verdicts.decide(small, margin=0.01).outcome == verdicts.NOT_RESOLVED
  both = verdicts.decide(_seeds([0.30, 0.35, 0.40]), margin=1.0)
  assert both.outcome == verdicts.A_BETTER and both.within_margin
  one = verdicts.decide(_seeds([5.0]))
  assert one.outcome == verdicts.ONE_SEED and math.isnan(one.stderr)
  with pytest.raises(ValueError, match='margin'):
    verdicts.decide(small, margin=0)


def test_seeds_scored_on_more_images_are_cut_to_the_common_ones():
  v = verdicts.decide([np.ones(10), np.ones(7) * 3])
  assert v.num_images == 7 and v.seeds == (1.0, 3.0)


def test_describe_prints_the_parts_beside_the_verdict():
  v = verdicts.decide(_seeds([0.30, 0.35, 0.40]))
  text = verdicts.describe(v, 'eVAE', expected_sign=-1)
  assert text.startswith('+0.35 (3 seeds: +0.30, +0.35, +0.40; 200 images), '
                         f'SE {v.stderr:.2f} (seed {v.seed_stderr:.2f}, '
                         f'image {v.image_stderr:.2f}), df 2, t 4.30, 95% CI [')
  assert text.endswith(": resolved: eVAE better, against the sign of the paper's gap")
  within = verdicts.describe(verdicts.decide(_seeds([0.3, 0.35, 0.4]), 1.0))
  assert within.endswith('resolved: A better, within ±1')
  one = verdicts.describe(verdicts.decide(_seeds([0.3])))
  assert one.endswith(': one seed: no verdict') and 'image SE' in one


def _simulate(num_experiments, num_seeds, num_images, seed_sd, image_sd,
              noise_sd, rs):
  """Per-image differences of experiments whose true difference is 0: a
  seed effect (the training run), an image effect shared by every seed
  (the test set drawn once), and seed x image noise;
  (experiments, seeds, images)."""
  return (rs.randn(num_experiments, num_seeds, 1) * seed_sd
          + rs.randn(num_experiments, 1, num_images) * image_sd
          + rs.randn(num_experiments, num_seeds, num_images) * noise_sd)


def _old_rule_rejects(d):
  """The rule the tables used before: |mean| > 2 SE_seed."""
  means = d.mean(axis=1)
  return abs(means.mean()) > 2 * means.std(ddof=1) / math.sqrt(len(means))


@pytest.mark.parametrize('seed_sd,image_sd,noise_sd', [
    (1.0, 0.0, 0.01),   # training seeds alone
    (1.0, 1.0, 1.0),    # seeds, shared images and seed x image noise
    (0.02, 1.0, 1.0),   # the shared test images dominate
], ids=['seeds', 'all', 'images'])
def test_false_positives_at_true_difference_zero(seed_sd, image_sd, noise_sd):
  """2,000 experiments of 3 seeds x 100 images with no true difference:
  the rule rejects at most 5% (binomial tolerance: 3.3 SD), and 5% where
  the seeds' spread is all there is; the old rule rejects far more.
  (Seed x image noise enters both SE_seed and SE_image, so the rule is
  conservative when there is much of it.)"""
  rs = np.random.RandomState(7)
  trials = 2000
  d = _simulate(trials, 3, 100, seed_sd, image_sd * math.sqrt(100),
                noise_sd, rs)
  new = np.mean([verdicts.decide(list(e)).outcome != verdicts.NOT_RESOLVED
                 for e in d])
  old = np.mean([_old_rule_rejects(e) for e in d])
  tolerance = 3.3 * math.sqrt(0.05 * 0.95 / trials)
  assert new <= 0.05 + tolerance
  if image_sd == 0:
    assert abs(new - 0.05) <= tolerance
  assert old > 0.15   # S = 3: P(|t_2| > 2) = 0.18; shared images: more
  if seed_sd < image_sd:
    assert old > 0.5
