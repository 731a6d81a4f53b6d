"""The tanh recurrence of :class:`jaxmomentum.models.RNN`, as a pure function.

Kept apart from the module so that its differentiation can be replaced (e.g.
by a ``jax.custom_vjp`` with a hand-written backward pass) without touching
the model: the module only calls :func:`tanh_recurrence`.
"""

from __future__ import annotations

import jax
from jax import lax
import jax.numpy as jnp


def tanh_recurrence(w_hh: jax.Array, pre_inputs: jax.Array, h0: jax.Array,
                    *, unroll: int = 1) -> jax.Array:
  r"""Runs :math:`h_t = \tanh(h_{t-1} W_{hh} + a_t)` over time.

  Args:
    w_hh: ``[hidden, hidden]`` recurrent kernel (``h @ w_hh`` layout).
    pre_inputs: ``[time, batch, hidden]``, time-major: the input projection
      plus bias :math:`a_t = x_t W_{ih} + b_h`, computed for all steps at once
      by the caller.
    h0: ``[batch, hidden]`` initial state.
    unroll: steps per loop iteration of ``lax.scan``.

  Returns:
    ``[time, batch, hidden]``, the states :math:`h_1 \ldots h_T`.
  """

  def step(h, a_t):
    h = jnp.tanh(h @ w_hh + a_t)
    return h, h

  _, hs = lax.scan(step, h0, pre_inputs, unroll=unroll)
  return hs
