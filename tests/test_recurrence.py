"""The tanh recurrence's hand-written backward equals autodiff through scan.

``tanh_recurrence`` (jaxmomentum/models/_recurrence.py) is a ``custom_vjp``;
the reference here is plain ``jax.grad`` through the same ``lax.scan``
written out below. Value and gradients w.r.t. ``w_hh``, ``pre_inputs`` and
``h0`` are compared in float32 and float64, under ``jit`` and ``vmap`` (float64 inside the ``jax.enable_x64`` context,
never a global flag).
"""

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmomentum.models._recurrence import tanh_recurrence

TIME, BATCH, HIDDEN = 12, 5, 7
# float32: both sides round differently through 12 steps of matmuls.
_TOL = {jnp.float32: dict(rtol=2e-5, atol=2e-6),
        jnp.float64: dict(rtol=1e-12, atol=1e-13)}


def _autodiff_recurrence(w_hh, pre_inputs, h0):
  def step(h, a_t):
    h = jnp.tanh(h @ w_hh + a_t)
    return h, h
  return lax.scan(step, h0, pre_inputs)[1]


def _inputs(seed, dtype, batch_shape=()):
  """Spectral radius ~1.2 (near the edge of chaos, as the paper's init).

  From numpy (no per-call-site compilation of jax.random on CPU).
  """
  rng = np.random.default_rng(seed)
  w_hh = 1.2 * rng.standard_normal(batch_shape + (HIDDEN, HIDDEN)) / np.sqrt(
      HIDDEN)
  pre = rng.standard_normal(batch_shape + (TIME, BATCH, HIDDEN))
  h0 = 0.5 * rng.standard_normal(batch_shape + (BATCH, HIDDEN))
  # A loss touching every state, weighted, so every cotangent g_t is nonzero.
  weights = rng.standard_normal((TIME, BATCH, HIDDEN))
  return tuple(jnp.asarray(x, dtype) for x in (w_hh, pre, h0)), jnp.asarray(
      weights, dtype)


def _loss(recurrence, weights):
  def loss(w_hh, pre, h0):
    hs = recurrence(w_hh, pre, h0)
    return jnp.sum(weights * hs) + jnp.sum(hs[-1] ** 2)
  return loss


def _value_and_grads(recurrence, weights):
  return jax.value_and_grad(_loss(recurrence, weights), argnums=(0, 1, 2))


def _assert_close(got, want, dtype):
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    assert g.dtype == w.dtype == dtype
    np.testing.assert_allclose(g, w, **_TOL[dtype])


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("transform", ["jit", "vmap"])
def test_gradients_equal_autodiff_through_scan(dtype, transform):
  with jax.enable_x64(dtype == jnp.float64):
    batch_shape = (3,) if transform == "vmap" else ()
    args, weights = _inputs(0, dtype, batch_shape)
    got_fn = _value_and_grads(tanh_recurrence, weights)
    want_fn = _value_and_grads(_autodiff_recurrence, weights)
    if transform == "vmap":
      got_fn, want_fn = jax.vmap(got_fn), jax.vmap(want_fn)
    got = jax.jit(got_fn)(*args)
    want = jax.jit(want_fn)(*args)
    _assert_close(got, want, dtype)
    # The forward states themselves, bitwise: the same scan.
    fwd = jax.jit(tanh_recurrence)
    ref = jax.jit(_autodiff_recurrence)
    if transform == "vmap":
      fwd, ref = jax.jit(jax.vmap(tanh_recurrence)), jax.jit(jax.vmap(ref))
    np.testing.assert_array_equal(fwd(*args), ref(*args))


@pytest.mark.parametrize("unroll", [1, 4, TIME])
def test_unrolled_equals_autodiff(unroll):
  args, weights = _inputs(1, jnp.float32)
  got = jax.jit(_value_and_grads(
      lambda *a: tanh_recurrence(*a, unroll=unroll), weights))(*args)
  want = jax.jit(_value_and_grads(_autodiff_recurrence, weights))(*args)
  _assert_close(got, want, jnp.float32)


def test_unjitted_equals_jitted():
  args, weights = _inputs(2, jnp.float32)
  fn = _value_and_grads(tanh_recurrence, weights)
  _assert_close(fn(*args), jax.jit(fn)(*args), jnp.float32)


def test_mixed_dtypes_give_cotangents_in_each_primal_dtype():
  with jax.enable_x64(True):
    (w_hh, pre, h0), weights = _inputs(3, jnp.float64)
    w32 = w_hh.astype(jnp.float32)
    grads = jax.jit(jax.grad(_loss(tanh_recurrence, weights),
                             argnums=(0, 1, 2)))(w32, pre, h0)
    # Reference: everything in float64 (autodiff through the mixed-dtype
    # scan would accumulate the weight gradient in float32, step by step).
    want = jax.jit(jax.grad(_loss(_autodiff_recurrence, weights),
                            argnums=(0, 1, 2)))(w32.astype(jnp.float64), pre,
                                                h0)
    assert [g.dtype for g in grads] == [jnp.float32, jnp.float64, jnp.float64]
    np.testing.assert_allclose(grads[0], want[0].astype(jnp.float32),
                               rtol=1e-6, atol=1e-6)
    for g, w in zip(grads[1:], want[1:]):
      np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("unroll", [0, 1.5, True])
def test_rejects_bad_unroll(unroll):
  args, _ = _inputs(0, jnp.float32)
  with pytest.raises(ValueError, match="unroll"):
    tanh_recurrence(*args, unroll=unroll)
