"""Adam and RMSProp scalings whose flags never change the state's type.

optax's ``scale_by_adam`` already computes the torch.optim.Adam update
(ε outside the square root, ``eps_root`` inside); what it lacks is a switch to
turn the bias correction off, which :func:`scale_by_adam` adds while keeping
optax's ``ScaleByAdamState``. optax's ``scale_by_rms`` / ``scale_by_stddev``
compute the right RMSProp scalings, but their state type depends on the
``bias_correction`` flag (and on centering); :func:`scale_by_rms` covers every
variant with one state, :class:`ScaleByRmsState`, built from optax's moment
helpers.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import chex
import jax
import jax.numpy as jnp
import optax

from jaxmomentum._momentum import _canonical_dtype
from jaxmomentum._validation import check_float_dtype
from jaxmomentum._validation import check_float_params
from jaxmomentum._validation import check_hyperparameter


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

  With ``bias_correction=True`` this *is* ``optax.scale_by_adam``; the state
  is ``optax.ScaleByAdamState`` either way.

  Args:
    b1: :math:`\beta_1 \in [0, 1)`.
    b2: :math:`\beta_2 \in [0, 1)`.
    eps: :math:`\epsilon \ge 0`, added outside the square root (torch's eps).
    eps_root: :math:`\epsilon_{\text{root}} \ge 0`, added inside it.
    bias_correction: divide the moments by :math:`1-\beta^t`.
    mu_dtype: dtype of the first moment; ``None`` uses the params' dtype.

  Returns:
    An ``optax.GradientTransformation`` with state ``optax.ScaleByAdamState``.

  Example:
    >>> import optax, jax.numpy as jnp, jaxmomentum
    >>> opt = optax.chain(jaxmomentum.scale_by_adam(bias_correction=False),
    ...                   optax.scale_by_learning_rate(1e-3))
    >>> state = opt.init(jnp.zeros(3))
    >>> updates, state = opt.update(jnp.ones(3), state)

  Reference:
    Kingma & Ba, *Adam: A Method for Stochastic Optimization*, ICLR 2015,
    Algorithm 1.
  """
  check_hyperparameter("b1", b1, 0.0, 1.0, high_open=True, schedule=False)
  check_hyperparameter("b2", b2, 0.0, 1.0, high_open=True, schedule=False)
  check_hyperparameter("eps", eps, 0.0, schedule=False)
  check_hyperparameter("eps_root", eps_root, 0.0, schedule=False)
  check_float_dtype("mu_dtype", mu_dtype)
  if bias_correction:
    adam = optax.scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root,
                               mu_dtype=mu_dtype)
    return optax.GradientTransformation(_float_params_init(adam.init),
                                        adam.update)
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

  return optax.GradientTransformation(_float_params_init(inner.init),
                                      update_fn)


def _float_params_init(init):
  """``init`` that first rejects integer params (their updates truncate)."""
  def init_fn(params):
    check_float_params(params)
    return init(params)
  return init_fn


class ScaleByRmsState(NamedTuple):
  """State of :func:`scale_by_rms`, the same for every flag."""

  count: chex.Array  # int32 scalar: the number of updates applied so far.
  nu: optax.Updates  # s_t, the moving average of g².
  mu: Optional[optax.Updates]  # ḡ_t, the moving average of g (centered only).


def scale_by_rms(
    decay: chex.Numeric = 0.99,
    eps: chex.Numeric = 1e-8,
    eps_in_sqrt: bool = False,
    centered: bool = False,
    bias_correction: bool = False,
    initial_scale: chex.Numeric = 0.0,
) -> optax.GradientTransformation:
  r"""Rescale updates by RMSProp's root mean square (plain or centered).

  .. math::

    s_t = \rho s_{t-1} + (1-\rho) g_t^2, \qquad
    \bar g_t = \rho \bar g_{t-1} + (1-\rho) g_t \ (\text{centered only}), \\
    u_t = g_t / \bigl(\sqrt{\hat s_t - \hat{\bar g}_t^2} + \epsilon\bigr)
    \quad(\text{or } g_t / \sqrt{\hat s_t - \hat{\bar g}_t^2 + \epsilon}
    \text{ with } \texttt{eps\_in\_sqrt}),

  where :math:`\bar g \equiv 0` unless ``centered`` and the hats divide by
  :math:`1-\rho^t` when ``bias_correction`` (otherwise they do nothing). The
  defaults are those of ``torch.optim.RMSprop``; every combination of flags
  equals ``optax.scale_by_rms`` / ``optax.scale_by_stddev`` but keeps one state
  type, :class:`ScaleByRmsState` (``mu`` is ``None`` unless ``centered``).

  Args:
    decay: :math:`\rho \in [0, 1)` (torch's ``alpha``).
    eps: :math:`\epsilon \ge 0`, outside the root unless ``eps_in_sqrt``.
    eps_in_sqrt: put :math:`\epsilon` inside the square root.
    centered: subtract the squared moving average of the gradient.
    bias_correction: divide the moving averages by :math:`1-\rho^t`.
    initial_scale: :math:`s_0 \ge 0`.

  Returns:
    An ``optax.GradientTransformation`` with state :class:`ScaleByRmsState`.

  Example:
    >>> import optax, jax.numpy as jnp, jaxmomentum
    >>> opt = optax.chain(jaxmomentum.scale_by_rms(centered=True),
    ...                   optax.scale_by_learning_rate(1e-2))
    >>> state = opt.init(jnp.zeros(3))
    >>> updates, state = opt.update(jnp.ones(3), state)

  Reference:
    Tieleman & Hinton, *Lecture 6.5 - RMSProp*, COURSERA 2012; Graves,
    *Generating Sequences With Recurrent Neural Networks*, 2013, Eqs. 38-41
    (centered).
  """
  check_hyperparameter("decay", decay, 0.0, 1.0, high_open=True,
                       schedule=False)
  check_hyperparameter("eps", eps, 0.0, schedule=False)
  check_hyperparameter("initial_scale", initial_scale, 0.0, schedule=False)

  def init_fn(params):
    check_float_params(params)
    return ScaleByRmsState(
        count=jnp.zeros([], jnp.int32),
        nu=optax.tree.full_like(params, initial_scale),
        mu=optax.tree.zeros_like(params) if centered else None)

  def update_fn(updates, state, params=None):
    del params
    count = optax.safe_increment(state.count)
    nu = optax.tree.update_moment_per_elem_norm(updates, state.nu, decay, 2)
    steps = jnp.asarray(count, float)  # decay ** steps: no int/float mixing
    nu_hat = (optax.tree.bias_correction(nu, decay, steps) if bias_correction
              else nu)
    mu = mu_hat = None
    if centered:
      mu = optax.tree.update_moment(updates, state.mu, decay, 1)
      mu_hat = (optax.tree.bias_correction(mu, decay, steps)
                if bias_correction else mu)
      nu_hat = jax.tree.map(lambda n, m: n - jnp.abs(m) ** 2, nu_hat, mu_hat)
    if eps_in_sqrt:
      scale = lambda n: jax.lax.rsqrt(n + eps)  # noqa: E731
    else:
      scale = lambda n: 1 / (jnp.sqrt(n) + eps)  # noqa: E731
    new_updates = jax.tree.map(lambda g, n: g * scale(n), updates, nu_hat)
    return new_updates, ScaleByRmsState(count=count, nu=nu, mu=mu)

  return optax.GradientTransformation(init_fn, update_fn)
