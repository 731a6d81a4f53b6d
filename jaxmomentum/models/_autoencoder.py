"""The deep autoencoders of Section 3 (Table 1), sparse-initialized."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxmomentum import initializers
from jaxmomentum._validation import check_int, check_scalar


@dataclasses.dataclass(frozen=True)
class AutoencoderArchitecture:
  """The layer sizes and output units of a deep autoencoder.

  Attributes:
    name: a label (e.g. ``"mnist"``).
    encoder_sizes: the input dimension, the hidden layer sizes and the code
      size, e.g. ``(784, 1000, 500, 250, 30)``; the decoder mirrors it.
    output: ``"logistic"`` (pixels in [0, 1], cross-entropy) or ``"linear"``
      (real-valued, squared error).
  """

  name: str
  encoder_sizes: tuple[int, ...]
  output: Literal["logistic", "linear"]

  def __post_init__(self):
    if len(self.encoder_sizes) < 2:
      raise ValueError(
          "encoder_sizes must list at least the input and the code size, got "
          f"{self.encoder_sizes!r}")
    for size in self.encoder_sizes:
      check_int("encoder_sizes", size, 1)
    if self.output not in ("logistic", "linear"):
      raise ValueError(
          f"output must be 'logistic' or 'linear', got {self.output!r}")

  @property
  def input_dim(self) -> int:
    return self.encoder_sizes[0]

  @property
  def code_dim(self) -> int:
    return self.encoder_sizes[-1]

  @property
  def layer_sizes(self) -> tuple[int, ...]:
    """All layer widths, encoder then mirrored decoder (input to output)."""
    return self.encoder_sizes + self.encoder_sizes[-2::-1]


class DeepAutoencoder(nn.Module):
  r"""A deep autoencoder with logistic hidden units and SI (Section 3).

  For encoder sizes :math:`d_0, \ldots, d_L` the network is the chain of
  :math:`2L` affine layers :math:`d_0 \to \cdots \to d_L \to \cdots \to d_0`
  (untied weights: the decoder has its own parameters):

  .. math::

    h_{l} = \sigma(h_{l-1} W_l + b_l)\ \text{(hidden layers)},\qquad
    c = h_{L-1} W_L + b_L\ \text{(linear code)},

  and the output layer is logistic, :math:`\sigma(\cdot)`, or linear, as the
  architecture says. Every kernel is :func:`jaxmomentum.initializers.sparse`
  with ``num_connections`` (15) nonzero incoming weights per unit drawn
  :math:`\mathcal{N}(0, 1)\cdot` ``init_scale``; all biases are zero.

  The paper's three architectures (Table 1) are
  :data:`jaxmomentum.reproduce.paper.TABLE1_ARCHITECTURES`.

  **What the SI scale does (Table 3).** Measured at init on the MNIST
  architecture
  with 64 uniform [0, 1] inputs, mean of seeds 0 and 1
  (``pytest -s tests/test_models.py -k si_scale`` prints it). "std h_l": the
  spread over inputs of a hidden unit's activation, averaged over the units
  of hidden layer l (h1-h3 encoder, h6 the last decoder layer); "std code",
  "std output": the same for the linear code and the output; "saturated":
  the fraction of hidden units with :math:`\sigma \notin [0.01, 0.99]`;
  :math:`|\nabla W_1|`: the norm of the gradient of the summed squared error
  (mean over cases) with respect to the first kernel.

  =====  ======  ======  =======  ======  =======  =========  =====  ======
  scale  std h1  std h3  std h6   code    output   saturated  |∇W1|  ratio
  =====  ======  ======  =======  ======  =======  =========  =====  ======
  0.25   0.063   0.0033  3.8e-05  0.0032  8.6e-06  0.000      0.0040 0.0018
  0.5    0.109   0.017   0.0017   0.034   6.6e-04  0.002      0.198  0.087
  1      0.159   0.053   0.022    0.24    0.013    0.096      2.27   1
  2      0.202   0.11    0.088    1.1     0.070    0.383      6.67   2.9
  4      0.234   0.16    0.15     3.4     0.14     0.664      42.8   19
  =====  ======  ======  =======  ======  =======  =========  =====  ======

  (ratio: :math:`|\nabla W_1|` over its value at scale 1.) Each logistic
  layer multiplies the input-driven variations it receives by about
  :math:`\text{scale}\cdot\sqrt{15}\cdot\sigma'` with
  :math:`\sigma' \le 1/4`: below 1 at scales 0.25 and 0.5, so the
  variations, and the gradient flowing back to the first layer, shrink
  geometrically with depth. The network starts as an almost constant map
  (at 0.25 the output's spread over inputs is 1/1500 of scale 1's) with a
  first-layer gradient ~1/500 as large, consistent with Table 3's error of
  16 (no progress) at scales 0.25 and 0.5. At scale 4 two thirds of the
  hidden units start saturated (where the logistic is flat) and the
  first-layer gradient is ~19 times larger than at scale 1 (Table 3: error
  0.35, against 0.074 at scale 1). Table 3's errors are CURVES errors (0.074
  is Table 1's CURVES result); CURVES is deeper, so the effect is stronger
  there: measured the same way (seeds 0-3), the first-layer gradient at
  scales 0.25 and 0.5 is 4e-5 and 0.02 times its value at scale 1, and the
  output's spread 3e-5 and 0.012 times.

  **Why linen.** Parameters are a plain dict pytree from a pure ``init``
  (``jax.vmap(model.init)`` over keys equals a loop over keys; ``init_scale``
  can also be a traced array, so Table 3's scales can be a ``vmap`` axis);
  the sparse initializer is an ordinary ``kernel_init`` callable that
  ``flax.nnx.Linear`` accepts unchanged.

  Attributes:
    architecture: an :class:`AutoencoderArchitecture`.
    init_scale: the SI scale, ``> 0`` (a float or, inside ``vmap``, an array).
    num_connections: SI connections per unit, ``>= 1``.
    param_dtype: dtype of the parameters.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from jaxmomentum.models import AutoencoderArchitecture
    >>> from jaxmomentum.models import DeepAutoencoder
    >>> mnist = AutoencoderArchitecture("mnist", (784, 1000, 500, 250, 30),
    ...                                 "logistic")
    >>> model = DeepAutoencoder(mnist, init_scale=1.0)
    >>> x = jnp.full((4, 784), 0.5)
    >>> params = model.init(jax.random.key(0), x)
    >>> model.apply(params, x).shape
    (4, 784)
    >>> model.apply(params, x, method="encode").shape
    (4, 30)

  Reference:
    Sutskever et al. (2013), Section 3, Tables 1 and 3; Martens (2010);
    Hinton & Salakhutdinov, *Reducing the dimensionality of data with neural
    networks*, Science 313 (2006).
  """

  architecture: AutoencoderArchitecture
  init_scale: chex.Numeric = 1.0
  num_connections: int = 15
  param_dtype: Any = jnp.float32

  def __post_init__(self):
    if not isinstance(self.architecture, AutoencoderArchitecture):
      raise TypeError(
          "architecture must be an AutoencoderArchitecture, got "
          f"{self.architecture!r}")
    check_scalar("init_scale", self.init_scale, 0.0, low_open=True)
    check_int("num_connections", self.num_connections, 1)
    super().__post_init__()

  def setup(self):
    init = initializers.sparse_layer(self.num_connections, self.init_scale)
    sizes = self.architecture.layer_sizes
    depth = len(self.architecture.encoder_sizes) - 1

    def dense(width, name):
      return nn.Dense(width, kernel_init=init.kernel_init,
                      bias_init=init.bias_init,
                      param_dtype=self.param_dtype, name=name)

    self.encoder = [dense(w, f"encoder_{i}") for i, w in
                    enumerate(sizes[1:depth + 1])]
    self.decoder = [dense(w, f"decoder_{i}") for i, w in
                    enumerate(sizes[depth + 1:])]

  def encode(self, inputs: jax.Array) -> jax.Array:
    """The (linear) code ``[..., code_dim]`` of inputs ``[..., input_dim]``."""
    if inputs.shape[-1] != self.architecture.input_dim:
      raise ValueError(
          f"inputs must have last axis {self.architecture.input_dim} for the "
          f"{self.architecture.name} autoencoder, got shape {inputs.shape}")
    h = inputs
    for layer in self.encoder[:-1]:
      h = nn.sigmoid(layer(h))
    return self.encoder[-1](h)

  def decode(self, code: jax.Array, *, logits: bool = False) -> jax.Array:
    """The reconstruction from a code (see :meth:`__call__` for ``logits``)."""
    h = code
    for layer in self.decoder[:-1]:
      h = nn.sigmoid(layer(h))
    out = self.decoder[-1](h)
    if self.architecture.output == "logistic" and not logits:
      out = nn.sigmoid(out)
    return out

  def __call__(self, inputs: jax.Array, *, logits: bool = False
               ) -> jax.Array:
    """Reconstructs ``inputs`` ``[..., input_dim]``.

    Args:
      inputs: ``[..., input_dim]``.
      logits: return the output layer's pre-activation instead of
        :math:`\\sigma(\\cdot)` for a logistic output (for a numerically
        stable cross-entropy, ``optax.sigmoid_binary_cross_entropy``);
        no effect for a linear output.

    Returns:
      ``[..., input_dim]``.
    """
    return self.decode(self.encode(inputs), logits=logits)
