"""Sutskever-form classical momentum and Nesterov momentum as optax transforms.

Both transforms act on updates that are already scaled by the learning rate,
``u_t = -ε_t ∇f``, so the learning rate sits *inside* the velocity as in
Sutskever et al. (2013), Eqs. 1-4. ``jaxmomentum.cm`` and ``jaxmomentum.nag``
are these transforms chained after ``optax.scale_by_learning_rate``.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmomentum._validation import check_float_dtype
from jaxmomentum._validation import check_float_params
from jaxmomentum._validation import check_hyperparameter

ScalarOrSchedule = optax.ScalarOrSchedule


def value_at(hparam: ScalarOrSchedule, count: chex.Numeric) -> chex.Numeric:
  """The value of a hyperparameter at step ``count`` (schedules are called)."""
  return hparam(count) if callable(hparam) else hparam


def _mixed(fn):
  """``fn`` traced under JAX's standard dtype promotion.

  The per-leaf momentum arithmetic mixes precisions on purpose and casts each
  result back (a float32 μ schedule, look-ahead μ̃ or accumulator with
  bfloat16 or float16 updates), so it also runs where the caller turned
  strict dtype promotion on.
  """

  def wrapped(*args):
    with jax.numpy_dtype_promotion("standard"):
      return fn(*args)

  return wrapped


def momentum_step(momentum: ScalarOrSchedule, count: chex.Numeric
                  ) -> tuple[chex.Numeric, chex.Numeric]:
  """μ_t and μ_{t+1} for the update after ``count`` updates: the momentum
  of the velocity step (Eqs. 1, 3) and of the look-ahead it leads to."""
  return (value_at(momentum, count),
          value_at(momentum, optax.safe_increment(count)))


def new_velocity(mu: chex.Numeric, updates: optax.Updates,
                 velocity: optax.Updates) -> optax.Updates:
  r""":math:`v_{t+1} = \mu_t v_t + u_t` (Eqs. 1, 3), in the velocity's dtype."""
  return jax.tree.map(_mixed(lambda u, v: (mu * v + u).astype(v.dtype)),
                      updates, velocity)


def advance(state, velocity: optax.Updates, mu_next: chex.Numeric):
  """A CM or NAG state after one update: the count incremented, the new
  velocity and, for NAG, μ_{t+1}, the look-ahead of the new params."""
  state = state._replace(count=optax.safe_increment(state.count),
                         velocity=velocity)
  if isinstance(state, NesterovMomentumState):
    state = state._replace(lookahead_momentum=jnp.asarray(
        mu_next, state.lookahead_momentum.dtype))
  return state


def _canonical_dtype(dtype: Optional[Any]) -> Optional[Any]:
  """``dtype`` as JAX will store it (float64 -> float32 without x64)."""
  return None if dtype is None else jax.dtypes.canonicalize_dtype(dtype)


def _float_scalar(value: chex.Numeric) -> jax.Array:
  """A scalar in the default float dtype (float64 only when x64 is enabled)."""
  return jnp.asarray(value, dtype=jnp.result_type(float))


class ClassicalMomentumState(NamedTuple):
  """State of :func:`classical_momentum`."""

  count: chex.Array  # int32 scalar: the number of updates applied so far.
  velocity: optax.Updates  # v_t


def classical_momentum(
    momentum: ScalarOrSchedule,
    accumulator_dtype: Optional[Any] = None,
) -> optax.GradientTransformation:
  r"""Classical momentum (CM) acting on learning-rate-scaled updates.

  Given incoming updates :math:`u_t = -\varepsilon_t \nabla f(\theta_t)`
  (already multiplied by the learning rate), this keeps the velocity of
  Sutskever et al. (2013), Eqs. 1-2, and returns it as the update:

  .. math::

    v_{t+1} = \mu_t v_t + u_t, \qquad \theta_{t+1} = \theta_t + v_{t+1}.

  Because the learning rate is already inside :math:`u_t`, a changing
  :math:`\varepsilon_t` does not rescale the accumulated velocity (unlike
  ``optax.trace`` followed by a learning rate, or ``torch.optim.SGD``).

  Args:
    momentum: :math:`\mu_t \in [0, 1]`, a float, an array (e.g. traced under
      ``vmap``) or a schedule ``count -> μ``; ``count`` starts at 0 for the
      first update.
    accumulator_dtype: dtype of the velocity (e.g. ``jnp.float32`` for
      ``bfloat16`` params); ``None`` uses the dtype of the params. The returned
      updates always have the dtype of the incoming updates.

  Returns:
    An ``optax.GradientTransformation`` with state
    :class:`ClassicalMomentumState`.

  Example:
    >>> import optax, jax.numpy as jnp, jaxmomentum
    >>> opt = optax.chain(optax.scale_by_learning_rate(0.1),
    ...                   jaxmomentum.classical_momentum(0.9))
    >>> params = jnp.array([1.0, -2.0])
    >>> state = opt.init(params)
    >>> updates, state = opt.update(2 * params, state)  # grad of |x|^2

  References:
    Sutskever, Martens, Dahl & Hinton, *On the importance of initialization
    and momentum in deep learning*, ICML 2013, Eqs. 1-2. Polyak (1964).
  """
  momentum = check_hyperparameter("momentum", momentum, 0.0, 1.0)
  check_float_dtype("accumulator_dtype", accumulator_dtype)
  accumulator_dtype = _canonical_dtype(accumulator_dtype)

  def init_fn(params):
    check_float_params(params)
    return ClassicalMomentumState(
        count=jnp.zeros([], jnp.int32),
        velocity=optax.tree.zeros_like(params, dtype=accumulator_dtype))

  def update_fn(updates, state, params=None):
    del params
    mu, mu_next = momentum_step(momentum, state.count)
    velocity = new_velocity(mu, updates, state.velocity)
    new_updates = jax.tree.map(lambda v, u: v.astype(u.dtype), velocity,
                               updates)
    return new_updates, advance(state, velocity, mu_next)

  return optax.GradientTransformation(init_fn, update_fn)


def is_lookahead_exact(momentum: ScalarOrSchedule) -> bool:
  """Whether μ_{t+1} is known at step t (a schedule or a Python number)."""
  return callable(momentum) or isinstance(
      momentum, (int, float, np.integer, np.floating))


class NesterovMomentumState(NamedTuple):
  """State of :func:`nesterov_momentum`.

  The params the caller holds are the look-ahead point
  :math:`\\phi_t = \\theta_t + \\mu v_t` with :math:`\\mu` =
  ``lookahead_momentum``; :func:`nag_eval_params` returns :math:`\\theta_t`.
  """

  count: chex.Array  # int32 scalar: the number of updates applied so far.
  velocity: optax.Updates  # v_t
  lookahead_momentum: chex.Array  # μ in φ_t = θ_t + μ v_t (float scalar).


def nesterov_momentum(
    momentum: ScalarOrSchedule,
    accumulator_dtype: Optional[Any] = None,
) -> optax.GradientTransformation:
  r"""Nesterov's accelerated gradient (NAG) in the Sutskever form.

  Sutskever et al. (2013), Eqs. 3-4, with learning-rate-scaled incoming
  updates :math:`u_t = -\varepsilon_t \nabla f(\theta_t + \mu_t v_t)`:

  .. math::

    v_{t+1} = \mu_t v_t + u_t, \qquad \theta_{t+1} = \theta_t + v_{t+1}.

  **Which variable is stored.** The params the caller holds (and computes
  gradients at) are the look-ahead point
  :math:`\phi_t = \theta_t + \mu_t v_t`, as in ``optax.sgd(nesterov=True)``
  and ``torch.optim.SGD(nesterov=True)``, so a training loop is unchanged. The
  returned update moves :math:`\phi_t` to :math:`\phi_{t+1}`:

  .. math::

    \phi_{t+1} - \phi_t = \mu_{t+1} v_{t+1} + u_t
        + (\mu_t - \tilde\mu_t)\, v_t ,

  where :math:`\tilde\mu_t` (``state.lookahead_momentum``) is the momentum
  that was used to form :math:`\phi_t`; it equals :math:`\mu_t` whenever
  ``momentum`` is a float or a schedule given here, so the last term vanishes
  and the iterates are exactly Eqs. 3-4 for any schedules of μ and ε. (Under
  ``optax.inject_hyperparams`` the next value of μ is unknown one step ahead;
  the look-ahead then uses the previous step's μ, and
  :func:`nag_eval_params` stays exact because it reads
  ``lookahead_momentum``.) With constant μ and ε this coincides with
  ``optax.sgd(ε, μ, nesterov=True)`` and ``torch.optim.SGD(nesterov=True)``.

  Args:
    momentum: :math:`\mu_t \in [0, 1]`, a float, an array (e.g. traced under
      ``vmap``) or a schedule ``count -> μ``; ``count`` starts at 0.
    accumulator_dtype: dtype of the velocity; ``None`` uses the params' dtype.

  Returns:
    An ``optax.GradientTransformation`` with state
    :class:`NesterovMomentumState`.

  Example:
    >>> import optax, jax.numpy as jnp, jaxmomentum
    >>> opt = optax.chain(optax.scale_by_learning_rate(0.1),
    ...                   jaxmomentum.nesterov_momentum(0.9))
    >>> phi = jnp.array([1.0, -2.0])
    >>> state = opt.init(phi)
    >>> updates, state = opt.update(2 * phi, state)  # grad at look-ahead
    >>> phi = optax.apply_updates(phi, updates)
    >>> theta = jaxmomentum.nag_eval_params(state, phi)

  References:
    Sutskever, Martens, Dahl & Hinton, *On the importance of initialization
    and momentum in deep learning*, ICML 2013, Eqs. 3-4. Nesterov (1983).
  """
  momentum = check_hyperparameter("momentum", momentum, 0.0, 1.0)
  check_float_dtype("accumulator_dtype", accumulator_dtype)
  accumulator_dtype = _canonical_dtype(accumulator_dtype)
  # A schedule or a Python number gives the look-ahead μ̃_t = μ_t exactly; an
  # array (e.g. from optax.inject_hyperparams) may change between steps.
  lookahead_is_exact = is_lookahead_exact(momentum)

  def init_fn(params):
    check_float_params(params)
    return NesterovMomentumState(
        count=jnp.zeros([], jnp.int32),
        velocity=optax.tree.zeros_like(params, dtype=accumulator_dtype),
        lookahead_momentum=_float_scalar(value_at(momentum, 0)))

  def update_fn(updates, state, params=None):
    del params
    mu, mu_next = momentum_step(momentum, state.count)
    correction = mu - state.lookahead_momentum  # zero unless μ was injected

    velocity = new_velocity(mu, updates, state.velocity)
    if lookahead_is_exact:
      # μ̃_t = μ_t by construction: the update reads only v_{t+1} and u_t, so
      # a donated velocity buffer is overwritten in place (no copy).
      new_updates = jax.tree.map(
          _mixed(lambda v_new, u: (mu_next * v_new + u).astype(u.dtype)),
          velocity, updates)
    else:
      new_updates = jax.tree.map(
          _mixed(lambda v_new, u, v: (
              mu_next * v_new + u + correction * v).astype(u.dtype)),
          velocity, updates, state.velocity)
    return new_updates, advance(state, velocity, mu_next)

  return optax.GradientTransformation(init_fn, update_fn)


def _check_switch(nesterov: Any) -> None:
  if callable(nesterov):
    raise TypeError("nesterov must be a bool, 0/1 or an array of them, not a "
                    f"schedule; got {nesterov!r}")
  if isinstance(nesterov, jax.core.Tracer):
    return
  values = np.asarray(nesterov)
  if not (values.dtype == bool or np.issubdtype(values.dtype, np.number)):
    raise TypeError(f"nesterov must be a bool or 0/1, got {nesterov!r}")
  if not np.all((values == 0) | (values == 1)):
    raise ValueError(f"nesterov must be 0 or 1 (or a bool), got {nesterov!r}")


def switched_momentum(
    momentum: ScalarOrSchedule,
    nesterov: chex.Numeric,
    accumulator_dtype: Optional[Any] = None,
) -> optax.GradientTransformation:
  r"""CM or NAG, chosen by a (possibly traced) switch: one program for both.

  With ``nesterov`` 1 (or True) this is :func:`nesterov_momentum`, with 0 it
  is :func:`classical_momentum`, update for update: both forms are computed
  and one is selected with ``jnp.where``, so a ``vmap`` over runs can hold
  NAG and CM runs side by side in one compiled program (a grid's momentum
  type becomes a hyperparameter like the learning rate):

  .. math::

    v_{t+1} = \mu_t v_t + u_t, \qquad
    \Delta_t = \begin{cases} \mu_{t+1} v_{t+1} + u_t & \text{NAG} \\
    v_{t+1} & \text{CM.} \end{cases}

  The state is a :class:`NesterovMomentumState` for both; a CM run stores
  ``lookahead_momentum = 0``, so :func:`nag_eval_params` returns its params
  unchanged (:math:`\theta = \phi - 0 \cdot v`) and NAG runs get
  :math:`\theta_t = \phi_t - \mu_t v_t`: pass ``nag_eval_params`` as the
  evaluation params of the whole grid.

  Args:
    momentum: :math:`\mu_t \in [0, 1]`, a float, array or schedule.
    nesterov: 1/True for NAG, 0/False for CM: a Python scalar or a scalar
      array, e.g. traced under ``vmap``.
    accumulator_dtype: dtype of the velocity (``None``: the params' dtype).

  Returns:
    An ``optax.GradientTransformation`` with state
    :class:`NesterovMomentumState`.

  Example:
    >>> import jax, jax.numpy as jnp, optax, jaxmomentum
    >>> def run(nesterov):
    ...   opt = optax.chain(optax.scale_by_learning_rate(0.1),
    ...                     jaxmomentum.switched_momentum(0.9, nesterov))
    ...   params = jnp.array([1.0, -2.0])
    ...   state = opt.init(params)
    ...   updates, state = opt.update(2 * params, state)
    ...   return jaxmomentum.nag_eval_params(state, params + updates)
    >>> jax.vmap(run)(jnp.array([1, 0])).shape  # a NAG and a CM run
    (2, 2)

  Reference:
    Sutskever et al. (2013), Eqs. 1-4.
  """
  momentum = check_hyperparameter("momentum", momentum, 0.0, 1.0)
  _check_switch(nesterov)
  check_float_dtype("accumulator_dtype", accumulator_dtype)
  accumulator_dtype = _canonical_dtype(accumulator_dtype)
  lookahead_is_exact = is_lookahead_exact(momentum)

  def is_nag():
    return jnp.asarray(nesterov) != 0

  def init_fn(params):
    check_float_params(params)
    mu = _float_scalar(value_at(momentum, 0))
    return NesterovMomentumState(
        count=jnp.zeros([], jnp.int32),
        velocity=optax.tree.zeros_like(params, dtype=accumulator_dtype),
        lookahead_momentum=jnp.where(is_nag(), mu, jnp.zeros_like(mu)))

  def update_fn(updates, state, params=None):
    del params
    nag = is_nag()
    mu, mu_next = momentum_step(momentum, state.count)
    correction = mu - state.lookahead_momentum  # zero unless μ was injected
    velocity = new_velocity(mu, updates, state.velocity)

    @_mixed
    def select(v_new, u, v):
      nag_update = mu_next * v_new + u
      if not lookahead_is_exact:
        nag_update = nag_update + correction * v
      return jnp.where(nag, nag_update.astype(u.dtype), v_new.astype(u.dtype))

    new_updates = jax.tree.map(select, velocity, updates, state.velocity)
    lookahead = jnp.asarray(mu_next, state.lookahead_momentum.dtype)
    return new_updates, advance(
        state, velocity, jnp.where(nag, lookahead, jnp.zeros_like(lookahead)))

  return optax.GradientTransformation(init_fn, update_fn)


def _is_nag_state(x) -> bool:
  return isinstance(x, NesterovMomentumState)


def _is_skipped(x) -> bool:
  return x is None or isinstance(x, optax.MaskedNode)


def nag_eval_params(opt_state: optax.OptState, params: optax.Params
                    ) -> optax.Params:
  r"""The NAG iterate :math:`\theta_t` from the look-ahead params :math:`\phi_t`.

  .. math::  \theta_t = \phi_t - \tilde\mu_t v_t

  with :math:`v_t` and :math:`\tilde\mu_t` read from every
  :class:`NesterovMomentumState` found anywhere inside ``opt_state`` (through
  ``optax.chain``, ``optax.inject_hyperparams``, ``optax.masked`` and
  ``optax.multi_transform``). Leaves that no NAG state covers are returned
  unchanged. Evaluate the objective at these params to report the paper's
  :math:`f(\theta_t)`.

  Args:
    opt_state: the state of an optimizer containing :func:`nesterov_momentum`
      (e.g. ``jaxmomentum.nag``).
    params: the params the training loop holds (the look-ahead point).

  Returns:
    Params of the same structure and dtypes.

  Raises:
    ValueError: if ``opt_state`` holds no ``NesterovMomentumState``.

  Example:
    >>> import jax.numpy as jnp, optax, jaxmomentum
    >>> opt = jaxmomentum.nag(0.1, 0.9)
    >>> params = jnp.ones(3)
    >>> state = opt.init(params)
    >>> theta = jaxmomentum.nag_eval_params(state, params)

  Reference:
    Sutskever et al. (2013), Eqs. 3-4 (the look-ahead point θ + μv).
  """
  states = [s for s in jax.tree.leaves(opt_state, is_leaf=_is_nag_state)
            if _is_nag_state(s)]
  if not states:
    raise ValueError(
        "nag_eval_params: opt_state holds no NesterovMomentumState; build the "
        "optimizer with jaxmomentum.nag or jaxmomentum.nesterov_momentum.")
  for state in states:
    mu = state.lookahead_momentum
    params = jax.tree.map(
        _mixed(lambda v, p, mu=mu: p if _is_skipped(v)
               else (p - mu * v).astype(p.dtype)),
        state.velocity, params, is_leaf=_is_skipped)
  return params
