"""The tanh RNN of Section 4 and the initializers of its parameters."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxmomentum import initializers
from jaxmomentum._validation import check_int
from jaxmomentum.models._recurrence import tanh_rnn

_HEADS = ("linear", "softmax")


@dataclasses.dataclass(frozen=True)
class RNNInit:
  """Initializers for the parameters of :class:`RNN`.

  For :math:`h_t = \\tanh(x_t W_{ih} + h_{t-1} W_{hh} + b_h)`,
  :math:`o_t = h_t W_{ho} + b_o` (Flax layout, kernels ``(fan_in, fan_out)``).
  Each field is an ``init(key, shape, dtype)`` callable
  (``jax.nn.initializers`` or :mod:`jaxmomentum.initializers`). The defaults
  are ``flax.linen.SimpleCell``'s: LeCun-normal kernels, an orthogonal
  recurrent matrix, zero biases. The paper's Table 4 recipe is
  :func:`jaxmomentum.reproduce.paper.table4_rnn_init`.

  Attributes:
    input_kernel: :math:`W_{ih}`, shape ``(in_dim, hidden)``.
    recurrent_kernel: :math:`W_{hh}`, shape ``(hidden, hidden)``.
    output_kernel: :math:`W_{ho}`, shape ``(hidden, out_dim)``.
    hidden_bias: :math:`b_h`, shape ``(hidden,)``.
    output_bias: :math:`b_o`, shape ``(out_dim,)``.
    initial_state: :math:`h_0`, shape ``(hidden,)``, used only when the
      initial state is learned.

  Example:
    >>> from jaxmomentum import initializers
    >>> from jaxmomentum.models import RNNInit
    >>> echo = RNNInit(recurrent_kernel=initializers.echo_state(1.1))
  """

  input_kernel: initializers.Initializer = (
      jax.nn.initializers.lecun_normal())
  recurrent_kernel: initializers.Initializer = (
      jax.nn.initializers.orthogonal())
  output_kernel: initializers.Initializer = (
      jax.nn.initializers.lecun_normal())
  hidden_bias: initializers.Initializer = jax.nn.initializers.zeros
  output_bias: initializers.Initializer = jax.nn.initializers.zeros
  initial_state: initializers.Initializer = jax.nn.initializers.zeros


class RNN(nn.Module):
  r"""A tanh RNN with per-step outputs (Sutskever et al. 2013, Section 4).

  .. math::

    h_t = \tanh(x_t W_{ih} + h_{t-1} W_{hh} + b_h), \qquad
    o_t = h_t W_{ho} + b_o, \qquad t = 1 \ldots T,

  with :math:`h_0` zero (default) or learned. ``head="linear"`` returns
  :math:`o_t` (addition, multiplication: one linear output, squared error);
  ``head="softmax"`` returns the log-probabilities
  :math:`\log\operatorname{softmax}(o_t)` (memorization: cross-entropy is
  ``-(targets * outputs).sum(-1)``). Log-probabilities are also valid logits
  (``log_softmax`` is idempotent), so a loss written for logits gives the
  same value.

  Parameters (all plain arrays in ``params``): ``input_kernel``
  ``(in_dim, hidden)``, ``recurrent_kernel`` ``(hidden, hidden)``,
  ``hidden_bias`` ``(hidden,)``, ``output_kernel`` ``(hidden, out)``,
  ``output_bias`` ``(out,)``, and ``initial_state`` ``(hidden,)`` when
  ``learn_initial_state``. Their initializers are an :class:`RNNInit`
  (default: ``flax.linen.SimpleCell``'s; the paper's Table 4 recipe is
  :func:`jaxmomentum.reproduce.paper.table4_rnn_init`). Centering inputs and
  targets is the problem's job, not the model's.

  **Initial state.** The paper does not say; its Table 4 lists no initial
  state. The 2011 Hessian-free RNN release by the first author (same model,
  "Martens & Sutskever 2011") learns one (``h_init``). Default here: zero, with
  ``learn_initial_state=True`` for a learned one (initialized by
  ``init_recipe.initial_state``, zero by default).

  **Layout and cost.** Inputs are batch-major ``[batch, time, in_dim]`` (as the
  problem generators give them) and so are the outputs. Inside, the small
  inputs are transposed to time-major, and the input projection, the
  recurrence and the output projection are one ``custom_vjp``
  (:func:`jaxmomentum.models._recurrence.tanh_rnn`) with a hand-written
  backward pass through time, plain XLA on every backend: two ``lax.scan``
  time loops, the input projection inside the forward step for inputs of up
  to 16 features, and no ``[time, batch, hidden]`` temporaries or transposes
  beyond the stored states and their cotangents (the weight gradients are
  2-D matmuls over them; ``benchmarks/bench_rnn_training.py``).
  The hidden states are sown as ``intermediates/hidden_states``
  (``[time, batch, hidden]``) when ``mutable=["intermediates"]``.

  **Why linen.** Parameters are a plain dict pytree returned by a pure
  ``init``, and ``apply`` is a pure function of them, which is what
  ``jax.vmap`` over seeds and learning rates and a jitted ``lax.scan``
  training loop want (``jax.vmap(model.init)`` over keys equals a loop over
  keys). The initializers are plain ``init(key, shape, dtype)`` callables and
  work the same as ``kernel_init=`` in ``flax.nnx``.

  Attributes:
    output_size: number of outputs, ``>= 1``.
    hidden_size: number of tanh hidden units, ``>= 1`` (100 in the paper).
    head: ``"linear"`` or ``"softmax"``.
    init_recipe: the initializers, an :class:`RNNInit`.
    learn_initial_state: learn :math:`h_0` (else it is zero).
    param_dtype: dtype of the parameters.
    unroll: time steps per iteration of the forward and backward time loops
      (``lax.scan``'s ``unroll``), a positive int; the same numbers up to
      float rounding. Larger values mean fewer loop iterations (on a GPU,
      fewer kernel launches and loop-condition round trips per sequence) and
      longer compiles; ``benchmarks/bench_table5_gpu.py`` measures it.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from jaxmomentum import initializers
    >>> from jaxmomentum.models import RNN, RNNInit
    >>> model = RNN(output_size=1, init_recipe=RNNInit(
    ...     input_kernel=jax.nn.initializers.normal(0.001),
    ...     recurrent_kernel=initializers.echo_state(1.1)))
    >>> x = jnp.zeros((8, 80, 2))  # [batch, time, in_dim]
    >>> params = model.init(jax.random.key(0), x)
    >>> model.apply(params, x).shape
    (8, 80, 1)

  Reference:
    Sutskever et al. (2013), Section 4 and Table 4; Martens & Sutskever,
    *Learning recurrent neural networks with Hessian-free optimization*, ICML
    2011.
  """

  output_size: int
  hidden_size: int = 100
  head: Literal["linear", "softmax"] = "linear"
  init_recipe: RNNInit = RNNInit()
  learn_initial_state: bool = False
  param_dtype: Any = jnp.float32
  unroll: int = 1

  def __post_init__(self):
    check_int("output_size", self.output_size, 1)
    check_int("hidden_size", self.hidden_size, 1)
    check_int("unroll", self.unroll, 1)
    if self.head not in _HEADS:
      raise ValueError(f"head must be one of {_HEADS}, got {self.head!r}")
    super().__post_init__()

  @nn.compact
  def __call__(self, inputs: jax.Array) -> jax.Array:
    """Outputs ``[batch, time, output_size]`` of ``[batch, time, in]``."""
    if inputs.ndim != 3:
      raise ValueError(
          f"inputs must be [batch, time, in_dim], got shape {inputs.shape}")
    batch, _, in_dim = inputs.shape
    hidden, recipe = self.hidden_size, self.init_recipe
    w_ih = self.param("input_kernel", recipe.input_kernel, (in_dim, hidden),
                      self.param_dtype)
    w_hh = self.param("recurrent_kernel", recipe.recurrent_kernel,
                      (hidden, hidden), self.param_dtype)
    b_h = self.param("hidden_bias", recipe.hidden_bias, (hidden,),
                     self.param_dtype)
    w_ho = self.param("output_kernel", recipe.output_kernel,
                      (hidden, self.output_size), self.param_dtype)
    b_o = self.param("output_bias", recipe.output_bias, (self.output_size,),
                     self.param_dtype)
    if self.learn_initial_state:
      h0 = self.param("initial_state", recipe.initial_state, (hidden,),
                      self.param_dtype)
    else:
      h0 = jnp.zeros((hidden,), w_hh.dtype)  # the params' own dtype
    h0 = jnp.broadcast_to(h0, (batch, hidden))

    # Time-major before the input matmul: transposing the small inputs is
    # cheap, while an einsum that also transposes its output costs more than
    # the whole forward recurrence on XLA:CPU (benchmarks/RESULTS.md).
    hs, outputs = tanh_rnn(jnp.swapaxes(inputs, 0, 1), w_ih, b_h, w_hh, h0,
                           w_ho, unroll=self.unroll)        # [time, batch, .]
    self.sow("intermediates", "hidden_states", hs)
    outputs = jnp.swapaxes(outputs, 0, 1) + b_o
    if self.head == "softmax":
      outputs = jax.nn.log_softmax(outputs, axis=-1)
    return outputs


def rnn_outputs_and_preactivations(model: RNN, params: Any, inputs: jax.Array
                                   ) -> tuple[jax.Array, jax.Array]:
  r""":class:`RNN`'s outputs before the head, and its hidden pre-activations,
  differentiable in forward mode.

  .. math::

    a_t = x_t W_{ih} + b_h + h_{t-1} W_{hh},\quad h_t = \tanh a_t,\quad
    z_t = h_t W_{ho} + b_o,

  as one plain ``lax.scan`` (no ``custom_vjp``), so that ``jax.linearize``
  and ``jax.jvp`` work through it: what a Gauss-Newton product with
  structural damping (Martens & Sutskever 2011) needs,
  :func:`jaxmomentum.curvature.gauss_newton_vp` and
  :func:`jaxmomentum.hessian_free` with an ``outputs_fn`` returning
  ``(z, a)``. For ``head="linear"`` :math:`z` equals ``model.apply(params,
  inputs)``; for ``head="softmax"`` :math:`z` are the logits and
  ``model.apply`` returns :math:`\log\operatorname{softmax}(z)` (the same
  softmax cross-entropy). Training through ``model.apply`` stays on the fast
  hand-written backward pass; this is for the curvature only.

  Args:
    model: the :class:`RNN` (its ``unroll`` and ``learn_initial_state``
      apply).
    params: ``model.init(...)``'s variables (``{"params": {...}}``).
    inputs: ``[batch, time, in_dim]``.

  Returns:
    ``(z, a)``: ``[batch, time, output_size]`` and
    ``[batch, time, hidden_size]``, batch-major (the example axis first, as
    the structural damping term wants it).

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from jaxmomentum.models import RNN, rnn_outputs_and_preactivations
    >>> model = RNN(output_size=1, hidden_size=4)
    >>> x = jnp.ones((2, 5, 3))
    >>> params = model.init(jax.random.key(0), x)
    >>> z, a = rnn_outputs_and_preactivations(model, params, x)
    >>> z.shape, a.shape
    ((2, 5, 1), (2, 5, 4))
    >>> bool(jnp.allclose(z, model.apply(params, x), atol=1e-6))
    True
  """
  if not isinstance(model, RNN):
    raise TypeError(f"model must be an RNN, got {type(model).__name__}")
  if jnp.ndim(inputs) != 3:
    raise ValueError(f"inputs must be [batch, time, in_dim], got shape "
                     f"{jnp.shape(inputs)}")
  p = params["params"]
  w_ih, w_hh, b_h = p["input_kernel"], p["recurrent_kernel"], p["hidden_bias"]
  w_ho, b_o = p["output_kernel"], p["output_bias"]
  batch = inputs.shape[0]
  if model.learn_initial_state:
    h0 = p["initial_state"]
  else:
    h0 = jnp.zeros((w_hh.shape[0],), w_hh.dtype)
  h0 = jnp.broadcast_to(h0, (batch, w_hh.shape[0]))
  pre_inputs = jnp.swapaxes(inputs, 0, 1) @ w_ih + b_h   # [time, batch, h]

  def step(h, pre_t):
    a = pre_t + h @ w_hh
    return jnp.tanh(a), a

  _, a = jax.lax.scan(step, h0, pre_inputs, unroll=model.unroll)
  z = jnp.tanh(a) @ w_ho + b_o
  return jnp.swapaxes(z, 0, 1), jnp.swapaxes(a, 0, 1)
