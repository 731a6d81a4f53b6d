"""The noiseless memorization problem (Hochreiter & Schmidhuber 1997)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxmomentum._validation import check_int
from jaxmomentum.problems._sequence import Batch
from jaxmomentum.problems._sequence import BiasesBaseline
from jaxmomentum.problems._sequence import check_choice
from jaxmomentum.problems._sequence import SequenceProblem
from jaxmomentum.problems._sequence import uniform_int

__all__ = ["MEMORIZATION_CHANNELS", "MemorizationProblem", "memorization"]

# The layouts: go and blank on channels of their own, or on the last two
# symbols' channels (the 2011 release).
MEMORIZATION_CHANNELS = ("separate", "overlapping")


@dataclasses.dataclass(frozen=True)
class MemorizationProblem(SequenceProblem):
  r"""Noiseless memorization: recall ``num_symbols`` symbols after a delay.

  With :math:`n` = ``num_symbols``, :math:`K` = ``alphabet_size``, total
  length ``T`` (no padding: every sequence has length T):

  * inputs, one-hot over :math:`K + 2` channels (symbols :math:`0..K-1`,
    "go" :math:`K`, "blank" :math:`K + 1`): steps :math:`0..n-1` carry the
    data symbols, step :math:`T - n - 1` carries go, all others blank;
  * targets, one-hot over :math:`K + 1` channels (symbols, "blank" :math:`K`):
    blank at steps :math:`0..T-n-1`, the data symbols in order at steps
    :math:`T-n..T-1`;
  * mask: every step (softmax cross-entropy and argmax error at every step).

  Data symbols are i.i.d. uniform (the 2011 release enumerates all
  :math:`K^n` strings when the batch has exactly that many sequences; not
  reproduced).

  ``channels="overlapping"`` is the 2011 HF-RNN release's layout
  (``raw_mem`` in ``opt/d/seq/utils``): :math:`K` input and output channels
  only, blank is the last symbol's channel and go the one before
  (:math:`K \ge 2`). Blank-everywhere is then right whenever the recalled
  symbol is :math:`K - 1`: :math:`n (K - 1) / K` wrong steps per sequence,
  2.5 for mem-5 and 8.0 for mem-20, exactly Table 5's "biases" values,
  which the separate layout (5 and 10) does not give: the paper most likely
  used the overlapping layout.

  The bias-only baseline predicts blank everywhere: error :math:`n / T`
  (overlapping: :math:`n (K - 1) / (K T)`).

  Attributes:
    num_symbols: :math:`n \ge 1`.
    alphabet_size: :math:`K \ge 1` (:math:`\ge 2` when overlapping).
    T: total length, an integer >= 2n + 1.
    channels: ``"separate"`` (default: :math:`K + 2` input and :math:`K + 1`
      output channels) or ``"overlapping"`` (the 2011 release: :math:`K`
      each, go and blank on the last two symbols' channels).

  Example:
    >>> import jax
    >>> from jaxmomentum.problems import memorization
    >>> batch = memorization(5, 2, 200).sample(jax.random.key(0), 4)
    >>> batch.inputs.shape, batch.targets.shape
    ((4, 200, 4), (4, 200, 3))

  Reference:
    Hochreiter & Schmidhuber (1997), Section 5.2 (noise-free long time lag);
    Martens & Sutskever (2011); Sutskever et al. (2013), Table 5.
  """
  num_symbols: int
  alphabet_size: int
  T: int
  channels: str = "separate"

  output_kind = "softmax"

  def __post_init__(self):
    n = check_int("num_symbols", self.num_symbols, 1)
    check_choice("channels", self.channels, MEMORIZATION_CHANNELS)
    k = check_int("alphabet_size", self.alphabet_size,
                  2 if self._overlapping else 1)
    object.__setattr__(self, "num_symbols", n)
    object.__setattr__(self, "alphabet_size", k)
    object.__setattr__(self, "T", check_int("T", self.T, 2 * n + 1))

  @property
  def _overlapping(self) -> bool:
    return self.channels == "overlapping"

  @property
  def _go_blank(self) -> tuple[int, int]:
    k = self.alphabet_size
    return (k - 2, k - 1) if self._overlapping else (k, k + 1)

  @property
  def in_dim(self) -> int:
    return self.alphabet_size + (0 if self._overlapping else 2)

  @property
  def out_dim(self) -> int:
    return self.alphabet_size + (0 if self._overlapping else 1)

  @property
  def max_length(self) -> int:
    return self.T

  @property
  def name(self) -> str:
    n, k = self.num_symbols, self.alphabet_size
    suffix = ", overlapping" if self._overlapping else ""
    return f"mem-{n}x{k} T={self.T}{suffix}"

  def sample(self, key: jax.Array, batch_size: int) -> Batch:
    """Draws ``batch_size`` fresh sequences (``batch_size`` must be static)."""
    batch_size = check_int("batch_size", batch_size, 1)
    n, k, length = self.num_symbols, self.alphabet_size, self.T
    u = jax.random.uniform(key, (batch_size, n), jnp.float32)
    symbols = uniform_int(u, 0, k)
    t = np.arange(length)
    shown = jnp.pad(symbols, ((0, 0), (0, length - n)))      # data at 0..n-1
    recalled = jnp.pad(symbols, ((0, 0), (length - n, 0)))   # at T-n..T-1
    go, blank = self._go_blank
    in_class = jnp.where(t < n, shown,
                         jnp.where(t == length - n - 1, go, blank))
    out_class = jnp.where(t >= length - n, recalled, self.out_dim - 1)
    return Batch(
        jax.nn.one_hot(in_class, self.in_dim, dtype=jnp.float32),
        jax.nn.one_hot(out_class, self.out_dim, dtype=jnp.float32),
        jnp.ones((batch_size, length), jnp.float32),
    )

  @property
  def input_mean(self) -> np.ndarray:
    """Per-channel mean over the T steps: n/(TK) per symbol, 1/T go, rest."""
    n, k, length = self.num_symbols, self.alphabet_size, self.T
    mean = np.zeros(self.in_dim)
    mean[:k] = n / (length * k)
    go, blank = self._go_blank
    mean[go] += 1 / length
    mean[blank] += (length - n - 1) / length
    return mean.astype(np.float32)

  @property
  def target_mean(self) -> np.ndarray:
    """Class frequencies over the T steps: n/(TK) per symbol, (T-n)/T blank."""
    n, k, length = self.num_symbols, self.alphabet_size, self.T
    mean = np.zeros(self.out_dim)
    mean[:k] = n / (length * k)
    mean[-1] += (length - n) / length
    return mean.astype(np.float32)

  def timing_only_loss(self) -> float:
    r"""The lowest step-mean cross-entropy without the symbols:
    :math:`(n/T)\ln K`, that of a model answering blank at the right steps
    and a uniform guess over the K symbols at the n recall steps. A loss
    below it means the remembered symbols reach the answers (Table 5's
    mem rows leave their timing plateau).

    Example:
      >>> from jaxmomentum.problems import memorization
      >>> round(memorization(10, 5, 80).timing_only_loss(), 4)
      0.2012
    """
    n, k = self.num_symbols, self.alphabet_size
    return n / self.T * float(np.log(k))

  def biases_baseline(self) -> BiasesBaseline:
    """Blank everywhere: wrong at the n recall steps (overlapping: at the
    (K-1)/K of them that do not recall the blank channel's symbol)."""
    n, k = self.num_symbols, self.alphabet_size
    wrong = n * (k - 1) / k if self._overlapping else n
    error = wrong / self.T
    return BiasesBaseline(error, error, float(self.out_dim - 1))


def memorization(num_symbols: int = 5, alphabet_size: int = 2, T: int = 200,
                 *, channels: str = "separate") -> MemorizationProblem:
  """The noiseless memorization problem ("mem-5", "mem-20" in Table 5).

  Args:
    num_symbols: symbols to remember, >= 1 (5 for mem-5, 10 for mem-20).
    alphabet_size: alphabet size, >= 1 (2 for mem-5, 5 for mem-20).
    T: total sequence length, >= 2 num_symbols + 1 (200 / 80 in Table 5).
    channels: ``"separate"`` (default) or ``"overlapping"`` (the 2011
      release's layout; see :class:`MemorizationProblem`).

  Returns:
    A :class:`MemorizationProblem`; see it for the layout.

  Example:
    >>> from jaxmomentum.problems import memorization
    >>> memorization(10, 5, 80).biases_baseline().mean_predictor_error
    0.125
    >>> memorization(10, 5, 80, channels="overlapping").biases_baseline(
    ...     ).mean_predictor_error * 80   # wrong steps per sequence
    8.0
  """
  return MemorizationProblem(num_symbols, alphabet_size, T, channels=channels)

