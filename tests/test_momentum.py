"""CM and NAG against the paper's equations, written independently in NumPy.

Everything here runs in float64 (``jax.enable_x64``) so that agreement can be
asserted to ~1e-12: any deviation from Eqs. 1-4 (which μ or ε is used at which
step, where the look-ahead is taken) shows up far above that.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import _optax_promotion as optax_promotion
import jaxmomentum as jm
from jaxmomentum import schedules

NUM_STEPS = 60


# A non-quadratic objective over a pytree, with its gradient written by hand.
def f_numpy_grad(w, b):
  gw = 2 * (w - 1) / (1 + (w - 1) ** 2) + 0.05 * b.sum()
  gb = b ** 3 + 0.05 * w.sum()
  return gw, gb


def f_jax(params):
  w, b = params["w"], params["b"]
  return (jnp.sum(jnp.log1p((w - 1) ** 2)) + 0.25 * jnp.sum(b ** 4)
          + 0.05 * jnp.sum(w) * jnp.sum(b))


W0 = np.array([[3.0, -2.0], [0.5, 4.0], [-1.5, 2.5]])
B0 = np.array([1.2, -0.7, 0.3, -1.1])


# The schedules, written from the paper (Eq. 5 in its log2 form) in NumPy.
def mu_paper(t, mu_max=0.99, stage=5):
  return min(1 - 2.0 ** (-1 - np.log2(t // stage + 1)), mu_max)


def lr_paper(t):
  return 0.05 / (1 + 0.1 * t)


def mu_jax(t):
  return schedules.sutskever_schedule(0.99, stage_length=5)(t)


def lr_jax(t):
  return 0.05 / (1 + 0.1 * jnp.asarray(t, float))


def reference(method):
  """Eqs. 1-2 (cm) or 3-4 (nag): returns θ_t, v_t for t = 0..NUM_STEPS."""
  w, b = W0.copy(), B0.copy()
  vw, vb = np.zeros_like(w), np.zeros_like(b)
  thetas, velocities = [(w, b)], [(vw, vb)]
  for t in range(NUM_STEPS):
    mu, eps = mu_paper(t), lr_paper(t)
    if method == "cm":
      gw, gb = f_numpy_grad(w, b)                      # ∇f(θ_t)
    else:
      gw, gb = f_numpy_grad(w + mu * vw, b + mu * vb)  # ∇f(θ_t + μ_t v_t)
    vw, vb = mu * vw - eps * gw, mu * vb - eps * gb    # Eq. 1 / 3
    w, b = w + vw, b + vb                              # Eq. 2 / 4
    thetas.append((w, b))
    velocities.append((vw, vb))
  return thetas, velocities


def _two_calls(opt, grads, state, params):
  updates, state = opt.update(grads, state, params)
  return optax.apply_updates(params, updates), state


def run_ours(opt, eval_params, step_fn=_two_calls):
  params = {"w": jnp.asarray(W0), "b": jnp.asarray(B0)}
  state = opt.init(params)
  step = jax.jit(lambda p, s: step_fn(opt, jax.grad(f_jax)(p), s, p))
  thetas, held = [eval_params(state, params)], [params]
  for _ in range(NUM_STEPS):
    params, state = step(params, state)
    thetas.append(eval_params(state, params))
    held.append(params)
  return thetas, held


# Both ways of taking a step: optax's two calls, and the one-pass kernel.
STEP_FNS = {"update+apply_updates": _two_calls,
            "update_and_apply": jm.update_and_apply}


@pytest.mark.parametrize("step_fn", list(STEP_FNS))
@pytest.mark.parametrize("method", ["cm", "nag"])
def test_matches_numpy_recurrence_with_mu_and_lr_schedules(method, step_fn):
  step_fn = STEP_FNS[step_fn]
  with jax.enable_x64(True):
    if method == "cm":
      opt = jm.cm(lr_jax, mu_jax)
      thetas, _ = run_ours(opt, lambda s, p: p, step_fn)
    else:
      opt = jm.nag(lr_jax, mu_jax)
      thetas, held = run_ours(opt, jm.nag_eval_params, step_fn)
    ref_thetas, ref_vs = reference(method)
    assert thetas[-1]["w"].dtype == jnp.float64
    for t, (ours, (w, b)) in enumerate(zip(thetas, ref_thetas)):
      np.testing.assert_allclose(ours["w"], w, rtol=1e-12, atol=1e-12,
                                 err_msg=f"θ_w at step {t}")
      np.testing.assert_allclose(ours["b"], b, rtol=1e-12, atol=1e-12,
                                 err_msg=f"θ_b at step {t}")
    if method == "nag":
      # The params the loop holds are the look-ahead point φ_t = θ_t + μ_t v_t.
      for t in range(NUM_STEPS):
        (w, b), (vw, vb) = ref_thetas[t], ref_vs[t]
        np.testing.assert_allclose(held[t]["w"], w + mu_paper(t) * vw,
                                   rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(held[t]["b"], b + mu_paper(t) * vb,
                                   rtol=1e-12, atol=1e-12)


def test_the_reference_distinguishes_cm_from_nag():
  # Guards the test above: the two recurrences really differ here.
  (w_cm, _), (w_nag, _) = reference("cm")[0][-1], reference("nag")[0][-1]
  assert np.max(np.abs(w_cm - w_nag)) > 1e-3


@pytest.mark.parametrize("mu,lr", [(0.9, 0.1), (0.99, 0.05), (0.5, 0.3)])
def test_theorem_2_1_nag_is_cm_with_effective_momentum(mu, lr):
  """On p(y) = Σ λ_i y_i²/2 + c_i y_i, NAG = per-coordinate CM, μ(1 - λ_i ε)."""
  lam = jnp.array([0.1, 0.5, 1.0, 2.0, 3.0])
  c = jnp.array([1.0, -2.0, 0.5, 0.0, 1.5])
  y0 = jnp.array([2.0, 1.0, -1.0, 3.0, -2.0])
  loss = lambda y, lam, c: jnp.sum(lam * y ** 2 / 2 + c * y)  # noqa: E731

  def run(opt, y, lam, c):
    state = opt.init(y)

    def body(carry, _):
      y, state = carry
      updates, state = opt.update(jax.grad(loss)(y, lam, c), state)
      return (optax.apply_updates(y, updates), state), None

    (y, state), _ = jax.lax.scan(body, (y, state), length=40)
    return y, state

  with jax.enable_x64(True):
    lam, c, y0 = (x.astype(jnp.float64) for x in (lam, c, y0))
    phi, nag_state = run(jm.nag(lr, mu), y0, lam, c)
    theta_nag = jm.nag_eval_params(nag_state, phi)
    v_nag = nag_state[1].velocity

    def cm_one_coordinate(y, lam_i, c_i):
      opt = jm.cm(lr, mu * (1 - lam_i * lr))  # a traced, per-coordinate μ
      y, state = run(opt, y[None], lam_i[None], c_i[None])
      return y[0], state[1].velocity[0]

    theta_cm, v_cm = jax.vmap(cm_one_coordinate)(y0, lam, c)
    np.testing.assert_allclose(theta_nag, theta_cm, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(v_nag, v_cm, rtol=1e-12, atol=1e-12)
    # ... and it is not plain CM with μ (the theorem has content here).
    theta_plain, _ = run(jm.cm(lr, mu), y0, lam, c)
    assert np.max(np.abs(theta_plain - theta_nag)) > 1e-6


def _nested_optimizers():
  nag = jm.nag(0.1, 0.9)
  return {
      "nag": nag,
      "chain_clip": optax.chain(optax.clip_by_global_norm(10.0), nag),
      "inject": optax.inject_hyperparams(jm.nag)(learning_rate=0.1,
                                                 momentum=0.9),
      "masked": optax.masked(nag, {"w": True, "b": False}),
      "multi_transform": optax.multi_transform(
          {"n": nag, "a": optax.adam(1e-2)}, {"w": "n", "b": "a"}),
  }


@pytest.mark.parametrize("name", optax_promotion.marked(
    _nested_optimizers(), {"multi_transform": optax_promotion.ADAM}))
def test_nag_eval_params_finds_state_anywhere(name):
  opt = _nested_optimizers()[name]
  params = {"w": jnp.asarray(W0, jnp.float32), "b": jnp.asarray(B0,
                                                                jnp.float32)}
  state = opt.init(params)
  for _ in range(5):
    updates, state = opt.update(jax.grad(f_jax)(params), state, params)
    params = optax.apply_updates(params, updates)
  theta = jm.nag_eval_params(state, params)
  nag_states = [s for s in jax.tree.leaves(
      state, is_leaf=lambda x: isinstance(x, jm.NesterovMomentumState))
                if isinstance(s, jm.NesterovMomentumState)]
  assert len(nag_states) == 1
  velocity = nag_states[0].velocity
  # θ = φ - μ v on the NAG-covered leaves; untouched elsewhere.
  v_w = velocity["w"]
  np.testing.assert_allclose(theta["w"], params["w"] - 0.9 * v_w, rtol=1e-6)
  assert float(jnp.max(jnp.abs(v_w))) > 0
  if name in ("masked", "multi_transform"):
    np.testing.assert_array_equal(theta["b"], params["b"])
  else:
    np.testing.assert_allclose(theta["b"], params["b"] - 0.9 * velocity["b"],
                               rtol=1e-6)


def test_nag_eval_params_without_nag_state_raises():
  with pytest.raises(ValueError, match="NesterovMomentumState"):
    jm.nag_eval_params(jm.cm(0.1, 0.9).init(jnp.ones(2)), jnp.ones(2))


def test_inject_hyperparams_nag_stays_consistent_under_a_mu_schedule():
  """With μ injected, the look-ahead lags one step but θ stays exact CM-like."""
  mu = schedules.sutskever_schedule(0.99, stage_length=3)
  with jax.enable_x64(True):
    opt = optax.inject_hyperparams(jm.nag)(learning_rate=0.05, momentum=mu)
    params = {"w": jnp.asarray(W0), "b": jnp.asarray(B0)}
    state = opt.init(params)
    theta_prev = jm.nag_eval_params(state, params)
    for t in range(12):
      v_prev = state.inner_state[1].velocity
      updates, state = opt.update(jax.grad(f_jax)(params), state, params)
      params = optax.apply_updates(params, updates)
      theta = jm.nag_eval_params(state, params)
      v = state.inner_state[1].velocity
      # θ_{t+1} = θ_t + v_{t+1} and v_{t+1} = μ_t v_t - ε g
      chex.assert_trees_all_close(theta, jax.tree.map(jnp.add, theta_prev, v),
                                  rtol=1e-12, atol=1e-12)
      g = jax.grad(f_jax)(jax.tree.map(lambda p, u: p - u, params, updates))
      expected_v = jax.tree.map(lambda vp, gi: mu(t) * vp - 0.05 * gi,
                                v_prev, g)
      chex.assert_trees_all_close(v, expected_v, rtol=1e-12, atol=1e-12)
      theta_prev = theta


def _trajectory(opt, num_steps=NUM_STEPS):
  """params, eval params (θ for NAG) and velocity after each update."""
  params = {"w": jnp.asarray(W0), "b": jnp.asarray(B0)}

  def body(carry, _):
    params, state = carry
    updates, state = opt.update(jax.grad(f_jax)(params), state, params)
    params = optax.apply_updates(params, updates)
    velocity = jax.tree.leaves(state, is_leaf=lambda s: hasattr(
        s, "velocity"))
    velocity = next(s.velocity for s in velocity if hasattr(s, "velocity"))
    return (params, state), (params, velocity, state)

  _, (phis, velocities, states) = jax.lax.scan(
      body, (params, opt.init(params)), length=num_steps)
  return phis, velocities, states


@pytest.mark.parametrize("mu_kind", ["schedule", "constant", "traced"])
def test_nag_or_cm_is_nag_or_cm_update_for_update(mu_kind):
  """One program, the switch traced per run: NAG runs equal jm.nag, CM runs
  jm.cm, and nag_eval_params gives θ for NAG runs and φ itself for CM."""
  with jax.enable_x64(True):
    mus = {"schedule": lambda mu0: schedules.rnn_warmup_schedule(mu0, 7),
           "constant": lambda mu0: 0.9,
           "traced": lambda mu0: mu0}[mu_kind]
    switches = jnp.array([1, 0, 1, 0])
    mu0s = jnp.array([0.99, 0.99, 0.5, 0.5], jnp.float64)

    def merged(nesterov, mu0):
      opt = jm.nag_or_cm(lr_jax, mus(mu0), nesterov)
      phis, velocities, states = _trajectory(opt)
      thetas = jax.vmap(jm.nag_eval_params)(states, phis)
      return phis, velocities, thetas

    got = jax.jit(jax.vmap(merged))(switches, mu0s)
    for run, (nesterov, mu0) in enumerate(zip(switches, mu0s)):
      factory = jm.nag if nesterov else jm.cm
      phis, velocities, states = jax.jit(
          lambda mu0, f=factory: _trajectory(f(lr_jax, mus(mu0))))(mu0)
      thetas = (jax.vmap(jm.nag_eval_params)(states, phis) if nesterov
                else phis)
      for want, have in zip(jax.tree.leaves((phis, velocities, thetas)),
                            jax.tree.leaves(got)):
        np.testing.assert_allclose(have[run], want, rtol=1e-12, atol=1e-13)
    # The two forms differ here, so the test tells them apart.
    assert float(jnp.max(jnp.abs(got[0]["w"][0] - got[0]["w"][1]))) > 1e-3


def test_nag_or_cm_rejects_a_bad_switch():
  with pytest.raises(ValueError, match="^nesterov must be 0 or 1"):
    jm.nag_or_cm(0.1, 0.9, 2)
  with pytest.raises(TypeError, match="^nesterov must be a bool"):
    jm.nag_or_cm(0.1, 0.9, lambda t: 1)
  with pytest.raises(ValueError, match="^momentum must be in"):
    jm.nag_or_cm(0.1, 1.5, 1)
  jm.nag_or_cm(0.1, 0.9, True)  # bools are fine
