"""The tanh recurrence's and the tanh RNN layer's hand-written backwards equal
autodiff through scan.

``tanh_recurrence`` (jaxmomentum/models/_recurrence.py) is a ``custom_vjp``;
the reference here is plain ``jax.grad`` through the same ``lax.scan``
written out below. Value and gradients w.r.t. ``w_hh``, ``pre_inputs`` and
``h0`` are compared in float32 and float64, under ``jit`` and ``vmap`` (float64 inside the ``jax.enable_x64`` context,
never a global flag).
"""

import math
import re

import chex
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
  chex.assert_type(jax.tree.leaves((got, want)), dtype)
  chex.assert_trees_all_close(got, want, **_TOL[dtype])


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


@pytest.mark.standard_promotion(
    reason="mixing float32 and float64 arguments is the case under test: "
    "the recurrence resolves one dtype for them by standard promotion")
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


# -- the whole layer: input projection, recurrence, output projection --------

from jaxmomentum.models._recurrence import tanh_rnn  # noqa: E402
from jaxmomentum.models import _recurrence  # noqa: E402

IN_DIM = 3


def _autodiff_rnn(x, w_ih, b_h, w_hh, h0, w_ho):
  def step(h, x_t):
    h = jnp.tanh(x_t @ w_ih + b_h + h @ w_hh)
    return h, h
  hs = lax.scan(step, h0, x)[1]
  return hs, hs @ w_ho


def _rnn_inputs(seed, dtype, out_dim, batch_shape=(), in_dim=IN_DIM):
  rng = np.random.default_rng(seed)
  shapes = [(TIME, BATCH, in_dim), (in_dim, HIDDEN), (HIDDEN,),
            (HIDDEN, HIDDEN), (BATCH, HIDDEN), (HIDDEN, out_dim)]
  scales = [1.0, 0.7, 0.3, 1.2 / np.sqrt(HIDDEN), 0.5, 1.0]
  args = tuple(jnp.asarray(s * rng.standard_normal(batch_shape + shape), dtype)
               for s, shape in zip(scales, shapes))
  w_states = jnp.asarray(rng.standard_normal((TIME, BATCH, HIDDEN)), dtype)
  w_out = jnp.asarray(rng.standard_normal((TIME, BATCH, out_dim)), dtype)
  return args, w_states, w_out


def _assert_layer_close(got, want, dtype):
  """As ``_assert_close``, with float32's absolute tolerance scaled to each
  array's magnitude: the input-kernel gradient sums many terms of both signs,
  so small entries carry the rounding of large ones."""
  if dtype == jnp.float64:
    return _assert_close(got, want, dtype)
  chex.assert_type(jax.tree.leaves((got, want)), dtype)
  chex.assert_trees_all_equal_structs(got, want)
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(
        g, w, rtol=2e-5, atol=2e-6 * max(1.0, float(np.max(np.abs(w)))))


def _rnn_loss(layer, w_states, w_out, through):
  """A loss through the states, the outputs, or both (nonzero cotangents)."""
  def loss(*args):
    hs, out = layer(*args)
    total = 0.0
    if through in ("states", "both"):
      total = total + jnp.sum(w_states * hs)
    if through in ("outputs", "both"):
      total = total + jnp.sum(w_out * out) + jnp.sum(out[-1] ** 2)
    return total
  return jax.value_and_grad(loss, argnums=tuple(range(6)))


# (output size, which outputs the loss reads): output sizes on both sides of
# the broadcast-and-sum / matmul switch in the backward step.
RNN_CASES = [(1, "outputs"), (1, "both"), (1, "states"),
             (_recurrence._SMALL_OUTPUT, "both"),  # pylint: disable=protected-access
             (_recurrence._SMALL_OUTPUT + 4, "both")]  # pylint: disable=protected-access


# Input sizes on both sides of the switch between the input projection
# inside the forward step (broadcast-and-sum) and one matmul before the loop.
IN_CASES = [1, _recurrence._SMALL_INPUT,  # pylint: disable=protected-access
            _recurrence._SMALL_INPUT + 4]  # pylint: disable=protected-access


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("out_dim,through", RNN_CASES)
def test_layer_gradients_equal_autodiff(dtype, out_dim, through):
  with jax.enable_x64(dtype == jnp.float64):
    args, w_states, w_out = _rnn_inputs(4, dtype, out_dim)
    got = jax.jit(_rnn_loss(tanh_rnn, w_states, w_out, through))(*args)
    want = jax.jit(_rnn_loss(_autodiff_rnn, w_states, w_out, through))(*args)
    _assert_layer_close(got, want, dtype)
    # The forward values (the reference projects x_t by a matmul inside the
    # loop, the layer by multiply-adds: the same sums in another order).
    _assert_close(jax.jit(tanh_rnn)(*args),
                  jax.jit(_autodiff_rnn)(*args), dtype)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("in_dim", IN_CASES)
def test_layer_gradients_equal_autodiff_any_input_size(dtype, in_dim):
  """Values and all six gradients (the inputs' too) on both sides of the
  input-projection switch, through states and outputs."""
  with jax.enable_x64(dtype == jnp.float64):
    args, w_states, w_out = _rnn_inputs(7, dtype, 2, in_dim=in_dim)
    got = jax.jit(_rnn_loss(tanh_rnn, w_states, w_out, "both"))(*args)
    want = jax.jit(_rnn_loss(_autodiff_rnn, w_states, w_out, "both"))(*args)
    _assert_layer_close(got, want, dtype)
    _assert_close(jax.jit(tanh_rnn)(*args),
                  jax.jit(_autodiff_rnn)(*args), dtype)


def test_layer_under_vmap_equals_autodiff():
  args, w_states, w_out = _rnn_inputs(5, jnp.float32, 2, batch_shape=(3,))
  got = jax.jit(jax.vmap(_rnn_loss(tanh_rnn, w_states, w_out, "both")))(*args)
  want = jax.jit(jax.vmap(_rnn_loss(_autodiff_rnn, w_states, w_out,
                                    "both")))(*args)
  _assert_layer_close(got, want, jnp.float32)


@pytest.mark.parametrize("unroll", [2, TIME])
def test_layer_unrolled_equals_autodiff(unroll):
  args, w_states, w_out = _rnn_inputs(6, jnp.float32, 1)
  got = jax.jit(_rnn_loss(lambda *a: tanh_rnn(*a, unroll=unroll), w_states,
                          w_out, "both"))(*args)
  want = jax.jit(_rnn_loss(_autodiff_rnn, w_states, w_out, "both"))(*args)
  _assert_layer_close(got, want, jnp.float32)


@pytest.mark.parametrize("unroll", [0, 1.5, True])
def test_layer_rejects_bad_unroll(unroll):
  args, _, _ = _rnn_inputs(0, jnp.float32, 1)
  with pytest.raises(ValueError, match="unroll"):
    tanh_rnn(*args, unroll=unroll)


def test_no_custom_calls_on_the_default_path():
  """Plain XLA only: no machine-tuned native code in the RNN (issue 13)."""
  args, _, _ = _rnn_inputs(0, jnp.float32, 1)
  grad = jax.grad(lambda *a: jnp.sum(tanh_rnn(*a)[1] ** 2),
                  argnums=tuple(range(6)))
  for fn in (tanh_rnn, grad):
    assert "custom_call" not in jax.jit(fn).lower(*args).as_text()


# The paper's RNN at Table 5's sizes (time, batch, hidden, in, out): addition
# (88 padded steps, 2 inputs, 1 output) and mem-20 (80 steps, 7 one-hot
# inputs, 6 softmax outputs).
PAPER_SIZES = [(88, 100, 100, 2, 1), (80, 100, 100, 7, 6)]


def _paper_args(time, batch, hidden, in_dim, out_dim):
  shapes = [(time, batch, in_dim), (in_dim, hidden), (hidden,),
            (hidden, hidden), (batch, hidden), (hidden, out_dim)]
  return [jax.ShapeDtypeStruct(s, jnp.float32) for s in shapes]


def _ops_on_states(hlo, op, size):
  """The instructions ``op`` of the optimized HLO (fusion bodies included)
  whose result has ``size`` elements: a pass over a [time, batch, hidden]
  array."""
  found = []
  for m in re.finditer(r"= f32\[([\d,]*)\]\{[\d,]*\} ([\w-]+)\(", hlo):
    if m.group(2) == op and math.prod(
        int(d) for d in m.group(1).split(",") if d) == size:
      found.append(m.group(0))
  return found


@pytest.mark.parametrize("sizes", PAPER_SIZES)
def test_paper_sized_layer_makes_no_avoidable_state_passes(sizes):
  """Pins issue 13's portable levers in the compiled program: the gradient
  transposes no [time, batch, hidden] array (the weight gradients are 2-D
  matmuls over the stored layout), and for small inputs the forward writes
  no pre-activation array (the input projection is inside the step). Either
  regression costs 10-20% of an update on a CPU (benchmarks/RESULTS.md)."""
  time_, batch, hidden = sizes[:3]
  args = _paper_args(*sizes)
  grad = jax.grad(lambda *a: jnp.sum(tanh_rnn(*a)[1][-1] ** 2),
                  argnums=tuple(range(1, 6)))
  hlo = jax.jit(grad).lower(*args).compile().as_text()
  assert _ops_on_states(hlo, "transpose", time_ * batch * hidden) == []
  forward = jax.jit(tanh_rnn).lower(*args).compile().as_text()
  assert _ops_on_states(forward, "dot", time_ * batch * hidden) == []
