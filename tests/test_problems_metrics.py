"""Losses and zero-one errors on hand-built batches with known answers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmomentum import problems as P


_ROWS = 10  # every hand-built batch has 10 sequences: one compiled shape


def _final_step_batch(targets_at_end, length=6, garbage=7.0):
  """Sequences whose only scored step is the last; garbage elsewhere.

  Padded to ``_ROWS`` sequences with rows that are not scored at all.
  """
  n = len(targets_at_end)
  mask = np.zeros((_ROWS, length), np.float32)
  mask[:n, -1] = 1
  targets = np.full((_ROWS, length, 1), garbage, np.float32)
  targets[:n, -1, 0] = targets_at_end
  return P.Batch(jnp.zeros((_ROWS, length, 2)), jnp.asarray(targets),
                 jnp.asarray(mask))


# (deviations of the final output from its target, expected error rate)
_THRESHOLD_CASES = [
    ([0.0, 0.01, 0.039, -0.039], 0.0),
    ([0.041, 0.0, 0.0, 0.0], 0.25),
    ([0.05, -0.05, 0.0, 0.03], 0.5),
    ([1.0, -2.0, 0.1, 0.0411, 0.02, 0.0, -0.0399, 0.5], 5 / 8),
    ([0.3] * 10, 1.0),
]


@pytest.mark.parametrize("deviations,expected", _THRESHOLD_CASES)
@pytest.mark.parametrize("problem", [P.addition(80), P.multiplication(80)],
                         ids=lambda p: p.name)
def test_threshold_zero_one(problem, deviations, expected):
  n = len(deviations)
  targets = np.linspace(0.1, 1.7, n).astype(np.float32)
  batch = _final_step_batch(targets)
  outputs = np.full(batch.targets.shape, -5.0, np.float32)  # unscored: wrong
  outputs[:n, -1, 0] = targets + np.float32(deviations)
  assert float(problem.zero_one(jnp.asarray(outputs), batch)) == pytest.approx(
      expected, abs=1e-7)
  # The squared error is the mean over sequences of the final deviation^2.
  assert float(problem.loss(jnp.asarray(outputs), batch)) == pytest.approx(
      np.mean(np.square(deviations)), rel=1e-4, abs=1e-7)


@pytest.mark.parametrize("wrong_steps,length,expected", [
    ([], 10, 0.0),
    ([(0, 3)], 10, 1 / 20),
    ([(0, 0), (0, 9), (1, 4)], 10, 3 / 20),
    ([(b, t) for b in range(2) for t in range(10)], 10, 1.0),
])
def test_argmax_zero_one(wrong_steps, length, expected):
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 3, (2, length))
  targets = jax.nn.one_hot(labels, 3)
  predicted = labels.copy()
  for b, t in wrong_steps:
    predicted[b, t] = (labels[b, t] + 1) % 3
  logits = 5.0 * jax.nn.one_hot(predicted, 3)
  mask = jnp.ones((2, length))
  assert float(P.argmax_error(logits, targets, mask)) == pytest.approx(
      expected, abs=1e-7)


def test_argmax_ignores_unmasked_steps():
  targets = jax.nn.one_hot(jnp.array([[0, 1, 2, 0]]), 3)
  logits = jax.nn.one_hot(jnp.array([[0, 2, 2, 1]]), 3)  # wrong at t=1, 3
  mask = jnp.array([[1.0, 0.0, 1.0, 1.0]])
  assert float(P.argmax_error(logits, targets, mask)) == pytest.approx(1 / 3)


def _memorization_batch(problem, batch_size, seed=0):
  """Built by hand with numpy (independent of the generator)."""
  n, k, T = problem.num_symbols, problem.alphabet_size, problem.T
  rng = np.random.default_rng(seed)
  labels = np.full((batch_size, T), k)  # blank
  labels[:, T - n:] = rng.integers(0, k, (batch_size, n))
  targets = np.eye(k + 1, dtype=np.float32)[labels]
  inputs = np.zeros((batch_size, T, k + 2), np.float32)
  return P.Batch(jnp.asarray(inputs), jnp.asarray(targets),
                 jnp.ones((batch_size, T)))


@pytest.mark.parametrize("problem", [P.memorization(5, 2, 200),
                                     P.memorization(10, 5, 80),
                                     P.memorization(2, 3, 7)],
                         ids=lambda p: p.name)
def test_memorization_blank_and_perfect(problem):
  batch = _memorization_batch(problem, 16)
  n, k, T = problem.num_symbols, problem.alphabet_size, problem.T
  blank = jax.nn.one_hot(jnp.full((16, T), k), k + 1)
  assert float(problem.zero_one(blank, batch)) == pytest.approx(n / T,
                                                                abs=1e-7)
  perfect = 20.0 * batch.targets
  assert float(problem.zero_one(perfect, batch)) == 0.0
  assert float(problem.loss(perfect, batch)) < 1e-6
  uniform = jnp.zeros_like(batch.targets)
  assert float(problem.loss(uniform, batch)) == pytest.approx(
      np.log(k + 1), rel=1e-5)


@pytest.mark.parametrize("problem", [P.addition(80), P.multiplication(80),
                                     P.addition(80, target="hochreiter")],
                         ids=lambda p: p.name)
def test_centering_keeps_loss_and_error(problem):
  rng = np.random.default_rng(1)
  batch = _final_step_batch(rng.uniform(0, 2, _ROWS).astype(np.float32))
  batch = batch._replace(inputs=jnp.asarray(
      rng.uniform(-1, 1, batch.inputs.shape), jnp.float32))
  outputs = batch.targets + jnp.asarray(
      rng.normal(0, 0.05, batch.targets.shape), jnp.float32)
  centered = problem.centered(batch)
  centered_outputs = outputs - problem.target_mean
  np.testing.assert_allclose(centered.inputs,
                             batch.inputs - problem.input_mean)
  for metric in (problem.loss, problem.zero_one):
    np.testing.assert_allclose(metric(centered_outputs, centered),
                               metric(outputs, batch), rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(problem.uncenter_outputs(centered_outputs),
                             outputs, atol=1e-6)


def test_softmax_problem_centering_keeps_targets():
  problem = P.memorization(5, 2, 200)
  batch = _memorization_batch(problem, 2)
  centered = problem.centered(batch)
  np.testing.assert_array_equal(centered.targets, batch.targets)
  np.testing.assert_allclose(centered.inputs,
                             batch.inputs - problem.input_mean)


@pytest.mark.parametrize("fn,args,expected", [
    (P.masked_mean, ([[1.0, 5.0], [3.0, 7.0]], [[1, 0], [1, 0]]), 2.0),
    (P.masked_mean, ([[1.0, 5.0]], [[0, 0]]), 0.0),  # nothing counted
    (P.squared_error, (jnp.full((1, 2, 2), 0.5), jnp.ones((1, 2, 2)),
                       jnp.array([[0.0, 1.0]])), 0.5),  # summed over units
    (P.softmax_cross_entropy, (jnp.zeros((1, 1, 4)),
                               jax.nn.one_hot(jnp.array([[2]]), 4),
                               jnp.ones((1, 1))), np.log(4)),
    (P.threshold_error, (jnp.array([[[0.0, 0.05]]]), jnp.zeros((1, 1, 2)),
                         jnp.ones((1, 1))), 1.0),  # any unit over: error
])
def test_metric_values(fn, args, expected):
  args = [jnp.asarray(a, jnp.float32) for a in args]
  assert float(fn(*args)) == pytest.approx(expected, rel=1e-6, abs=1e-7)


def test_tolerance_is_a_field():
  problem = P.ArithmeticProblem(80, tolerance=0.1)
  batch = _final_step_batch(np.array([1.0, 1.0], np.float32))
  outputs = batch.targets.at[:2, -1, 0].add(jnp.array([0.05, 0.2]))
  assert float(problem.zero_one(outputs, batch)) == pytest.approx(0.5)
  base = problem.biases_baseline()  # P(|A + B - 1| <= 0.1) = 0.2 - 0.01
  assert base.mean_predictor_error == pytest.approx(1 - 0.19, abs=1e-9)


# -- loss normalization: the per-sequence sum ---------------------------------

def _numpy_losses(outputs, targets, mask, kind):
  """Float64 NumPy: per-step loss, then both reductions written out."""
  outputs, targets, mask = (np.asarray(a, np.float64)
                            for a in (outputs, targets, mask))
  if kind == "linear":
    per_step = np.sum((outputs - targets) ** 2, -1)
    factor = 0.5
  else:
    z = outputs - outputs.max(-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))
    per_step = -np.sum(targets * log_p, -1)
    factor = 1.0
  step_mean = np.sum(per_step * mask) / np.sum(mask)
  sequence_sum = sum(factor * np.sum(per_step[b] * mask[b])
                     for b in range(mask.shape[0])) / mask.shape[0]
  return step_mean, sequence_sum


@pytest.mark.parametrize("problem", [
    P.addition(80), P.memorization(10, 5, 80), P.memorization(5, 2, 200)],
    ids=lambda p: p.name)
def test_loss_normalizations_equal_numpy(problem):
  batch = problem.centered(problem.sample(jax.random.key(3), 6))
  outputs = 0.3 * jax.random.normal(jax.random.key(4), batch.targets.shape)
  step_mean, sequence_sum = _numpy_losses(outputs, batch.targets, batch.mask,
                                          problem.output_kind)
  assert float(problem.loss(outputs, batch)) == pytest.approx(step_mean,
                                                              rel=1e-5)
  got = problem.loss(outputs, batch, normalization="sequence_sum")
  assert float(got) == pytest.approx(sequence_sum, rel=1e-5)
  # The gradient ratio the issue names: T for memorization (every step
  # counted), 1/2 for addition (one counted step).
  counted = float(np.asarray(batch.mask).sum(1).mean())
  factor = 0.5 if problem.output_kind == "linear" else 1.0
  assert float(got) / float(problem.loss(outputs, batch)) == pytest.approx(
      factor * counted, rel=1e-5)


@pytest.mark.parametrize("bad", ["mean", "", None, "SEQUENCE_SUM"])
def test_loss_rejects_unknown_normalization(bad):
  problem = P.addition(80)
  batch = problem.sample(jax.random.key(0), 2)
  with pytest.raises(ValueError, match="normalization must be one of"):
    problem.loss(batch.targets, batch, normalization=bad)


# -- the autoencoders' objective and error, beside the RNN ones -------------

@pytest.mark.parametrize("output_kind", ["logistic", "linear"])
def test_reconstruction_loss_and_error_equal_numpy(output_kind):
  rng = np.random.default_rng(0)
  z = rng.normal(size=(5, 7))
  x = rng.uniform(size=(5, 7))
  if output_kind == "logistic":
    p = 1 / (1 + np.exp(-z))
    loss = np.mean(np.sum(-x * np.log(p) - (1 - x) * np.log(1 - p), -1))
  else:
    p = z
    loss = np.mean(np.sum((z - x) ** 2, -1))
  error = np.mean(np.sum((p - x) ** 2, -1))
  problem = P.reconstruction(output_kind)
  assert isinstance(problem, P.ScoredProblem)
  got = problem.metrics(jnp.asarray(z, jnp.float32),
                        jnp.asarray(x, jnp.float32))
  assert float(got["loss"]) == pytest.approx(loss, rel=1e-5)
  assert float(got["error"]) == pytest.approx(error, rel=1e-5)
  # HF's loss is the same objective, with its closed-form curvature.
  assert float(problem.matching_loss()(jnp.asarray(z), jnp.asarray(x))) == (
      pytest.approx(loss, rel=1e-5))
  with pytest.raises(ValueError, match="^output_kind must be one of"):
    P.reconstruction("softmax")


def test_rnn_problems_report_their_zero_one_error_through_metrics():
  problem = P.addition(10)
  batch = _final_step_batch([0.5, 0.5])
  outputs = batch.targets + jnp.where(batch.mask[..., None] > 0, 0.1, 0.0)
  got = problem.metrics(outputs, batch, normalization="sequence_sum")
  assert set(got) == {"loss", "error"}
  assert float(got["error"]) == float(problem.zero_one(outputs, batch)) == 1.0
  assert float(got["loss"]) == pytest.approx(
      float(problem.loss(outputs, batch, normalization="sequence_sum")))
