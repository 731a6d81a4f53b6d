r"""Sparse and echo-state initializers for JAX and Flax.

Every initializer here is a *builder*: ``sparse(...)`` returns a function
``init(key, shape, dtype=None) -> jax.Array``, so it can be passed as
``kernel_init=`` to ``flax.linen.Dense`` or ``flax.nnx.Linear`` alike (both call
``init(key, shape, param_dtype)``). Shapes are static, so every initializer
works under ``jax.jit`` and ``jax.vmap`` (over keys, and over ``scale`` /
``spectral_radius`` given as arrays).

Kernel layout is Flax's ``(fan_in, fan_out)``: a unit's *incoming* weights are a
column, and a layer computes ``x @ kernel``.

What this module adds (no JAX or Flax library ships these):

* :func:`sparse`: Martens' (2010) sparse initialization (SI), exactly
  ``min(num_connections, fan_in)`` nonzero incoming weights per unit;
  :func:`sparse_layer` pairs it with the bias of the logistic or tanh variant
  (Section 3.1 of Sutskever et al. 2013).
* :func:`echo_state`: a sparse square matrix rescaled to a given spectral
  radius (Section 4.1), computed by :func:`estimate_spectral_radius`, which
  uses only matrix products (works under ``jit`` on CPU, GPU and TPU).

Dense Gaussian, Glorot/Xavier, He/Kaiming, LeCun and orthogonal
initializations are ``jax.nn.initializers.normal``, ``glorot_normal``,
``he_normal``, ``lecun_normal`` and ``orthogonal``; constants are
``jax.nn.initializers.constant``. They are reused here, not rewritten.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Literal, Protocol, Sequence

import chex
import jax
from jax import lax
import jax.numpy as jnp

from jaxmomentum import _moved
from jaxmomentum._spectral import estimate_spectral_radius
from jaxmomentum._validation import check_int, check_scalar

__all__ = [
    "Initializer",
    "LayerInit",
    "TANH_BIAS",
    "TANH_WEIGHT_SCALE",
    "echo_state",
    "estimate_spectral_radius",
    "sparse",
    "sparse_layer",
]

# Section 3.1: "When using tanh units, we transform the weights to simulate
# sigmoid units by setting the biases to 0.5 and rescaling the weights by 0.25."
TANH_WEIGHT_SCALE = 0.25
TANH_BIAS = 0.5

# The RNN's Table 4 recipe moved to jaxmomentum.reproduce.paper (and its
# RNNInit to jaxmomentum.models); the old names still resolve, with a warning.
__getattr__ = _moved.forwarder(__name__, {
    "RNNInit": ("jaxmomentum.models", "RNNInit", None),
    **{name: ("jaxmomentum.reproduce.paper", name, None) for name in (
        "table4_rnn_init", "TABLE4_INPUT_SCALE_ADD_MUL",
        "TABLE4_INPUT_SCALE_MEMORIZATION")}})


class Initializer(Protocol):
  """``init(key, shape, dtype=None) -> jax.Array`` (``jax.nn.initializers``)."""

  def __call__(self, key: jax.Array, shape: Sequence[int],
               dtype: Any = None) -> jax.Array:
    ...


def _float_dtype(dtype: Any) -> Any:
  """``dtype`` checked to be floating; ``None`` is the default float dtype."""
  if dtype is None:
    return jnp.result_type(float)
  dtype = jax.dtypes.canonicalize_dtype(dtype)
  if not jnp.issubdtype(dtype, jnp.floating):
    raise TypeError(f"dtype must be a floating dtype, got {dtype}")
  return dtype


def _check_shape(shape: Sequence[int]) -> tuple[int, ...]:
  try:
    shape = tuple(int(d) for d in shape)
  except TypeError as err:
    raise TypeError(f"shape must be a sequence of ints, got {shape!r}") from err
  if any(d < 0 for d in shape):
    raise ValueError(f"shape must have nonnegative sizes, got {shape}")
  return shape


def _normal_from_bits(bits: jax.Array, dtype: Any) -> jax.Array:
  """N(0, 1) from uint32 bits, by the inverse CDF as ``jax.random.normal``.

  The top 23 bits ``i`` give ``u = (2 i + 1) / 2**23 - 1``, uniform over odd
  multiples of ``2**-23`` in (-1, 1) (exact in float32, never 0 or ±1), and
  ``sqrt(2) * erfinv(u)`` is standard normal and never exactly 0, so a drawn
  weight is never a zero that would break the exact fan-in.
  """
  odd = ((bits >> 9) * 2 + 1).astype(jnp.float32)
  u = odd * jnp.float32(2.0 ** -23) - 1
  return (jnp.sqrt(jnp.float32(2)) * lax.erf_inv(u)).astype(dtype)


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4, 5))
def _sparse_columns(key: jax.Array, batch: int, fan_in: int, fan_out: int,
                    num_connections: int, dtype: Any) -> jax.Array:
  """``[batch, fan_in, fan_out]``, N(0, 1) at ``k`` distinct rows per column.

  The rows of every column are the ``k = min(num_connections, fan_in)``
  largest of ``fan_in`` i.i.d. random keys, i.e. a uniformly random
  ``k``-subset. The keys are 30 random bits offset into the bit patterns of
  the normal (not subnormal, which may be flushed to zero) positive float32s,
  whose order is the order of their bit patterns: ``lax.top_k`` is fast on
  floats (on CPU, ~50x faster than on uint32), and a 30-bit key makes ties at
  the cut, the only source of bias, a ~``fan_in / 2**30`` event per column.
  The keys and
  the values come from one draw of random bits (one threefry to compile
  instead of two: compiling a model's init is dominated by them on CPU).
  """
  k = min(num_connections, fan_in)
  bits = jax.random.bits(key, (batch, fan_out, fan_in + k), jnp.uint32)
  noise = lax.bitcast_convert_type(
      (bits[..., :fan_in] >> 2) + jnp.uint32(0x00800000), jnp.float32)
  _, rows = lax.top_k(noise, k)                            # [batch, out, k]
  values = _normal_from_bits(bits[..., fan_in:], dtype)    # [batch, out, k]
  b = jnp.arange(batch)[:, None, None]
  o = jnp.arange(fan_out)[None, :, None]
  w = jnp.zeros((batch, fan_in, fan_out), dtype)
  return w.at[b, rows, o].set(values, unique_indices=True)


def sparse(num_connections: int = 15, scale: chex.Numeric = 1.0, *,
           batch_axis: Sequence[int] = ()) -> Initializer:
  r"""Martens' sparse initialization (SI): a fixed number of inputs per unit.

  The last axis of ``shape`` indexes the output units; the axes in
  ``batch_axis`` index independent stacked matrices; all other axes together
  are the unit's inputs (``fan_in`` is the product of their sizes, as for a
  convolution kernel ``(h, w, in, out)``). For every output unit ``j``
  (and every stacked matrix), a set :math:`S_j` of
  :math:`k = \min(\text{num\_connections}, \text{fan\_in})` distinct inputs
  is drawn uniformly at random, and

  .. math::

    W_{ij} = \begin{cases} \text{scale} \cdot z_{ij}, & i \in S_j,\\
    0, & \text{otherwise,} \end{cases} \qquad z_{ij} \sim \mathcal{N}(0, 1)
    \text{ i.i.d.}

  So the total input to a unit does not grow with the size of the previous
  layer (a unit sees 15 inputs whether the layer below has 30 or 2000 units).
  This is not ``torch.nn.init.sparse_``, which zeroes a *fraction* of each
  column of a dense Gaussian matrix. Use it for logistic networks (scale 1,
  biases zero, Sutskever et al. 2013, Table 3 varies the scale over
  0.25..4); for tanh units see :func:`sparse_layer`.

  Fully vectorised: the rows are the top ``k`` of random keys per column
  (``lax.top_k``) and the values are scattered in one op, with no Python
  loop; a ``2000 x 1000`` kernel takes ~0.06 s on a 2-core CPU (jitted).

  Args:
    num_connections: nonzero incoming weights per unit, an integer ``>= 1``
      (15 in Martens 2010); every input is connected when ``fan_in`` is
      smaller.
    scale: standard deviation of the nonzero weights, ``> 0``; a float, or an
      array under ``jit``/``vmap`` (then unchecked).
    batch_axis: axes of ``shape`` holding independent matrices (e.g. ``(0,)``
      for a stack ``(layers, fan_in, fan_out)``); must not contain the last
      axis and must leave at least one input axis.

  Returns:
    ``init(key, shape, dtype=None)``; ``shape`` needs at least two axes and
    ``dtype`` (default: the default float dtype) must be floating.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from jaxmomentum import initializers
    >>> w = initializers.sparse(15)(jax.random.key(0), (784, 400))
    >>> (w != 0).sum(axis=0).min().item(), (w != 0).sum(axis=0).max().item()
    (15, 15)
    >>> import flax.linen as nn
    >>> layer = nn.Dense(400, kernel_init=initializers.sparse(15))

  Reference:
    J. Martens, *Deep learning via Hessian-free optimization*, ICML 2010,
    Section 5 ("sparse initialization"); Sutskever et al. (2013), Section 3.1.
  """
  num_connections = check_int("num_connections", num_connections, 1)
  check_scalar("scale", scale, 0.0, low_open=True)
  batch_axis = tuple(int(a) for a in batch_axis)

  def init(key: jax.Array, shape: Sequence[int], dtype: Any = None
           ) -> jax.Array:
    shape = _check_shape(shape)
    dtype = _float_dtype(dtype)
    ndim = len(shape)
    if ndim < 2:
      raise ValueError(
          "shape must have at least 2 axes (fan_in..., fan_out) for sparse "
          f"initialization, got {shape}")
    batch = sorted({a % ndim for a in batch_axis if -ndim <= a < ndim})
    if (len(batch) != len(batch_axis) or ndim - 1 in batch
        or len(batch) > ndim - 2):
      raise ValueError(
          f"batch_axis must name distinct axes of shape {shape} other than "
          f"the last (output) axis, leaving at least one input axis; got "
          f"{batch_axis}")
    fan_axes = [a for a in range(ndim - 1) if a not in batch]
    perm = batch + fan_axes + [ndim - 1]
    n_batch = math.prod(shape[a] for a in batch)
    fan_in = math.prod(shape[a] for a in fan_axes)
    fan_out = shape[-1]
    if n_batch * fan_in * fan_out == 0:
      return jnp.zeros(shape, dtype)
    w = _sparse_columns(key, n_batch, fan_in, fan_out, num_connections,
                        jnp.dtype(dtype))
    w = w * jnp.asarray(scale, dtype)
    w = w.reshape([shape[a] for a in perm])
    return jnp.transpose(w, [perm.index(a) for a in range(ndim)])

  return init


@dataclasses.dataclass(frozen=True)
class LayerInit:
  """A kernel and a bias initializer that belong together.

  Attributes:
    kernel_init: initializer of the ``(fan_in, fan_out)`` kernel.
    bias_init: initializer of the ``(fan_out,)`` bias.
  """

  kernel_init: Initializer
  bias_init: Initializer


def sparse_layer(num_connections: int = 15, scale: chex.Numeric = 1.0, *,
                 activation: Literal["logistic", "tanh"] = "logistic"
                 ) -> LayerInit:
  r"""SI for a whole layer: the kernel and bias of Section 3.1.

  * ``"logistic"``: kernel :func:`sparse` ``(num_connections, scale)``, bias 0.
  * ``"tanh"``: kernel :func:`sparse` ``(num_connections, 0.25 * scale)``,
    bias 0.5 (:data:`TANH_WEIGHT_SCALE`, :data:`TANH_BIAS`): "when using tanh
    units, we transform the weights to simulate sigmoid units by setting the
    biases to 0.5 and rescaling the weights by 0.25" (Section 3.1). Since
    :math:`\sigma(x) = \tfrac12 + \tfrac12\tanh(x/2)`, the factor 1/4 keeps a
    tanh unit's slope at its input (:math:`0.25\tanh'(0) = \sigma'(0)`) equal
    to a logistic unit's.

  Args:
    num_connections: nonzero incoming weights per unit, ``>= 1``.
    scale: the SI scale, ``> 0`` (1 is the default for logistic units).
    activation: ``"logistic"`` or ``"tanh"``.

  Returns:
    A :class:`LayerInit`.

  Example:
    >>> import flax.linen as nn
    >>> from jaxmomentum import initializers
    >>> si = initializers.sparse_layer(activation="tanh")
    >>> layer = nn.Dense(100, kernel_init=si.kernel_init,
    ...                  bias_init=si.bias_init)

  Reference:
    Sutskever et al. (2013), Section 3.1; Martens (2010).
  """
  if activation == "logistic":
    return LayerInit(sparse(num_connections, scale),
                     jax.nn.initializers.zeros)
  if activation == "tanh":
    check_scalar("scale", scale, 0.0, low_open=True)
    return LayerInit(sparse(num_connections, TANH_WEIGHT_SCALE * scale),
                     jax.nn.initializers.constant(TANH_BIAS))
  raise ValueError(
      f"activation must be 'logistic' or 'tanh', got {activation!r}")


def echo_state(spectral_radius: chex.Numeric = 1.1, num_connections: int = 15,
               *, num_squarings: int = 24) -> Initializer:
  r"""A sparse recurrent matrix rescaled to a given spectral radius.

  Draws :math:`W_0` = :func:`sparse` ``(num_connections)`` (each unit gets
  exactly ``min(num_connections, n)`` nonzero N(0, 1) incoming weights, i.e.
  per column in the ``h @ W`` layout) and returns

  .. math::

    W = \frac{\rho^\star}{\rho(W_0)} W_0, \qquad \rho(W) = \rho^\star
    = \text{spectral\_radius},

  with :math:`\rho(W_0)` from :func:`estimate_spectral_radius` (relative
  error ≤ 1e-6 in float32, so :math:`|\rho(W)/\rho^\star - 1| \le 10^{-4}`
  with a wide margin). Jaeger & Haas argue that a radius slightly above 1
  keeps the hidden dynamics rich (oscillatory) without strongly exploding
  gradients; the paper uses 1.1 with 15 connections (Table 4).

  :math:`\rho(W_0) > 0` almost surely: every unit has an incoming connection,
  so the connection graph has a cycle. Works under ``jit`` on CPU, GPU and
  TPU (no ``eigvals``); the cost is ``num_squarings`` ``n x n`` matrix
  products (about a millisecond for ``n = 100``).

  Args:
    spectral_radius: target radius :math:`\rho^\star > 0` (a float, or an
      array under ``jit``/``vmap``).
    num_connections: nonzero incoming weights per unit, ``>= 1``.
    num_squarings: accuracy of the radius estimate, ``>= 1``.

  Returns:
    ``init(key, shape, dtype=None)`` for a square ``shape`` ``(n, n)``, or
    ``(..., n, n)`` for independent stacked matrices. The radius is computed
    in float32 (float64 if ``dtype`` is) and the result cast to ``dtype``.

  Example:
    >>> import jax, numpy as np
    >>> from jaxmomentum import initializers
    >>> w = jax.jit(initializers.echo_state(1.1), static_argnums=1)(
    ...     jax.random.key(0), (100, 100))
    >>> round(float(np.abs(np.linalg.eigvals(np.asarray(w))).max()), 4)
    1.1

  References:
    H. Jaeger & H. Haas, *Harnessing nonlinearity*, Science 304 (2004);
    Sutskever et al. (2013), Section 4.1 and Table 4.
  """
  check_scalar("spectral_radius", spectral_radius, 0.0, low_open=True)
  num_connections = check_int("num_connections", num_connections, 1)
  num_squarings = check_int("num_squarings", num_squarings, 1)

  def init(key: jax.Array, shape: Sequence[int], dtype: Any = None
           ) -> jax.Array:
    shape = _check_shape(shape)
    dtype = _float_dtype(dtype)
    if len(shape) < 2 or shape[-1] != shape[-2]:
      raise ValueError(
          "shape must be square, (n, n) or (..., n, n), for an echo-state "
          f"recurrent matrix; got {shape}")
    compute = jnp.float64 if dtype == jnp.float64 else jnp.float32
    w = sparse(num_connections, batch_axis=tuple(range(len(shape) - 2)))(
        key, shape, compute)
    if w.size == 0:
      return w.astype(dtype)
    rho = estimate_spectral_radius(w, num_squarings)
    factor = jnp.asarray(spectral_radius, compute) / rho
    return (w * factor[..., None, None]).astype(dtype)

  return init
