"""Adam scaling with an optional bias correction.

optax's ``scale_by_adam`` already computes the torch.optim.Adam update
(ε outside the square root, ``eps_root`` inside). What it lacks is a switch to
turn the bias correction off, which this module adds while keeping optax's
state type, so the flag never changes the state's structure. RMSProp needs
nothing new: ``optax.scale_by_rms`` / ``optax.scale_by_stddev`` cover every
variant (see :func:`jaxmomentum.rmsprop`).
"""

from __future__ import annotations

from typing import Any, Optional

import chex
import jax
import jax.numpy as jnp
import optax

from jaxmomentum._momentum import _canonical_dtype


def scale_by_adam(
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.999,
    eps: chex.Numeric = 1e-8,
    eps_root: chex.Numeric = 0.0,
    bias_correction: bool = True,
    mu_dtype: Optional[Any] = None,
) -> optax.GradientTransformation:
  r"""Rescale updates by Adam's moment estimates, bias correction optional.

  .. math::

    m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
    v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \\
    \hat m_t = m_t / (1-\beta_1^t), \quad \hat v_t = v_t / (1-\beta_2^t)
    \quad (\text{or } \hat m_t = m_t,\ \hat v_t = v_t \text{ without
    correction}), \\
    u_t = \hat m_t / (\sqrt{\hat v_t + \epsilon_{\text{root}}} + \epsilon).

  With ``bias_correction=True`` this *is* ``optax.scale_by_adam``.

  Args:
    b1: :math:`\beta_1 \in [0, 1)`.
    b2: :math:`\beta_2 \in [0, 1)`.
    eps: :math:`\epsilon \ge 0`, added outside the square root (torch's eps).
    eps_root: :math:`\epsilon_{\text{root}} \ge 0`, added inside it.
    bias_correction: divide the moments by :math:`1-\beta^t`.
    mu_dtype: dtype of the first moment; ``None`` uses the params' dtype.

  Returns:
    An ``optax.GradientTransformation`` with state ``optax.ScaleByAdamState``.
  """
  if bias_correction:
    return optax.scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root,
                               mu_dtype=mu_dtype)
  mu_dtype = _canonical_dtype(mu_dtype)
  inner = optax.scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root,
                              mu_dtype=mu_dtype)

  def update_fn(updates, state, params=None):
    del params
    mu = optax.tree.update_moment(updates, state.mu, b1, 1)
    nu = optax.tree.update_moment_per_elem_norm(updates, state.nu, b2, 2)
    new_updates = jax.tree.map(
        lambda m, v: m / (jnp.sqrt(v + eps_root) + eps), mu, nu)
    return new_updates, optax.ScaleByAdamState(
        count=optax.safe_increment(state.count),
        mu=optax.tree.cast(mu, mu_dtype),
        nu=optax.tree.cast_like(nu, state.nu))

  return optax.GradientTransformation(inner.init, update_fn)
