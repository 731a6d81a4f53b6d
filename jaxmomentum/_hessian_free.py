"""Hessian-free optimization (Martens 2010) as an optax transformation.

The stages of a step and Martens' constants are in
:mod:`jaxmomentum._hf_steps`; here they are put together.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import chex
import jax
import jax.numpy as jnp
import optax

from jaxmomentum import _hf_steps
from jaxmomentum._hf_steps import CG_DECAY
from jaxmomentum._hf_steps import CG_MAX_ITERS
from jaxmomentum._hf_steps import CG_MIN_ITERS
from jaxmomentum._hf_steps import CG_TOLERANCE
from jaxmomentum._hf_steps import DAMPING_DECREASE
from jaxmomentum._hf_steps import DAMPING_INCREASE
from jaxmomentum._hf_steps import INITIAL_DAMPING
from jaxmomentum._hf_steps import levenberg_marquardt
from jaxmomentum._hf_steps import LINESEARCH_C
from jaxmomentum._hf_steps import LINESEARCH_SHRINK
from jaxmomentum._hf_steps import LINESEARCH_STEPS
from jaxmomentum._hf_steps import PRECONDITIONER_EXPONENT
from jaxmomentum._validation import check_int, check_range
from jaxmomentum.curvature import _cg
from jaxmomentum.curvature import _products

Params = Any
Batch = Any


class HessianFreeInfo(NamedTuple):
  """Diagnostics of the last HF step (all finite, so a training engine that
  treats a non-finite optimizer state as divergence is not misled).

  Attributes:
    rho: the reduction ratio ρ; -∞ (the loss rose) and NaN are stored as
      the most negative finite float.
    cg_iters: int32, CG iterations run.
    chosen_iter: int32, the CG iteration of the backtracked iterate.
    backtracking_steps: int32, objective evaluations of the backtracking
      walk, not counting the last iterate's (0 without backtracking).
    linesearch_steps: int32, objective evaluations of the line search (1:
      the backtracked step was accepted at once; 0 without a line search).
    step_size: the line search's rate (0: the step was rejected).
    loss: the objective (with the L2 term) on ``batch`` before the step.
  """

  rho: chex.Array
  cg_iters: chex.Array
  chosen_iter: chex.Array
  backtracking_steps: chex.Array
  linesearch_steps: chex.Array
  step_size: chex.Array
  loss: chex.Array


class HessianFreeState(NamedTuple):
  """State of :func:`hessian_free`."""

  count: chex.Array  # int32 scalar: the number of HF steps taken.
  damping: chex.Array  # λ, a float scalar (traced under vmap: a λ0 grid).
  cg_init: optax.Updates  # the next CG start: cg_decay · last CG iterate.
  info: HessianFreeInfo


def _float(value, dtype=None):
  return jnp.asarray(value, dtype=dtype or jnp.result_type(float))


def _first(out):
  """z from ``outputs_fn``'s z or (z, hidden pre-activations)."""
  return out[0] if isinstance(out, tuple) else out


def hessian_free(
    outputs_fn: Callable[[Params, Batch], Any],
    loss_fn: Callable[[jax.Array, Batch], jax.Array],
    *,
    initial_damping: Any = INITIAL_DAMPING,
    cg_max_iters: int = CG_MAX_ITERS,
    cg_min_iters: int = CG_MIN_ITERS,
    cg_tolerance: Any = CG_TOLERANCE,
    cg_decay: Any = CG_DECAY,
    damping_increase: Any = DAMPING_INCREASE,
    damping_decrease: Any = DAMPING_DECREASE,
    damping_bounds: Optional[tuple[float, float]] = None,
    l2_reg: Any = 0.0,
    backtracking: bool = True,
    linesearch: bool = True,
    linesearch_steps: int = LINESEARCH_STEPS,
    linesearch_shrink: Any = LINESEARCH_SHRINK,
    linesearch_c: Any = LINESEARCH_C,
    preconditioner: bool = False,
    preconditioner_exponent: Any = PRECONDITIONER_EXPONENT,
    preconditioner_chunk: int = 256,
    structural_damping: Any = 0.0,
    hidden_activation: str = "tanh",
    loss_hvp: Optional[Callable] = None,
) -> optax.GradientTransformationExtraArgs:
  r"""Hessian-free optimization (Martens 2010), an optax transformation.

  Each step, at parameters :math:`\theta` with damping :math:`\lambda`, on
  the objective :math:`f(\theta) = L(\theta) + \tfrac{\kappa}{2}\|\theta\|^2`
  (:math:`L` = ``loss_fn(outputs_fn(θ, batch), batch)``,
  :math:`\kappa` = ``l2_reg``) with gradient :math:`g = \nabla L +
  \kappa\theta` (``grads`` plus the L2 term):

  1. **CG** (:func:`jaxmomentum.curvature.conjugate_gradient`, Martens'
     stopping rule) on the damped Gauss-Newton quadratic, hot-started from
     the previous step's last iterate times ``cg_decay``:

     .. math::

       (G + \mu\lambda\, G_D + (\lambda + \kappa) I)\,p = -g,\qquad
       p_0 = \text{cg\_decay}\cdot p^{\text{last}}_{t-1},

     with :math:`G = J^\top H_L J` measured on ``curvature_batch`` and
     :math:`G_D = J_a^\top H_D J_a` the structural damping term
     (:math:`\mu` = ``structural_damping``; only when ``outputs_fn`` returns
     ``(z, hidden_preactivations)``), optionally preconditioned by
     :math:`M = (\overline{g_n^2} + \lambda + \kappa)^{3/4}`, the mean of
     the squared per-example gradients (``preconditioner=True``).
  2. **Backtracking** over the saved CG iterates
     :math:`p_{i_1}, \ldots, p_{i_n}` (:math:`i_j = \lceil 5\cdot
     1.3^j\rceil` and the last): from the last, step back while
     :math:`f(\theta + p_{i_{j-1}}) \le f(\theta + p_{i_j})` on ``batch``.
  3. **Levenberg-Marquardt damping** from the reduction ratio of the chosen
     :math:`p`, on ``curvature_batch``, with the damping off:

     .. math::

       \rho = \frac{f(\theta + p) - f(\theta)}
                   {g^\top p + \tfrac12 p^\top (G + \kappa I) p}
       \;(-\infty \text{ if } f \text{ rose}),\qquad
       \lambda \leftarrow \begin{cases}
         \tfrac32\lambda & \rho < \tfrac14 \text{ or NaN}\\
         \tfrac23\lambda & \rho > \tfrac34\\
         \lambda & \text{otherwise,}\end{cases}

     clipped to ``damping_bounds``.
  4. **Armijo line search** on ``batch``: the largest
     :math:`r = 0.8^k`, :math:`k < 60`, with
     :math:`f(\theta + r p) \le f(\theta) + 10^{-2}\, r\, g^\top p`; if none,
     :math:`r = 0` (the update is zero and the next CG starts from 0).

  The update is :math:`r p`. Every loop is a ``lax.while_loop`` with a
  static bound and every shape is fixed, so the step runs inside ``jit``,
  ``lax.scan`` and ``vmap`` (under ``vmap`` each loop runs until its slowest
  lane is done), and ``initial_damping`` may be traced (a vmapped λ₀ grid).

  **Constants and sources** (Martens' code: ``nnet_demo_2.m``,
  ``nnet_train_2.m``, ``conjgrad_1.m``): λ₀ = 45 (for a loss summed over a
  case's outputs and averaged over cases; divide by the output dimension
  for a per-output mean); 250 CG iterations at most, at least 1; CG
  tolerance 5e-4 with the look-back :math:`k = \max(\lceil 0.1 i\rceil,
  10)`; decay 0.95 applied to the *last* (not the backtracked) iterate;
  saved iterates at :math:`\lceil 5\cdot 1.3^j\rceil`; ρ without damping and
  :math:`-\infty` when the loss rose; λ × 3/2 below ¼ (or NaN), × 2/3 above
  ¾; Armijo c = 1e-2, shrink 0.8, 60 tries, a failed search is a zero step;
  preconditioner exponent ¾ (Martens: "not beneficial for RNNs"). Martens
  uses weight cost 2e-5 (``l2_reg``; 0 here by default, so that ``grads``
  is the whole gradient). Structural damping μ = 0.03 (Martens & Sutskever
  2011, for tanh RNNs; 0 here). Resetting the CG start to 0 after a
  rejected step is from Sutskever's HF-RNN release (``opt/hf.py``). Martens
  evaluates backtracking and the line search on the full training set and
  G and ρ on a cycled fraction of it: pass the full set (or a large batch)
  as ``batch`` and the fraction as ``curvature_batch``.

  **Use.** ``grads`` must be :math:`\nabla L` on ``batch`` at ``params``
  (the :mod:`jaxmomentum.training` engine passes its minibatch as
  ``batch``). HF must be the last link of an ``optax.chain``: scaling its
  updates afterwards breaks ρ. Unknown keyword arguments are ignored, so it
  works inside ``optax.chain``.

  Args:
    outputs_fn: ``(params, batch) -> z``, the network's pre-nonlinearity
      outputs (logits, linear outputs), or ``-> (z, a)`` with ``a`` the
      hidden pre-activations for structural damping. Must support forward
      mode (``jax.linearize``).
    loss_fn: ``(z, batch) -> scalar``, convex in ``z``; a
      :class:`jaxmomentum.curvature.MatchingLoss` brings a closed-form
      :math:`H_L`.
    initial_damping: λ₀ > 0 (float or traced).
    cg_max_iters: the static bound on CG iterations, >= 1.
    cg_min_iters: CG iterations before the stopping rule applies, in [1,
      cg_max_iters].
    cg_tolerance: the stopping rule's ε, >= 0.
    cg_decay: hot-start factor in [0, 1] (0: CG from zero each step).
    damping_increase: the factor at ρ < ¼, >= 1.
    damping_decrease: the factor at ρ > ¾, in (0, 1].
    damping_bounds: ``(low, high)`` with 0 <= low < high to clip λ to, or
      ``None`` (Martens: none).
    l2_reg: κ >= 0, the weight cost (Martens: 2e-5).
    backtracking: backtrack over the saved CG iterates (else use the last;
      then only one iterate is kept instead of ~16).
    linesearch: run the Armijo line search (else r = 1).
    linesearch_steps: tries of the line search, >= 1.
    linesearch_shrink: the rate's factor per try, in (0, 1).
    linesearch_c: Armijo's constant, in (0, 1).
    preconditioner: use Martens' diagonal preconditioner (one per-example
      gradient per case of ``batch``: every leaf of ``batch`` must have the
      example axis first).
    preconditioner_exponent: its exponent, in [0, 1].
    preconditioner_chunk: examples per vectorized chunk of per-example
      gradients (>= 1; the largest divisor of the batch size not above it).
    structural_damping: μ >= 0 (Martens & Sutskever 2011: 0.03).
    hidden_activation: ``"tanh"`` or ``"logistic"``, the hidden units of the
      structural damping term.
    loss_hvp: ``(z, batch, u) -> H_L u``, overriding ``loss_fn``'s.

  Returns:
    An ``optax.GradientTransformationExtraArgs``:
    ``update(grads, state, params, *, batch, curvature_batch=None)``, with
    state :class:`HessianFreeState`.

  Example:
    >>> import jax, jax.numpy as jnp, optax, jaxmomentum
    >>> from jaxmomentum import curvature
    >>> x = jax.random.normal(jax.random.key(0), (64, 5))
    >>> batch = (x, x @ jnp.arange(5.0)[:, None])
    >>> def outputs_fn(w, batch):
    ...   return batch[0] @ w
    >>> loss = curvature.squared_error(targets=lambda b: b[1])
    >>> opt = jaxmomentum.hessian_free(outputs_fn, loss, initial_damping=1e-4)
    >>> w = jnp.zeros((5, 1))
    >>> state = opt.init(w)
    >>> for _ in range(2):
    ...   grads = jax.grad(lambda w: loss(outputs_fn(w, batch), batch))(w)
    ...   updates, state = opt.update(grads, state, w, batch=batch)
    ...   w = optax.apply_updates(w, updates)
    >>> bool(jnp.allclose(w.ravel(), jnp.arange(5.0), atol=1e-2))
    True

  References:
    Martens, *Deep learning via Hessian-free optimization*, ICML 2010, and
    his code release (``nnet_train_2.m``, ``conjgrad_1.m``). Martens &
    Sutskever, *Learning recurrent neural networks with Hessian-free
    optimization*, ICML 2011. Martens & Sutskever, *Training deep and
    recurrent networks with Hessian-free optimization*, Neural Networks:
    Tricks of the Trade, 2012. Sutskever et al. (2013), Section 5.
  """
  for name, fn in (("outputs_fn", outputs_fn), ("loss_fn", loss_fn)):
    if not callable(fn):
      raise TypeError(f"{name} must be callable, got {fn!r}")
  check_range("initial_damping", initial_damping, 0.0, low_open=True)
  cg_max_iters = check_int("cg_max_iters", cg_max_iters, 1)
  cg_min_iters = check_int("cg_min_iters", cg_min_iters, 1, cg_max_iters)
  check_range("cg_tolerance", cg_tolerance, 0.0)
  check_range("cg_decay", cg_decay, 0.0, 1.0)
  check_range("damping_increase", damping_increase, 1.0)
  check_range("damping_decrease", damping_decrease, 0.0, 1.0, low_open=True)
  if damping_bounds is not None:
    if len(damping_bounds) != 2 or not (
        0 <= damping_bounds[0] < damping_bounds[1]):
      raise ValueError("damping_bounds must be None or (low, high) with "
                       f"0 <= low < high, got {damping_bounds!r}")
  check_range("l2_reg", l2_reg, 0.0)
  linesearch_steps = check_int("linesearch_steps", linesearch_steps, 1)
  check_range("linesearch_shrink", linesearch_shrink, 0.0, 1.0,
              low_open=True, high_open=True)
  check_range("linesearch_c", linesearch_c, 0.0, 1.0, low_open=True,
              high_open=True)
  check_range("preconditioner_exponent", preconditioner_exponent, 0.0, 1.0)
  preconditioner_chunk = check_int("preconditioner_chunk",
                                   preconditioner_chunk, 1)
  check_range("structural_damping", structural_damping, 0.0)
  _products.check_hidden_activation(hidden_activation)
  for name, flag in (("backtracking", backtracking),
                     ("linesearch", linesearch),
                     ("preconditioner", preconditioner)):
    if not isinstance(flag, bool):
      raise TypeError(f"{name} must be True or False, got {flag!r}")

  def unregularized_loss(params, batch):
    return loss_fn(_first(outputs_fn(params, batch)), batch)

  def objective(params, batch):
    loss = unregularized_loss(params, batch)
    if isinstance(l2_reg, (int, float)) and l2_reg == 0:
      return loss
    return loss + 0.5 * l2_reg * optax.tree.norm(params, squared=True)

  def step_objective(params, step, rate, batch):
    return objective(optax.tree.add_scale(params, rate, step), batch)

  def init_fn(params):
    dtype = jnp.result_type(float)
    return HessianFreeState(
        count=jnp.zeros([], jnp.int32),
        damping=_float(initial_damping, dtype),
        cg_init=optax.tree.zeros_like(params),
        info=HessianFreeInfo(
            rho=jnp.zeros([], dtype), cg_iters=jnp.zeros([], jnp.int32),
            chosen_iter=jnp.zeros([], jnp.int32),
            backtracking_steps=jnp.zeros([], jnp.int32),
            linesearch_steps=jnp.zeros([], jnp.int32),
            step_size=jnp.zeros([], dtype), loss=jnp.zeros([], dtype)))

  def update_fn(grads, state, params=None, *, batch=None,
                curvature_batch=None, **extra_args):
    del extra_args  # value=, etc. from the engine or an optax.chain.
    if params is None:
      raise ValueError("hessian_free needs params: update(grads, state, "
                       "params, batch=...)")
    if batch is None:
      raise ValueError("hessian_free needs the data: update(grads, state, "
                       "params, batch=...)")
    cbatch = batch if curvature_batch is None else curvature_batch
    damping = state.damping
    dtype = damping.dtype
    grads = jax.tree.map(lambda g, p: (g + l2_reg * p).astype(g.dtype),
                         grads, params)

    gauss_newton = _products.linearize_gauss_newton(
        outputs_fn, loss_fn, params, cbatch, loss_hvp=loss_hvp,
        hidden_activation=hidden_activation)
    structural_weight = structural_damping * damping

    def damped_matvec(v):
      gv = gauss_newton.matvec(v, structural_weight)
      return optax.tree.add_scale(gv, damping + l2_reg, v)

    precond = None
    if preconditioner:
      sq = _hf_steps.mean_squared_example_grads(
          unregularized_loss, params, batch, preconditioner_chunk)
      precond = jax.tree.map(
          lambda s: jnp.power(s + damping + l2_reg, preconditioner_exponent
                              ).astype(s.dtype), sq)

    cg = _cg.conjugate_gradient(
        damped_matvec, optax.tree.scale(-1.0, grads), state.cg_init,
        preconditioner=precond, max_iters=cg_max_iters,
        min_iters=cg_min_iters, tolerance=cg_tolerance,
        save_iterates=backtracking)

    def saved(j):
      return jax.tree.map(lambda s: s[j], cg.saved)

    loss0 = objective(params, batch).astype(dtype)
    last = cg.num_saved - 1
    loss_last = step_objective(params, saved(last), 1.0, batch).astype(dtype)

    chosen, loss_chosen = _hf_steps.backtrack(
        lambda j: step_objective(params, saved(j), 1.0, batch).astype(dtype),
        last, loss_last)
    step = saved(chosen)

    # ρ on the curvature batch, with the damping (and structural damping)
    # off: the denominator is the undamped quadratic model (+ L2).
    if curvature_batch is None:
      closs0, closs_step = loss0, loss_chosen
    else:
      closs0 = objective(params, cbatch).astype(dtype)
      closs_step = step_objective(params, step, 1.0, cbatch).astype(dtype)
    gp = optax.tree.vdot(grads, step).astype(dtype)
    pgp = optax.tree.vdot(step, gauss_newton.matvec(step, 0.0)).astype(dtype)
    pgp = pgp + l2_reg * optax.tree.norm(step, squared=True).astype(dtype)
    rho = _hf_steps.reduction_ratio(closs_step, closs0, gp, pgp)
    new_damping = levenberg_marquardt(damping, rho, damping_increase,
                                      damping_decrease, damping_bounds)

    # Armijo line search: the full step's objective is already known from
    # backtracking.
    if linesearch:
      rate, ls_steps = _hf_steps.armijo_search(
          lambda rate: step_objective(params, step, rate, batch), loss0,
          loss_chosen, gp, steps=linesearch_steps, shrink=linesearch_shrink,
          c=linesearch_c, dtype=dtype)
    else:
      rate, ls_steps = jnp.ones([], dtype), jnp.zeros([], jnp.int32)

    updates = jax.tree.map(lambda s, p: (rate * s).astype(p.dtype), step,
                           params)
    # The next CG starts from the decayed *last* iterate (nnet_train_2.m),
    # or from 0 after a rejected step (HF-RNN, opt/hf.py).
    cg_init = jax.tree.map(
        lambda x: jnp.where(rate > 0, cg_decay * x, 0.0).astype(x.dtype),
        cg.x)
    finite_min = jnp.finfo(dtype).min
    info = HessianFreeInfo(
        rho=jnp.where(jnp.isfinite(rho), rho, finite_min).astype(dtype),
        cg_iters=cg.iterations.astype(jnp.int32),
        chosen_iter=cg.saved_iters[chosen].astype(jnp.int32),
        # The walk evaluates slots last-1 .. chosen, and chosen-1 when it
        # stopped there because chosen-1 was worse.
        backtracking_steps=(last - chosen
                            + (chosen > 0).astype(jnp.int32)
                            ).astype(jnp.int32),
        linesearch_steps=ls_steps.astype(jnp.int32),
        step_size=rate.astype(dtype), loss=loss0)
    new_state = HessianFreeState(
        count=optax.safe_increment(state.count),
        damping=new_damping.astype(dtype), cg_init=cg_init, info=info)
    return updates, new_state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)
