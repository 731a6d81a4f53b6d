"""jaxmomentum.curvature: products, CG, Lanczos and the Theorem 2.1 report.

Products and solvers are checked in float64 (``jax.enable_x64``) against
dense references built independently (``jax.jacfwd``, ``jax.hessian``,
``jnp.linalg``) and against a plain NumPy transcription of Martens'
``conjgrad_1.m``.
"""

import math

import chex
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
import numpy as np
import pytest

import _tiny_mlp

import jaxmomentum
from jaxmomentum import curvature


@pytest.fixture
def x64():
  with jax.enable_x64(True):
    yield


_dense = _tiny_mlp.dense


# -- a tiny MLP and a 3-step RNN --------------------------------------------

def _mlp_params(key, sizes=(3, 4, 2)):
  return _tiny_mlp.mlp_params(key, sizes, bias=0.1)


_mlp_outputs = _tiny_mlp.mlp_outputs


def _mlp_batch(key, n=5, d_in=3, d_out=2):
  kx, kt = jax.random.split(key)
  x = jax.random.normal(kx, (n, d_in))
  t = jax.nn.softmax(jax.random.normal(kt, (n, d_out)))
  return {"x": x, "t": t}


def _rnn_params(key, d_in=2, hidden=3, d_out=2):
  k = jax.random.split(key, 3)
  return {"w_ih": jax.random.normal(k[0], (d_in, hidden)) * 0.5,
          "w_hh": jax.random.normal(k[1], (hidden, hidden)) * 0.5,
          "b_h": jnp.zeros(hidden),
          "w_ho": jax.random.normal(k[2], (hidden, d_out)) * 0.5,
          "b_o": jnp.zeros(d_out)}


def _rnn_outputs_and_preacts(params, batch):
  """Per-step outputs [batch, 3, out] and hidden pre-activations."""
  def step(h, x):
    a = x @ params["w_ih"] + h @ params["w_hh"] + params["b_h"]
    h = jnp.tanh(a)
    return h, (h @ params["w_ho"] + params["b_o"], a)
  xs = jnp.swapaxes(batch["x"], 0, 1)
  h0 = jnp.zeros((xs.shape[1], params["w_hh"].shape[0]), xs.dtype)
  _, (z, a) = jax.lax.scan(step, h0, xs)
  return jnp.swapaxes(z, 0, 1), jnp.swapaxes(a, 0, 1)


def _rnn_batch(key, n=4, steps=3, d_in=2, d_out=2):
  kx, kt = jax.random.split(key)
  return {"x": jax.random.normal(kx, (n, steps, d_in)),
          "t": jax.random.uniform(kt, (n, steps, d_out))}


_TARGETS = lambda batch: batch["t"]  # noqa: E731

_LOSSES = {
    "squared_error": curvature.squared_error(_TARGETS),
    "sigmoid_cross_entropy": curvature.sigmoid_cross_entropy(_TARGETS),
    "softmax_cross_entropy": curvature.softmax_cross_entropy(_TARGETS),
    # A plain function: H_L by autodiff.
    "autodiff": lambda z, batch: jnp.mean(
        jnp.sum(jnp.logaddexp(0.0, z) - batch["t"] * z, axis=-1)),
}


def _dense_gauss_newton(outputs_fn, loss_fn, params, batch):
  """Jᵀ H_L J from jax.jacfwd and jax.hessian (independent of linearize)."""
  @jax.jit
  def dense(params, batch):
    flat, unravel = ravel_pytree(params)
    out_fn = lambda f: outputs_fn(unravel(f), batch).ravel()  # noqa: E731
    z = outputs_fn(params, batch)
    jac = jax.jacfwd(out_fn)(flat)
    h_l = jax.hessian(lambda zf: loss_fn(zf.reshape(z.shape), batch))(
        z.ravel())
    return jac.T @ h_l @ jac
  return np.asarray(dense(params, batch))


@pytest.mark.parametrize("loss_name", sorted(_LOSSES))
def test_gauss_newton_matches_dense_on_mlp(x64, loss_name):
  params = _mlp_params(jax.random.key(0))
  batch = _mlp_batch(jax.random.key(1))
  loss = _LOSSES[loss_name]
  gv = jax.jit(curvature.gauss_newton_vp(_mlp_outputs, loss, params, batch))
  got = _dense(gv, params)
  want = _dense_gauss_newton(_mlp_outputs, loss, params, batch)
  np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
  np.testing.assert_allclose(got, got.T, atol=1e-12)
  assert np.linalg.eigvalsh(got).min() > -1e-10  # positive semi-definite
  assert np.linalg.norm(got) > 1e-3


def test_matching_losses_match_their_autodiff_hessian(x64):
  z = jax.random.normal(jax.random.key(0), (4, 3, 5))
  batch = {"t": jax.nn.softmax(jax.random.normal(jax.random.key(1), z.shape)),
           "m": jnp.array([[1.0, 0, 1], [0, 0, 1], [1, 1, 1], [0, 1, 0]])}
  u = jax.random.normal(jax.random.key(2), z.shape)
  for factory in (curvature.squared_error, curvature.sigmoid_cross_entropy,
                  curvature.softmax_cross_entropy):
    for weights in (None, lambda b: b["m"]):
      loss = factory(_TARGETS, weights)
      auto = jax.jvp(jax.grad(lambda o: loss(o, batch)), (z,), (u,))[1]
      np.testing.assert_allclose(loss.hvp(z, batch, u), auto, rtol=1e-10,
                                 atol=1e-12)


def test_matching_loss_values():
  z = jnp.array([[0.0, 2.0], [1.0, -1.0]])
  t = jnp.array([[1.0, 0.0], [0.0, 1.0]])
  np.testing.assert_allclose(curvature.squared_error()(z, t),
                             ((1 + 4) + (1 + 4)) / 2, rtol=1e-6)
  import optax
  want = jnp.mean(jnp.sum(optax.sigmoid_binary_cross_entropy(z, t), -1))
  np.testing.assert_allclose(curvature.sigmoid_cross_entropy()(z, t), want,
                             rtol=1e-6)
  want = jnp.mean(optax.softmax_cross_entropy(z, t))
  np.testing.assert_allclose(curvature.softmax_cross_entropy()(z, t), want,
                             rtol=1e-6)
  masked = curvature.squared_error(weights=lambda b: jnp.array([1.0, 0.0]))
  np.testing.assert_allclose(masked(z, t), 5.0, rtol=1e-6)


def test_gauss_newton_on_rnn_with_structural_damping(x64):
  params = _rnn_params(jax.random.key(2))
  batch = _rnn_batch(jax.random.key(3))
  loss = curvature.sigmoid_cross_entropy(_TARGETS)
  z_only = lambda p, b: _rnn_outputs_and_preacts(p, b)[0]  # noqa: E731
  want = _dense_gauss_newton(z_only, loss, params, batch)
  got = _dense(curvature.gauss_newton_vp(z_only, loss, params, batch), params)
  np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
  assert np.linalg.eigvalsh(got).min() > -1e-10

  # The pair (z, a): + w J_aᵀ diag(1 - tanh² a) J_a / batch.
  weight = 0.3
  pair = curvature.gauss_newton_vp(_rnn_outputs_and_preacts, loss, params,
                                   batch, structural_weight=weight)
  got_s = _dense(pair, params)
  flat, unravel = ravel_pytree(params)
  jac_a = jax.jit(jax.jacfwd(lambda f: _rnn_outputs_and_preacts(
      unravel(f), batch)[1].ravel()))(flat)
  a = _rnn_outputs_and_preacts(params, batch)[1]
  h_d = np.diag((1 - np.tanh(a) ** 2).ravel()) / a.shape[0]
  np.testing.assert_allclose(got_s, want + weight * jac_a.T @ h_d @ jac_a,
                             rtol=1e-10, atol=1e-12)
  # Logistic hidden units: diag(σ(a)(1 - σ(a))).
  got_l = _dense(curvature.gauss_newton_vp(
      _rnn_outputs_and_preacts, loss, params, batch, structural_weight=weight,
      hidden_activation="logistic"), params)
  s = jax.nn.sigmoid(a)
  h_d = np.diag((s * (1 - s)).ravel()) / a.shape[0]
  np.testing.assert_allclose(got_l, want + weight * jac_a.T @ h_d @ jac_a,
                             rtol=1e-10, atol=1e-12)


def test_gauss_newton_vmaps_over_params(x64):
  params = jax.vmap(_mlp_params)(jax.random.split(jax.random.key(4), 3))
  batch = _mlp_batch(jax.random.key(5))
  loss = _LOSSES["softmax_cross_entropy"]
  v = jax.tree.map(jnp.ones_like, params)

  def gv(p, v):
    return curvature.gauss_newton_vp(_mlp_outputs, loss, p, batch)(v)

  batched = jax.jit(jax.vmap(gv))(params, v)
  for i in range(3):
    one = gv(jax.tree.map(lambda l: l[i], params),
             jax.tree.map(lambda l: l[i], v))
    for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(batched)):
      np.testing.assert_allclose(a, b[i], rtol=1e-12)


def test_hessian_vp_matches_jax_hessian(x64):
  params = _mlp_params(jax.random.key(6))
  batch = _mlp_batch(jax.random.key(7))
  loss = _LOSSES["softmax_cross_entropy"]
  f = lambda p: loss(_mlp_outputs(p, batch), batch)  # noqa: E731
  got = _dense(curvature.hessian_vp(f, params), params)
  flat, unravel = ravel_pytree(params)
  want = jax.jit(jax.hessian(lambda x: f(unravel(x))))(flat)
  np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
  # The Hessian differs from the Gauss-Newton matrix (tanh hidden layer).
  gn = _dense_gauss_newton(_mlp_outputs, loss, params, batch)
  assert np.abs(got - gn).max() > 1e-4


def test_gauss_newton_rejects_bad_arguments():
  params = jnp.zeros((2, 1))
  batch = jnp.zeros((3, 2))
  with pytest.raises(ValueError, match="hidden_activation"):
    curvature.gauss_newton_vp(lambda p, b: b @ p, curvature.squared_error(),
                              params, batch, hidden_activation="relu")
  with pytest.raises(ValueError, match="structural_weight"):
    curvature.gauss_newton_vp(lambda p, b: b @ p, curvature.squared_error(),
                              params, batch, structural_weight=-1.0)
  with pytest.raises(ValueError, match="pair"):
    curvature.gauss_newton_vp(lambda p, b: (b @ p,) * 3,
                              curvature.squared_error(), params, batch)
  with pytest.raises(TypeError, match="targets"):
    curvature.squared_error(targets="t")


# -- conjugate gradient ------------------------------------------------------

def _cg(matvec, b, x0=None, **kwargs):
  """conjugate_gradient under jit (one compile instead of op-by-op)."""
  return jax.jit(lambda b, x0: curvature.conjugate_gradient(
      matvec, b, x0, **kwargs))(b, x0)


def _spd(key, n, cond=100.0):
  q, _ = jnp.linalg.qr(jax.random.normal(key, (n, n)))
  return (q * jnp.geomspace(1.0, cond, n)) @ q.T


def test_cg_solves_linear_system(x64):
  a = _spd(jax.random.key(0), 12)
  b = jax.random.normal(jax.random.key(1), (12,))
  res = jax.jit(lambda b: curvature.conjugate_gradient(
      lambda v: a @ v, b, tolerance=0.0, max_iters=60))(b)
  np.testing.assert_allclose(res.x, jnp.linalg.solve(a, b), rtol=1e-8)
  np.testing.assert_allclose(res.phi, 0.5 * res.x @ a @ res.x - b @ res.x,
                             rtol=1e-10)


def test_cg_with_preconditioner_and_pytrees(x64):
  # A badly scaled diagonal: the Jacobi preconditioner solves it in 1 step.
  scales = jnp.geomspace(1e-3, 1e3, 6)
  a = jnp.diag(scales) + 1e-4 * _spd(jax.random.key(2), 6)
  b = {"u": jnp.arange(1.0, 4.0), "w": jnp.arange(-3.0, 0.0)}
  flat = lambda t: jnp.concatenate([t["u"], t["w"]])  # noqa: E731
  tree = lambda f: {"u": f[:3], "w": f[3:]}  # noqa: E731
  matvec = lambda v: tree(a @ flat(v))  # noqa: E731
  want = jnp.linalg.solve(a, flat(b))
  precond = tree(jnp.diag(a))
  res = _cg(matvec, b, preconditioner=precond,
                                     tolerance=0.0, max_iters=40)
  np.testing.assert_allclose(flat(res.x), want, rtol=1e-8)
  plain = _cg(matvec, b, tolerance=0.0,
                                       max_iters=4)
  pre = _cg(matvec, b, preconditioner=precond,
                                     tolerance=0.0, max_iters=4)
  err = lambda r: float(jnp.linalg.norm(flat(r.x) - want))  # noqa: E731
  assert err(pre) < 1e-3 * err(plain)


def test_save_schedule_is_martens():
  assert curvature.save_schedule(250) == (
      5, 7, 9, 11, 15, 19, 25, 32, 41, 54, 69, 90, 117, 152, 197)
  assert curvature.save_schedule(4) == ()
  with pytest.raises(ValueError, match="max_iters"):
    curvature.save_schedule(0)


def _conjgrad_1(a, b, x0, max_iters, min_iters=1, tol=5e-4, mdiag=None):
  """A NumPy transcription of Martens' conjgrad_1.m (1-based indices)."""
  mdiag = np.ones_like(b) if mdiag is None else mdiag
  gapratio, mingap = 0.1, 10
  maxtestgap = max(math.ceil(max_iters * gapratio), mingap) + 1
  vals = np.zeros(maxtestgap)
  inext, imult = 5.0, 1.3
  is_, xs = [], []
  r = a @ x0 - b
  y = r / mdiag
  p = -y
  x = x0.copy()
  i = 0
  for i in range(1, max_iters + 1):
    ap = a @ p
    pap = p @ ap
    if pap <= 0:
      i -= 1  # (the MATLAB loop variable counts the failed iteration)
      break
    alpha = (r @ y) / pap
    x = x + alpha * p
    r_new = r + alpha * ap
    y_new = r_new / mdiag
    beta = (r_new @ y_new) / (r @ y)
    p = -y_new + beta * p
    r, y = r_new, y_new
    val = 0.5 * (-b + r) @ x
    vals[(i - 1) % maxtestgap] = val
    testgap = max(math.ceil(i * gapratio), mingap)
    prevval = vals[(i - testgap - 1) % maxtestgap]
    if i == math.ceil(inext):
      is_.append(i)
      xs.append(x.copy())
      inext *= imult
    if (i > testgap and prevval < 0 and (val - prevval) / val < tol * testgap
        and i >= min_iters):
      break
  if not is_ or is_[-1] != i:
    is_.append(i)
    xs.append(x.copy())
  return x, i, is_, xs


@pytest.mark.parametrize("hot_start", [False, True])
def test_cg_matches_conjgrad_1_transcription(x64, hot_start):
  # A problem on which the relative-progress rule stops CG well before
  # max_iters, conditioned well enough (100) that rounding (XLA vs NumPy
  # summation order) does not change the iterates beyond 1e-8.
  n = 100
  a = np.asarray(_spd(jax.random.key(3), n, cond=100.0))
  a = (a + a.T) / 2
  b = np.asarray(jax.random.normal(jax.random.key(4), (n,)))
  x0 = (0.95 * np.linalg.solve(a + 10 * np.eye(n), b) if hot_start
        else np.zeros(n))
  mdiag = np.asarray(jax.random.uniform(jax.random.key(5), (n,), minval=0.5,
                                        maxval=2.0))
  for m in (None, mdiag):
    want_x, want_i, want_is, want_xs = _conjgrad_1(a, b, x0, 100, mdiag=m)
    assert 20 < want_i < 60  # the stopping rule, not max_iters, ended it
    res = _cg(
        lambda v: jnp.asarray(a) @ v, jnp.asarray(b), jnp.asarray(x0),
        preconditioner=None if m is None else jnp.asarray(m), max_iters=100)
    assert int(res.iterations) == want_i
    np.testing.assert_allclose(res.x, want_x, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(res.phi, 0.5 * want_x @ a @ want_x
                               - b @ want_x, rtol=1e-10)
    k = int(res.num_saved)
    assert list(np.asarray(res.saved_iters[:k])) == want_is
    assert (np.asarray(res.saved_iters[k:]) == -1).all()
    np.testing.assert_allclose(res.saved[:k], np.stack(want_xs), rtol=1e-6,
                               atol=1e-8)


def test_cg_min_iters_and_no_saving(x64):
  a = _spd(jax.random.key(6), 100, cond=1e4)
  b = jax.random.normal(jax.random.key(7), (100,))
  free = _cg(lambda v: a @ v, b, max_iters=100)
  forced = _cg(
      lambda v: a @ v, b, max_iters=100, min_iters=int(free.iterations) + 7)
  assert int(forced.iterations) >= int(free.iterations) + 7
  nosave = _cg(lambda v: a @ v, b, max_iters=100,
                                        save_iterates=False)
  assert nosave.saved.shape == (1, 100) and int(nosave.num_saved) == 1
  np.testing.assert_array_equal(nosave.saved[0], nosave.x)
  assert int(nosave.saved_iters[0]) == int(nosave.iterations)


def test_cg_stops_on_negative_curvature(x64):
  a = jnp.diag(jnp.array([2.0, 1.0, -1.0]))
  b = jnp.array([1.0, 1.0, 1.0])
  res = _cg(lambda v: a @ v, b, max_iters=50)
  assert bool(res.negative_curvature)
  assert int(res.iterations) < 3
  chex.assert_tree_all_finite(res.x)
  # φ decreased before the stop.
  assert float(res.phi) < 0


def test_cg_vmaps_over_right_hand_sides(x64):
  a = _spd(jax.random.key(8), 60, cond=100.0)
  bs = jax.random.normal(jax.random.key(9), (3, 60))
  solve = lambda b: curvature.conjugate_gradient(  # noqa: E731
      lambda v: a @ v, b, max_iters=40)
  batched = jax.jit(jax.vmap(solve))(bs)
  for i in range(3):
    one = jax.jit(solve)(bs[i])
    np.testing.assert_allclose(batched.x[i], one.x, rtol=1e-8, atol=1e-10)
    assert int(batched.iterations[i]) == int(one.iterations)


def test_cg_rejects_bad_arguments():
  mv = lambda v: v  # noqa: E731
  b = jnp.ones(3)
  with pytest.raises(ValueError, match="max_iters"):
    curvature.conjugate_gradient(mv, b, max_iters=0)
  with pytest.raises(ValueError, match="tolerance"):
    curvature.conjugate_gradient(mv, b, tolerance=-1.0)
  with pytest.raises(ValueError, match="preconditioner"):
    curvature.conjugate_gradient(mv, b, preconditioner={"a": b})


# -- Lanczos and the Theorem 2.1 report --------------------------------------

def test_lanczos_matches_eigh(x64):
  a = _spd(jax.random.key(10), 20, cond=1e3)
  want = np.sort(np.linalg.eigvalsh(a))[::-1]
  top_eig = jax.jit(lambda key, k, m: curvature.top_eigenvalues(
      lambda v: a @ v, jnp.zeros(20), key, k, num_iters=m),
                    static_argnums=(1, 2))
  full = top_eig(jax.random.key(0), 20, 20)
  np.testing.assert_allclose(full.values, want, rtol=1e-8)
  top = top_eig(jax.random.key(1), 3, 15)
  np.testing.assert_allclose(top.values, want[:3], rtol=1e-6)
  # Ritz vectors: unit norm, A q = λ q.
  for lam, q in zip(top.values, top.vectors):
    np.testing.assert_allclose(jnp.linalg.norm(q), 1.0, rtol=1e-8)
    np.testing.assert_allclose(a @ q, lam * q, atol=1e-5 * float(lam))


def test_lanczos_restarts_on_invariant_subspace(x64):
  # Rank 3 plus a multiple eigenvalue: the Krylov space closes early.
  u = jax.random.normal(jax.random.key(11), (10, 3))
  a = u @ u.T + 2.0 * jnp.eye(10)
  want = np.sort(np.linalg.eigvalsh(a))[::-1]
  got = jax.jit(lambda key: curvature.top_eigenvalues(
      lambda v: {"p": a @ v["p"]}, {"p": jnp.zeros(10)}, key, 10,
      num_iters=10))(jax.random.key(2))
  np.testing.assert_allclose(got.values, want, rtol=1e-8)
  assert got.vectors["p"].shape == (10, 10)


def test_lanczos_rejects_bad_arguments():
  with pytest.raises(ValueError, match="num_iters"):
    curvature.top_eigenvalues(lambda v: v, jnp.zeros(4), jax.random.key(0),
                              2, num_iters=5)
  with pytest.raises(ValueError, match="k must be"):
    curvature.top_eigenvalues(lambda v: v, jnp.zeros(4), jax.random.key(0),
                              4, num_iters=3)


def _one_step_matrix(opt):
  """The 2x2 map of one optimizer step on f(x) = x²/2 (state: params, v)."""
  def step(params, velocity):
    state = opt.init(params)
    mom = state[1]._replace(velocity=velocity)
    state = (state[0], mom)
    updates, state = opt.update(params, state)  # grad of x²/2 is x
    return params + updates, state[1].velocity

  cols = [np.array(step(jnp.array(p), jnp.array(v)), float)
          for p, v in ((1.0, 0.0), (0.0, 1.0))]
  return np.stack(cols, axis=1)


@pytest.mark.parametrize("eps,mu", [(0.5, 0.9), (1.5, 0.5), (0.01, 0.99),
                                    (1.9, 0.3)])
def test_momentum_report_rates_match_cm_and_nag(x64, eps, mu):
  # Curvature λ is folded into ε: x²/2 with learning rate ε·λ.
  lams = jnp.array([1.0])
  rep = curvature.momentum_report(lams, eps, mu)
  cm = _one_step_matrix(jaxmomentum.cm(eps, mu))
  nag = _one_step_matrix(jaxmomentum.nag(eps, mu))
  np.testing.assert_allclose(rep.rate_cm[0], np.abs(np.linalg.eigvals(cm)).max(),
                             rtol=1e-6)
  np.testing.assert_allclose(rep.rate_nag[0],
                             np.abs(np.linalg.eigvals(nag)).max(), rtol=1e-6)
  np.testing.assert_allclose(rep.effective_momentum_nag[0], mu * (1 - eps),
                             rtol=1e-12)


def test_momentum_report_stability_bounds(x64):
  lams = jnp.array([40.0, 3.0, 0.1])
  for mu in (0.0, 0.5, 0.9, 0.99):
    rep = curvature.momentum_report(lams, 1e-3, mu)
    for bound, name in ((rep.max_stable_learning_rate_cm, "rate_cm"),
                        (rep.max_stable_learning_rate_nag, "rate_nag")):
      inside = curvature.momentum_report(lams, 0.999 * float(bound), mu)
      outside = curvature.momentum_report(lams, 1.001 * float(bound), mu)
      assert float(getattr(inside, name).max()) < 1.0
      assert float(getattr(outside, name).max()) > 1.0
  assert "largest stable" in rep.table()
  with pytest.raises(ValueError, match="momentum"):
    curvature.momentum_report(lams, 0.1, 1.0)
  with pytest.raises(ValueError, match="learning_rate"):
    curvature.momentum_report(lams, 0.0, 0.9)


def test_curvature_report_on_gauss_newton(x64):
  params = _mlp_params(jax.random.key(12))
  batch = _mlp_batch(jax.random.key(13))
  loss = _LOSSES["softmax_cross_entropy"]
  rep = jax.jit(lambda params, key: curvature.curvature_report(
      curvature.gauss_newton_vp(_mlp_outputs, loss, params, batch), params,
      key, 2, learning_rate=0.1, momentum=0.9))(params, jax.random.key(3))
  want = np.sort(np.linalg.eigvalsh(
      _dense_gauss_newton(_mlp_outputs, loss, params, batch)))[::-1][:2]
  np.testing.assert_allclose(rep.eigenvalues, want, rtol=1e-6)
  np.testing.assert_allclose(rep.max_stable_learning_rate_cm,
                             2 * 1.9 / want[0], rtol=1e-6)
