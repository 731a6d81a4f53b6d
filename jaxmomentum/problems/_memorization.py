"""The noiseless memorization problem (Hochreiter & Schmidhuber 1997)."""

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

__all__ = ["MemorizationProblem", "memorization"]


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
  reproduced). Unlike the release, go and blank have their own channels (the
  release overlaps them with data channels, a bug).

  The bias-only baseline predicts blank everywhere: error :math:`n / T`.

  Attributes:
    num_symbols: :math:`n \ge 1`.
    alphabet_size: :math:`K \ge 1`.
    T: total length, an integer >= 2n + 1.

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

  output_kind = "softmax"

  def __post_init__(self):
    n = check_int("num_symbols", self.num_symbols, 1)
    k = check_int("alphabet_size", self.alphabet_size, 1)
    object.__setattr__(self, "num_symbols", n)
    object.__setattr__(self, "alphabet_size", k)
    object.__setattr__(self, "T", check_int("T", self.T, 2 * n + 1))

  @property
  def in_dim(self) -> int:
    return self.alphabet_size + 2

  @property
  def out_dim(self) -> int:
    return self.alphabet_size + 1

  @property
  def max_length(self) -> int:
    return self.T

  @property
  def name(self) -> str:
    n, k = self.num_symbols, self.alphabet_size
    return f"mem-{n}x{k} T={self.T}"

  def sample(self, key: jax.Array, batch_size: int) -> Batch:
    """Draws ``batch_size`` fresh sequences (``batch_size`` must be static)."""
    batch_size = check_int("batch_size", batch_size, 1)
    n, k, length = self.num_symbols, self.alphabet_size, self.T
    u = jax.random.uniform(key, (batch_size, n), jnp.float32)
    symbols = uniform_int(u, 0, k)
    t = np.arange(length)
    shown = jnp.pad(symbols, ((0, 0), (0, length - n)))      # data at 0..n-1
    recalled = jnp.pad(symbols, ((0, 0), (length - n, 0)))   # at T-n..T-1
    in_class = jnp.where(t < n, shown,
                         jnp.where(t == length - n - 1, k, k + 1))
    out_class = jnp.where(t >= length - n, recalled, k)
    return Batch(
        jax.nn.one_hot(in_class, k + 2, dtype=jnp.float32),
        jax.nn.one_hot(out_class, k + 1, dtype=jnp.float32),
        jnp.ones((batch_size, length), jnp.float32),
    )

  @property
  def input_mean(self) -> np.ndarray:
    """Per-channel mean over the T steps: n/(TK) per symbol, 1/T go, rest."""
    n, k, length = self.num_symbols, self.alphabet_size, self.T
    return np.array([n / (length * k)] * k + [1 / length,
                                              (length - n - 1) / length],
                    np.float32)

  @property
  def target_mean(self) -> np.ndarray:
    """Class frequencies over the T steps: n/(TK) per symbol, (T-n)/T blank."""
    n, k, length = self.num_symbols, self.alphabet_size, self.T
    return np.array([n / (length * k)] * k + [(length - n) / length],
                    np.float32)

  def biases_baseline(self) -> BiasesBaseline:
    """Blank everywhere: wrong at the n recall steps, error n / T."""
    error = self.num_symbols / self.T
    return BiasesBaseline(error, error, float(self.alphabet_size))


def memorization(num_symbols: int = 5, alphabet_size: int = 2, T: int = 200
                 ) -> MemorizationProblem:
  """The noiseless memorization problem ("mem-5", "mem-20" in Table 5).

  Args:
    num_symbols: symbols to remember, >= 1 (5 for mem-5, 10 for mem-20).
    alphabet_size: alphabet size, >= 1 (2 for mem-5, 5 for mem-20).
    T: total sequence length, >= 2 num_symbols + 1 (200 / 80 in Table 5).

  Returns:
    A :class:`MemorizationProblem`; see it for the layout.

  Example:
    >>> from jaxmomentum.problems import memorization
    >>> memorization(10, 5, 80).biases_baseline().mean_predictor_error
    0.125
  """
  return MemorizationProblem(num_symbols, alphabet_size, T)

