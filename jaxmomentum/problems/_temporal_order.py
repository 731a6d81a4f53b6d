"""The two-symbol temporal-order problem (Hochreiter & Schmidhuber 1997)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxmomentum._validation import check_int
from jaxmomentum.problems._sequence import Batch
from jaxmomentum.problems._sequence import BiasesBaseline
from jaxmomentum.problems._sequence import SequenceProblem
from jaxmomentum.problems._sequence import uniform_int
from jaxmomentum.problems._sequence import uniform_pmf_at

__all__ = ["TemporalOrderProblem", "temporal_order"]


@dataclasses.dataclass(frozen=True)
class TemporalOrderProblem(SequenceProblem):
  r"""The two-symbol temporal-order problem (an optional extra).

  Layout (the 2011 release's ``temporal2``; ``f = T / 100``):

  * inputs one-hot over 8 channels: distractors 0..3 uniform at every step,
    X = 4 and Y = 5, "predict" cue 6, "start" 7;
  * start at step 0; the first symbol (X or Y) at :math:`I \in`
    ``[T // 100, T // 10]`` and the second at :math:`J \in`
    ``[40 T // 100, 50 T // 100]`` (inclusive bounds, as in the release);
  * scored step :math:`\tau` uniform on ``[T, 110 T // 100)``, cue at
    :math:`\tau - 1`; padded to ``110 T // 100`` steps;
  * target one-hot over 4 classes (XX, XY, YX, YY) at :math:`\tau`.

  Overlaps resolve as the release writes them: J over I over start over cue.
  Symbols are i.i.d. uniform (the release balances them by batch index).
  Baseline: the four classes are equally likely, so any constant errs 75%.

  Attributes:
    T: the minimum length, an integer >= 10.

  Example:
    >>> import jax
    >>> from jaxmomentum.problems import temporal_order
    >>> temporal_order(80).sample(jax.random.key(0), 3).inputs.shape
    (3, 88, 8)

  Reference:
    Hochreiter & Schmidhuber (1997), Section 5.6; Martens & Sutskever (2011).
  """
  T: int

  output_kind = "softmax"
  in_dim = 8
  out_dim = 4

  def __post_init__(self):
    object.__setattr__(self, "T", check_int("T", self.T, 10))

  @property
  def max_length(self) -> int:
    return 110 * self.T // 100

  @property
  def name(self) -> str:
    return f"temporal-order T={self.T}"

  @property
  def _ranges(self):
    t = self.T
    return ((t, self.max_length), (t // 100, t // 10 + 1),
            (40 * t // 100, 50 * t // 100 + 1))

  def sample(self, key: jax.Array, batch_size: int) -> Batch:
    """Draws ``batch_size`` fresh sequences (``batch_size`` must be static)."""
    batch_size = check_int("batch_size", batch_size, 1)
    n = self.max_length
    (last_r, first_r, second_r) = self._ranges
    u = jax.random.uniform(key, (batch_size, n + 5), jnp.float32)
    noise = uniform_int(u[:, :n], 0, 4)
    last = uniform_int(u[:, n:n + 1], *last_r)
    first = uniform_int(u[:, n + 1:n + 2], *first_r)
    second = uniform_int(u[:, n + 2:n + 3], *second_r)
    a = uniform_int(u[:, n + 3:n + 4], 0, 2)  # first symbol: X (0) or Y (1)
    b = uniform_int(u[:, n + 4:], 0, 2)
    t = jnp.arange(n)[None, :]
    cls = jnp.where(t == last - 1, 6, noise)
    cls = jnp.where(t == 0, 7, cls)
    cls = jnp.where(t == first, 4 + a, cls)
    cls = jnp.where(t == second, 4 + b, cls)
    scored = t == last
    targets = jax.nn.one_hot(2 * a + b, 4, dtype=jnp.float32)  # [B, 1, 4]
    targets = jnp.where(scored[..., None], targets, 0.0)
    return Batch(jax.nn.one_hot(cls, 8, dtype=jnp.float32),
                 targets.astype(jnp.float32), scored.astype(jnp.float32))

  @property
  def input_mean(self) -> np.ndarray:
    """Per-channel mean over all ``max_length`` padded steps, exact."""
    t = np.arange(self.max_length)
    (last_r, first_r, second_r) = self._ranges
    p_j = uniform_pmf_at(t, *second_r)
    p_i = (1 - p_j) * uniform_pmf_at(t, *first_r)
    rest = (1 - p_j) * (1 - uniform_pmf_at(t, *first_r))
    p_start = rest * (t == 0)
    rest = rest * (t != 0)
    p_cue = rest * uniform_pmf_at(t, last_r[0] - 1, last_r[1] - 1)
    p_noise = rest - p_cue
    mean = np.concatenate([
        np.repeat(p_noise.mean() / 4, 4),
        np.repeat((p_i + p_j).mean() / 2, 2),
        [p_cue.mean(), p_start.mean()],
    ])
    return mean.astype(np.float32)

  @property
  def target_mean(self) -> np.ndarray:
    return np.full(4, 0.25, np.float32)

  def biases_baseline(self) -> BiasesBaseline:
    return BiasesBaseline(0.75, 0.75, 0.0)


def temporal_order(T: int = 80) -> TemporalOrderProblem:
  """The two-symbol temporal-order problem; see :class:`TemporalOrderProblem`.

  Example:
    >>> from jaxmomentum.problems import temporal_order
    >>> temporal_order(80).out_dim
    4
  """
  return TemporalOrderProblem(T)
