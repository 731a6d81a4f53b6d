r"""Top curvature eigenvalues (Lanczos) and the Theorem 2.1 momentum report."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import jax
from jax import lax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
import numpy as np

from jaxmomentum._validation import check_int, check_range

Params = Any


class Eigenpairs(NamedTuple):
  """Ritz pairs from :func:`top_eigenvalues`, largest first.

  Attributes:
    values: ``[k]``, descending.
    vectors: a pytree like ``params`` whose leaves have a leading axis of
      ``k``: the unit-norm Ritz vectors.
  """

  values: jax.Array
  vectors: Params


def top_eigenvalues(
    matvec: Callable[[Params], Params],
    params: Params,
    key: jax.Array,
    k: int,
    *,
    num_iters: Optional[int] = None,
) -> Eigenpairs:
  r"""The ``k`` largest eigenvalues of a symmetric ``matvec`` (Lanczos).

  ``num_iters`` steps of Lanczos from a random unit vector, with full
  reorthogonalization against every earlier Lanczos vector (twice), then the
  eigenvalues of the tridiagonal :math:`T` (Rayleigh-Ritz on the Krylov
  space). If the Krylov space becomes invariant, Lanczos restarts from a
  fresh random vector orthogonal to it, so ``num_iters`` = the dimension
  gives every eigenvalue. The top Ritz values converge first; with
  ``num_iters`` a few times ``k`` they are accurate to a few digits for
  the spectra of neural networks (check by raising ``num_iters``).

  Memory: ``num_iters + 1`` flat copies of ``params``.

  Args:
    matvec: ``v -> A v`` with :math:`A` symmetric (Gauss-Newton from
      :func:`gauss_newton_vp`, Hessian from :func:`hessian_vp`).
    params: a pytree of the vectors' structure (its values are unused).
    key: PRNG key of the start vector (and restarts).
    k: number of eigenvalues, ``1 <= k <= num_iters``.
    num_iters: Lanczos steps, ``k <= num_iters <= dim``; default
      ``min(dim, max(4k, 40))``.

  Returns:
    :class:`Eigenpairs`.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from jaxmomentum import curvature
    >>> A = jnp.diag(jnp.arange(1.0, 11.0))
    >>> eig = curvature.top_eigenvalues(lambda v: A @ v, jnp.zeros(10),
    ...                                 jax.random.key(0), 3)
    >>> [round(float(v), 3) for v in eig.values]
    [10.0, 9.0, 8.0]

  Reference:
    Lanczos (1950); Golub & Van Loan, *Matrix Computations*, Section 10.1.
    For neural-network curvature: Ghorbani, Krishnan & Xiao, ICML 2019.
  """
  flat, unravel = ravel_pytree(params)
  dim = flat.size
  k = check_int("k", k, 1)
  if num_iters is None:
    num_iters = min(dim, max(4 * k, 40))
  num_iters = check_int("num_iters", num_iters, 1, dim)
  if k > num_iters:
    raise ValueError(f"k must be <= num_iters ({num_iters}), got {k}")
  dtype = flat.dtype
  eps = jnp.finfo(dtype).eps

  def flat_matvec(v):
    return ravel_pytree(matvec(unravel(v)))[0].astype(dtype)

  def random_unit(key_j, basis):
    w = jax.random.normal(key_j, (dim,), dtype)
    for _ in range(2):
      w = w - basis.T @ (basis @ w)
    return w / jnp.linalg.norm(w)

  basis0 = jnp.zeros((num_iters + 1, dim), dtype)
  basis0 = basis0.at[0].set(random_unit(jax.random.fold_in(key, 0), basis0))

  def step(j, carry):
    basis, alphas, betas = carry
    q = basis[j]
    w = flat_matvec(q)
    scale = jnp.linalg.norm(w)
    alpha = q @ w
    for _ in range(2):  # full reorthogonalization (rows > j are zero)
      w = w - basis.T @ (basis @ w)
    beta = jnp.linalg.norm(w)
    invariant = beta <= 100 * eps * jnp.maximum(scale, jnp.abs(alpha))
    fresh = random_unit(jax.random.fold_in(key, j + 1), basis)
    q_next = jnp.where(invariant, fresh, w / jnp.where(invariant, 1.0, beta))
    return (basis.at[j + 1].set(q_next), alphas.at[j].set(alpha),
            betas.at[j].set(jnp.where(invariant, 0.0, beta)))

  basis, alphas, betas = lax.fori_loop(
      0, num_iters, step,
      (basis0, jnp.zeros([num_iters], dtype), jnp.zeros([num_iters], dtype)))
  tri = (jnp.diag(alphas) + jnp.diag(betas[:-1], 1)
         + jnp.diag(betas[:-1], -1))
  values, vectors = jnp.linalg.eigh(tri)
  order = jnp.argsort(-values)[:k]
  ritz = (basis[:num_iters].T @ vectors[:, order]).T  # [k, dim]
  return Eigenpairs(values[order], jax.vmap(unravel)(ritz))


class MomentumReport(NamedTuple):
  r"""CM and NAG on the quadratic model along the top curvature directions.

  Per eigenvalue :math:`\lambda_i` (the curvature along its direction),
  with :math:`a = \varepsilon\lambda_i`, both methods are a linear map on
  :math:`(\theta, v)` (Theorem 2.1): CM with momentum :math:`\mu`, NAG as CM
  with the effective momentum :math:`\mu(1 - \varepsilon\lambda_i)`.

  Attributes:
    eigenvalues: ``[k]``, the curvatures :math:`\lambda_i`.
    learning_rate: :math:`\varepsilon`.
    momentum: :math:`\mu`.
    effective_momentum_nag: ``[k]``, :math:`\mu(1-\varepsilon\lambda_i)`.
    rate_cm: ``[k]``, the spectral radius of CM's map (the factor by which
      the error along the direction shrinks per step, asymptotically;
      :math:`\ge 1`: unstable). Trace :math:`1+\mu-a`, determinant
      :math:`\mu`.
    rate_nag: ``[k]``, the same for NAG. Trace :math:`(1+\mu)(1-a)`,
      determinant :math:`\mu(1-a)`.
    max_stable_learning_rate_cm: :math:`2(1+\mu)/\lambda_{\max}`.
    max_stable_learning_rate_nag: :math:`2(1+\mu)/((1+2\mu)\lambda_{\max})`.
  """

  eigenvalues: jax.Array
  learning_rate: jax.Array
  momentum: jax.Array
  effective_momentum_nag: jax.Array
  rate_cm: jax.Array
  rate_nag: jax.Array
  max_stable_learning_rate_cm: jax.Array
  max_stable_learning_rate_nag: jax.Array

  def table(self) -> str:
    """The report as a plain-text table."""
    lines = [f"ε = {float(self.learning_rate):.4g}, "
             f"μ = {float(self.momentum):.4g}; largest stable ε: "
             f"CM {float(self.max_stable_learning_rate_cm):.4g}, "
             f"NAG {float(self.max_stable_learning_rate_nag):.4g}",
             f"{'λ':>12} {'ελ':>10} {'μ(1-ελ)':>10} {'rate CM':>9} "
             f"{'rate NAG':>9}"]
    for lam, mu_eff, r_cm, r_nag in zip(
        np.asarray(self.eigenvalues), np.asarray(self.effective_momentum_nag),
        np.asarray(self.rate_cm), np.asarray(self.rate_nag)):
      lines.append(f"{lam:12.5g} {lam * float(self.learning_rate):10.4g} "
                   f"{mu_eff:10.4g} {r_cm:9.4f} {r_nag:9.4f}")
    return "\n".join(lines)


def _spectral_radius(trace, det):
  """max |z| over the roots of z² − trace·z + det."""
  trace = jnp.asarray(trace).astype(jnp.complex64 if jnp.asarray(
      trace).dtype == jnp.float32 else jnp.complex128)
  root = jnp.sqrt(trace * trace - 4 * jnp.asarray(det).astype(trace.dtype))
  return jnp.maximum(jnp.abs((trace + root) / 2), jnp.abs((trace - root) / 2))


def momentum_report(eigenvalues: jax.Array, learning_rate: Any,
                    momentum: Any) -> MomentumReport:
  r"""Theorem 2.1 along given curvatures: effective momentum and stability.

  For CM (Eqs. 1-2) and NAG (Eqs. 3-4) with learning rate
  :math:`\varepsilon` and momentum :math:`\mu` on
  :math:`\tfrac12\lambda t^2`, with :math:`a = \varepsilon\lambda`:

  .. math::

    \text{CM: } \begin{pmatrix}\theta'\\ v'\end{pmatrix} =
    \begin{pmatrix}1-a & \mu\\ -a & \mu\end{pmatrix}
    \begin{pmatrix}\theta\\ v\end{pmatrix},\qquad
    \text{NAG: } \begin{pmatrix}1-a & \mu(1-a)\\ -a & \mu(1-a)\end{pmatrix},

  i.e. NAG is CM with momentum :math:`\mu(1-a)`. CM is stable for
  :math:`0 < a < 2(1+\mu)`, NAG for :math:`0 < a < 2(1+\mu)/(1+2\mu)`
  (Jury's conditions), so the largest stable learning rates are those
  bounds over :math:`\lambda_{\max}`.

  Args:
    eigenvalues: ``[k]`` curvatures (e.g. :func:`top_eigenvalues`), > 0.
    learning_rate: :math:`\varepsilon > 0`.
    momentum: :math:`\mu \in [0, 1)`.

  Returns:
    A :class:`MomentumReport`.

  Example:
    >>> import jax.numpy as jnp
    >>> from jaxmomentum import curvature
    >>> rep = curvature.momentum_report(jnp.array([100.0, 1.0]), 0.01, 0.99)
    >>> [round(float(m), 4) for m in rep.effective_momentum_nag]
    [0.0, 0.9801]

  Reference:
    Sutskever, Martens, Dahl & Hinton (2013), Section 2.1, Theorem 2.1.
  """
  check_range("learning_rate", learning_rate, 0.0, low_open=True)
  check_range("momentum", momentum, 0.0, 1.0, high_open=True)
  lam = jnp.asarray(eigenvalues)
  eps = jnp.asarray(learning_rate, lam.dtype)
  mu = jnp.asarray(momentum, lam.dtype)
  a = eps * lam
  lam_max = jnp.max(lam)
  return MomentumReport(
      eigenvalues=lam, learning_rate=eps, momentum=mu,
      effective_momentum_nag=mu * (1 - a),
      rate_cm=_spectral_radius(1 + mu - a, mu),
      rate_nag=_spectral_radius((1 + mu) * (1 - a), mu * (1 - a)),
      max_stable_learning_rate_cm=2 * (1 + mu) / lam_max,
      max_stable_learning_rate_nag=2 * (1 + mu) / ((1 + 2 * mu) * lam_max))


def curvature_report(matvec: Callable[[Params], Params], params: Params,
                     key: jax.Array, k: int, *, learning_rate: Any,
                     momentum: Any, num_iters: Optional[int] = None
                     ) -> MomentumReport:
  """:func:`momentum_report` on the top ``k`` eigenvalues of ``matvec``.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from jaxmomentum import curvature
    >>> A = jnp.diag(jnp.array([50.0, 5.0, 0.5]))
    >>> rep = curvature.curvature_report(lambda v: A @ v, jnp.zeros(3),
    ...     jax.random.key(0), 2, learning_rate=0.01, momentum=0.9)
    >>> round(float(rep.max_stable_learning_rate_cm), 4)  # 2 * 1.9 / 50
    0.076
  """
  eig = top_eigenvalues(matvec, params, key, k, num_iters=num_iters)
  return momentum_report(eig.values, learning_rate, momentum)
