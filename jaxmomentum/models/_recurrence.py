"""The tanh RNN layer of :class:`jaxmomentum.models.RNN`, as pure functions.

Kept apart from the module so that its differentiation can be replaced
without touching the model: the module only calls :func:`tanh_rnn`.
Its reverse-mode derivative is a hand-written backward pass through time
(``jax.custom_vjp``), checked against autodiff through ``lax.scan`` in
tests/test_recurrence.py. :func:`tanh_recurrence` is the recurrence alone
(its input and output projections left to the caller), kept for the
benchmark's lever-by-lever comparison.
"""

from __future__ import annotations

import functools

import jax
from jax import lax
import jax.numpy as jnp



def _forward(w_hh, pre_inputs, h0, unroll):
  def step(h, a_t):
    h = jnp.tanh(h @ w_hh + a_t)
    return h, h

  _, hs = lax.scan(step, h0, pre_inputs, unroll=unroll)
  return hs


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _recurrence(w_hh, pre_inputs, h0, unroll):
  return _forward(w_hh, pre_inputs, h0, unroll)


def _recurrence_fwd(w_hh, pre_inputs, h0, unroll):
  hs = _forward(w_hh, pre_inputs, h0, unroll)
  return hs, (w_hh, hs, h0)


def _recurrence_bwd(unroll, residuals, d_hs):
  """Backward through time from the stored states only.

  With :math:`z_t = h_{t-1} W + a_t`, :math:`h_t = \\tanh z_t` and
  :math:`g_t` the cotangent of :math:`h_t` from outside:
  :math:`\\delta_t = (g_t + \\delta_{t+1} W^\\top) \\odot (1 - h_t^2)`
  (:math:`\\delta_{T+1} = 0`). Then :math:`\\bar a_t = \\delta_t`,
  :math:`\\bar h_0 = \\delta_1 W^\\top` and
  :math:`\\bar W = \\sum_t h_{t-1}^\\top \\delta_t`.

  The sequential part is one ``[batch, hidden] x [hidden, hidden]`` matmul
  per step (autodiff through ``lax.scan`` also accumulates the weight
  gradient there, one more matmul per step); the weight gradient is one
  ``[hidden, time * batch] x [time * batch, hidden]`` matmul after the loop.
  """
  w_hh, hs, h0 = residuals
  w_t = w_hh.T

  def step(d_next, inputs):
    h_t, g_t = inputs
    dz = (g_t + d_next) * (1 - h_t * h_t)
    return dz @ w_t, dz

  d_h0, dz = lax.scan(step, jnp.zeros_like(h0), (hs, d_hs), reverse=True,
                      unroll=unroll)
  h_prev = jnp.concatenate([h0[None], hs[:-1]], axis=0)
  d_w = jnp.einsum("tbh,tbk->hk", h_prev, dz)
  return d_w, dz, d_h0


_recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)


def tanh_recurrence(w_hh: jax.Array, pre_inputs: jax.Array, h0: jax.Array,
                    *, unroll: int = 1) -> jax.Array:
  r"""Runs :math:`h_t = \tanh(h_{t-1} W_{hh} + a_t)` over time.

  The value is a ``lax.scan``; the gradient is a hand-written backward pass
  through time (``jax.custom_vjp``) that keeps only the states
  :math:`h_1 \ldots h_T` and does the weight gradient as one large matmul
  after the loop instead of one small one per step. It equals autodiff
  through the scan up to float rounding. Reverse mode only: ``jax.jvp`` /
  ``jax.jacfwd`` through it raise (a ``custom_vjp`` restriction).

  Args:
    w_hh: ``[hidden, hidden]`` recurrent kernel (``h @ w_hh`` layout).
    pre_inputs: ``[time, batch, hidden]``, time-major: the input projection
      plus bias :math:`a_t = x_t W_{ih} + b_h`, computed for all steps at once
      by the caller.
    h0: ``[batch, hidden]`` initial state.
    unroll: steps per loop iteration of ``lax.scan`` (forward and backward),
      a positive int.

  Returns:
    ``[time, batch, hidden]``, the states :math:`h_1 \ldots h_T`.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from jaxmomentum.models._recurrence import tanh_recurrence
    >>> w = 0.1 * jnp.eye(3)
    >>> pre = jnp.ones((5, 2, 3))  # [time, batch, hidden]
    >>> h0 = jnp.zeros((2, 3))
    >>> tanh_recurrence(w, pre, h0).shape
    (5, 2, 3)
    >>> loss = lambda w: tanh_recurrence(w, pre, h0)[-1].sum()
    >>> jax.grad(loss)(w).shape
    (3, 3)
  """
  if isinstance(unroll, bool) or not isinstance(unroll, int) or unroll < 1:
    raise ValueError(f"unroll must be a positive int, got {unroll!r}")
  # One dtype inside, so the backward's cotangents match the primals (the
  # casts' own derivatives take mixed-dtype callers back to theirs).
  dtype = jnp.result_type(w_hh, pre_inputs, h0)
  return _recurrence(jnp.asarray(w_hh, dtype), jnp.asarray(pre_inputs, dtype),
                     jnp.asarray(h0, dtype), unroll)


# Output sizes up to this are folded into the backward step's elementwise
# fusion as a broadcast-and-sum (no per-step matmul call); larger ones use a
# matmul per step.
_SMALL_OUTPUT = 16

def _scan_backward(unroll, x, w_hh, h0, w_ho, hs, d_hs, d_out):
  """Everything :func:`_rnn_bwd` needs but ``d_x``: one reverse ``lax.scan``.

  Returns ``e, d_first, d_h0, d_w_hh, d_w_ih, d_b_h, d_w_ho``; the weight
  gradients are single matmuls over the stored states after the loop.
  """
  w_t, w_ho_t = w_hh.T, w_ho.T
  small = w_ho.shape[1] <= _SMALL_OUTPUT

  def step(d_next, inputs):
    h_t, dh_t, do_t = inputs
    g = d_next @ w_t
    if dh_t is not None:
      g = g + dh_t
    if do_t is not None:
      g = g + ((do_t[..., :, None] * w_ho_t).sum(-2) if small
               else do_t @ w_ho_t)
    return g * (1 - h_t * h_t), d_next

  d_first, e = lax.scan(step, jnp.zeros_like(h0), (hs, d_hs, d_out),
                        reverse=True, unroll=unroll)
  x_next = jnp.concatenate([x[1:], jnp.zeros_like(x[:1])], axis=0)
  # The weight gradients as 2-D matmuls over the merged [time * batch] rows
  # of the arrays as they lie in memory. A 3-D einsum contracting time and
  # batch lets XLA:CPU pick a contraction order that transposes the states
  # and e ([time, batch, hidden], 3.5 MB each for the paper's RNN) first:
  # two strided copies costing more than the matmul itself.
  rows, hidden = e.shape[0] * e.shape[1], e.shape[2]
  hs2, e2 = hs.reshape(rows, hidden), e.reshape(rows, hidden)
  d_w_ih = x_next.reshape(rows, -1).T @ e2 + x[0].T @ d_first
  d_b_h = e2.sum(0) + d_first.sum(0)
  d_w_hh = hs2.T @ e2 + h0.T @ d_first
  if d_out is None:
    d_w_ho = jnp.zeros_like(w_ho)
  else:
    # As (d_out^T hs)^T: with hs on the right XLA:CPU reads the states in
    # place; as hs^T d_out it copies them transposed for a matrix-vector
    # product when the output is narrow.
    d_w_ho = (d_out.reshape(rows, -1).T @ hs2).T
  return e, d_first, d_first @ w_t, d_w_hh, d_w_ih, d_b_h, d_w_ho


# Input sizes up to this are projected inside the forward step, as a
# broadcast-and-sum in the step's elementwise fusion with the tanh; larger ones
# by one matmul before the loop.
_SMALL_INPUT = 16


def _project_small(x_t, w_ih, b_h):
  """``x_t @ w_ih + b_h`` as ``in_dim`` broadcast multiply-adds (elementwise,
  so XLA fuses it with the step's add and tanh)."""
  acc = x_t[:, 0:1] * w_ih[0]
  for i in range(1, w_ih.shape[0]):
    acc = acc + x_t[:, i:i + 1] * w_ih[i]
  return acc + b_h


def _rnn_forward(x, w_ih, b_h, w_hh, h0, w_ho, unroll):
  if w_ih.shape[0] <= _SMALL_INPUT:
    # The input projection inside the step: no [time, batch, hidden]
    # pre-activation array written by a matmul, biased in a second pass and
    # read back by the loop (three passes over 3.5 MB for the paper's RNN).
    def step(h, x_t):
      h = jnp.tanh(h @ w_hh + _project_small(x_t, w_ih, b_h))
      return h, h

    hs = lax.scan(step, h0, x, unroll=unroll)[1]
  else:
    pre = x @ w_ih + b_h                    # [time, batch, hidden], one matmul
    hs = _forward(w_hh, pre, h0, unroll)
  return hs, hs @ w_ho


@functools.partial(jax.custom_vjp, nondiff_argnums=(6,))
def _rnn(x, w_ih, b_h, w_hh, h0, w_ho, unroll):
  return _rnn_forward(x, w_ih, b_h, w_hh, h0, w_ho, unroll)


def _rnn_fwd(x, w_ih, b_h, w_hh, h0, w_ho, unroll):
  x, w_ih, b_h, w_hh, h0, w_ho = (
      a.value for a in (x, w_ih, b_h, w_hh, h0, w_ho))  # symbolic_zeros
  out = _rnn_forward(x, w_ih, b_h, w_hh, h0, w_ho, unroll)
  return out, (x, w_ih, w_hh, h0, w_ho, out[0])


def _rnn_bwd(unroll, residuals, cotangents):
  r"""Backward through time for the whole layer, without [T, B, H] temporaries.

  With :math:`z_t = x_t W_{ih} + b_h + h_{t-1} W_{hh}`, :math:`h_t = \tanh z_t`,
  :math:`o_t = h_t W_{ho}` and outside cotangents :math:`\bar h_t`,
  :math:`\bar o_t`: :math:`\delta_t = (\bar h_t + \bar o_t W_{ho}^\top +
  \delta_{t+1} W_{hh}^\top) \odot (1 - h_t^2)`. The loop emits
  :math:`e_t = \delta_{t+1}` (:math:`e_T = 0`) aligned with :math:`h_t`, so
  :math:`\bar W_{hh} = \sum_t h_t^\top e_t + h_0^\top \delta_1` is one matmul
  over the stored states as they are (no shifted copy), and
  :math:`\bar h_t` from the output projection is formed inside the loop's
  elementwise step (no ``[T, B, H]`` cotangent array). Unused outputs arrive
  as symbolic zeros and cost nothing.
  """
  x, w_ih, w_hh, h0, w_ho, hs = residuals
  d_hs, d_out = cotangents
  d_hs = None if isinstance(d_hs, jax.custom_derivatives.SymbolicZero) else d_hs
  if isinstance(d_out, jax.custom_derivatives.SymbolicZero):
    d_out = None
  e, d_first, d_h0, d_w_hh, d_w_ih, d_b_h, d_w_ho = _scan_backward(
      unroll, x, w_hh, h0, w_ho, hs, d_hs, d_out)
  dz = jnp.concatenate([d_first[None], e[:-1]], axis=0)  # only for d_x
  return dz @ w_ih.T, d_w_ih, d_b_h, d_w_hh, d_h0, d_w_ho


_rnn.defvjp(_rnn_fwd, _rnn_bwd, symbolic_zeros=True)


def tanh_rnn(inputs: jax.Array, w_ih: jax.Array, b_h: jax.Array,
             w_hh: jax.Array, h0: jax.Array, w_ho: jax.Array, *,
             unroll: int = 1) -> tuple[jax.Array, jax.Array]:
  r"""A tanh RNN layer: input projection, recurrence and output projection.

  .. math::

    h_t = \tanh(x_t W_{ih} + b_h + h_{t-1} W_{hh}), \qquad
    o_t = h_t W_{ho}, \qquad t = 1 \ldots T.

  The value is a ``lax.scan`` over time and one output matmul: plain XLA,
  with nothing tuned to one machine. Inputs of up to 16 features are
  projected inside the step (``in_dim`` multiply-adds fused with the tanh:
  no ``[time, batch, hidden]`` pre-activation array); wider ones by one
  matmul before the loop. The gradient is a hand-written backward pass
  through time (``jax.custom_vjp``) over the whole layer: it keeps only the
  states, folds the output projection's cotangent into the loop's
  elementwise step, and forms the weight gradients as single 2-D matmuls
  over the stored states as they lie in memory (merged ``[time * batch]``
  rows), without the shifted copies, transposes and ``[time, batch,
  hidden]`` temporaries that autodiff (or :func:`tanh_recurrence` plus
  autodiff of the projections) makes. It equals autodiff through the scan up
  to float rounding
  (tests/test_recurrence.py). Reverse mode only (a ``custom_vjp``).

  Args:
    inputs: ``[time, batch, in_dim]``, time-major.
    w_ih: ``[in_dim, hidden]``; ``b_h``: ``[hidden]``.
    w_hh: ``[hidden, hidden]`` (``h @ w_hh`` layout).
    h0: ``[batch, hidden]`` initial state.
    w_ho: ``[hidden, out]``; the output bias is the caller's.
    unroll: steps per loop iteration of the scans (forward and backward), a
      positive int; larger values trade compile time for fewer loop
      iterations (on a GPU, fewer kernel launches per sequence).

  Returns:
    ``(hs, outputs)``: the states ``[time, batch, hidden]`` and
    ``outputs = hs @ w_ho``, ``[time, batch, out]``.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from jaxmomentum.models._recurrence import tanh_rnn
    >>> x = jnp.ones((5, 2, 3))  # [time, batch, in]
    >>> w_ih, b_h, w_hh = 0.1 * jnp.ones((3, 4)), jnp.zeros(4), 0.1 * jnp.eye(4)
    >>> h0, w_ho = jnp.zeros((2, 4)), jnp.ones((4, 1))
    >>> hs, out = tanh_rnn(x, w_ih, b_h, w_hh, h0, w_ho)
    >>> hs.shape, out.shape
    ((5, 2, 4), (5, 2, 1))
    >>> loss = lambda w: tanh_rnn(x, w_ih, b_h, w, h0, w_ho)[1][-1].sum()
    >>> jax.grad(loss)(w_hh).shape
    (4, 4)
  """
  if isinstance(unroll, bool) or not isinstance(unroll, int) or unroll < 1:
    raise ValueError(f"unroll must be a positive int, got {unroll!r}")
  args = (inputs, w_ih, b_h, w_hh, h0, w_ho)
  dtype = jnp.result_type(*args)
  return _rnn(*(jnp.asarray(a, dtype) for a in args), unroll)
