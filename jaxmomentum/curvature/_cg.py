r"""Linear conjugate gradient with Martens' (2010) stopping rule.

Minimizes the quadratic model :math:`\phi(x) = \tfrac12 x^\top A x - b^\top x`
(i.e. solves :math:`Ax = b`) for a symmetric positive (semi-)definite ``A``
given as a product ``v -> A v``, in one ``lax.while_loop`` whose only static
bound is ``max_iters``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
from jax import lax
import optax

from jaxmomentum._validation import check_int, check_range

Params = Any

# Martens (2010), conjgrad_1.m: the relative-progress test looks back
# k = max(ceil(GAP_RATIO * i), MIN_GAP) iterations.
GAP_RATIO = 0.1
MIN_GAP = 10
# conjgrad_1.m: iterates saved for backtracking at i = ceil(5 * 1.3^j).
SAVE_FIRST = 5.0
SAVE_RATIO = 1.3


def save_schedule(max_iters: int) -> tuple[int, ...]:
  """The CG iterations whose iterates are saved: ⌈5·1.3ʲ⌉ ≤ ``max_iters``.

  For 250 iterations: 5, 7, 9, 11, 15, 19, 25, 32, 41, 54, 69, 90, 117, 152,
  197 (Martens 2010, ``conjgrad_1.m``; the last iterate is saved too).

  Example:
    >>> from jaxmomentum import curvature
    >>> curvature.save_schedule(30)
    (5, 7, 9, 11, 15, 19, 25)
  """
  check_int("max_iters", max_iters, 1)
  iters, nxt = [], SAVE_FIRST
  while math.ceil(nxt) <= max_iters:
    iters.append(math.ceil(nxt))
    nxt *= SAVE_RATIO
  return tuple(iters)


class CGResult(NamedTuple):
  r"""What :func:`conjugate_gradient` returns.

  Attributes:
    x: the last iterate.
    iterations: int32, the number of CG iterations done.
    saved: the saved iterates, a pytree like ``b`` with a leading axis of
      ``len(save_schedule(max_iters)) + 1`` slots (one slot when
      ``save_iterates=False``); slots ``>= num_saved`` are zero.
    saved_iters: int32 ``[slots]``, the iteration of each saved iterate, -1
      for unused slots. The last used slot is always the last iterate.
    num_saved: int32, the number of used slots (>= 1).
    phi: the quadratic model :math:`\phi(x)` at the last iterate.
    negative_curvature: bool, whether CG stopped on
      :math:`p^\top A p \le 0` (or a non-finite value).
  """

  x: Params
  iterations: jax.Array
  saved: Params
  saved_iters: jax.Array
  num_saved: jax.Array
  phi: jax.Array
  negative_curvature: jax.Array


class _Carry(NamedTuple):
  i: jax.Array
  x: Params
  r: Params
  y: Params
  p: Params
  rty: jax.Array
  phi: jax.Array
  phis: jax.Array
  saved: Params
  num_saved: jax.Array
  done: jax.Array
  negative_curvature: jax.Array


def _quadratic(b, r, x):
  """φ(x) = ½ xᵀAx − bᵀx = ½ (r − b)ᵀx with r = Ax − b."""
  return 0.5 * optax.tree.vdot(optax.tree.sub(r, b), x)


def conjugate_gradient(
    matvec: Callable[[Params], Params],
    b: Params,
    x0: Optional[Params] = None,
    *,
    preconditioner: Optional[Params] = None,
    max_iters: int = 250,
    min_iters: int = 1,
    tolerance: Any = 5e-4,
    save_iterates: bool = True,
) -> CGResult:
  r"""Preconditioned CG on :math:`\phi(x) = \tfrac12 x^\top A x - b^\top x`.

  From :math:`x_0` (default 0), with :math:`r = Ax - b`,
  :math:`y = r / M` (``preconditioner`` :math:`M`, elementwise) and
  :math:`p_0 = -y_0`:

  .. math::

    \alpha_i = \frac{r_i^\top y_i}{p_i^\top A p_i},\quad
    x_{i+1} = x_i + \alpha_i p_i,\quad
    r_{i+1} = r_i + \alpha_i A p_i,\quad
    p_{i+1} = -y_{i+1} + \frac{r_{i+1}^\top y_{i+1}}{r_i^\top y_i} p_i .

  **Stopping** (Martens 2010, ``conjgrad_1.m``), after iteration :math:`i`
  with :math:`k = \max(\lceil 0.1\, i\rceil, 10)`: stop when :math:`i > k`,
  :math:`\phi_{i-k} < 0`, :math:`i \ge` ``min_iters`` and

  .. math::  \frac{\phi_i - \phi_{i-k}}{\phi_i} < k \cdot \text{tolerance};

  stop before a step whose curvature :math:`p^\top A p` is :math:`\le 0` or
  not finite (the iterate is then left as it was; an exactly solved system
  stops this way too, since then :math:`p = 0`); stop after ``max_iters``.
  The iterates at :math:`i = \lceil 5 \cdot 1.3^j\rceil` (see
  :func:`save_schedule`) and the last one are saved for HF's backtracking.

  Args:
    matvec: ``v -> A v`` with :math:`A` symmetric, positive definite on the
      Krylov space (e.g. damped Gauss-Newton).
    b: the right-hand side, a pytree (for HF, :math:`-\nabla f`).
    x0: the start (HF's hot start); ``None``: zeros like ``b``.
    preconditioner: :math:`M > 0`, a pytree like ``b`` (a diagonal);
      ``None``: :math:`M = 1`.
    max_iters: ``>= 1``, the static bound of the loop (250 in Martens 2010).
    min_iters: ``>= 1``, iterations before the relative-progress test may
      stop (Martens: 1).
    tolerance: :math:`\ge 0`, the :math:`\epsilon` of the stopping rule
      (Martens: 5e-4); 0 runs until ``max_iters`` or non-positive
      curvature.
    save_iterates: keep the iterates of :func:`save_schedule` (memory: one
      copy of ``b`` per slot).

  Returns:
    A :class:`CGResult`.

  Example:
    >>> import jax.numpy as jnp
    >>> from jaxmomentum import curvature
    >>> A = jnp.array([[4.0, 1.0], [1.0, 3.0]])
    >>> res = curvature.conjugate_gradient(lambda v: A @ v, jnp.array([1.0, 2.0]))
    >>> [round(float(v), 4) for v in res.x]  # A⁻¹b = (1/11, 7/11)
    [0.0909, 0.6364]

  Reference:
    Hestenes & Stiefel (1952). Martens, *Deep learning via Hessian-free
    optimization*, ICML 2010, Sections 4.4-4.6, and ``conjgrad_1.m`` of his
    code release.
  """
  max_iters = check_int("max_iters", max_iters, 1)
  min_iters = check_int("min_iters", min_iters, 1)
  check_range("tolerance", tolerance, 0.0)
  if preconditioner is not None and (jax.tree.structure(preconditioner)
                                     != jax.tree.structure(b)):
    raise ValueError("preconditioner must be None or a pytree like b")

  schedule = save_schedule(max_iters) if save_iterates else ()
  num_slots = len(schedule) + 1
  # The schedule padded with an iteration that is never reached.
  schedule_arr = jnp.asarray(schedule + (max_iters + 1,), jnp.int32)
  max_gap = max(math.ceil(max_iters * GAP_RATIO), MIN_GAP) + 1

  if x0 is None:
    x0 = optax.tree.zeros_like(b)
  dtype = jnp.result_type(*jax.tree.leaves(b))

  def precondition(r):
    if preconditioner is None:
      return r
    return jax.tree.map(lambda ri, mi: ri / mi, r, preconditioner)

  r0 = optax.tree.sub(matvec(x0), b)
  y0 = precondition(r0)
  carry = _Carry(
      i=jnp.zeros([], jnp.int32),
      x=x0, r=r0, y=y0, p=optax.tree.scale(-1.0, y0),
      rty=optax.tree.vdot(r0, y0).astype(dtype),
      phi=_quadratic(b, r0, x0).astype(dtype),
      phis=jnp.zeros([max_gap], dtype),
      saved=jax.tree.map(lambda l: jnp.zeros((num_slots,) + l.shape, l.dtype),
                         x0),
      num_saved=jnp.zeros([], jnp.int32),
      done=jnp.zeros([], bool),
      negative_curvature=jnp.zeros([], bool))

  def cond(c):
    return (~c.done) & (c.i < max_iters)

  def body(c):
    ap = matvec(c.p)
    pap = optax.tree.vdot(c.p, ap).astype(dtype)
    bad = ~(jnp.isfinite(pap) & (pap > 0))
    alpha = jnp.where(bad, 0.0, c.rty / jnp.where(bad, 1.0, pap))
    x = optax.tree.where(bad, c.x, optax.tree.add_scale(c.x, alpha, c.p))
    r = optax.tree.where(bad, c.r, optax.tree.add_scale(c.r, alpha, ap))
    y = precondition(r)
    rty = optax.tree.vdot(r, y).astype(dtype)
    beta = rty / jnp.where(c.rty == 0, 1.0, c.rty)
    p = optax.tree.add_scale(optax.tree.scale(-1.0, y), beta, c.p)
    # A step of non-positive curvature is not taken (x and r stay as they
    # were) and ends the loop.
    i = c.i + jnp.where(bad, 0, 1).astype(jnp.int32)
    phi = _quadratic(b, r, x).astype(dtype)
    phis = c.phis.at[(i - 1) % max_gap].set(jnp.where(bad, c.phis[
        (i - 1) % max_gap], phi))
    gap = jnp.maximum(
        jnp.ceil(GAP_RATIO * i.astype(jnp.float32)).astype(jnp.int32), MIN_GAP)
    prev = phis[(i - gap - 1) % max_gap]
    converged = ((i > gap) & (prev < 0)
                 & ((phi - prev) / phi < gap.astype(dtype) * tolerance)
                 & (i >= min_iters))
    slot = jnp.minimum(c.num_saved, num_slots - 1)
    save = (~bad) & (i == schedule_arr[jnp.minimum(c.num_saved,
                                                   len(schedule))])
    saved = jax.tree.map(
        lambda buf, xi: buf.at[slot].set(
            jnp.where(save, xi.astype(buf.dtype), buf[slot])),
        c.saved, x)
    return _Carry(i=i, x=x, r=r, y=y, p=p, rty=rty, phi=phi, phis=phis,
                  saved=saved, num_saved=c.num_saved + save.astype(jnp.int32),
                  done=converged | bad, negative_curvature=bad)

  c = lax.while_loop(cond, body, carry)

  # Save the last iterate unless it is already the last saved one.
  slots = jnp.arange(num_slots, dtype=c.num_saved.dtype)
  iters_arr = jnp.where(slots < c.num_saved,
                        schedule_arr[jnp.minimum(slots, len(schedule))], -1)
  last_saved = jnp.where(c.num_saved > 0,
                         iters_arr[jnp.maximum(c.num_saved - 1, 0)], -1)
  add_last = last_saved != c.i
  slot = jnp.minimum(c.num_saved, num_slots - 1)
  saved = jax.tree.map(
      lambda buf, xi: buf.at[slot].set(
          jnp.where(add_last, xi.astype(buf.dtype), buf[slot])),
      c.saved, c.x)
  saved_iters = jnp.where(add_last, iters_arr.at[c.num_saved].set(c.i),
                          iters_arr)
  num_saved = c.num_saved + add_last.astype(jnp.int32)
  return CGResult(x=c.x, iterations=c.i, saved=saved, saved_iters=saved_iters,
                  num_saved=num_saved, phi=c.phi,
                  negative_curvature=c.negative_curvature)
