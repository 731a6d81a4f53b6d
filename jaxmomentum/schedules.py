"""Momentum schedules of Sutskever et al. (2013).

Each builder returns a plain jit-safe function ``count -> value`` (an
``optax.Schedule``), so the schedules compose with optax's own
(``optax.join_schedules``, ...) and can be passed as ``momentum=`` to
:func:`jaxmomentum.cm`, :func:`jaxmomentum.nag` or :func:`jaxmomentum.rmsprop`.
``count`` is the number of updates already applied (0 for the first update).
Every builder accepts ``jax.Array`` arguments, so a grid of ``mu_max`` values
can be ``vmap``-ped through one compiled program.
"""

from __future__ import annotations

import chex
import jax.numpy as jnp
import optax

from jaxmomentum._validation import check_int, check_scalar

__all__ = [
    "sutskever_schedule",
    "nesterov_schedule",
    "rnn_warmup_schedule",
    "low_momentum_finetuning",
]


def sutskever_schedule(mu_max: chex.Numeric, stage_length: int = 250
                       ) -> optax.Schedule:
  r"""The momentum schedule of Eq. 5, used for the deep autoencoders.

  .. math::

    \mu_t = \min\!\left(1 - 2^{-1 - \log_2(\lfloor t / L \rfloor + 1)},\;
    \mu_{\max}\right) = \min\!\left(1 - \frac{1}{2(\lfloor t/L \rfloor + 1)},
    \;\mu_{\max}\right)

  so :math:`\mu` is 0.5 for the first :math:`L` updates, then 0.75, 0.833, ...
  until it reaches :math:`\mu_{\max}`. The right-hand form is computed (exact
  in floating point, no logarithm).

  Args:
    mu_max: :math:`\mu_{\max} \in [0, 1]`; the paper uses
      {0, 0.9, 0.99, 0.995, 0.999}.
    stage_length: :math:`L \ge 1`, updates per stage (250 in the paper).

  Returns:
    A schedule ``count -> μ``.

  Example:
    >>> from jaxmomentum import schedules
    >>> mu = schedules.sutskever_schedule(0.99)
    >>> [round(float(mu(t)), 4) for t in (0, 250, 500, 1_000_000)]
    [0.5, 0.75, 0.8333, 0.99]

  Reference:
    Sutskever et al. (2013), Eq. 5; after Nesterov (1983) and Nesterov (2003).
  """
  check_scalar("mu_max", mu_max, 0.0, 1.0)
  stage_length = check_int("stage_length", stage_length, 1)

  def schedule(count: chex.Numeric) -> chex.Array:
    stage = jnp.floor_divide(jnp.asarray(count), stage_length)
    mu = 1.0 - 0.5 / (jnp.asarray(stage, float) + 1.0)
    return jnp.minimum(mu, jnp.asarray(mu_max).astype(mu.dtype))

  return schedule


def nesterov_schedule() -> optax.Schedule:
  r"""Nesterov's momentum schedule :math:`\mu_t = 1 - 3 / (t + 5)`.

  The schedule appropriate for convex but not strongly convex objectives
  (Nesterov, 1983), which Eq. 5 blends with a constant :math:`\mu_{\max}`.

  Returns:
    A schedule ``count -> μ``: 0.4, 0.5, 0.571, ... increasing to 1.

  Example:
    >>> from jaxmomentum import schedules
    >>> [round(float(schedules.nesterov_schedule()(t)), 4) for t in (0, 1, 295)]
    [0.4, 0.5, 0.99]

  Reference:
    Sutskever et al. (2013), Section 3 (discussion of Eq. 5); Nesterov
    (1983).
  """

  def schedule(count: chex.Numeric) -> chex.Array:
    return 1.0 - 3.0 / (jnp.asarray(count, float) + 5.0)

  return schedule


def rnn_warmup_schedule(mu0: chex.Numeric, warmup_steps: int = 1000,
                        warmup_momentum: chex.Numeric = 0.9
                        ) -> optax.Schedule:
  r"""Section 4.2's RNN schedule: :math:`\mu = 0.9` for 1,000 updates, then μ0.

  .. math::

    \mu_t = \begin{cases} \mu_{\text{warmup}} & t < T_w \\
    \mu_0 & t \ge T_w \end{cases}

  Args:
    mu0: :math:`\mu_0 \in [0, 1]`; the paper uses {0, 0.9, 0.98, 0.995}.
    warmup_steps: :math:`T_w \ge 0` (1,000 in the paper).
    warmup_momentum: :math:`\mu_{\text{warmup}} \in [0, 1]` (0.9).

  Returns:
    A schedule ``count -> μ``.

  Example:
    >>> from jaxmomentum import schedules
    >>> mu = schedules.rnn_warmup_schedule(0.995)
    >>> round(float(mu(999)), 4), round(float(mu(1000)), 4)
    (0.9, 0.995)

  Reference:
    Sutskever et al. (2013), Section 4.2.
  """
  check_scalar("mu0", mu0, 0.0, 1.0)
  warmup_steps = check_int("warmup_steps", warmup_steps, 0)
  check_scalar("warmup_momentum", warmup_momentum, 0.0, 1.0)

  def schedule(count: chex.Numeric) -> chex.Array:
    return jnp.where(jnp.asarray(count) < warmup_steps,
                     jnp.asarray(warmup_momentum, float),
                     jnp.asarray(mu0, float))

  return schedule


def low_momentum_finetuning(schedule: optax.ScalarOrSchedule,
                            total_steps: int,
                            num_final_steps: int = 1000,
                            final_momentum: chex.Numeric = 0.9
                            ) -> optax.Schedule:
  r"""Table 2's finetuning: the last updates use a low momentum.

  .. math::

    \mu'_t = \begin{cases} \mu_t & t < N - K \text{ or } \mu_t = 0 \\
    \mu_{\text{final}} & \text{otherwise} \end{cases}

  "We found it beneficial to reduce μ to 0.9 (unless μ is 0, in which case it
  is unchanged) during the final 1000 parameter updates" (Section 3).

  Args:
    schedule: the base momentum, a float or a schedule ``count -> μ``.
    total_steps: :math:`N \ge 1`, the total number of updates of the run.
    num_final_steps: :math:`K`, with :math:`0 \le K \le N` (1,000).
    final_momentum: :math:`\mu_{\text{final}} \in [0, 1]` (0.9).

  Returns:
    A schedule ``count -> μ``.

  Example:
    >>> from jaxmomentum import schedules
    >>> mu = schedules.low_momentum_finetuning(
    ...     schedules.sutskever_schedule(0.999), total_steps=750_000)
    >>> round(float(mu(748_999)), 4), round(float(mu(749_000)), 4)
    (0.999, 0.9)

  Reference:
    Sutskever et al. (2013), Section 3 and Table 2.
  """
  total_steps = check_int("total_steps", total_steps, 1)
  num_final_steps = check_int("num_final_steps", num_final_steps, 0,
                              total_steps)
  check_scalar("final_momentum", final_momentum, 0.0, 1.0)
  if not callable(schedule):
    check_scalar("schedule", schedule, 0.0, 1.0)
  start = total_steps - num_final_steps

  def finetuned(count: chex.Numeric) -> chex.Array:
    base = jnp.asarray(schedule(count) if callable(schedule) else schedule,
                       float)
    late = jnp.asarray(count) >= start
    return jnp.where(late & (base != 0), jnp.asarray(final_momentum, float),
                     base)

  return finetuned
