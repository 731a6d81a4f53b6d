"""Public optimizers as short ``optax.chain``s.

The learning rate and the momentum may be a float, a schedule
``count -> value`` or an array (e.g. traced under ``jax.vmap`` for a
learning-rate or momentum grid). The other hyperparameters (Adam's betas,
RMSProp's decay, the eps) are floats or arrays; to schedule them, wrap the
optimizer in ``optax.inject_hyperparams``. Constants are checked at
construction, with a ``ValueError`` naming the argument and its range.
"""

from __future__ import annotations

from typing import Any, Optional

import chex
import optax

from jaxmomentum import _adaptive
from jaxmomentum import _momentum
from jaxmomentum._validation import check_hyperparameter

ScalarOrSchedule = optax.ScalarOrSchedule


def _check_learning_rate(learning_rate: ScalarOrSchedule) -> ScalarOrSchedule:
  return check_hyperparameter("learning_rate", learning_rate, 0.0,
                              low_open=True)


def _check_momentum(momentum: ScalarOrSchedule) -> ScalarOrSchedule:
  return check_hyperparameter("momentum", momentum, 0.0, 1.0)


# The links of cm, nag and adam, for those functions and for
# jaxmomentum.FusedUpdate, which runs the same links' maths.

def cm_links(learning_rate, momentum, accumulator_dtype=None):
  """:func:`cm`'s chain as a tuple: (learning rate, momentum)."""
  return (optax.scale_by_learning_rate(_check_learning_rate(learning_rate)),
          _momentum.classical_momentum(_check_momentum(momentum),
                                       accumulator_dtype))


def nag_links(learning_rate, momentum, accumulator_dtype=None):
  """:func:`nag`'s chain as a tuple: (learning rate, momentum)."""
  return (optax.scale_by_learning_rate(_check_learning_rate(learning_rate)),
          _momentum.nesterov_momentum(_check_momentum(momentum),
                                      accumulator_dtype))


def adam_links(learning_rate=1e-3, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0,
               bias_correction=True, mu_dtype=None):
  """:func:`adam`'s chain as a tuple: (moments, learning rate)."""
  # b1, b2, eps: checked in scale_by_adam
  learning_rate = _check_learning_rate(learning_rate)
  return (_adaptive.scale_by_adam(b1, b2, eps, eps_root, bias_correction,
                                  mu_dtype),
          optax.scale_by_learning_rate(learning_rate))


def cm(
    learning_rate: ScalarOrSchedule,
    momentum: ScalarOrSchedule,
    accumulator_dtype: Optional[Any] = None,
) -> optax.GradientTransformation:
  r"""Classical momentum in the Sutskever form (Eqs. 1-2).

  .. math::

    v_{t+1} = \mu_t v_t - \varepsilon_t \nabla f(\theta_t), \qquad
    \theta_{t+1} = \theta_t + v_{t+1}.

  The learning rate is inside the velocity: a changing :math:`\varepsilon_t`
  does not rescale the accumulated velocity (unlike ``optax.sgd`` and
  ``torch.optim.SGD``, which compute :math:`\varepsilon_t \cdot b_t` with
  :math:`b_t = \mu b_{t-1} + g_t`; the two agree when ε is constant).

  Args:
    learning_rate: :math:`\varepsilon_t > 0`, a float, array or schedule.
    momentum: :math:`\mu_t \in [0, 1]`, a float, array or schedule (see
      :mod:`jaxmomentum.schedules`).
    accumulator_dtype: dtype of the velocity (``None``: the params' dtype).

  Returns:
    ``optax.chain(optax.scale_by_learning_rate(learning_rate),
    classical_momentum(momentum))``.

  Example:
    >>> import jax, jax.numpy as jnp, optax, jaxmomentum
    >>> from jaxmomentum import schedules
    >>> opt = jaxmomentum.cm(1e-2, schedules.sutskever_schedule(0.99))
    >>> params = {"w": jnp.ones(3)}
    >>> state = opt.init(params)
    >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)
    >>> updates, state = opt.update(grads, state)
    >>> params = optax.apply_updates(params, updates)

  Reference:
    Sutskever, Martens, Dahl & Hinton, ICML 2013, Eqs. 1-2.
  """
  return optax.chain(*cm_links(learning_rate, momentum, accumulator_dtype))


def nag(
    learning_rate: ScalarOrSchedule,
    momentum: ScalarOrSchedule,
    accumulator_dtype: Optional[Any] = None,
) -> optax.GradientTransformation:
  r"""Nesterov's accelerated gradient in the Sutskever form (Eqs. 3-4).

  .. math::

    v_{t+1} = \mu_t v_t - \varepsilon_t \nabla f(\theta_t + \mu_t v_t),
    \qquad \theta_{t+1} = \theta_t + v_{t+1}.

  The params the training loop holds are the look-ahead point
  :math:`\phi_t = \theta_t + \mu_t v_t`, so the gradient computed at them is
  exactly the one Eq. 3 needs; :func:`jaxmomentum.nag_eval_params` returns
  :math:`\theta_t`. Exact for any schedules of μ and ε; with constants it
  coincides with ``optax.sgd(ε, μ, nesterov=True)`` and
  ``torch.optim.SGD(nesterov=True)``.

  Args:
    learning_rate: :math:`\varepsilon_t > 0`, a float, array or schedule.
    momentum: :math:`\mu_t \in [0, 1]`, a float, array or schedule.
    accumulator_dtype: dtype of the velocity (``None``: the params' dtype).

  Returns:
    ``optax.chain(optax.scale_by_learning_rate(learning_rate),
    nesterov_momentum(momentum))``.

  Example:
    >>> import jax, jax.numpy as jnp, optax, jaxmomentum
    >>> opt = optax.chain(optax.clip_by_global_norm(1.0),
    ...                   jaxmomentum.nag(1e-2, 0.99))
    >>> params = jnp.ones(3)
    >>> state = opt.init(params)
    >>> updates, state = opt.update(2 * params, state)
    >>> params = optax.apply_updates(params, updates)
    >>> theta = jaxmomentum.nag_eval_params(state, params)

  Reference:
    Sutskever, Martens, Dahl & Hinton, ICML 2013, Eqs. 3-4.
  """
  return optax.chain(*nag_links(learning_rate, momentum, accumulator_dtype))


def nag_or_cm(
    learning_rate: ScalarOrSchedule,
    momentum: ScalarOrSchedule,
    nesterov: Any,
    accumulator_dtype: Optional[Any] = None,
) -> optax.GradientTransformation:
  r"""NAG (``nesterov=1``) or CM (``nesterov=0``), the switch possibly traced.

  :func:`nag` or :func:`cm` update for update (the same velocity, and the
  look-ahead update of Eq. 3 selected with ``jnp.where``), so that NAG and CM
  runs of a grid are one ``vmap`` axis of one compiled program. Evaluate with
  :func:`jaxmomentum.nag_eval_params`, which returns :math:`\theta_t` for
  the NAG runs and the params unchanged for the CM runs.

  Args:
    learning_rate: :math:`\varepsilon_t > 0`, a float, array or schedule.
    momentum: :math:`\mu_t \in [0, 1]`, a float, array or schedule.
    nesterov: 1/True (NAG) or 0/False (CM), a scalar or a traced array.
    accumulator_dtype: dtype of the velocity (``None``: the params' dtype).

  Returns:
    ``optax.chain(optax.scale_by_learning_rate(learning_rate),
    switched_momentum(momentum, nesterov))``.

  Example:
    >>> import jax, jax.numpy as jnp, optax, jaxmomentum
    >>> def first_update(nesterov):
    ...   opt = jaxmomentum.nag_or_cm(0.1, 0.9, nesterov)
    ...   state = opt.init(jnp.ones(2))
    ...   return opt.update(jnp.ones(2), state)[0]
    >>> jax.vmap(first_update)(jnp.array([1, 0]))  # NAG, then CM
    Array([[-0.19, -0.19],
           [-0.1 , -0.1 ]], dtype=float32)

  Reference:
    Sutskever, Martens, Dahl & Hinton, ICML 2013, Eqs. 1-4.
  """
  learning_rate = _check_learning_rate(learning_rate)
  momentum = _check_momentum(momentum)
  return optax.chain(
      optax.scale_by_learning_rate(learning_rate),
      _momentum.switched_momentum(momentum, nesterov, accumulator_dtype),
  )


def adam(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.999,
    eps: chex.Numeric = 1e-8,
    eps_root: chex.Numeric = 0.0,
    bias_correction: bool = True,
    mu_dtype: Optional[Any] = None,
) -> optax.GradientTransformation:
  r"""Adam, with the defaults of ``torch.optim.Adam``.

  .. math::

    m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
    v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \\
    \theta_t = \theta_{t-1} - \varepsilon_t \,
    \frac{m_t / (1-\beta_1^t)}{\sqrt{v_t / (1-\beta_2^t) + \epsilon_{\text{root}}}
    + \epsilon}.

  :math:`\epsilon` sits outside the square root as in torch and the lecture
  notes; ``eps=0, eps_root=δ`` puts it inside instead.
  ``bias_correction=False`` drops the :math:`1-\beta^t` factors.

  Args:
    learning_rate: :math:`\varepsilon_t > 0` (default 1e-3).
    b1: :math:`\beta_1 \in [0, 1)` (0.9).
    b2: :math:`\beta_2 \in [0, 1)` (0.999).
    eps: :math:`\epsilon \ge 0` outside the root (1e-8).
    eps_root: :math:`\epsilon_{\text{root}} \ge 0` inside the root (0).
    bias_correction: apply the bias correction (True).
    mu_dtype: dtype of the first moment (``None``: the params' dtype).

  Returns:
    ``optax.chain(scale_by_adam(...), optax.scale_by_learning_rate(...))``.

  Example:
    >>> import jax.numpy as jnp, jaxmomentum
    >>> opt = jaxmomentum.adam()
    >>> state = opt.init(jnp.zeros(3))

  Reference:
    Kingma & Ba, *Adam: A Method for Stochastic Optimization*, ICLR 2015.
  """
  return optax.chain(*adam_links(learning_rate, b1, b2, eps, eps_root,
                                 bias_correction, mu_dtype))


def rmsprop(
    learning_rate: ScalarOrSchedule = 1e-2,
    decay: chex.Numeric = 0.99,
    eps: chex.Numeric = 1e-8,
    eps_in_sqrt: bool = False,
    centered: bool = False,
    momentum: Optional[ScalarOrSchedule] = None,
    bias_correction: bool = False,
    initial_scale: chex.Numeric = 0.0,
    accumulator_dtype: Optional[Any] = None,
) -> optax.GradientTransformation:
  r"""RMSProp, with the defaults of ``torch.optim.RMSprop``.

  .. math::

    s_t = \rho s_{t-1} + (1-\rho) g_t^2, \qquad
    \bar g_t = \rho \bar g_{t-1} + (1-\rho) g_t \ (\text{centered only}), \\
    d_t = \sqrt{s_t - \bar g_t^2} + \epsilon \quad(\text{or }
    \sqrt{s_t - \bar g_t^2 + \epsilon} \text{ with } \texttt{eps\_in\_sqrt}),
    \\
    v_{t+1} = \mu_t v_t - \varepsilon_t g_t / d_t, \qquad
    \theta_{t+1} = \theta_t + v_{t+1}

  (:math:`\bar g \equiv 0` unless ``centered``; without ``momentum`` the
  update is :math:`-\varepsilon_t g_t / d_t`; ``bias_correction`` divides
  :math:`s_t, \bar g_t` by :math:`1-\rho^t`). The momentum is the Sutskever
  form: the learning rate is inside the velocity, which equals torch's
  ``momentum_buffer`` times ``lr`` when the learning rate is constant.

  Args:
    learning_rate: :math:`\varepsilon_t > 0` (default 1e-2).
    decay: :math:`\rho \in [0, 1)` (torch's ``alpha``, 0.99).
    eps: :math:`\epsilon \ge 0` (1e-8), outside the root unless
      ``eps_in_sqrt``.
    eps_in_sqrt: put ε inside the square root (False, as torch).
    centered: divide by an estimate of the standard deviation (False).
    momentum: ``None`` (no velocity buffer, torch's ``momentum=0``) or
      :math:`\mu_t \in [0, 1]`, a float, array or schedule.
    bias_correction: divide the moving averages by :math:`1-\rho^t` (False).
    initial_scale: initial value of :math:`s_0 \ge 0` (0, as torch).
    accumulator_dtype: dtype of the velocity (``None``: the params' dtype).

  Returns:
    ``optax.chain(scale_by_rms(...), optax.scale_by_learning_rate(...))``,
    followed by ``classical_momentum(momentum)`` when ``momentum`` is given.
    The first state is a :class:`jaxmomentum.ScaleByRmsState` whatever the
    flags.

  Example:
    >>> import jax.numpy as jnp, jaxmomentum
    >>> opt = jaxmomentum.rmsprop(1e-3, centered=True, momentum=0.9)
    >>> state = opt.init(jnp.zeros(3))

  Reference:
    Tieleman & Hinton, *Lecture 6.5 - RMSProp*, COURSERA 2012; Graves (2013)
    for the centered form.
  """
  # decay, eps, ...: checked in scale_by_rms
  learning_rate = _check_learning_rate(learning_rate)
  if momentum is not None:
    momentum = _check_momentum(momentum)
  chain = [
      _adaptive.scale_by_rms(decay=decay, eps=eps, eps_in_sqrt=eps_in_sqrt,
                             centered=centered,
                             bias_correction=bias_correction,
                             initial_scale=initial_scale),
      optax.scale_by_learning_rate(learning_rate),
  ]
  if momentum is not None:
    chain.append(_momentum.classical_momentum(momentum, accumulator_dtype))
  return optax.chain(*chain)
