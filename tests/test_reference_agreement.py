"""Agreement with optax and torch.optim where the formulas coincide.

All runs are float64 for 300 steps on a non-quadratic objective, with the
gradient computed by the same NumPy function for every library, so the
comparison isolates the update rules.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import _optax_promotion as optax_promotion
import jaxmomentum as jm
from jaxmomentum import schedules

NUM_STEPS = 300
X0 = np.array([-1.2, 1.0, 0.5, -0.3, 2.0, 0.1])


def grad_numpy(x):
  """Gradient of a mildly non-convex sum: Σ log(1 + (x - 1)²) + x⁴/8."""
  return 2 * (x - 1) / (1 + (x - 1) ** 2) + 0.5 * x ** 3


def run_optax(opt):
  with jax.enable_x64(True):
    x = jnp.asarray(X0)
    state = opt.init(x)
    update = jax.jit(opt.update)
    xs = [np.asarray(x)]
    for _ in range(NUM_STEPS):
      updates, state = update(jnp.asarray(grad_numpy(np.asarray(x))), state,
                              x)
      x = optax.apply_updates(x, updates)
      xs.append(np.asarray(x))
    return np.stack(xs)


def run_torch(make_opt):
  torch = pytest.importorskip(
      "torch", reason="torch==2.13.0 not installed: `make test` installs it")
  x = torch.tensor(X0, dtype=torch.float64, requires_grad=True)
  opt = make_opt([x])
  xs = [x.detach().numpy().copy()]
  for _ in range(NUM_STEPS):
    x.grad = torch.tensor(grad_numpy(x.detach().numpy()), dtype=torch.float64)
    opt.step()
    xs.append(x.detach().numpy().copy())
  return np.stack(xs)


# name: (ours, optax equivalent or None, torch optimizer builder or None)
_AGREEMENT_CASES = {
    "cm": (lambda: jm.cm(0.05, 0.9),
           lambda: optax.sgd(0.05, momentum=0.9),
           lambda t, p: t.optim.SGD(p, lr=0.05, momentum=0.9)),
    "nag": (lambda: jm.nag(0.05, 0.9),
            lambda: optax.sgd(0.05, momentum=0.9, nesterov=True),
            lambda t, p: t.optim.SGD(p, lr=0.05, momentum=0.9,
                                     nesterov=True)),
    "nag_mu0": (lambda: jm.nag(0.05, 0.0),
                lambda: optax.sgd(0.05),
                lambda t, p: t.optim.SGD(p, lr=0.05)),
    "adam": (lambda: jm.adam(1e-2),
             lambda: optax.adam(1e-2),
             lambda t, p: t.optim.Adam(p, lr=1e-2)),
    "adam_betas": (lambda: jm.adam(1e-2, b1=0.5, b2=0.9, eps=1e-6),
                   lambda: optax.adam(1e-2, b1=0.5, b2=0.9, eps=1e-6),
                   lambda t, p: t.optim.Adam(p, lr=1e-2, betas=(0.5, 0.9),
                                             eps=1e-6)),
    "adam_eps_root": (lambda: jm.adam(1e-2, eps=0.0, eps_root=1e-8),
                      lambda: optax.adam(1e-2, eps=0.0, eps_root=1e-8),
                      None),
    "rmsprop": (lambda: jm.rmsprop(1e-2),
                lambda: optax.rmsprop(1e-2, decay=0.99, eps_in_sqrt=False),
                lambda t, p: t.optim.RMSprop(p, lr=1e-2)),
    "rmsprop_centered": (
        lambda: jm.rmsprop(1e-2, centered=True),
        lambda: optax.rmsprop(1e-2, decay=0.99, eps_in_sqrt=False,
                              centered=True),
        lambda t, p: t.optim.RMSprop(p, lr=1e-2, centered=True)),
    "rmsprop_momentum": (
        lambda: jm.rmsprop(1e-3, momentum=0.9),
        lambda: optax.rmsprop(1e-3, decay=0.99, eps_in_sqrt=False,
                              momentum=0.9),
        lambda t, p: t.optim.RMSprop(p, lr=1e-3, momentum=0.9)),
    "rmsprop_centered_momentum": (
        lambda: jm.rmsprop(1e-3, decay=0.9, eps=1e-6, centered=True,
                           momentum=0.5),
        lambda: optax.rmsprop(1e-3, decay=0.9, eps=1e-6, eps_in_sqrt=False,
                              centered=True, momentum=0.5),
        lambda t, p: t.optim.RMSprop(p, lr=1e-3, alpha=0.9, eps=1e-6,
                                     centered=True, momentum=0.5)),
    "rmsprop_eps_in_sqrt": (
        lambda: jm.rmsprop(1e-2, decay=0.9, eps=1e-6, eps_in_sqrt=True),
        lambda: optax.rmsprop(1e-2, decay=0.9, eps=1e-6, eps_in_sqrt=True),
        None),
    "rmsprop_bias_correction": (
        lambda: jm.rmsprop(1e-2, decay=0.9, bias_correction=True),
        lambda: optax.rmsprop(1e-2, decay=0.9, eps_in_sqrt=False,
                              bias_correction=True),
        None),
    "rmsprop_centered_bias_correction_eps_in_sqrt": (
        lambda: jm.rmsprop(1e-2, decay=0.9, eps=1e-4, eps_in_sqrt=True,
                           centered=True, bias_correction=True,
                           initial_scale=0.5),
        lambda: optax.rmsprop(1e-2, decay=0.9, eps=1e-4, eps_in_sqrt=True,
                              centered=True, bias_correction=True,
                              initial_scale=0.5),
        None),
    "rmsprop_centered_eps_in_sqrt": (
        lambda: jm.rmsprop(1e-2, decay=0.9, eps=1e-6, eps_in_sqrt=True,
                           centered=True),
        lambda: optax.rmsprop(1e-2, decay=0.9, eps=1e-6, eps_in_sqrt=True,
                              centered=True),
        None),
}
_OPTAX_PROMOTION = {
    "adam": optax_promotion.ADAM, "adam_betas": optax_promotion.ADAM,
    "adam_eps_root": optax_promotion.ADAM,
    "rmsprop_bias_correction": optax_promotion.RMS,
    "rmsprop_centered_bias_correction_eps_in_sqrt": optax_promotion.RMS}
_WITH_OPTAX = optax_promotion.marked(
    [n for n, c in _AGREEMENT_CASES.items() if c[1] is not None],
    _OPTAX_PROMOTION)
_WITH_TORCH = optax_promotion.marked(
    [n for n, c in _AGREEMENT_CASES.items() if c[2] is not None],
    _OPTAX_PROMOTION)


@pytest.mark.parametrize("name", _WITH_OPTAX)
def test_agrees_with_optax(name):
  ours, theirs, _ = _AGREEMENT_CASES[name]
  ref = run_optax(theirs())
  got = run_optax(ours())
  assert np.max(np.abs(ref[-1] - ref[0])) > 0.1  # the run actually moved
  np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", _WITH_TORCH)
def test_agrees_with_torch(name):
  ours, _, make_torch = _AGREEMENT_CASES[name]
  torch = pytest.importorskip(
      "torch", reason="torch==2.13.0 not installed: `make test` installs it")
  ref = run_torch(lambda p: make_torch(torch, p))
  got = run_optax(ours())
  assert np.max(np.abs(ref[-1] - ref[0])) > 0.1
  np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)


@optax_promotion.ADAM  # the last check runs the bias-corrected (optax) Adam
def test_adam_without_bias_correction_matches_numpy_recurrence():
  b1, b2, eps, lr = 0.8, 0.95, 1e-6, 1e-2
  got = run_optax(jm.adam(lr, b1=b1, b2=b2, eps=eps, bias_correction=False))
  x, m, v = X0.copy(), np.zeros_like(X0), np.zeros_like(X0)
  xs = [x.copy()]
  for _ in range(NUM_STEPS):
    g = grad_numpy(x)
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g ** 2
    x = x - lr * m / (np.sqrt(v) + eps)
    xs.append(x.copy())
  np.testing.assert_allclose(got, np.stack(xs), rtol=1e-10, atol=1e-12)
  # Bias correction matters in the first steps: the two really differ.
  assert np.max(np.abs(got - run_optax(jm.adam(lr, b1=b1, b2=b2, eps=eps)))
                ) > 1e-3


@pytest.mark.parametrize("fused", [False, True])
def test_torch_foreach_and_fused_sgd_agree(fused):
  # The benchmark compares against torch's fused and foreach kernels: they
  # compute the same update as ours.
  torch = pytest.importorskip(
      "torch", reason="torch==2.13.0 not installed: `make test` installs it")
  kwargs = {"fused": True} if fused else {"foreach": True}
  ref = run_torch(lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9,
                                            nesterov=True, **kwargs))
  np.testing.assert_allclose(run_optax(jm.nag(0.05, 0.9)), ref, rtol=1e-10,
                             atol=1e-12)


def test_lr_schedule_differs_from_optax_sgd_as_documented():
  """ε inside the velocity: a changing ε does not rescale the old velocity."""
  lr = optax.linear_schedule(0.1, 0.01, 100)
  ours = run_optax(jm.cm(lr, 0.9))
  optax_sgd = run_optax(optax.sgd(lr, momentum=0.9))
  assert np.max(np.abs(ours - optax_sgd)) > 1e-4
  # ... and ours is exactly the Sutskever recurrence v <- μ v - ε_t g.
  x, v = X0.copy(), np.zeros_like(X0)
  for t in range(NUM_STEPS):
    v = 0.9 * v - float(lr(t)) * grad_numpy(x)
    x = x + v
  np.testing.assert_allclose(ours[-1], x, rtol=1e-10, atol=1e-12)


def test_mu_schedule_nag_differs_from_optax_nesterov():
  mu = schedules.sutskever_schedule(0.99, stage_length=10)
  ours = run_optax(jm.nag(0.02, mu))
  # optax's way to schedule μ (inject_hyperparams) is not Eqs. 3-4.
  optax_nesterov = run_optax(optax.inject_hyperparams(optax.sgd)(
      learning_rate=0.02, momentum=mu, nesterov=True))
  assert np.max(np.abs(ours - optax_nesterov)) > 1e-4
