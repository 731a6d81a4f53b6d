"""Curvature building blocks: Gauss-Newton and Hessian products, CG, Lanczos.

Pure functions of pytrees, safe under ``jit``, ``vmap`` and ``lax`` loops;
:func:`jaxmomentum.hessian_free` is built from them.

* :func:`gauss_newton_vp` (``v -> Jᵀ H_L J v``, with the closed-form
  :math:`H_L` of a :class:`MatchingLoss`: :func:`squared_error`,
  :func:`sigmoid_cross_entropy`, :func:`softmax_cross_entropy`; optional
  structural damping) and :func:`hessian_vp`.
* :func:`conjugate_gradient` with Martens' (2010) stopping rule and saved
  iterates (:func:`save_schedule`).
* :func:`top_eigenvalues` (Lanczos) and :func:`momentum_report` /
  :func:`curvature_report`: Theorem 2.1's effective momentum and the largest
  stable learning rates of CM and NAG along the top curvature directions.
"""

from jaxmomentum.curvature._cg import CGResult as CGResult
from jaxmomentum.curvature._cg import conjugate_gradient as conjugate_gradient
from jaxmomentum.curvature._cg import save_schedule as save_schedule
from jaxmomentum.curvature._lanczos import curvature_report as curvature_report
from jaxmomentum.curvature._lanczos import Eigenpairs as Eigenpairs
from jaxmomentum.curvature._lanczos import momentum_report as momentum_report
from jaxmomentum.curvature._lanczos import MomentumReport as MomentumReport
from jaxmomentum.curvature._lanczos import top_eigenvalues as top_eigenvalues
from jaxmomentum.curvature._losses import MatchingLoss as MatchingLoss
from jaxmomentum.curvature._losses import sigmoid_cross_entropy as sigmoid_cross_entropy
from jaxmomentum.curvature._losses import softmax_cross_entropy as softmax_cross_entropy
from jaxmomentum.curvature._losses import squared_error as squared_error
from jaxmomentum.curvature._products import gauss_newton_vp as gauss_newton_vp
from jaxmomentum.curvature._products import hessian_vp as hessian_vp

__all__ = [
    "CGResult",
    "Eigenpairs",
    "MatchingLoss",
    "MomentumReport",
    "conjugate_gradient",
    "curvature_report",
    "gauss_newton_vp",
    "hessian_vp",
    "momentum_report",
    "save_schedule",
    "sigmoid_cross_entropy",
    "softmax_cross_entropy",
    "squared_error",
    "top_eigenvalues",
]
