r"""Losses and errors of the problems: the masked ones of the RNN problems,
and :class:`ScoredProblem`, what a training table asks of every problem
(RNN or autoencoder): a ``loss`` and the ``error`` the paper reports.

Every function takes ``outputs`` and ``targets`` of shape
``[batch, time, dim]`` and a ``mask`` of shape ``[batch, time]`` holding 1 at
the steps that count and 0 elsewhere, and averages over the counted steps:

.. math::

  \bar\ell = \frac{\sum_{b,t} m_{bt}\,\ell_{bt}}{\sum_{b,t} m_{bt}}

(0 when nothing is counted). With one counted step per sequence (addition,
multiplication, temporal order) this is the mean over sequences; with every
step counted (memorization) it is the mean over all ``batch * time`` steps,
which equals the mean over sequences of the per-sequence step average.

The losses also take ``normalization="sequence_sum"``: per sequence the sum
over its counted steps (with a factor 1/2 for the squared error), averaged
over sequences. It was long read as the 2011 Hessian-free RNN release's
convention; the release's per-step losses are those sums
(``opt/utils/nonlin.py``), but its ``HF._op`` (``opt/hf.py``) then divides
loss and gradient by the number of counted outputs in the batch, i.e. the
release trains on the step mean (with 1/2 for squared error). The sum is

.. math::

  \bar\ell = \frac{1}{B} \sum_{b,t} m_{bt}\,c\,\ell_{bt}, \qquad
  c = \tfrac12 \text{ (squared error)}, \; 1 \text{ (cross-entropy)}.

For memorization (every one of T steps counted) its gradients are T times
those of the step mean; for addition/multiplication (one counted step) half.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

__all__ = [
    "LOSS_NORMALIZATIONS",
    "ScoredProblem",
    "masked_mean",
    "masked_sequence_sum",
    "squared_error",
    "softmax_cross_entropy",
    "threshold_error",
    "argmax_error",
]


def _as_float(values, mask):
  """Values and mask in the values' float dtype, at least float32 (bool and
  int values are counts; float64 stays float64, half precision widens)."""
  if jnp.shape(values) != jnp.shape(mask):
    raise ValueError(f"values must have the mask's shape {jnp.shape(mask)}, "
                     f"got {jnp.shape(values)}")
  values = jnp.asarray(values)
  dtype = jnp.float32
  if (jnp.issubdtype(values.dtype, jnp.floating)
      and jnp.finfo(values.dtype).bits >= 32):  # (no promotion: strict-clean)
    dtype = values.dtype
  return values.astype(dtype), jnp.asarray(mask).astype(dtype)


def _check_shapes(outputs_name: str, outputs, targets, mask) -> None:
  """Raises ``ValueError`` unless outputs, targets and mask line up.

  Broadcasting would otherwise turn a wrong last dimension or a missing
  batch axis into a silently wrong number.
  """
  o, t, m = jnp.shape(outputs), jnp.shape(targets), jnp.shape(mask)
  if len(t) != 3 or m != t[:2]:
    raise ValueError(
        f"targets must be [batch, time, dim] and mask [batch, time], got "
        f"targets {t} and mask {m}")
  if o != t:
    raise ValueError(
        f"{outputs_name} must have the targets' shape [batch, time, dim] = "
        f"{t}, got {o}")


def masked_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
  r"""Mean of ``values`` over the counted steps, :math:`\sum m v / \sum m`.

  Args:
    values: per-step values, ``[batch, time]``.
    mask: ``[batch, time]``, 1 where a step counts, 0 elsewhere (bool or
      float).

  Returns:
    A scalar in the values' floating dtype (at least float32; float64 values
    stay float64); 0 when no step is counted.

  Example:
    >>> import jax.numpy as jnp
    >>> from jaxmomentum.problems import masked_mean
    >>> float(masked_mean(jnp.array([[1., 5.], [3., 7.]]),
    ...                   jnp.array([[1., 0.], [1., 0.]])))
    2.0
  """
  values, mask = _as_float(values, mask)
  total = jnp.sum(mask)
  return jnp.where(total > 0, jnp.sum(values * mask) / jnp.maximum(total, 1.0),
                   0.0)


# "step_mean": the mean over counted steps (ours, and the 2011 release's up
# to 1/2 for squared error); "sequence_sum": the per-sequence sum, averaged
# over sequences.
LOSS_NORMALIZATIONS = ("step_mean", "sequence_sum")


def _check_normalization(normalization: str) -> None:
  if normalization not in LOSS_NORMALIZATIONS:
    raise ValueError(f"normalization must be one of {LOSS_NORMALIZATIONS}, "
                     f"got {normalization!r}")


def masked_sequence_sum(values: jax.Array, mask: jax.Array) -> jax.Array:
  r"""Per-sequence sum over the counted steps, averaged over sequences.

  .. math::

    \frac{1}{B} \sum_{b,t} m_{bt} v_{bt}

  Args:
    values: per-step values, ``[batch, time]``.
    mask: ``[batch, time]``, 1 where a step counts, 0 elsewhere.

  Returns:
    A float scalar (float64 for float64 values; 0 for an empty batch).

  Example:
    >>> import jax.numpy as jnp
    >>> from jaxmomentum.problems import masked_sequence_sum
    >>> float(masked_sequence_sum(jnp.array([[1., 5.], [3., 7.]]),
    ...                           jnp.array([[1., 1.], [1., 0.]])))
    4.5
  """
  values, mask = _as_float(values, mask)
  return jnp.sum(values * mask) / max(values.shape[0], 1)


def _reduce(per_step, mask, normalization, factor):
  _check_normalization(normalization)
  if normalization == "sequence_sum":
    return factor * masked_sequence_sum(per_step, mask)
  return masked_mean(per_step, mask)


def squared_error(outputs: jax.Array, targets: jax.Array, mask: jax.Array,
                  normalization: str = "step_mean") -> jax.Array:
  r"""Masked squared error, summed over output units, averaged over steps.

  .. math::

    \ell_{bt} = \sum_k (o_{btk} - y_{btk})^2

  (no factor 1/2), averaged over the counted steps as in
  :func:`masked_mean`. For addition and multiplication, where one step per
  sequence counts, this is the mean over sequences of the squared error of
  the final output. With ``normalization="sequence_sum"``:
  :math:`\tfrac12 \sum_t m_{bt} \ell_{bt}` averaged over sequences (the
  2011 release trains on half the step mean).

  Args:
    outputs: linear outputs ``[batch, time, dim]``.
    targets: ``[batch, time, dim]``.
    mask: ``[batch, time]``.
    normalization: ``"step_mean"`` (default) or ``"sequence_sum"``.

  Returns:
    A float scalar (float64 for float64 inputs, else float32).

  Example:
    >>> import jax.numpy as jnp
    >>> from jaxmomentum.problems import squared_error
    >>> float(squared_error(jnp.full((1, 2, 1), 0.5), jnp.ones((1, 2, 1)),
    ...                     jnp.array([[0., 1.]])))
    0.25
  """
  _check_shapes("outputs", outputs, targets, mask)
  per_step = jnp.sum(jnp.square(outputs - targets), axis=-1)
  return _reduce(per_step, mask, normalization, 0.5)


def softmax_cross_entropy(logits: jax.Array, targets: jax.Array,
                          mask: jax.Array, normalization: str = "step_mean"
                          ) -> jax.Array:
  r"""Masked softmax cross-entropy, averaged over the counted steps.

  .. math::

    \ell_{bt} = -\sum_k y_{btk} \log \operatorname{softmax}(o_{bt})_k

  Args:
    logits: unnormalized outputs ``[batch, time, classes]``.
    targets: one-hot (or probability) targets ``[batch, time, classes]``.
    mask: ``[batch, time]``.
    normalization: ``"step_mean"`` (default: nats per counted step) or
      ``"sequence_sum"`` (nats per sequence).

  Returns:
    A float scalar (float64 for float64 inputs, else float32).

  Example:
    >>> import jax.numpy as jnp
    >>> from jaxmomentum.problems import softmax_cross_entropy
    >>> loss = softmax_cross_entropy(
    ...     jnp.zeros((1, 1, 2)), jnp.array([[[1., 0.]]]), jnp.ones((1, 1)))
    >>> round(float(loss), 4)
    0.6931
  """
  _check_shapes("logits", logits, targets, mask)
  per_step = optax.softmax_cross_entropy(logits, targets)
  return _reduce(per_step, mask, normalization, 1.0)


def threshold_error(outputs: jax.Array, targets: jax.Array, mask: jax.Array,
                    tolerance: float = 0.04) -> jax.Array:
  r"""Fraction of counted steps whose output misses its target by > tolerance.

  .. math::

    e_{bt} = \mathbb{1}\left[\max_k |o_{btk} - y_{btk}| > \text{tolerance}
    \right]

  The zero-one error of the addition and multiplication problems (Sutskever
  et al., 2013, Section 4.2: "the fraction of cases where the error in the
  final output prediction exceeded 0.04"). The comparison is invariant to a
  common shift of ``outputs`` and ``targets``, so centered outputs compared
  with centered targets give the same error as the raw ones.

  Args:
    outputs: ``[batch, time, dim]``.
    targets: ``[batch, time, dim]``.
    mask: ``[batch, time]``.
    tolerance: the threshold, >= 0 (0.04 in the paper).

  Returns:
    A float32 scalar in [0, 1].

  Example:
    >>> import jax.numpy as jnp
    >>> from jaxmomentum.problems import threshold_error
    >>> out = jnp.array([[[1.03]], [[1.05]]])
    >>> float(threshold_error(out, jnp.ones((2, 1, 1)), jnp.ones((2, 1))))
    0.5
  """
  _check_shapes("outputs", outputs, targets, mask)
  miss = jnp.max(jnp.abs(outputs - targets), axis=-1) > tolerance
  return masked_mean(miss, mask)


def argmax_error(logits: jax.Array, targets: jax.Array, mask: jax.Array
                 ) -> jax.Array:
  r"""Fraction of counted steps whose most likely class is not the target's.

  .. math::

    e_{bt} = \mathbb{1}\left[\arg\max_k o_{btk} \ne \arg\max_k y_{btk}\right]

  The zero-one error of the memorization (every step counts: "the fraction
  of timesteps that are computed incorrectly") and temporal-order problems.
  Ties take the lowest index, as ``jnp.argmax`` does.

  Args:
    logits: ``[batch, time, classes]``.
    targets: one-hot ``[batch, time, classes]``.
    mask: ``[batch, time]``.

  Returns:
    A float32 scalar in [0, 1].

  Example:
    >>> import jax.numpy as jnp
    >>> from jaxmomentum.problems import argmax_error
    >>> y = jnp.array([[[1., 0.], [0., 1.]]])
    >>> float(argmax_error(jnp.array([[[2., 1.], [2., 1.]]]), y,
    ...                    jnp.ones((1, 2))))
    0.5
  """
  _check_shapes("logits", logits, targets, mask)
  wrong = jnp.argmax(logits, axis=-1) != jnp.argmax(targets, axis=-1)
  return masked_mean(wrong, mask)


class ScoredProblem:
  """A problem's training objective and the error the paper reports.

  Subclasses define ``loss(outputs, batch, **options)`` and
  ``error(outputs, batch)``; :meth:`metrics` gives both, as the training
  engine's ``eval_fn`` returns them. The RNN problems (error: zero-one) and
  the autoencoders' reconstruction (error: squared error) are both
  ``ScoredProblem``, so both tables evaluate through the same call.
  """

  def loss(self, outputs: jax.Array, batch, **options) -> jax.Array:
    raise NotImplementedError

  def error(self, outputs: jax.Array, batch) -> jax.Array:
    raise NotImplementedError

  def metrics(self, outputs: jax.Array, batch, **loss_options
              ) -> dict[str, jax.Array]:
    """``{"loss": loss(outputs, batch, **loss_options), "error": ...}``."""
    return {"loss": self.loss(outputs, batch, **loss_options),
            "error": self.error(outputs, batch)}
