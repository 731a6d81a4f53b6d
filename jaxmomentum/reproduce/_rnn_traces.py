"""What "establishing communication" depends on, measured during training.

Table 5's "biases" error is that of an RNN whose outputs ignore its inputs
(Section 4.2): it has not established communication between the inputs that
carry the answer and the steps where the answer is due. Issue 12 asks which
of our fidelity choices decides whether a run gets there; these traces,
recorded at every evaluation beside the loss and the zero-one error, are the
evidence:

* ``rho``: the spectral radius of the recurrent matrix (Table 4 sets 1.1);
* ``hidden_rms``: the RMS of the hidden units over steps and sequences (tanh
  saturates at 1), and ``saturated``: the fraction of hidden values with
  :math:`|h| > 0.95`;
* ``grad_info`` / ``grad_answer``: the mean norm of the loss's gradient with
  respect to the inputs at the information steps (the marked steps of
  add/mul, the data symbols of memorization) and at the answer steps: how
  much gradient reaches back through time to the inputs that matter;
* ``sensitivity``: the mean norm of the gradient of the answer-step outputs
  (a fixed ±1 projection of them) with respect to the information-step
  inputs: how strongly the answer depends on the information at all.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

TRACE_NAMES = ("rho", "hidden_rms", "saturated", "grad_info", "grad_answer",
               "sensitivity")


def information_steps(problem, batch) -> jax.Array:
  """``[batch, T]`` 1.0 where an input carries the answer's information.

  Memorization: the ``num_symbols`` data steps. Add/mul: the two marked
  steps, found as the maxima of the marker channel (index 1), so centered
  batches (a constant shift) give the same steps.
  """
  inputs = batch.inputs
  steps = jnp.arange(inputs.shape[1])
  if hasattr(problem, "num_symbols"):
    info = steps[None, :] < problem.num_symbols
    return jnp.broadcast_to(info, inputs.shape[:2]).astype(inputs.dtype)
  marker = inputs[..., 1]
  top = jnp.max(marker, axis=1, keepdims=True)
  low = jnp.min(marker, axis=1, keepdims=True)
  return ((marker == top) & (top > low)).astype(inputs.dtype)


def answer_steps(problem, batch) -> jax.Array:
  """``[batch, T]`` 1.0 at the steps whose target depends on the inputs."""
  if hasattr(problem, "num_symbols"):
    steps = jnp.arange(batch.inputs.shape[1])
    answer = steps[None, :] >= problem.T - problem.num_symbols
    return jnp.broadcast_to(answer, batch.mask.shape).astype(batch.mask.dtype)
  return batch.mask


def _masked_mean_norm(grads: jax.Array, mask: jax.Array) -> jax.Array:
  norms = jnp.linalg.norm(grads, axis=-1)
  return jnp.sum(norms * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def communication_traces(model, problem, params, batch, *,
                         normalization: str = "step_mean") -> dict:
  """The traces named in :data:`TRACE_NAMES` for ``params`` on ``batch``.

  ``model``: the :class:`jaxmomentum.models.RNN` of the task (its hidden
  states are read through flax's ``intermediates``). Pure and jit/vmap-safe;
  the spectral radius uses a dense eigendecomposition (CPU backends).
  """
  inputs = batch.inputs
  info = information_steps(problem, batch)
  answer = answer_steps(problem, batch)
  _, state = model.apply(params, inputs, mutable=["intermediates"])
  hidden = state["intermediates"]["hidden_states"][0]
  w_hh = params["params"]["recurrent_kernel"]
  rho = jnp.max(jnp.abs(jnp.linalg.eigvals(w_hh)))

  def loss_of_inputs(x):
    return problem.loss(model.apply(params, x), batch,
                        normalization=normalization)

  sign = jnp.asarray(np.where(np.arange(problem.out_dim) % 2, -1.0, 1.0),
                     inputs.dtype)

  def answers_of_inputs(x):
    return jnp.sum(model.apply(params, x) * sign * answer[..., None])

  grads = jax.grad(loss_of_inputs)(inputs)
  return {
      "rho": rho.astype(jnp.float32),
      "hidden_rms": jnp.sqrt(jnp.mean(jnp.square(hidden))),
      "saturated": jnp.mean((jnp.abs(hidden) > 0.95).astype(jnp.float32)),
      "grad_info": _masked_mean_norm(grads, info),
      "grad_answer": _masked_mean_norm(grads, answer),
      "sensitivity": _masked_mean_norm(jax.grad(answers_of_inputs)(inputs),
                                       info),
  }
