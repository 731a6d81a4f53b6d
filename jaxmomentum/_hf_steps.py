"""The stages of a Hessian-free step (Martens 2010), as pure functions.

:func:`jaxmomentum.hessian_free` strings them together: the preconditioner's
per-example gradients, backtracking over the saved CG iterates, the
reduction ratio, Levenberg-Marquardt damping and the Armijo line search.
Every loop is a ``lax.while_loop`` or ``lax.scan`` with a static bound, so
each stage runs inside ``jit``, ``scan`` and ``vmap``.

The constants are Martens' (2010) code release (``nnet_train_2.m``,
``conjgrad_1.m``) unless said otherwise; structural damping is Martens &
Sutskever (2011).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
from jax import lax
import jax.numpy as jnp
import optax

# nnet_demo_2.m: initlambda = 45 (for a loss summed per case, averaged over
# cases).
INITIAL_DAMPING = 45.0
# nnet_train_2.m: maxiters = 250, miniters = 1.
CG_MAX_ITERS = 250
CG_MIN_ITERS = 1
# conjgrad_1.m: tolerance = 5e-4.
CG_TOLERANCE = 5e-4
# nnet_train_2.m: decay = 0.95 (ch = decay * ch before each CG run).
CG_DECAY = 0.95
# nnet_train_2.m: boost = 3/2, drop = 2/3, at rho < 1/4 and rho > 3/4.
DAMPING_INCREASE = 1.5
DAMPING_DECREASE = 2.0 / 3.0
RHO_LOW = 0.25
RHO_HIGH = 0.75
# nnet_train_2.m line search: c = 1e-2, rate *= 0.8, at most 60 tries.
LINESEARCH_C = 1e-2
LINESEARCH_SHRINK = 0.8
LINESEARCH_STEPS = 60
# nnet_train_2.m: precon = (grad2 + lambda + weightcost)^(3/4).
PRECONDITIONER_EXPONENT = 0.75
# Martens & Sutskever (2011): structural damping mu = 0.03 (for RNNs).
STRUCTURAL_DAMPING_RNN = 0.03


def levenberg_marquardt(damping, rho, increase=DAMPING_INCREASE,
                        decrease=DAMPING_DECREASE, bounds=None):
  """λ × ``increase`` if ρ < ¼ or NaN, λ × ``decrease`` if ρ > ¾, clipped."""
  new = jnp.where((rho < RHO_LOW) | jnp.isnan(rho), damping * increase,
                  jnp.where(rho > RHO_HIGH, damping * decrease, damping))
  if bounds is not None:
    new = jnp.clip(new, bounds[0], bounds[1])
  return new.astype(jnp.result_type(damping))


def _largest_divisor_at_most(n: int, limit: int) -> int:
  for d in range(min(n, limit), 0, -1):
    if n % d == 0:
      return d
  return 1


def mean_squared_example_grads(example_loss: Callable[[Any, Any], jax.Array],
                               params: Any, batch: Any, chunk: int) -> Any:
  """(1/N) Σ_n (∇ L_n)², L_n = ``example_loss(params, example n)`` with the
  example as a batch of one; vectorized over chunks of at most ``chunk``
  examples (the largest divisor of N not above it)."""
  n = jax.tree.leaves(batch)[0].shape[0]
  chunk = _largest_divisor_at_most(n, chunk)
  chunks = jax.tree.map(
      lambda l: l.reshape((n // chunk, chunk) + l.shape[1:]), batch)

  def example_grad(example):
    one = jax.tree.map(lambda l: l[None], example)
    return jax.grad(example_loss)(params, one)

  def add_chunk(total, chunk_batch):
    grads = jax.vmap(example_grad)(chunk_batch)
    return jax.tree.map(lambda t, g: t + jnp.sum(jnp.square(g), axis=0),
                        total, grads), None

  total, _ = lax.scan(add_chunk, optax.tree.zeros_like(params), chunks)
  return optax.tree.scale(1.0 / n, total)


def backtrack(objective_of: Callable[[jax.Array], jax.Array],
              last: int, loss_last: jax.Array) -> tuple[jax.Array, jax.Array]:
  """From saved iterate ``last`` (objective ``loss_last``), step back while
  the objective does not get worse (``nnet_train_2.m``).

  ``objective_of(j)``: the objective at saved iterate ``j`` (traced ``j``).
  Returns the chosen index and its objective.
  """
  def cond(c):
    j, _, done = c
    return (~done) & (j > 0)

  def body(c):
    j, loss_j, _ = c
    loss_prev = objective_of(j - 1)
    worse = loss_j < loss_prev
    return (jnp.where(worse, j, j - 1), jnp.where(worse, loss_j, loss_prev),
            worse)

  chosen, loss_chosen, _ = lax.while_loop(
      cond, body, (last, loss_last, jnp.zeros([], bool)))
  return chosen, loss_chosen


def reduction_ratio(loss_step, loss0, gp, pgp):
  """ρ = (f(θ + p) - f(θ)) / (gᵀp + ½ pᵀGp); -∞ when the loss rose."""
  rho = (loss_step - loss0) / (gp + 0.5 * pgp)
  return jnp.where(loss_step > loss0, -jnp.inf, rho)


def armijo_search(objective_at: Callable[[jax.Array], jax.Array], loss0,
                  loss_full, gp, *, steps: int, shrink, c, dtype
                  ) -> tuple[jax.Array, jax.Array]:
  """The largest rate ``shrink**k``, ``k < steps``, with
  ``f(θ + r p) <= f(θ) + c r gᵀp``; 0 if none.

  ``objective_at(r)``: f(θ + r p); ``loss_full``: f(θ + p), already known.
  Returns the rate and the number of objective evaluations (the full step
  included).
  """
  def armijo(loss, rate):
    return loss <= loss0 + c * rate * gp

  def cond(carry):
    k, _, ok = carry
    return (~ok) & (k < steps - 1)

  def body(carry):
    k, rate, _ = carry
    rate = rate * shrink
    return k + 1, rate, armijo(objective_at(rate).astype(dtype), rate)

  tries, rate, accepted = lax.while_loop(
      cond, body, (jnp.zeros([], jnp.int32), jnp.ones([], dtype),
                   armijo(loss_full, 1.0)))
  return jnp.where(accepted, rate, 0.0), tries + 1
