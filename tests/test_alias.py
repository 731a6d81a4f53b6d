"""Generic checks every public optimizer gets for free (a table of cases)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import _optax_promotion as optax_promotion
import jaxmomentum as jm
from jaxmomentum import schedules

# name: (factory(learning_rate) -> optimizer, learning rate that converges)
_OPTIMIZERS_UNDER_TEST = {
    "cm": (lambda lr: jm.cm(lr, 0.9), 1e-3),
    "cm_schedule": (lambda lr: jm.cm(lr, schedules.sutskever_schedule(0.99)),
                    1e-3),
    "nag": (lambda lr: jm.nag(lr, 0.9), 1e-3),
    "nag_schedule": (
        lambda lr: jm.nag(lr, schedules.low_momentum_finetuning(
            schedules.sutskever_schedule(0.99), total_steps=2000)), 1e-3),
    "adam": (lambda lr: jm.adam(lr), 3e-2),
    "adam_no_bias_correction": (
        lambda lr: jm.adam(lr, bias_correction=False), 3e-2),
    "rmsprop": (lambda lr: jm.rmsprop(lr), 3e-3),
    "rmsprop_centered_momentum": (
        lambda lr: jm.rmsprop(lr, centered=True, momentum=0.9), 1e-3),
    "rmsprop_bias_correction_eps_in_sqrt": (
        lambda lr: jm.rmsprop(lr, bias_correction=True, eps_in_sqrt=True),
        3e-3),
}
NAMES = optax_promotion.marked(_OPTIMIZERS_UNDER_TEST,
                               {"adam": optax_promotion.ADAM})


def _quadratic(params):
  return jnp.sum(jnp.array([1.0, 10.0]) * (params["x"] - 1.0) ** 2)


def _rosenbrock(params):
  x, y = params["x"][0], params["x"][1]
  return (1 - x) ** 2 + 100.0 * (y - x ** 2) ** 2


def _minimize(opt, loss, params, num_steps):
  state = opt.init(params)

  def body(carry, _):
    params, state = carry
    updates, state = opt.update(jax.grad(loss)(params), state, params)
    return (optax.apply_updates(params, updates), state), None

  (params, state), _ = jax.lax.scan(body, (params, state), length=num_steps)
  return params, state


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("problem", ["quadratic", "rosenbrock"])
def test_converges(name, problem):
  factory, lr = _OPTIMIZERS_UNDER_TEST[name]
  loss = {"quadratic": _quadratic, "rosenbrock": _rosenbrock}[problem]
  params = {"x": jnp.array([-1.0, 2.0])}
  start = loss(params)
  final, _ = jax.jit(lambda p: _minimize(factory(lr), loss, p,
                                         2000))(params)
  assert float(loss(final)) < 1e-2 * float(start), float(loss(final))


@pytest.mark.parametrize("name", NAMES)
def test_no_recompilation_on_second_call(name):
  factory, lr = _OPTIMIZERS_UNDER_TEST[name]
  opt = factory(lr)
  params = {"x": jnp.ones(4)}
  state = opt.init(params)
  # The returned state has init's types, so the next call reuses the trace.
  update = jax.jit(chex.assert_max_traces(opt.update, n=1))
  for _ in range(3):
    updates, state = update(params, state, params)
  chex.assert_tree_all_finite(updates)


@pytest.mark.parametrize("name", NAMES)
def test_state_is_stable_under_lax_cond(name):
  """optax's check: ``update`` returns a state of exactly ``init``'s types
  (structure, shapes, dtypes, weak types), so the optimizer can sit in one
  branch of a ``lax.cond`` (as ``optax.MultiSteps`` and
  ``optax.apply_if_finite`` put it) and give what it gives alone."""
  factory, lr = _OPTIMIZERS_UNDER_TEST[name]
  opt = factory(lr)
  params = {"x": jnp.array([-1.0, 2.0])}
  grads = jax.grad(_rosenbrock)(params)
  state = opt.init(params)
  step = lambda s: opt.update(grads, s, params)  # noqa: E731
  assert (jax.eval_shape(lambda s: step(s)[1], state)
          == jax.eval_shape(opt.init, params))

  @jax.jit
  def maybe_step(take, state):
    skip = lambda s: (jax.tree.map(jnp.zeros_like, params), s)  # noqa: E731
    return jax.lax.cond(take, step, skip, state)

  alone = step(state)
  chex.assert_trees_all_close(maybe_step(True, state), alone, rtol=1e-6)
  chex.assert_trees_all_equal(maybe_step(False, state)[1], state)
  # And again from the state the taken branch returned.
  chex.assert_trees_all_close(maybe_step(True, alone[1]), step(alone[1]),
                              rtol=1e-6)


@optax_promotion.MULTISTEPS
@pytest.mark.parametrize("name", NAMES)
def test_multisteps_applies_the_mean_gradient_every_k_calls(name):
  """Inside ``optax.MultiSteps`` (gradient accumulation, a ``lax.cond``
  over the inner state): k - 1 zero updates, then the inner optimizer's
  update for the mean of the k gradients, once per k calls."""
  factory, lr = _OPTIMIZERS_UNDER_TEST[name]
  k = 3
  opt = optax.MultiSteps(factory(lr), every_k_schedule=k)
  params = {"x": jnp.array([-1.0, 2.0])}
  grads = [{"x": jnp.array([0.5, -1.0]) * (i + 1)} for i in range(2 * k)]
  update = jax.jit(chex.assert_max_traces(opt.update, n=1))
  state = opt.init(params)
  inner = factory(lr)
  inner_state = inner.init(params)
  for cycle in range(2):
    for i in range(k):
      updates, state = update(grads[cycle * k + i], state, params)
      if i < k - 1:
        chex.assert_trees_all_equal(updates, {"x": jnp.zeros(2)})
    # 0.5 * [1, -2] * (mean of 1..k or k+1..2k), written out by hand.
    mean = {"x": jnp.array([0.5, -1.0]) * (2.0 if cycle == 0 else 5.0)}
    expected, inner_state = inner.update(mean, inner_state, params)
    chex.assert_trees_all_close(updates, expected, rtol=1e-5, atol=1e-8)


_INJECTABLE = {
    "cm": (jm.cm, {"learning_rate": 1e-3, "momentum": 0.9}),
    "nag": (jm.nag, {"learning_rate": 1e-3, "momentum": 0.9}),
    "adam": (jm.adam, {"learning_rate": 0.05, "b1": 0.8}),
    "rmsprop": (jm.rmsprop, {"learning_rate": 0.01, "decay": 0.9,
                             "momentum": 0.5}),
}


@pytest.mark.parametrize("name", optax_promotion.marked(
    _INJECTABLE, {"adam": optax_promotion.ADAM}))
def test_same_result_under_inject_hyperparams(name):
  factory, kwargs = _INJECTABLE[name]
  params = {"x": jnp.array([-1.0, 2.0])}
  direct, _ = _minimize(factory(**kwargs), _rosenbrock, params, 50)
  injected_opt = optax.inject_hyperparams(factory)(**kwargs)
  injected, state = _minimize(injected_opt, _rosenbrock, params, 50)
  chex.assert_trees_all_close(direct, injected, rtol=1e-6)
  # The hyperparameters are visible (and settable) in the state.
  assert state.hyperparams["learning_rate"] == np.float32(
      kwargs["learning_rate"])
  chex.assert_tree_all_finite(direct)
  assert np.max(np.abs(direct["x"] - params["x"])) > 1e-2


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.float32])
def test_keeps_dtypes(name, dtype):
  factory, lr = _OPTIMIZERS_UNDER_TEST[name]
  opt = factory(lr)
  params = {"x": jnp.ones(3, dtype), "y": jnp.ones((2, 2), dtype)}
  state = opt.init(params)
  updates, new_state = jax.jit(opt.update)(params, state, params)
  chex.assert_trees_all_equal_dtypes(updates, params)
  # The state keeps its dtypes from step to step (no silent upcasts).
  chex.assert_trees_all_equal_dtypes(new_state, state)


@pytest.mark.parametrize("factory", [jm.cm, jm.nag])
def test_accumulator_dtype(factory):
  opt = factory(0.1, 0.9, accumulator_dtype=jnp.float32)
  params = jnp.ones(3, jnp.bfloat16)
  state = opt.init(params)
  updates, state = jax.jit(opt.update)(params, state)
  assert updates.dtype == jnp.bfloat16
  assert state[1].velocity.dtype == jnp.float32


@pytest.mark.parametrize("name", NAMES)
def test_none_and_empty_leaves(name):
  factory, lr = _OPTIMIZERS_UNDER_TEST[name]
  opt = factory(lr)
  params = {"a": jnp.ones(2), "none": None, "empty": jnp.zeros((0, 3)),
            "nested": {"b": jnp.ones((1,))}}
  state = opt.init(params)
  updates, _ = jax.jit(opt.update)(params, state, params)
  assert updates["none"] is None
  assert updates["empty"].shape == (0, 3)
  chex.assert_tree_all_finite(updates["a"])


@pytest.mark.parametrize("name", NAMES)
def test_inside_chain_and_multi_transform(name):
  factory, lr = _OPTIMIZERS_UNDER_TEST[name]
  params = {"w": jnp.array([1.0, -1.0]), "b": jnp.array([0.5])}
  opt = optax.multi_transform(
      {"ours": optax.chain(optax.clip_by_global_norm(1.0), factory(lr)),
       "frozen": optax.set_to_zero()},
      {"w": "ours", "b": "frozen"})
  state = opt.init(params)
  grads = {"w": jnp.array([0.3, 0.4]), "b": jnp.array([1.0])}
  updates, state = opt.update(grads, state, params)
  alone = factory(lr)
  expected, _ = alone.update(grads["w"], alone.init(params["w"]),
                             params["w"])
  chex.assert_trees_all_close(updates, {"w": expected, "b": jnp.zeros(1)},
                              rtol=1e-6)


@pytest.mark.parametrize("factory", [jm.cm, jm.nag])
def test_vmap_over_learning_rate_and_momentum_grid_equals_loop(factory):
  lrs = jnp.array([1e-3, 3e-3, 1e-2])
  mus = jnp.array([0.0, 0.9, 0.99])
  params = {"x": jnp.array([-1.0, 2.0])}

  def run(lr, mu):
    final, _ = _minimize(factory(lr, mu), _rosenbrock, params, 100)
    return final

  grid = jax.jit(jax.vmap(jax.vmap(run, (None, 0)), (0, None)))(lrs, mus)
  for i, lr in enumerate(lrs):
    for j, mu in enumerate(mus):
      single = run(float(lr), float(mu))
      np.testing.assert_allclose(grid["x"][i, j], single["x"], rtol=1e-5,
                                 atol=1e-7)


@pytest.mark.parametrize("name", NAMES)
def test_vmap_over_learning_rate_grid_equals_loop(name):
  factory, lr = _OPTIMIZERS_UNDER_TEST[name]
  lrs = jnp.array([0.25, 0.5, 1.0]) * lr
  params = {"x": jnp.array([-1.0, 2.0])}

  def run(learning_rate):
    final, _ = _minimize(factory(learning_rate), _rosenbrock, params, 50)
    return final

  grid = jax.jit(jax.vmap(run))(lrs)
  for i, lr_i in enumerate(lrs):
    np.testing.assert_allclose(grid["x"][i], run(float(lr_i))["x"],
                               rtol=1e-5, atol=1e-7)
  chex.assert_tree_all_finite(grid)
  assert float(jnp.abs(grid["x"][0] - grid["x"][-1]).max()) > 1e-4


_RMS_FLAGS = [dict(centered=c, bias_correction=b, eps_in_sqrt=e)
              for c in (False, True) for b in (False, True)
              for e in (False, True)]


def test_rmsprop_flags_never_change_the_state_type():
  params = {"x": jnp.ones(3)}
  types = {type(jm.rmsprop(1e-2, **flags).init(params)[0])
           for flags in _RMS_FLAGS}
  assert types == {jm.ScaleByRmsState}


@pytest.mark.parametrize("flags", [
    pytest.param(f, marks=optax_promotion.RMS) if f["bias_correction"] else f
    for f in _RMS_FLAGS])
def test_scale_by_rms_equals_optax(flags):
  """Our one-state RMS scaling computes what optax's two primitives do."""
  kwargs = dict(decay=0.8, eps=1e-3, initial_scale=0.1, **flags)
  theirs = (optax.scale_by_stddev if flags["centered"] else
            optax.scale_by_rms)(**{k: v for k, v in kwargs.items()
                                   if k != "centered"})
  ours = jm.scale_by_rms(**kwargs)
  params = jnp.array([0.5, -1.0, 2.0])
  s_ours, s_theirs = ours.init(params), theirs.init(params)
  for k in range(4):
    g = jnp.array([1.0, -2.0, 0.5]) * (k + 1) - 1.0
    u_ours, s_ours = ours.update(g, s_ours)
    u_theirs, s_theirs = theirs.update(g, s_theirs)
    np.testing.assert_allclose(u_ours, u_theirs, rtol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_jit_equals_no_jit(name):
  factory, lr = _OPTIMIZERS_UNDER_TEST[name]
  opt = factory(lr)
  params = {"x": jnp.array([-1.0, 2.0])}
  state = opt.init(params)
  eager, jitted = (params, state), (params, state)
  for _ in range(5):
    g = jax.grad(_rosenbrock)(eager[0])
    u, s = opt.update(g, eager[1], eager[0])
    eager = (optax.apply_updates(eager[0], u), s)
    g = jax.grad(_rosenbrock)(jitted[0])
    u, s = jax.jit(opt.update)(g, jitted[1], jitted[0])
    jitted = (optax.apply_updates(jitted[0], u), s)
  chex.assert_trees_all_close(eager, jitted, rtol=1e-6)


# factory, kwargs, the argument the error must name, a fragment of the range
_BAD_HYPERPARAMETERS = [
    (jm.cm, {"learning_rate": -0.1, "momentum": 0.9}, "learning_rate", "> 0"),
    (jm.cm, {"learning_rate": 0.0, "momentum": 0.9}, "learning_rate", "> 0"),
    (jm.cm, {"learning_rate": 0.1, "momentum": 1.5}, "momentum", "[0, 1]"),
    (jm.nag, {"learning_rate": 0.1, "momentum": -0.1}, "momentum", "[0, 1]"),
    (jm.nag, {"learning_rate": float("nan"), "momentum": 0.9},
     "learning_rate", "> 0"),
    (jm.nag, {"learning_rate": jnp.array(-1.0), "momentum": 0.9},
     "learning_rate", "> 0"),
    (jm.adam, {"b1": 1.0}, "b1", "[0, 1)"),
    (jm.adam, {"b2": -0.5}, "b2", "[0, 1)"),
    (jm.adam, {"eps": -1e-8}, "eps", ">= 0"),
    (jm.adam, {"eps_root": -1.0}, "eps_root", ">= 0"),
    (jm.rmsprop, {"decay": 1.0}, "decay", "[0, 1)"),
    (jm.rmsprop, {"momentum": 2.0}, "momentum", "[0, 1]"),
    (jm.rmsprop, {"learning_rate": -1.0}, "learning_rate", "> 0"),
    (jm.classical_momentum, {"momentum": 1.01}, "momentum", "[0, 1]"),
    (jm.nesterov_momentum, {"momentum": -1}, "momentum", "[0, 1]"),
    (jm.scale_by_adam, {"b1": -0.1}, "b1", "[0, 1)"),
    (jm.scale_by_adam, {"b2": 1.0, "bias_correction": False}, "b2",
     "[0, 1)"),
    (jm.scale_by_rms, {"decay": 1.5}, "decay", "[0, 1)"),
    (jm.scale_by_rms, {"eps": -1.0}, "eps", ">= 0"),
    (jm.rmsprop, {"initial_scale": -1.0}, "initial_scale", ">= 0"),
]


@pytest.mark.parametrize("factory,kwargs,arg,allowed", _BAD_HYPERPARAMETERS)
def test_bad_hyperparameters_raise_naming_the_argument(factory, kwargs, arg,
                                                       allowed):
  with pytest.raises(ValueError) as err:
    factory(**kwargs)
  assert str(err.value).startswith(f"{arg} must be")
  assert allowed in str(err.value)


def test_non_numeric_hyperparameter_is_a_type_error():
  with pytest.raises(TypeError, match="momentum must be a number"):
    jm.cm(0.1, "high")


def test_schedules_and_tracers_are_accepted_unchecked():
  jm.nag(optax.constant_schedule(0.1), lambda t: 0.9)
  jax.jit(lambda lr: jm.cm(lr, 0.9).init(jnp.ones(2)))(0.1)
