"""The communication traces of Table 5 runs (issue 12), against values known
independently of the code that computes them."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmomentum import problems
from jaxmomentum.models import RNN
from jaxmomentum.reproduce import _rnn_traces

CASES = [("add", problems.addition(10)), ("mem", problems.memorization(3, 2, 12))]


def _setup(problem, seed=0):
  model = RNN(output_size=problem.out_dim, hidden_size=8,
              head="linear" if problem.output_kind == "linear" else "softmax")
  batch = problem.sample(jax.random.key(seed), 16)
  params = model.init(jax.random.key(seed + 1), batch.inputs[:1])
  params = jax.tree.map(lambda p: p + 0.3 * jax.random.normal(
      jax.random.key(7), p.shape, p.dtype), params)
  return model, batch, params


def _traces_with_zero(problem, kernel):
  """The traces of a model whose ``kernel`` is all zeros."""
  model, batch, params = _setup(problem)
  inner = dict(params["params"])
  inner[kernel] = jnp.zeros_like(inner[kernel])
  return _rnn_traces.communication_traces(model, problem, {"params": inner},
                                          batch)


@pytest.mark.parametrize("name,problem", CASES)
def test_information_steps_are_the_marked_or_data_steps(name, problem):
  batch = problem.sample(jax.random.key(3), 32)
  info = np.asarray(_rnn_traces.information_steps(problem, batch))
  if name == "add":  # the two steps whose marker channel is +1, raw or centered
    np.testing.assert_array_equal(info, np.asarray(batch.inputs[..., 1] == 1))
    np.testing.assert_array_equal(info.sum(1), 2)
    centered = _rnn_traces.information_steps(problem, problem.centered(batch))
    np.testing.assert_array_equal(np.asarray(centered), info)
  else:
    expected = np.zeros_like(info)
    expected[:, :problem.num_symbols] = 1
    np.testing.assert_array_equal(info, expected)


@pytest.mark.parametrize("name,problem", CASES)
def test_spectral_radius_matches_numpy(name, problem):
  model, batch, params = _setup(problem)
  traces = jax.jit(lambda p, b: _rnn_traces.communication_traces(
      model, problem, p, b))(params, batch)
  w = np.asarray(params["params"]["recurrent_kernel"], np.float64)
  np.testing.assert_allclose(traces["rho"], np.abs(np.linalg.eigvals(w)).max(),
                             rtol=1e-5)
  assert 0.0 < float(traces["hidden_rms"]) < 1.0
  assert 0.0 <= float(traces["saturated"]) <= 1.0


@pytest.mark.parametrize("name,problem", CASES)
def test_no_input_weights_means_no_communication(name, problem):
  traces = _traces_with_zero(problem, "input_kernel")
  assert float(traces["grad_info"]) == 0.0
  assert float(traces["grad_answer"]) == 0.0
  assert float(traces["sensitivity"]) == 0.0


@pytest.mark.parametrize("name,problem", CASES)
def test_no_recurrence_means_answers_ignore_earlier_information(name, problem):
  # With W_hh = 0 the output at step t depends on x_t only, and no answer step
  # is an information step, so nothing reaches the information inputs.
  traces = _traces_with_zero(problem, "recurrent_kernel")
  assert float(traces["grad_answer"]) > 0.0
  assert float(traces["sensitivity"]) == 0.0
  if name == "add":  # the loss sees only the last step, never a marked one
    assert float(traces["grad_info"]) == 0.0
  else:  # the data steps have targets of their own (blank)
    assert float(traces["grad_info"]) > 0.0
