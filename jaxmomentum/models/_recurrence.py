"""The tanh recurrence of :class:`jaxmomentum.models.RNN`, as a pure function.

Kept apart from the module so that its differentiation can be replaced
without touching the model: the module only calls :func:`tanh_recurrence`.
Its reverse-mode derivative is a hand-written backward pass through time
(``jax.custom_vjp``), checked against autodiff through ``lax.scan`` in
tests/test_recurrence.py.
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
