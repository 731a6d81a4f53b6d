r"""Curvature-vector products: Gauss-Newton and Hessian.

Both linearize once per call (``jax.linearize``; the Gauss-Newton product
also transposes that linearization with ``jax.linear_transpose``) and return a
function ``v -> A v`` that reuses the linearization for every product, so a
CG run of hundreds of products does one forward pass, not hundreds.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from jaxmomentum._validation import check_range

Params = Any
Batch = Any
MatVec = Callable[[Params], Params]

HIDDEN_ACTIVATIONS = ("tanh", "logistic")


class GaussNewtonLinearization(NamedTuple):
  """The outputs at ``params`` and the product ``(v, w_s) -> G v`` there."""

  outputs: jax.Array  # z = outputs_fn(params, batch) (the first of a pair).
  # matvec(v, structural_weight) -> G v (+ w_s J_aᵀ H_D J_a v).
  matvec: Callable[[Params, Any], Params]


def _loss_hvp_at(loss_fn, loss_hvp, z, batch):
  """``u -> H_L u`` at ``z``: given, the loss's closed form, or autodiff."""
  if loss_hvp is not None:
    return lambda u: loss_hvp(z, batch, u)
  closed_form = getattr(loss_fn, "hvp", None)
  if closed_form is not None:
    return lambda u: closed_form(z, batch, u)
  _, hvp = jax.linearize(jax.grad(lambda out: loss_fn(out, batch)), z)
  return hvp


def _hidden_curvature(preactivations, activation):
  """diag(H_D): the derivative of the hidden nonlinearity at ``a``."""
  if activation == "tanh":
    return 1.0 - jnp.square(jnp.tanh(preactivations))
  h = jax.nn.sigmoid(preactivations)
  return h * (1.0 - h)


def check_hidden_activation(hidden_activation: str) -> None:
  if hidden_activation not in HIDDEN_ACTIVATIONS:
    raise ValueError(f"hidden_activation must be one of {HIDDEN_ACTIVATIONS}, "
                     f"got {hidden_activation!r}")


def linearize_gauss_newton(
    outputs_fn: Callable[[Params, Batch], Any],
    loss_fn: Callable[[jax.Array, Batch], jax.Array],
    params: Params,
    batch: Batch,
    *,
    loss_hvp: Optional[Callable] = None,
    hidden_activation: str = "tanh",
) -> GaussNewtonLinearization:
  """:func:`gauss_newton_vp` with the outputs and a per-call structural weight.

  HF needs both the damped product (structural term on) and the undamped one
  for ρ (off) from one linearization.
  """
  out, jvp = jax.linearize(lambda p: outputs_fn(p, batch), params)
  vjp = jax.linear_transpose(jvp, params)
  structural = isinstance(out, tuple)
  if structural:
    if len(out) != 2:
      raise ValueError(
          "outputs_fn must return the outputs z or a pair (z, "
          f"hidden_preactivations), got a tuple of {len(out)}")
    z, preacts = out
    # H_D / (number of examples): the hidden units' matching loss summed over
    # units (and time), averaged over the leading (example) axis.
    hidden_curv = (_hidden_curvature(preacts, hidden_activation)
                   / preacts.shape[0])
  else:
    z = out
  loss_hvp_fn = _loss_hvp_at(loss_fn, loss_hvp, z, batch)

  def matvec(v, structural_weight=0.0):
    jv = jvp(v)
    if structural:
      jz, ja = jv
      cotangent = (loss_hvp_fn(jz),
                   (structural_weight * hidden_curv * ja).astype(ja.dtype))
    else:
      cotangent = loss_hvp_fn(jv)
    (gv,) = vjp(cotangent)
    return gv

  return GaussNewtonLinearization(z, matvec)


def gauss_newton_vp(
    outputs_fn: Callable[[Params, Batch], Any],
    loss_fn: Callable[[jax.Array, Batch], jax.Array],
    params: Params,
    batch: Batch,
    *,
    loss_hvp: Optional[Callable[[jax.Array, Batch, jax.Array], jax.Array]]
    = None,
    structural_weight: Any = 0.0,
    hidden_activation: str = "tanh",
) -> MatVec:
  r"""The Gauss-Newton product ``v -> G v`` at ``params`` on ``batch``.

  .. math::

    G v = J^\top H_L J v \;+\; w_s\, J_a^\top H_D J_a v,

  with :math:`J` the Jacobian of the outputs :math:`z` =
  ``outputs_fn(params, batch)`` in the params (:math:`z` are the network's
  pre-nonlinearity outputs: logits, linear outputs) and :math:`H_L` the
  Hessian of ``loss_fn(z, batch)`` in :math:`z`. :math:`G` is positive
  semi-definite whenever the loss is convex in :math:`z` (Schraudolph 2002;
  Martens 2010).

  The second term is structural damping (Martens & Sutskever 2011): when
  ``outputs_fn`` returns a pair ``(z, a)`` with :math:`a` the hidden
  pre-activations (any shape whose leading axis is the example axis),
  :math:`J_a` is their Jacobian and :math:`H_D` the Hessian of the hidden
  units' matching loss, :math:`\operatorname{diag}(1-\tanh^2 a)` for tanh
  units and :math:`\operatorname{diag}(\sigma(a)(1-\sigma(a)))` for logistic
  units, summed over units (and time) and divided by the number of examples.
  In HF, :math:`w_s = \mu\lambda` (``structural_damping`` times the
  damping).

  The network is linearized once (``jax.linearize`` and
  ``jax.linear_transpose``); every call of the returned function is one
  forward-mode and one reverse-mode pass through that linearization, with no
  new forward pass. Pure: works under ``jit``, ``vmap`` and ``lax`` loops.

  Args:
    outputs_fn: ``(params, batch) -> z`` or ``(params, batch) -> (z, a)``.
      Must be differentiable in forward mode (a ``jax.custom_vjp`` function
      is not).
    loss_fn: ``(z, batch) -> scalar``, convex in ``z``. A
      :class:`~jaxmomentum.curvature.MatchingLoss`
      (:func:`~jaxmomentum.curvature.sigmoid_cross_entropy`, ...) brings a
      closed-form :math:`H_L`; any other function gets it by autodiff.
    params: the point (any pytree).
    batch: the data the curvature is measured on.
    loss_hvp: ``(z, batch, u) -> H_L u``, overriding the above.
    structural_weight: :math:`w_s \ge 0` (used only with a pair from
      ``outputs_fn``).
    hidden_activation: ``"tanh"`` or ``"logistic"``: the hidden units of
      :math:`H_D`.

  Returns:
    ``v -> G v``, a function of a pytree like ``params``.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from jaxmomentum import curvature
    >>> def outputs_fn(w, batch):
    ...   x, _ = batch
    ...   return x @ w
    >>> loss = curvature.squared_error(targets=lambda batch: batch[1])
    >>> x = jnp.array([[1.0, 0.0], [1.0, 2.0]])
    >>> gv = curvature.gauss_newton_vp(outputs_fn, loss, jnp.zeros((2, 1)),
    ...                                (x, jnp.zeros((2, 1))))
    >>> gv(jnp.array([[1.0], [0.0]])).ravel().tolist()  # x^T (2/2) x e_1
    [2.0, 2.0]

  References:
    Schraudolph, *Fast curvature matrix-vector products for second-order
    gradient descent*, Neural Computation 2002. Martens, *Deep learning via
    Hessian-free optimization*, ICML 2010, Section 4.2. Martens & Sutskever,
    *Learning recurrent neural networks with Hessian-free optimization*,
    ICML 2011, Section 3 (structural damping).
  """
  check_range("structural_weight", structural_weight, 0.0)
  check_hidden_activation(hidden_activation)
  matvec = linearize_gauss_newton(
      outputs_fn, loss_fn, params, batch, loss_hvp=loss_hvp,
      hidden_activation=hidden_activation).matvec
  return lambda v: matvec(v, structural_weight)


def hessian_vp(loss_of_params: Callable[[Params], jax.Array], params: Params
               ) -> MatVec:
  r"""The Hessian product ``v -> H v`` of ``loss_of_params`` at ``params``.

  .. math::  H v = \nabla^2 f(\theta)\, v

  for losses without an outputs/loss split (or to compare with
  :func:`gauss_newton_vp`). Forward-over-reverse, linearized once: every
  product reuses the linearization of :math:`\nabla f`. :math:`H` may be
  indefinite; CG on it stops at the first direction of non-positive
  curvature.

  Args:
    loss_of_params: ``params -> scalar`` (close over the batch).
    params: the point.

  Returns:
    ``v -> H v``.

  Example:
    >>> import jax.numpy as jnp
    >>> from jaxmomentum import curvature
    >>> hv = curvature.hessian_vp(lambda x: jnp.sum(x ** 3), jnp.array([1.0, 2.0]))
    >>> hv(jnp.ones(2)).tolist()  # diag(6x) 1
    [6.0, 12.0]

  Reference:
    Pearlmutter, *Fast exact multiplication by the Hessian*, Neural
    Computation 1994.
  """
  _, hvp = jax.linearize(jax.grad(loss_of_params), params)
  return hvp
