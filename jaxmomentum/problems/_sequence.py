"""Long-term-dependency problems for RNNs: the batch and what they share.

Every problem is a small frozen dataclass (hashable, so it can be a static
argument of ``jax.jit``) whose ``sample(key, batch_size)`` is pure JAX: no
Python loop over sequences or time steps, so it runs inside ``jit``, ``vmap``
and ``lax.scan`` on any device. Variable sequence lengths are expressed with a
mask over a fixed maximum length, so every batch of a problem has the same
shapes.

Layout of a :class:`Batch` (all float32):

* ``inputs``  ``[batch, time, in_dim]``
* ``targets`` ``[batch, time, out_dim]``: real values for the linear-output
  problems (addition, multiplication), one-hot rows for the softmax problems
  (memorization, temporal order); zero where the mask is zero.
* ``mask``    ``[batch, time]``: 1 at the steps whose output is scored, else 0.

The defaults follow the 2011 Hessian-free RNN release of Martens & Sutskever
(``opt/d/seq/pathological.py``), with every length scaled by ``f = T / 100``
(computed in integer arithmetic, e.g. ``10 f = (10 T) // 100``).

The problems themselves: :mod:`._arithmetic` (addition, multiplication),
:mod:`._memorization`, :mod:`._temporal_order`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmomentum.problems import _metrics
from jaxmomentum.problems._metrics import ScoredProblem

__all__ = ["Batch", "BiasesBaseline", "SequenceProblem"]


class Batch(NamedTuple):
  """A batch of sequences (a pytree, usable in ``lax.scan`` and ``vmap``).

  Attributes:
    inputs: ``[batch, time, in_dim]`` float32.
    targets: ``[batch, time, out_dim]`` float32 (values or one-hot rows).
    mask: ``[batch, time]`` float32, 1 at the steps that are scored.
  """
  inputs: jax.Array
  targets: jax.Array
  mask: jax.Array


class BiasesBaseline(NamedTuple):
  """Zero-one error of a model that outputs one constant at every step.

  Attributes:
    mean_predictor_error: error of the constant a bias-only model converges
      to under the problem's loss: the target mean for squared error, the
      class frequencies (so the most frequent class) for cross-entropy. This
      is what Table 5's "biases" column measures.
    best_constant_error: the lowest zero-one error any constant attains
      (differs from the above only for squared error with skewed targets).
    best_constant: that constant (an output value, or a class index).
  """
  mean_predictor_error: float
  best_constant_error: float
  best_constant: float


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
  if value not in choices:
    raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def uniform_int(u: jax.Array, low: int, high: int) -> jax.Array:
  """Integers uniform on [low, high) from uniforms u in [0, 1).

  ``floor(u (high - low))``: with float32 uniforms (23 random bits) each
  integer's probability is within 2^-23 of 1 / (high - low), exact when the
  range is a power of two. One ``uniform`` draw per batch compiles and runs
  several times faster than separate ``randint`` calls.
  """
  span = high - low
  return low + jnp.minimum(jnp.floor(u * span).astype(jnp.int32), span - 1)


def uniform_pmf_at(t: np.ndarray, low: int, high: int) -> np.ndarray:
  """P(X = t) for X uniform on the integers [low, high)."""
  return np.where((t >= low) & (t < high), 1.0 / (high - low), 0.0)


class SequenceProblem(ScoredProblem):
  """Methods shared by the problems; subclasses are frozen dataclasses."""

  output_kind: str  # "linear" or "softmax"

  @property
  def name(self) -> str:
    raise NotImplementedError

  @property
  def input_mean(self) -> np.ndarray:
    raise NotImplementedError

  @property
  def target_mean(self) -> np.ndarray:
    raise NotImplementedError

  def biases_baseline(self) -> BiasesBaseline:
    raise NotImplementedError

  def loss(self, outputs: jax.Array, batch: Batch, *,
           normalization: str = "step_mean") -> jax.Array:
    """The training loss: masked squared error or softmax cross-entropy.

    By default averaged over the counted steps (see :func:`squared_error`
    and :func:`softmax_cross_entropy`): for the linear-output problems the
    mean over sequences of the final output's squared error, for
    memorization the mean cross-entropy per time step.
    ``normalization="sequence_sum"``: per sequence the sum over its counted
    steps (1/2 for squared error), averaged over sequences; its gradients
    are T times larger for memorization and half as large for
    addition/multiplication. The 2011 HF-RNN release sums per step and then
    divides by the batch's counted outputs (``HF._op``): the step mean, 1/2
    for squared error. The paper does not say what its momentum runs used.

    Args:
      outputs: the model's outputs (logits for softmax problems)
        ``[batch, time, out_dim]``.
      batch: the :class:`Batch` they were computed from.
      normalization: ``"step_mean"`` (default) or ``"sequence_sum"``.
    """
    if self.output_kind == "linear":
      return _metrics.squared_error(outputs, batch.targets, batch.mask,
                                    normalization)
    return _metrics.softmax_cross_entropy(outputs, batch.targets, batch.mask,
                                          normalization)

  def zero_one(self, outputs: jax.Array, batch: Batch) -> jax.Array:
    """The zero-one error Table 5 reports, a scalar in [0, 1].

    Linear outputs: the fraction of scored steps (one per sequence) with
    ``|output - target| > tolerance``. Softmax outputs: the fraction of scored
    steps whose argmax is wrong. Shift-invariant for linear outputs: outputs
    and targets both centered (:meth:`centered`) give the same value.
    """
    if self.output_kind == "linear":
      return _metrics.threshold_error(outputs, batch.targets, batch.mask,
                                      self.tolerance)
    return _metrics.argmax_error(outputs, batch.targets, batch.mask)

  def error(self, outputs: jax.Array, batch: Batch) -> jax.Array:
    """The error the tables report: :meth:`zero_one`."""
    return self.zero_one(outputs, batch)

  def centered(self, batch: Batch) -> Batch:
    """Subtracts ``input_mean`` from the inputs (and, for linear outputs,
    ``target_mean`` from the targets).

    A model trained on centered targets predicts centered values; its loss
    and zero-one error against the centered batch equal those of
    ``uncenter_outputs(outputs)`` against the raw batch. One-hot targets of
    softmax problems are left as they are.
    """
    inputs = batch.inputs - jnp.asarray(self.input_mean)
    targets = batch.targets
    if self.output_kind == "linear":
      targets = targets - jnp.asarray(self.target_mean)
    return Batch(inputs, targets, batch.mask)

  def uncenter_outputs(self, outputs: jax.Array) -> jax.Array:
    """Adds ``target_mean`` back to centered linear outputs (softmax: as is)."""
    if self.output_kind == "linear":
      return outputs + jnp.asarray(self.target_mean)
    return outputs

