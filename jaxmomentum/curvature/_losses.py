r"""Matching losses: a loss of the network outputs with its closed-form Hessian.

A Gauss-Newton product :math:`J^\top H_L J v` needs :math:`H_L u`, the Hessian
of the loss in the outputs times a vector. Autodiff gives it for any loss
(``jax.jvp`` of ``jax.grad``); for the output/loss pairs of Martens (2010) it
has a closed form that costs one elementwise product:

==========================  ============================================
loss (per case, summed)     :math:`H_L u` (per case, before the average)
==========================  ============================================
squared error               :math:`2u`
sigmoid cross-entropy       :math:`\sigma(z)(1-\sigma(z))\odot u`
softmax cross-entropy       :math:`p\odot u - p\,(p^\top u)`, :math:`p=\operatorname{softmax}(z)`
==========================  ============================================

Each factory returns a :class:`MatchingLoss`: call it as ``loss(outputs,
batch)``; :func:`jaxmomentum.curvature.gauss_newton_vp` and
:func:`jaxmomentum.hessian_free` use its ``hvp``.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp

Batch = Any
TargetsFn = Callable[[Batch], jax.Array]
WeightsFn = Callable[[Batch], jax.Array]


class MatchingLoss:
  r"""A loss :math:`L(z, \text{batch})` of outputs ``z`` and its Hessian product.

  The loss is a weighted average over cases (every axis of ``z`` but the
  last) of a per-case loss summed over the last axis:

  .. math::

    L(z) = \frac{\sum_c w_c\, \ell(z_c, t_c)}{\sum_c w_c},

  with :math:`w_c = 1` unless ``weights`` is given (e.g. the RNN problems'
  mask of the steps that count).

  Attributes:
    name: ``"squared_error"``, ``"sigmoid_cross_entropy"`` or
      ``"softmax_cross_entropy"``.
  """

  def __init__(self, name: str, per_case: Callable, per_case_hvp: Callable,
               targets: Optional[TargetsFn], weights: Optional[WeightsFn]):
    self.name = name
    self._per_case = per_case
    self._per_case_hvp = per_case_hvp
    self._targets = targets
    self._weights = weights

  def __repr__(self):
    return f"MatchingLoss({self.name!r})"

  def _targets_of(self, batch):
    return batch if self._targets is None else self._targets(batch)

  def _normalized_weights(self, outputs, batch):
    if self._weights is None:
      cases = 1
      for size in outputs.shape[:-1]:
        cases *= size
      return jnp.full(outputs.shape[:-1], 1.0 / max(cases, 1), outputs.dtype)
    w = jnp.asarray(self._weights(batch), outputs.dtype)
    total = jnp.sum(w)
    return jnp.where(total > 0, w / jnp.where(total > 0, total, 1.0), 0.0)

  def __call__(self, outputs: jax.Array, batch: Batch) -> jax.Array:
    """The scalar loss of ``outputs`` ``[..., dim]`` on ``batch``."""
    per_case = self._per_case(outputs, self._targets_of(batch))
    return jnp.sum(self._normalized_weights(outputs, batch) * per_case)

  def hvp(self, outputs: jax.Array, batch: Batch, u: jax.Array) -> jax.Array:
    """:math:`H_L u`, the Hessian of the loss in ``outputs`` times ``u``."""
    w = self._normalized_weights(outputs, batch)[..., None]
    return w * self._per_case_hvp(outputs, u)


def _check_callable(name, fn):
  if fn is not None and not callable(fn):
    raise TypeError(f"{name} must be None or a function of the batch, got "
                    f"{fn!r}")


def squared_error(targets: Optional[TargetsFn] = None,
                  weights: Optional[WeightsFn] = None) -> MatchingLoss:
  r"""Squared error of linear outputs, :math:`\ell = \sum_j (z_j - t_j)^2`.

  :math:`H_\ell = 2I` (Martens 2010's linear output with
  :math:`\sum (y - t)^2`).

  Args:
    targets: ``batch -> targets`` of the outputs' shape; ``None``: the batch
      is the targets (an autoencoder).
    weights: ``batch -> w`` of shape ``outputs.shape[:-1]`` (e.g. a mask);
      ``None``: every case counts equally.

  Example:
    >>> import jax.numpy as jnp
    >>> from jaxmomentum import curvature
    >>> loss = curvature.squared_error()
    >>> float(loss(jnp.ones((2, 3)), jnp.zeros((2, 3))))  # mean over 2 cases
    3.0
  """
  _check_callable("targets", targets)
  _check_callable("weights", weights)

  def per_case(z, t):
    return jnp.sum(jnp.square(z - t), axis=-1)

  def per_case_hvp(z, u):
    del z
    return 2.0 * u

  return MatchingLoss("squared_error", per_case, per_case_hvp, targets,
                      weights)


def sigmoid_cross_entropy(targets: Optional[TargetsFn] = None,
                          weights: Optional[WeightsFn] = None
                          ) -> MatchingLoss:
  r"""Cross-entropy of logistic outputs, from the logits ``z``.

  :math:`\ell = \sum_j \operatorname{softplus}(z_j) - t_j z_j` (the
  cross-entropy :math:`-t\log\sigma(z) - (1-t)\log(1-\sigma(z))`), and
  :math:`H_\ell = \operatorname{diag}(\sigma(z)(1-\sigma(z)))`.

  Args:
    targets: ``batch -> targets`` in [0, 1]; ``None``: the batch itself.
    weights: as for :func:`squared_error`.

  Example:
    >>> import jax.numpy as jnp
    >>> from jaxmomentum import curvature
    >>> loss = curvature.sigmoid_cross_entropy()
    >>> round(float(loss(jnp.zeros((4, 2)), jnp.full((4, 2), 0.5))), 4)
    1.3863
  """
  _check_callable("targets", targets)
  _check_callable("weights", weights)

  def per_case(z, t):
    return jnp.sum(jax.nn.softplus(z) - t * z, axis=-1)

  def per_case_hvp(z, u):
    p = jax.nn.sigmoid(z)
    return p * (1.0 - p) * u

  return MatchingLoss("sigmoid_cross_entropy", per_case, per_case_hvp,
                      targets, weights)


def softmax_cross_entropy(targets: Optional[TargetsFn] = None,
                          weights: Optional[WeightsFn] = None
                          ) -> MatchingLoss:
  r"""Cross-entropy of a softmax over the last axis, from the logits ``z``.

  :math:`\ell = \operatorname{logsumexp}(z) - t^\top z` for targets
  :math:`t` summing to 1, and :math:`H_\ell u = p\odot u - p\,(p^\top u)`
  with :math:`p = \operatorname{softmax}(z)`.

  Args:
    targets: ``batch -> targets`` (one-hot or probabilities); ``None``: the
      batch itself.
    weights: as for :func:`squared_error`.

  Example:
    >>> import jax.numpy as jnp
    >>> from jaxmomentum import curvature
    >>> loss = curvature.softmax_cross_entropy()
    >>> round(float(loss(jnp.zeros((1, 4)), jnp.eye(4)[:1])), 4)  # log 4
    1.3863
  """
  _check_callable("targets", targets)
  _check_callable("weights", weights)

  def per_case(z, t):
    return jax.nn.logsumexp(z, axis=-1) - jnp.sum(t * z, axis=-1)

  def per_case_hvp(z, u):
    p = jax.nn.softmax(z, axis=-1)
    return p * u - p * jnp.sum(p * u, axis=-1, keepdims=True)

  return MatchingLoss("softmax_cross_entropy", per_case, per_case_hvp,
                      targets, weights)
