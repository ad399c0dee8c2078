"""elbo_fn and the eq. 7 loss against an independent float64 numpy computation."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp

from evae_jax import elbo
from evae_jax import objectives
from evae_jax import epitomes

jax.config.update('jax_enable_x64', False)

B, N, H, D = 5, 7, 6, 6


def _random_net(seed, likelihood):
  rs = np.random.RandomState(seed)
  p = {'we': rs.randn(N, H) * 0.5, 'be': rs.randn(H) * 0.1,
       'wm': rs.randn(H, D) * 0.5, 'wv': rs.randn(H, D) * 0.3,
       'wd': rs.randn(D, H) * 0.5, 'wo': rs.randn(H, N) * 0.5,
       'wov': rs.randn(H, N) * 0.2}
  return {k: v.astype(np.float32) for k, v in p.items()}


def _jax_fns(p, likelihood):
  def encode(x):
    h = jnp.tanh(x @ p['we'] + p['be'])
    return h @ p['wm'], h @ p['wv']

  def decode_log_prob(z, x):
    h = jnp.tanh(z @ p['wd'])
    if likelihood == 'bernoulli':
      logits = h @ p['wo']
      return jnp.sum(x * logits - jax.nn.softplus(logits), -1)
    mean, logvar = h @ p['wo'], h @ p['wov']
    return -0.5 * jnp.sum(jnp.log(2 * jnp.pi) + logvar
                          + (x - mean) ** 2 / jnp.exp(logvar), -1)
  return encode, decode_log_prob


def _numpy_elbo(p, likelihood, x, masks, eps):
  """Independent float64 reference, one example and one epitome at a time."""
  p = {k: v.astype(np.float64) for k, v in p.items()}
  x = x.astype(np.float64)
  out = np.zeros((len(x), len(masks)))
  kls = np.zeros_like(out)
  for b in range(len(x)):
    h = np.tanh(x[b] @ p['we'] + p['be'])
    mu, logvar = h @ p['wm'], h @ p['wv']
    for e, m in enumerate(masks):
      # q(z|x,y) = N(m*mu, exp(m*logvar)): units outside sit at the prior.
      q_mu, q_logvar = m * mu, m * logvar
      z = m * (q_mu + np.exp(0.5 * q_logvar) * eps[b])
      kl = 0.5 * np.sum(q_mu ** 2 + np.exp(q_logvar) - 1 - q_logvar)
      hd = np.tanh(z @ p['wd'])
      if likelihood == 'bernoulli':
        prob = 1 / (1 + np.exp(-(hd @ p['wo'])))
        ll = np.sum(x[b] * np.log(prob) + (1 - x[b]) * np.log(1 - prob))
      else:
        mean, lv = hd @ p['wo'], hd @ p['wov']
        ll = np.sum(-0.5 * (np.log(2 * np.pi) + lv + (x[b] - mean) ** 2
                            / np.exp(lv)))
      out[b, e], kls[b, e] = ll - kl, kl
  return out, kls


@pytest.mark.parametrize('likelihood', ['bernoulli', 'gaussian'])
@pytest.mark.parametrize('k,s', [(2, 2), (3, 1), (4, 4)])
def test_elbo_fn_matches_numpy(likelihood, k, s):
  p = _random_net(0, likelihood)
  rs = np.random.RandomState(1)
  x = (rs.rand(B, N) > 0.5).astype(np.float32)
  if likelihood == 'gaussian':
    x = rs.rand(B, N).astype(np.float32)
  masks = epitomes.make_masks(D, k, s)
  rng = jax.random.PRNGKey(3)
  eps = np.asarray(jax.random.normal(rng, (B, D)))
  encode, dlp = _jax_fns(p, likelihood)
  terms = jax.jit(lambda x: elbo.elbo_fn(encode, dlp, x, masks, rng))(x)
  chex.assert_shape([terms.elbo, terms.log_lik, terms.kl], (B, len(masks)))
  want, want_kl = _numpy_elbo(p, likelihood, x, masks, eps)
  np.testing.assert_allclose(terms.elbo, want, rtol=2e-5, atol=2e-4)
  np.testing.assert_allclose(terms.kl, want_kl, rtol=2e-5, atol=2e-5)
  np.testing.assert_allclose(terms.log_lik - terms.kl, terms.elbo, atol=1e-5)


def test_vae_case_is_the_textbook_elbo():
  """D = K = s: one epitome, and the textbook single-sample VAE ELBO."""
  p = _random_net(4, 'bernoulli')
  x = (np.random.RandomState(5).rand(B, N) > 0.5).astype(np.float32)
  rng = jax.random.PRNGKey(0)
  eps = np.asarray(jax.random.normal(rng, (B, D)), np.float64)
  encode, dlp = _jax_fns(p, 'bernoulli')
  terms = elbo.elbo_fn(encode, dlp, x, epitomes.make_masks(D, D, D), rng)
  mu, logvar = (np.asarray(a, np.float64) for a in encode(x))
  z = mu + np.exp(logvar / 2) * eps
  kl = 0.5 * np.sum(mu ** 2 + np.exp(logvar) - 1 - logvar, 1)
  want = np.asarray(dlp(z.astype(np.float32), x)) - kl
  np.testing.assert_allclose(terms.elbo[:, 0], want, rtol=1e-5, atol=1e-4)
  # The eq. 7 bound of a VAE has no log E term (log 1 = 0).
  np.testing.assert_allclose(
      elbo.point_estimate_bound(terms.elbo, terms.elbo), want,
      rtol=1e-5, atol=1e-4)


def test_bounds_order_and_log_e():
  values = jnp.array([[-10.0, -12.0, -11.0], [-3.0, -3.0, -3.0]])
  point = elbo.point_estimate_bound(values, values)
  lse = elbo.logsumexp_bound(values, values)
  np.testing.assert_allclose(point, [-10 - math.log(3), -3 - math.log(3)],
                             rtol=1e-6)
  np.testing.assert_allclose(lse[1], -3.0, rtol=1e-6)  # equal ELBOs: no gap
  # With exact ELBOs (select = score) it is logsumexp_y ELBO_y - log E.
  np.testing.assert_allclose(lse, jax.nn.logsumexp(values, 1) - math.log(3),
                             rtol=1e-6)
  assert (lse >= point).all()


def test_bounds_choose_on_one_draw_and_score_on_the_other():
  select = jnp.array([[-10.0, -12.0, -11.0]])
  score = jnp.array([[-20.0, -5.0, -30.0]])
  # y* = 0 from the selection draw, scored with the other draw's value.
  np.testing.assert_allclose(elbo.point_estimate_bound(select, score),
                             [-20 - math.log(3)], rtol=1e-6)
  q = np.exp(select[0] - jax.nn.logsumexp(select[0]))
  want = np.sum(q * (np.asarray(score[0]) - np.log(q))) - math.log(3)
  np.testing.assert_allclose(elbo.logsumexp_bound(select, score), [want],
                             rtol=1e-6)


class TestEpitomeLoss:
  """Assignment, gradient routing and the log E term of eq. 7."""

  def setup_method(self):
    self.p = _random_net(7, 'bernoulli')
    rs = np.random.RandomState(8)
    self.x = (rs.rand(B, N) > 0.5).astype(np.float32)
    self.masks = epitomes.make_masks(D, 2, 2)
    self.rng = jax.random.PRNGKey(9)

  def _loss(self, p, objective='point', kl_weight=1.0):
    encode, dlp = _jax_fns(p, 'bernoulli')
    return objectives.callables.epitome_loss(encode, dlp, self.x, self.masks, self.rng,
                             kl_weight=kl_weight, objective=objective)

  def _all_terms(self, draw='score'):
    """All-epitome terms of the scoring draw B or the selection draw A."""
    encode, dlp = _jax_fns(self.p, 'bernoulli')
    eps_rng, _ = jax.random.split(self.rng)
    if draw == 'select':
      eps_rng, _ = jax.random.split(elbo.selection_key(self.rng))
    return elbo.elbo_fn(encode, dlp, self.x, self.masks, eps_rng)

  def test_assigns_on_draw_a_scores_on_draw_b_and_includes_log_e(self):
    loss, aux = jax.jit(self._loss)(self.p)
    select, score = self._all_terms('select'), self._all_terms('score')
    want_y = np.argmax(np.asarray(select.elbo), axis=1)
    np.testing.assert_array_equal(aux['assignments'], want_y)
    chosen = np.asarray(score.elbo)[np.arange(B), want_y]
    np.testing.assert_allclose(aux['elbo'], chosen, rtol=1e-5)
    np.testing.assert_allclose(loss, np.mean(-chosen + math.log(3)), rtol=1e-5)
    # The two draws differ, so the chosen score is not the selection's max.
    assert not np.allclose(chosen, np.max(np.asarray(select.elbo), 1))

  def test_gradients_reach_only_the_chosen_epitome(self):
    """d loss / d (mu, logvar) is zero outside each example's epitome."""
    encode, dlp = _jax_fns(self.p, 'bernoulli')
    mu, logvar = encode(self.x)

    def loss_of_encoding(mu_, logvar_):
      return objectives.callables.epitome_loss(lambda _: (mu_, logvar_), dlp, self.x,
                               self.masks, self.rng)
    (g_mu, g_lv), aux = jax.grad(loss_of_encoding, argnums=(0, 1),
                                 has_aux=True)(mu, logvar)
    chosen = self.masks[np.asarray(aux['assignments'])]
    assert np.all(np.asarray(g_mu)[chosen == 0] == 0)
    assert np.all(np.asarray(g_lv)[chosen == 0] == 0)
    assert np.abs(np.asarray(g_mu)[chosen == 1]).min() > 0

  def test_gradient_equals_gradient_of_selected_epitome(self):
    """The recompute gives the same gradient as differentiating the chosen
    column of the all-epitome ELBO (the 2x slower formulation)."""
    _, aux = self._loss(self.p)
    y = np.asarray(aux['assignments'])
    eps_rng, _ = jax.random.split(self.rng)

    def reference(p):
      encode, dlp = _jax_fns(p, 'bernoulli')
      terms = elbo.elbo_fn(encode, dlp, self.x, self.masks, eps_rng)
      chosen = jnp.take_along_axis(terms.elbo, y[:, None], 1)[:, 0]
      return jnp.mean(-chosen + math.log(3))
    got = jax.grad(lambda p: self._loss(p)[0])(self.p)
    want = jax.grad(reference)(self.p)
    chex.assert_trees_all_close(got, want, rtol=1e-4, atol=1e-6)

  def test_kl_weight_scales_only_the_kl(self):
    loss0, aux0 = self._loss(self.p, kl_weight=0.0)
    # With lambda = 0 the assignment maximises the log-likelihood alone.
    terms = self._all_terms('select')
    np.testing.assert_array_equal(aux0['assignments'],
                                  np.argmax(np.asarray(terms.log_lik), 1))
    np.testing.assert_allclose(loss0, np.mean(-aux0['log_lik'] + math.log(3)),
                               rtol=1e-5)

  def test_logsumexp_objective(self):
    loss, aux = self._loss(self.p, objective='logsumexp')
    select = np.asarray(self._all_terms('select').elbo, np.float64)
    score = np.asarray(self._all_terms('score').elbo, np.float64)
    log_q = select - logsumexp(select, axis=1, keepdims=True)
    want = -np.mean(np.sum(np.exp(log_q) * (score - log_q), 1) - math.log(3))
    np.testing.assert_allclose(loss, want, rtol=1e-5)
    np.testing.assert_allclose(-np.mean(aux['logsumexp_bound']), want,
                               rtol=1e-5)

  def test_vmap_over_kl_weights(self):
    encode, dlp = _jax_fns(self.p, 'bernoulli')
    f = lambda w: objectives.callables.epitome_loss(encode, dlp, self.x, self.masks, self.rng,
                                    kl_weight=w)[0]
    losses = jax.vmap(f)(jnp.array([1.0, 0.5]))
    np.testing.assert_allclose(losses[0], f(1.0), rtol=1e-5)
    np.testing.assert_allclose(losses[1], f(0.5), rtol=1e-5)

  def test_vae_loss_has_no_selection_and_no_log_e(self):
    masks = epitomes.make_masks(D, D, D)
    encode, dlp = _jax_fns(self.p, 'bernoulli')
    eps_rng, _ = jax.random.split(self.rng)
    loss, _ = objectives.callables.epitome_loss(encode, dlp, self.x, masks, self.rng)
    terms = elbo.elbo_fn(encode, dlp, self.x, masks, eps_rng)
    np.testing.assert_allclose(loss, -np.mean(terms.elbo), rtol=1e-5)


def _pixelwise_decoder(x_dim):
  """A decode_log_prob that forgets to sum over pixels: (B, N), not (B,)."""
  w = jnp.ones((D, x_dim)) * 0.1

  def my_decoder(z, x):
    logits = z @ w
    return x * logits - jax.nn.softplus(logits)

  return my_decoder


def _encode(x):
  return x[:, :D] * 0.1, jnp.zeros((x.shape[0], D))


@pytest.mark.parametrize('call', ['elbo_fn', 'jit_elbo_fn', 'epitome_loss',
                                  'iwae_loss', 'iw_log_likelihood'])
def test_decoder_returning_per_pixel_values_is_refused(call):
  x = jnp.full((B, N), 0.5)
  masks = epitomes.make_masks(D, 2, 2)
  decode = _pixelwise_decoder(N)
  rng = jax.random.PRNGKey(0)
  fns = {
      'elbo_fn': lambda: elbo.elbo_fn(_encode, decode, x, masks, rng),
      'jit_elbo_fn': lambda: jax.jit(lambda x: elbo.elbo_fn(
          _encode, decode, x, masks, rng))(x),
      'epitome_loss': lambda: objectives.callables.epitome_loss(_encode, decode, x, masks,
                                                rng),
      'iwae_loss': lambda: objectives.callables.iwae_loss(_encode, decode, x, masks, rng,
                                          num_samples=3),
      'iw_log_likelihood': lambda: elbo.iw_log_likelihood_per_epitome(
          _encode, decode, x, masks, rng, 4, 2),
  }
  with pytest.raises(ValueError) as info:
    fns[call]()
  message = str(info.value)
  assert 'my_decoder' in message and 'decode_log_prob' in message
  assert f'({B}, {N})' in message and f'({B},)' in message


def test_mixture_decoder_of_the_wrong_shape_is_refused():
  e, k = 3, 2
  x = jnp.full((B, N), 0.5)

  def encode_all(x):
    return jnp.zeros((e, x.shape[0], k)), jnp.zeros((e, x.shape[0], k))

  def per_pixel_all(z, x):
    return jnp.zeros(z.shape[:-1] + (x.shape[-1],))

  with pytest.raises(ValueError, match=r'\({e}, {b}\)'.format(e=e, b=B)):
    objectives.latents.mixture_terms(encode_all, per_pixel_all, x, jnp.zeros((B, k)))
