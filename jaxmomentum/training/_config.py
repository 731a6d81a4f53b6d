"""The configuration of one training run, as a frozen dataclass."""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

from jaxmomentum._validation import check_int


def _auto_evals_per_chunk(num_evals: int, max_chunks: int = 50) -> int:
  """The smallest divisor ``d`` of ``num_evals`` giving at most ``max_chunks``.

  So a run has at most ``max_chunks`` chunks (progress and checkpoints every
  ``d`` evaluation periods) and as few compiled loop exits as that allows.
  The divisors come in pairs ``(i, num_evals // i)`` with ``i <= sqrt``: a
  ``sqrt(num_evals)`` search, fast for any int32 count (even a prime).
  """
  divisors = set()
  for i in range(1, math.isqrt(num_evals) + 1):
    if num_evals % i == 0:
      divisors.update((i, num_evals // i))
  return min(d for d in divisors if num_evals // d <= max_chunks)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """How long to train, on what batches, and when to evaluate.

  A run is ``num_steps`` optimizer updates, each on a fresh minibatch of
  ``batch_size`` examples. Every ``eval_every`` updates the parameters are
  evaluated on ``num_eval_batches`` fresh batches of ``eval_batch_size``
  examples (a separate random stream, so changing the evaluation never changes
  training). The run is executed in chunks of ``chunk_size`` updates, one
  compiled program reused for every chunk; progress, checkpoints and metric
  transfers to the host happen between chunks.

  Attributes:
    num_steps: number of updates, >= 1; a multiple of ``chunk_size``.
    batch_size: examples per training minibatch, >= 1.
    eval_every: updates per evaluation period, >= 1; divides ``chunk_size``.
    eval_batch_size: examples per evaluation batch, >= 1 (``None``:
      ``batch_size``).
    num_eval_batches: evaluation batches per evaluation, >= 1; the metrics are
      their mean.
    chunk_size: updates per compiled chunk, a multiple of ``eval_every`` that
      divides ``num_steps``. ``None`` picks the smallest chunk giving at most
      50 chunks. The resolved value is stored (``repr`` shows it).
    detect_divergence: freeze a run at its last finite state once its loss,
      parameters or optimizer state become NaN/inf, and record the step (costs
      one select over the state per update). ``False`` lets NaN propagate.

  Example:
    >>> from jaxmomentum.training import TrainConfig
    >>> config = TrainConfig(num_steps=50_000, batch_size=100,
    ...                      eval_every=1_000, chunk_size=5_000)
    >>> config.num_evals, config.num_chunks
    (50, 10)
  """

  num_steps: int
  batch_size: int
  eval_every: int
  eval_batch_size: Optional[int] = None
  num_eval_batches: int = 1
  chunk_size: Optional[int] = None
  detect_divergence: bool = True

  def __post_init__(self):
    # The step counter is an int32.
    check_int("num_steps", self.num_steps, 1, 2**31 - 1)
    check_int("batch_size", self.batch_size, 1)
    check_int("eval_every", self.eval_every, 1, self.num_steps)
    if self.eval_batch_size is None:
      object.__setattr__(self, "eval_batch_size", self.batch_size)
    check_int("eval_batch_size", self.eval_batch_size, 1)
    check_int("num_eval_batches", self.num_eval_batches, 1)
    if not isinstance(self.detect_divergence, bool):
      raise TypeError(
          f"detect_divergence must be a bool, got {self.detect_divergence!r}")
    if self.num_steps % self.eval_every:
      raise ValueError(
          f"eval_every must divide num_steps={self.num_steps}, got "
          f"{self.eval_every}")
    num_evals = self.num_steps // self.eval_every
    if self.chunk_size is None:
      object.__setattr__(
          self, "chunk_size",
          self.eval_every * _auto_evals_per_chunk(num_evals))
    check_int("chunk_size", self.chunk_size, self.eval_every, self.num_steps)
    if self.chunk_size % self.eval_every or self.num_steps % self.chunk_size:
      raise ValueError(
          f"chunk_size must be a multiple of eval_every={self.eval_every} "
          f"that divides num_steps={self.num_steps}, got {self.chunk_size}")

  @property
  def num_evals(self) -> int:
    """Evaluations per run (after updates ``eval_every, 2 eval_every, ...``)."""
    return self.num_steps // self.eval_every

  @property
  def evals_per_chunk(self) -> int:
    """Evaluations per chunk."""
    return self.chunk_size // self.eval_every

  @property
  def num_chunks(self) -> int:
    """Chunks per run."""
    return self.num_steps // self.chunk_size

  @property
  def eval_steps(self) -> tuple[int, ...]:
    """The update count at each evaluation: ``eval_every, ..., num_steps``."""
    return tuple(range(self.eval_every, self.num_steps + 1, self.eval_every))
