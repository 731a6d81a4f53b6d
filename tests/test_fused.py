"""``jaxmomentum.FusedUpdate``: the opt-in one-pass CPU kernels and their fallback.

The kernels must compute what ``opt.update`` + ``optax.apply_updates`` compute
(to ~1e-12 in float64, where rounding differences stay tiny), under ``jit``
and ``vmap``, in place when the step donates its buffers, with leaves split
over XLA's thread pool; everything the kernels do not cover must take the
two-call path with identical results, and ``update_and_apply`` without a
``FusedUpdate`` never runs a kernel.
"""

import os
import shutil
import warnings

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import _optax_promotion as optax_promotion
import jaxmomentum as jm
from jaxmomentum import _fused
from jaxmomentum import _native
from jaxmomentum import schedules

# Only a machine without a C++ compiler may skip: where one exists, a kernel
# that fails to build fails these tests instead of hiding behind a skip.
_CXX = os.environ.get("CXX", "c++")
pytestmark = pytest.mark.skipif(
    shutil.which(_CXX) is None,
    reason=f"no C++ compiler ({_CXX}) to build the fused CPU kernels")


def test_kernels_build_and_register():
  assert _fused.kernels_available(), _fused.fused_kernel_error()

STEPS = 120


def loss(p):
  return (jnp.sum(jnp.log1p((p["w"] - 1) ** 2)) + 0.25 * jnp.sum(p["b"] ** 4)
          + 0.05 * jnp.sum(p["w"]) * jnp.sum(p["b"]))


def init_params(dtype):
  k1, k2 = jax.random.split(jax.random.key(0))
  return {"w": jax.random.normal(k1, (33, 7), dtype),
          "b": jax.random.normal(k2, (50,), dtype), "empty": jnp.zeros((0,),
                                                                     dtype)}


def two_calls(opt, grads, state, params):
  updates, state = opt.update(grads, state, params)
  return optax.apply_updates(params, updates), state


def run(opt, step_fn, dtype, steps=STEPS):
  """``steps`` jitted steps of ``step_fn(opt, grads, state, params)``."""
  params = init_params(dtype)
  state = opt.init(params)
  step = jax.jit(lambda p, s: step_fn(opt, jax.grad(loss)(p), s, p))
  for _ in range(steps):
    params, state = step(params, state)
  return params, state, step


def uses_kernel(step, params, state) -> bool:
  return "jaxmomentum_Jm" in step.lower(params, state).as_text()


F = jm.FusedUpdate


def _decaying_learning_rate(count):
  return 0.05 / (1 + 0.1 * jnp.asarray(count, float))


OPTIMIZERS = {
    "cm": lambda: F.cm(0.02, 0.9),
    "cm schedules": lambda: F.cm(_decaying_learning_rate,
                                 schedules.sutskever_schedule(0.99, 5)),
    "nag": lambda: F.nag(0.02, 0.95),
    "nag schedules": lambda: F.nag(_decaying_learning_rate,
                                   schedules.sutskever_schedule(0.99, 5)),
    "nag mu=0": lambda: F.nag(0.02, 0.0),
    "adam": lambda: F.adam(0.01),
    "adam schedule": lambda: F.adam(optax.cosine_decay_schedule(0.02, 100)),
    "adam no bias correction, eps_root": lambda: F.adam(
        0.01, b1=0.8, b2=0.99, eps=0.0, eps_root=1e-6, bias_correction=False),
}


@pytest.mark.parametrize("name", optax_promotion.marked(OPTIMIZERS, {
    "adam": optax_promotion.ADAM, "adam schedule": optax_promotion.ADAM}))
def test_equals_two_calls_in_float64(name):
  with jax.enable_x64(True):
    fused = OPTIMIZERS[name]()
    ours = run(fused, jm.update_and_apply, jnp.float64)
    ref = run(fused.optimizer, two_calls, jnp.float64)
    assert uses_kernel(ours[2], ours[0], ours[1])
    assert not uses_kernel(ref[2], ref[0], ref[1])
    assert jax.tree.structure(ours[1]) == jax.tree.structure(ref[1])
    for a, b in zip(jax.tree.leaves(ours[:2]), jax.tree.leaves(ref[:2])):
      assert a.dtype == b.dtype
      np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", optax_promotion.marked(OPTIMIZERS, {
    "adam": optax_promotion.ADAM, "adam schedule": optax_promotion.ADAM}))
def test_equals_two_calls_in_float32(name):
  # Few steps: over many, float32 rounding differences (an FMA here or
  # there) grow on this objective; float64 above checks the long run.
  fused = OPTIMIZERS[name]()
  ours = run(fused, jm.update_and_apply, jnp.float32, steps=10)
  ref = run(fused.optimizer, two_calls, jnp.float32, steps=10)
  assert uses_kernel(ours[2], ours[0], ours[1])
  for a, b in zip(jax.tree.leaves(ours[:2]), jax.tree.leaves(ref[:2])):
    assert a.dtype == b.dtype
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=5e-6)


@optax_promotion.ADAM  # the fused kernel takes optax's bias correction
def test_adam_matches_a_numpy_recurrence():
  """Kingma & Ba's Algorithm 1 with torch's eps placement, in float64."""
  with jax.enable_x64(True):
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    params, _, _ = run(F.adam(lr, b1, b2, eps), jm.update_and_apply,
                       jnp.float64, steps=30)
    p = {k: np.asarray(v) for k, v in init_params(jnp.float64).items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(x) for k, x in p.items()}
    grad = jax.jit(jax.grad(loss))
    for t in range(1, 31):
      g = {k: np.asarray(x) for k, x in grad(p).items()}
      for k in p:
        m[k] = b1 * m[k] + (1 - b1) * g[k]
        v[k] = b2 * v[k] + (1 - b2) * g[k] ** 2
        p[k] = p[k] - lr * (m[k] / (1 - b1 ** t)) / (
            np.sqrt(v[k] / (1 - b2 ** t)) + eps)
    for k in p:
      np.testing.assert_allclose(params[k], p[k], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("size", [50, 300_001])
@pytest.mark.parametrize("name", optax_promotion.marked(
    ["nag", "adam"], {"adam": optax_promotion.ADAM}))
def test_vmap_over_a_learning_rate_grid_equals_a_loop(name, size):
  # 3 x 300,001 elements: split into blocks over the thread pool that cross
  # the rows of the vmapped batch (each row has its own learning rate).
  make = {"nag": lambda lr: F.nag(lr, 0.9), "adam": F.adam}[name]
  lrs = jnp.array([0.001, 0.01, 0.05])
  start = {"w": jnp.linspace(-2.0, 2.0, size, dtype=jnp.float32)}

  def train(lr):
    fused = make(lr)
    params = start
    state = fused.init(params)
    def body(carry, _):
      p, s = carry
      g = jax.grad(lambda p: jnp.sum(jnp.log1p((p["w"] - 1) ** 2)))(p)
      return fused(g, s, p), None
    (params, _), _ = jax.lax.scan(body, (params, state), None, length=20)
    return params

  batched = jax.jit(jax.vmap(train))
  assert "jaxmomentum_Jm" in batched.lower(lrs).as_text()
  out = batched(lrs)
  for i, lr in enumerate(lrs):
    single = jax.jit(train)(lr)
    for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(single)):
      np.testing.assert_allclose(a[i], b, rtol=1e-6, atol=1e-7)


def test_donated_step_updates_in_place_and_compiles_once():
  fused = F.nag(0.01, 0.9)
  params = {"w": jnp.ones((1000, 300))}
  state = fused.init(params)
  grads = {"w": jnp.full((1000, 300), 0.5)}
  step = jax.jit(chex.assert_max_traces(lambda p, s, g: fused(g, s, p), n=1),
                 donate_argnums=(0, 1))
  params, state = step(params, state, grads)
  before = (params["w"].unsafe_buffer_pointer(),
            state[1].velocity["w"].unsafe_buffer_pointer())
  params, state = step(params, state, grads)
  after = (params["w"].unsafe_buffer_pointer(),
           state[1].velocity["w"].unsafe_buffer_pointer())
  assert before == after  # written in place, no new buffers
  # Two steps from v = 0, p = 1: v1 = -eps g, v2 = mu v1 - eps g;
  # p2 = p0 + (mu v1 - eps g) + (mu v2 - eps g).
  g, mu, eps = 0.5, 0.9, 0.01
  v1 = -eps * g
  v2 = mu * v1 - eps * g
  expected = 1 + (mu * v1 - eps * g) + (mu * v2 - eps * g)
  np.testing.assert_allclose(params["w"], expected, rtol=1e-6)


FALLBACKS = {
    # (FusedUpdate, params dtype): leaves the kernel does not cover.
    "bfloat16 params, float32 velocity": (
        lambda: F.nag(0.01, 0.9, accumulator_dtype=jnp.float32),
        jnp.bfloat16),
    "bfloat16 params": (lambda: F.cm(0.01, 0.9), jnp.bfloat16),
    "adam with mu_dtype": (lambda: F.adam(0.01, mu_dtype=jnp.bfloat16),
                           jnp.float32),
}


@pytest.mark.parametrize("name", optax_promotion.marked(
    FALLBACKS, {"adam with mu_dtype": optax_promotion.MU_DTYPE}))
def test_uncovered_cases_take_the_two_call_path(name):
  make, dtype = FALLBACKS[name]
  fused = make()
  ours = run(fused, jm.update_and_apply, dtype, steps=10)
  ref = run(fused.optimizer, two_calls, dtype, steps=10)
  assert not uses_kernel(ours[2], ours[0], ours[1])
  for a, b in zip(jax.tree.leaves(ours[:2]), jax.tree.leaves(ref[:2])):
    np.testing.assert_array_equal(a, b)


PLAIN = {
    "nag": lambda: jm.nag(0.01, 0.9),
    "cm": lambda: jm.cm(0.01, 0.9),
    "adam": lambda: jm.adam(0.01),
    "rmsprop": lambda: jm.rmsprop(0.01),
    "optax.sgd": lambda: optax.sgd(0.01, 0.9, nesterov=True),
    "chained with clipping": lambda: optax.chain(
        optax.clip_by_global_norm(1.0), jm.nag(0.01, 0.9)),
}


@pytest.mark.parametrize("name", optax_promotion.marked(
    PLAIN, {"adam": optax_promotion.ADAM}))
def test_without_opt_in_update_and_apply_is_the_two_calls(name):
  opt = PLAIN[name]()
  ours = run(opt, jm.update_and_apply, jnp.float32, steps=10)
  ref = run(opt, two_calls, jnp.float32, steps=10)
  assert not uses_kernel(ours[2], ours[0], ours[1])
  for a, b in zip(jax.tree.leaves(ours[:2]), jax.tree.leaves(ref[:2])):
    np.testing.assert_array_equal(a, b)


def test_nag_with_an_array_momentum_is_refused():
  with pytest.raises(ValueError, match="momentum must be a float or a schedule"):
    F.nag(0.01, jnp.asarray(0.9))


def test_arguments_and_state_are_the_plain_optimizers():
  fused = F.adam(0.01, b2=0.9)
  plain = jm.adam(0.01, b2=0.9)
  params = {"w": jnp.ones(3)}
  assert (jax.tree.structure(fused.init(params))
          == jax.tree.structure(plain.init(params)))
  assert fused.kernel.b2 == 0.9 and fused.kernel.b1 == 0.9  # default filled
  # The kernel's learning rate is the optimizer's own link, stepped by optax.
  lr_state = fused.init(params)[1]
  neg_lr, _ = fused.kernel.learning_rate.update(jnp.ones([]), lr_state)
  np.testing.assert_allclose(neg_lr, -0.01)


def test_none_leaves_are_kept():
  fused = F.cm(0.1, 0.9)
  params = {"a": jnp.ones(3), "skip": None}
  state = fused.init(params)
  grads = {"a": jnp.ones(3), "skip": None}
  step = jax.jit(lambda p, s, g: fused(g, s, p))
  assert "jaxmomentum_Jm" in step.lower(params, state, grads).as_text()
  new_params, _ = step(params, state, grads)
  assert new_params["skip"] is None
  np.testing.assert_allclose(new_params["a"], 0.9)


def test_without_a_compiler_it_warns_and_falls_back(monkeypatch, tmp_path):
  monkeypatch.setattr(_native, "_state", {})
  monkeypatch.setenv("JAXMOMENTUM_CACHE_DIR", str(tmp_path))
  monkeypatch.setenv("CXX", "/nonexistent/c++")
  opt = F.cm(0.1, 0.9)
  params = jnp.ones(5)
  state = opt.init(params)
  with pytest.warns(RuntimeWarning, match="fused_update CPU kernels are not available"):
    new_params, _ = jm.update_and_apply(opt, jnp.ones(5), state, params)
  np.testing.assert_allclose(new_params, 0.9)
  assert "FileNotFoundError" in _fused.fused_kernel_error()
  with warnings.catch_warnings():
    warnings.simplefilter("error")  # warned once, not on every step
    jm.update_and_apply(opt, jnp.ones(5), state, params)


def test_disabled_by_environment(monkeypatch):
  monkeypatch.setattr(_native, "_state", {})
  monkeypatch.setenv("JAXMOMENTUM_DISABLE_FUSED", "1")
  assert not _fused.kernels_available()
  assert "JAXMOMENTUM_DISABLE_FUSED" in _fused.fused_kernel_error()


_TWO_DEVICES = r"""
import jax, jax.numpy as jnp, numpy as np, optax
import jaxmomentum as jm
assert len(jax.devices()) == 2
lrs = jnp.array([0.01, 0.02, 0.03, 0.04])
mesh = jax.sharding.Mesh(np.array(jax.devices()), ("runs",))
sharded = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("runs"))
start = jnp.linspace(-2.0, 2.0, 300_001, dtype=jnp.float32)

def train(lr, fused):
  opt = jm.FusedUpdate.nag(lr, 0.9) if fused else jm.nag(lr, 0.9)
  def body(carry, _):
    p, s = carry
    g = jax.grad(lambda p: jnp.sum(jnp.log1p((p - 1) ** 2)))(p)
    return jm.update_and_apply(opt, g, s, p), None
  return jax.lax.scan(body, (start, opt.init(start)), None, length=10)[0][0]

ours = jax.jit(jax.vmap(lambda lr: train(lr, True)))
assert "jaxmomentum_Jm" in ours.lower(lrs).as_text()
got = ours(jax.device_put(lrs, sharded))
want = jax.jit(jax.vmap(lambda lr: train(lr, False)))(lrs)
np.testing.assert_allclose(got, want, rtol=2e-5, atol=5e-6)  # float32 rounding
print("ok")
"""


def test_kernel_on_two_host_devices(tmp_path):
  """Both devices' programs call the kernel at once, sharing XLA's pool."""
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  root = os.path.dirname(os.path.dirname(os.path.abspath(jm.__file__)))
  env = dict(os.environ, JAX_NUM_CPU_DEVICES="2", JAX_PLATFORMS="cpu",
             PYTHONPATH=os.pathsep.join(
                 [root, os.environ.get("PYTHONPATH", "")]))
  result = subprocess.run([sys.executable, "-c", _TWO_DEVICES], env=env,
                          capture_output=True, text=True, timeout=600,
                          check=False, cwd=str(tmp_path))
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.strip().endswith("ok")
