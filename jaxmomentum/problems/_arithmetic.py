"""The addition and multiplication problems (Hochreiter & Schmidhuber 1997)."""

from __future__ import annotations

import dataclasses
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxmomentum._validation import check_int, check_range
from jaxmomentum.problems._sequence import Batch
from jaxmomentum.problems._sequence import BiasesBaseline
from jaxmomentum.problems._sequence import check_choice
from jaxmomentum.problems._sequence import SequenceProblem
from jaxmomentum.problems._sequence import uniform_int
from jaxmomentum.problems._sequence import uniform_pmf_at

__all__ = ["ArithmeticProblem", "addition", "multiplication"]


_ARITH_TARGETS = ("sum", "average", "hochreiter", "product")
_ARITH_VALUES = ("unit", "symmetric")
_VALUE_RANGE = {"unit": (0.0, 1.0), "symmetric": (-1.0, 1.0)}
# target = alpha + beta * (X1 + X2) for the sum-type targets.
_SUM_FORMS = {"sum": (0.0, 1.0), "average": (0.0, 0.5),
              "hochreiter": (0.5, 0.25)}


@dataclasses.dataclass(frozen=True)
class ArithmeticProblem(SequenceProblem):
  r"""The addition and multiplication problems (Hochreiter & Schmidhuber, 1997).

  Sequence layout (the 2011 release; ``f = T / 100``, integer bounds):

  * target step :math:`\tau` uniform on the integers ``[T, 110 T // 100)``
    (80..87 for T=80); the sequence is :math:`\tau + 1` steps long and padded
    to ``max_length = 110 T // 100`` (88 for T=80);
  * channel 0: i.i.d. values :math:`U[lo, hi]` at every step;
  * channel 1 (marker): +1 at :math:`I \in` ``[T // 100, T // 10)`` and
    :math:`J \in` ``[T // 10, T // 2)`` (``[0, 7]`` and ``[8, 39]`` for
    T=80), -1 at step 0 (overwritten by +1 when I = 0, as in the release) and
    at the cue step :math:`\tau - 3`, 0 elsewhere;
  * target (and mask) at step :math:`\tau` only, from the two marked values
    :math:`A = x_I`, :math:`B = x_J`.

  The release's code (``M[T, b] = 1``, ``V[T - 3, b, 1] = -1`` with
  ``T = randint(T_min, T_max)``) scores step :math:`\tau` and cues three
  steps earlier, which is what is generated here (a paraphrase as "length L,
  target at L-1, cue at L-3" is one step off).

  Target forms and value ranges, side by side:

  ==============  =======================  ================  ==============
  ``target``      target                   default values    source
  ==============  =======================  ================  ==============
  ``sum``         :math:`A + B`            U[0, 1]           2011 release
  ``average``     :math:`(A + B) / 2`      U[0, 1]           later generators
  ``hochreiter``  :math:`0.5 + (A + B)/4`  U[-1, 1]          H&S (1997)
  ``product``     :math:`A B`              U[0, 1]           2011 release
  ==============  =======================  ================  ==============

  ``values="symmetric"`` draws U[-1, 1] (for ``product``, the harder
  XOR-like variant). Only the values and the target differ between variants;
  the marker layout is the 2011 release's throughout.

  Attributes:
    T: the length parameter, an integer >= 10 (80 in Table 5); the scored
      step is at least T.
    target: ``"sum"``, ``"average"``, ``"hochreiter"`` or ``"product"``.
    values: ``"unit"`` (U[0, 1]) or ``"symmetric"`` (U[-1, 1]).
    tolerance: zero-one threshold on ``|output - target|``, >= 0 (0.04).

  Example:
    >>> import jax
    >>> from jaxmomentum.problems import addition
    >>> problem = addition(80)
    >>> batch = jax.jit(lambda k: problem.sample(k, 100))(jax.random.key(0))
    >>> batch.inputs.shape, batch.targets.shape, batch.mask.shape
    ((100, 88, 2), (100, 88, 1), (100, 88))

  Reference:
    Hochreiter & Schmidhuber (1997), Sections 5.4-5.5; Martens & Sutskever
    (2011); Sutskever et al. (2013), Section 4 and Table 5.
  """
  T: int
  target: str = "sum"
  values: str = "unit"
  tolerance: float = 0.04

  output_kind = "linear"
  in_dim = 2
  out_dim = 1

  def __post_init__(self):
    object.__setattr__(self, "T", check_int("T", self.T, 10))
    check_choice("target", self.target, _ARITH_TARGETS)
    check_choice("values", self.values, _ARITH_VALUES)
    check_range("tolerance", self.tolerance, 0.0)

  # Positions, in integer arithmetic (f = T / 100).
  @property
  def max_length(self) -> int:
    """Padded sequence length, ``110 T // 100``."""
    return 110 * self.T // 100

  @property
  def target_step_range(self) -> tuple[int, int]:
    """Half-open range ``[T, 110 T // 100)`` of the scored step."""
    return self.T, self.max_length

  @property
  def first_marker_range(self) -> tuple[int, int]:
    """Half-open range ``[T // 100, T // 10)`` of the first marked step."""
    return self.T // 100, self.T // 10

  @property
  def second_marker_range(self) -> tuple[int, int]:
    """Half-open range ``[T // 10, T // 2)`` of the second marked step."""
    return self.T // 10, 50 * self.T // 100

  @property
  def name(self) -> str:
    kind = "mul" if self.target == "product" else "add"
    default = ("product" if kind == "mul" else "sum", "unit")
    name = f"{kind} T={self.T}"
    if (self.target, self.values) != default:
      lo, hi = _VALUE_RANGE[self.values]
      name += f" [target={self.target}, values=U[{lo:g},{hi:g}]]"
    return name

  def _combine(self, a, b):
    if self.target == "product":
      return a * b
    alpha, beta = _SUM_FORMS[self.target]
    return alpha + beta * (a + b)

  def sample(self, key: jax.Array, batch_size: int) -> Batch:
    """Draws ``batch_size`` fresh sequences (``batch_size`` must be static)."""
    batch_size = check_int("batch_size", batch_size, 1)
    n = self.max_length
    u = jax.random.uniform(key, (batch_size, n + 3), jnp.float32)
    lo, hi = _VALUE_RANGE[self.values]
    values = lo + (hi - lo) * u[:, :n]
    last = uniform_int(u[:, n:n + 1], *self.target_step_range)
    first = uniform_int(u[:, n + 1:n + 2], *self.first_marker_range)
    second = uniform_int(u[:, n + 2:], *self.second_marker_range)
    t = jnp.arange(n, dtype=first.dtype)[None, :]  # int32 under x64 too
    marked = (t == first) | (t == second)
    marker = jnp.where(t == last - 3, -1,
                       jnp.where(marked, 1, jnp.where(t == 0, -1, 0)))
    a = jnp.take_along_axis(values, first, axis=1)
    b = jnp.take_along_axis(values, second, axis=1)
    scored = t == last
    targets = jnp.where(scored, self._combine(a, b), 0.0)
    inputs = jnp.stack([values, marker.astype(jnp.float32)], axis=-1)
    return Batch(inputs, targets[..., None].astype(jnp.float32),
                 scored.astype(jnp.float32))

  @property
  def input_mean(self) -> np.ndarray:
    """Per-channel mean over all ``max_length`` padded steps, exact.

    Channel 0: the value mean :math:`(lo + hi) / 2`. Channel 1: the marker's
    expectation averaged over steps, from the uniform laws of I, J and
    :math:`\\tau` (the cue overrides a +1 marker, which overrides the -1 at
    step 0).
    """
    t = np.arange(self.max_length)
    p_first = uniform_pmf_at(t, *self.first_marker_range)
    p_second = uniform_pmf_at(t, *self.second_marker_range)
    low, high = self.target_step_range
    p_cue = uniform_pmf_at(t, low - 3, high - 3)
    p_marked = p_first + p_second - p_first * p_second
    marker = -p_cue + (1 - p_cue) * (p_marked - (1 - p_marked) * (t == 0))
    lo, hi = _VALUE_RANGE[self.values]
    return np.array([(lo + hi) / 2, marker.mean()], np.float32)

  @property
  def target_mean(self) -> np.ndarray:
    """Mean target at the scored step, ``[out_dim]``, exact."""
    lo, hi = _VALUE_RANGE[self.values]
    m = (lo + hi) / 2
    if self.target == "product":
      return np.array([m * m], np.float32)
    alpha, beta = _SUM_FORMS[self.target]
    return np.array([alpha + 2 * beta * m], np.float32)

  def target_cdf(self, y: np.ndarray) -> np.ndarray:
    r"""Closed-form CDF :math:`P(\text{target} \le y)` (numpy, float64).

    Sum-type targets are affine in :math:`S = A + B`, whose law is triangular
    on :math:`[2 lo, 2 hi]`. For the product of two U[0, 1]:
    :math:`P(AB \le z) = z (1 - \ln z)`; for U[-1, 1] the law is symmetric
    with :math:`P(|AB| \le z) = z (1 - \ln z)`.
    """
    y = np.asarray(y, np.float64)
    lo, hi = _VALUE_RANGE[self.values]

    def g(z):  # P(UV <= z) for U, V ~ U[0, 1], z in [0, 1]
      safe = np.where(z > 0, z, 1.0)
      return np.where(z > 0, z * (1.0 - np.log(safe)), 0.0)

    if self.target == "product":
      if lo == 0.0:
        return g(np.clip(y, 0.0, 1.0))
      return 0.5 + 0.5 * np.sign(y) * g(np.clip(np.abs(y), 0.0, 1.0))
    alpha, beta = _SUM_FORMS[self.target]
    u = np.clip(((y - alpha) / beta - 2 * lo) / (hi - lo), 0.0, 2.0)
    return np.where(u <= 1.0, u * u / 2, 1.0 - (2.0 - u) ** 2 / 2)

  def biases_baseline(self) -> BiasesBaseline:
    """Error of a constant output, from the closed-form target CDF.

    ``mean_predictor_error`` = :math:`1 - P(|y - \\bar y| \\le tol)` with
    :math:`\\bar y` the target mean (what a bias-only model converges to under
    squared error); ``best_constant_error`` minimizes over the constant by a
    dense grid on the target's support, refined once (accurate to ~1e-9).
    """
    tol = float(self.tolerance)

    def hit(c):
      return self.target_cdf(c + tol) - self.target_cdf(c - tol)

    mean = float(self.target_mean[0])
    support = self._support()
    grid = np.linspace(*support, 200_001)
    c = grid[np.argmax(hit(grid))]
    step = grid[1] - grid[0]
    fine = np.linspace(c - step, c + step, 20_001)
    c = float(fine[np.argmax(hit(fine))])
    return BiasesBaseline(
        mean_predictor_error=float(1.0 - hit(mean)),
        best_constant_error=float(1.0 - hit(c)),
        best_constant=c,
    )

  def _support(self) -> tuple[float, float]:
    lo, hi = _VALUE_RANGE[self.values]
    if self.target == "product":
      corners = [lo * lo, lo * hi, hi * hi]
      return min(corners), max(corners)
    alpha, beta = _SUM_FORMS[self.target]
    return alpha + 2 * beta * lo, alpha + 2 * beta * hi


def addition(T: int = 80, *, target: str = "sum",
             values: Optional[str] = None) -> ArithmeticProblem:
  """The addition problem ("add T=80" in Table 5).

  Args:
    T: minimum sequence length, an integer >= 10.
    target: ``"sum"`` (A + B, the 2011 release, default), ``"average"``
      ((A + B) / 2) or ``"hochreiter"`` (0.5 + (A + B) / 4).
    values: ``"unit"`` (U[0, 1]) or ``"symmetric"`` (U[-1, 1]); ``None``
      picks the variant's own: U[-1, 1] for ``"hochreiter"``, else U[0, 1].

  Returns:
    An :class:`ArithmeticProblem`; see it for the layout.

  Example:
    >>> from jaxmomentum.problems import addition
    >>> round(addition(80).biases_baseline().mean_predictor_error, 4)
    0.9216
  """
  check_choice("target", target, ("sum", "average", "hochreiter"))
  if values is None:
    values = "symmetric" if target == "hochreiter" else "unit"
  return ArithmeticProblem(T, target=target, values=values)


def multiplication(T: int = 80, *, values: str = "unit") -> ArithmeticProblem:
  """The multiplication problem ("mul T=80" in Table 5), target A * B.

  Args:
    T: minimum sequence length, an integer >= 10.
    values: ``"unit"`` (U[0, 1], the 2011 release and H&S 1997, default) or
      ``"symmetric"`` (U[-1, 1]).

  Example:
    >>> from jaxmomentum.problems import multiplication
    >>> float(multiplication(80).target_mean[0])
    0.25
  """
  return ArithmeticProblem(T, target="product", values=values)

