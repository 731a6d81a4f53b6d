r"""Reconstruction: the deep autoencoders' objective and error (Section 3).

An autoencoder's batch is its inputs ``x`` ``[cases, dim]`` and its targets
are the same ``x``. With outputs ``z`` (logits for a logistic output):

.. math::

  \text{loss} = \frac{1}{N}\sum_{n} \sum_j \ell(z_{nj}, x_{nj}), \qquad
  \text{error} = \frac{1}{N}\sum_{n} \sum_j (\hat x_{nj} - x_{nj})^2,

with :math:`\ell` the cross-entropy of a logistic output (pixels in [0, 1])
or the squared error of a linear one, and :math:`\hat x` the reconstruction
(:math:`\sigma(z)` or :math:`z`). The loss is the
:class:`jaxmomentum.curvature.MatchingLoss` of the output (so the momentum
runs and Hessian-free optimize the same objective, HF with its closed-form
curvature); the error is what Table 1 reports.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jaxmomentum import curvature
from jaxmomentum.problems._metrics import ScoredProblem

__all__ = ["ReconstructionProblem", "reconstruction"]

_OUTPUTS = ("logistic", "linear")


@dataclasses.dataclass(frozen=True)
class ReconstructionProblem(ScoredProblem):
  """Reconstructing the input; see the module docstring for the formulas.

  Attributes:
    output_kind: ``"logistic"`` (cross-entropy, from logits) or
      ``"linear"`` (squared error).

  Example:
    >>> import jax.numpy as jnp
    >>> from jaxmomentum.problems import reconstruction
    >>> problem = reconstruction("logistic")
    >>> x = jnp.full((4, 3), 0.5)
    >>> float(problem.error(jnp.zeros((4, 3)), x))  # sigmoid(0) = x
    0.0
    >>> round(float(problem.loss(jnp.zeros((4, 3)), x)), 4)  # 3 log 2
    2.0794
  """

  output_kind: str

  def __post_init__(self):
    if self.output_kind not in _OUTPUTS:
      raise ValueError(f"output_kind must be one of {_OUTPUTS}, got "
                       f"{self.output_kind!r}")

  def matching_loss(self) -> curvature.MatchingLoss:
    """The loss with its closed-form Hessian (what Hessian-free needs)."""
    if self.output_kind == "logistic":
      return curvature.sigmoid_cross_entropy()
    return curvature.squared_error()

  def loss(self, outputs: jax.Array, batch: jax.Array) -> jax.Array:
    """The training objective of ``outputs`` (logits if logistic) on
    ``batch``: summed over a case's outputs, mean over cases."""
    return self.matching_loss()(outputs, batch)

  def reconstruction(self, outputs: jax.Array) -> jax.Array:
    """The reconstructed inputs: :math:`\\sigma(z)` or :math:`z`."""
    return jax.nn.sigmoid(outputs) if self.output_kind == "logistic" else (
        outputs)

  def error(self, outputs: jax.Array, batch: jax.Array) -> jax.Array:
    """Table 1's error: the reconstruction's squared error summed over a
    case's outputs, mean over cases."""
    return jnp.mean(jnp.sum(jnp.square(self.reconstruction(outputs) - batch),
                            axis=-1))


def reconstruction(output_kind: str) -> ReconstructionProblem:
  """The autoencoder's problem for a ``"logistic"`` or ``"linear"`` output
  (an :class:`~jaxmomentum.models.AutoencoderArchitecture`'s ``output``)."""
  return ReconstructionProblem(output_kind)
