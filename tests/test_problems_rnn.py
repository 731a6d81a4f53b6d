"""RNN problem generators: shapes, layouts, statistics, keys, jit and vmap.

XLA compilation of the sampler (threefry), not sampling, dominates these
tests on CPU, so each problem's sampler is compiled once (``_sampler``) and
``test_generator`` runs every per-problem check on the same compiled function.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmomentum import problems as P

_ARITHMETIC = [
    P.addition(80),
    P.multiplication(80),
    P.addition(80, target="average"),
    P.addition(80, target="hochreiter"),
    P.multiplication(80, values="symmetric"),
    P.addition(10),   # smallest T: I in {0}, J in [1, 5), tau = 10
]
_MEMORIZATION = [
    P.memorization(5, 2, 200),
    P.memorization(10, 5, 80),
    P.memorization(1, 2, 3),  # smallest: symbol, go, recall
    P.memorization(10, 5, 80, channels="overlapping"),  # the 2011 release
    P.memorization(1, 2, 3, channels="overlapping"),
]
_TEMPORAL = [P.temporal_order(80)]
_ALL = _ARITHMETIC + _MEMORIZATION + _TEMPORAL
_ONE_PER_KIND = [_ARITHMETIC[0], _MEMORIZATION[1], _TEMPORAL[0]]
_N = 2000  # sequences per sampled batch


def _ids(problems):
  return [p.name for p in problems]


@functools.lru_cache(maxsize=None)
def _sampler(problem, batch_size=_N):
  return jax.jit(lambda key: problem.sample(key, batch_size))


def _combine(problem, a, b):
  return {"sum": a + b, "average": (a + b) / 2,
          "hochreiter": 0.5 + (a + b) / 4, "product": a * b}[problem.target]


def _check_shapes(problem, batch):
  length = problem.max_length
  assert isinstance(batch, P.Batch)
  assert batch.inputs.shape == (_N, length, problem.in_dim)
  assert batch.targets.shape == (_N, length, problem.out_dim)
  assert batch.mask.shape == (_N, length)
  assert all(x.dtype == jnp.float32 for x in batch)
  assert problem.input_mean.shape == (problem.in_dim,)
  assert problem.target_mean.shape == (problem.out_dim,)
  assert set(np.unique(batch.mask)) <= {0.0, 1.0}


def _check_arithmetic_layout(problem, batch):
  values, marker = batch.inputs[..., 0], batch.inputs[..., 1]
  n, length = batch.mask.shape
  T = problem.T
  lo, hi = {"unit": (0, 1), "symmetric": (-1, 1)}[problem.values]
  assert values.min() >= lo and values.max() <= hi
  assert set(np.unique(marker)) <= {-1.0, 0.0, 1.0}
  # Exactly one scored step per sequence, tau in [T, floor(1.1 T)).
  assert np.all(batch.mask.sum(1) == 1)
  tau = batch.mask.argmax(1)
  # Exactly two +1 markers: I in [T//100, T//10), J in [T//10, T//2).
  plus = marker == 1
  assert np.all(plus.sum(1) == 2)
  first = plus.argmax(1)
  second = length - 1 - plus[:, ::-1].argmax(1)
  # Every position of each range occurs (bounds exact, not just inside).
  assert set(tau) == set(range(T, 110 * T // 100))
  assert set(first) == set(range(T // 100, T // 10))
  assert set(second) == set(range(T // 10, T // 2))
  # -1 at the cue tau - 3, and at step 0 unless I = 0; nothing else.
  rows = np.arange(n)
  assert np.all(marker[rows, tau - 3] == -1)
  assert np.all((marker == -1).sum(1) == 1 + (first != 0))
  assert np.all(marker[first != 0, 0] == -1)
  # Target at tau only, from the two marked values.
  a, b = values[rows, first], values[rows, second]
  np.testing.assert_allclose(batch.targets[rows, tau, 0],
                             _combine(problem, a, b), rtol=1e-6, atol=1e-6)
  off = batch.targets[..., 0].copy()
  off[rows, tau] = 0
  assert np.all(off == 0)


def _check_memorization_layout(problem, batch):
  n, k, T = problem.num_symbols, problem.alphabet_size, problem.T
  if problem.channels == "overlapping":  # the release: K channels each
    assert (batch.inputs.shape[-1], batch.targets.shape[-1]) == (k, k)
    go, blank_in, blank_out = k - 2, k - 1, k - 1
  else:
    go, blank_in, blank_out = k, k + 1, k
  for x in (batch.inputs, batch.targets):  # exact one-hot rows
    assert set(np.unique(x)) <= {0.0, 1.0}
    assert np.all(x.sum(-1) == 1)
  assert np.all(batch.mask == 1)
  inp, out = batch.inputs.argmax(-1), batch.targets.argmax(-1)
  data = inp[:, :n]
  assert set(np.unique(data)) == set(range(k))
  assert np.all(inp[:, T - n - 1] == go)
  assert np.all(inp[:, np.r_[n:T - n - 1, T - n:T]] == blank_in)
  assert np.all(out[:, :T - n] == blank_out)
  np.testing.assert_array_equal(out[:, T - n:], data)


def _check_temporal_layout(problem, batch):
  T = problem.T
  cls = batch.inputs.argmax(-1)
  assert np.all(batch.inputs.sum(-1) == 1)
  assert np.all(batch.mask.sum(1) == 1)
  tau = batch.mask.argmax(1)
  rows = np.arange(len(tau))
  assert set(tau) == set(range(T, 110 * T // 100))
  assert np.all(cls[rows, tau - 1] == 6)
  special = (cls == 4) | (cls == 5)
  assert np.all(special.sum(1) == 2)
  first = special.argmax(1)
  second = cls.shape[1] - 1 - special[:, ::-1].argmax(1)
  assert set(first) == set(range(T // 100, T // 10 + 1))
  assert set(second) == set(range(40 * T // 100, 50 * T // 100 + 1))
  assert np.all(cls[first != 0, 0] == 7)
  label = 2 * (cls[rows, first] - 4) + (cls[rows, second] - 4)
  np.testing.assert_array_equal(batch.targets[rows, tau].argmax(-1), label)
  assert np.all(batch.targets.sum((1, 2)) == 1)


def _check_means(problem, batch):
  """Sample means agree with the analytic ones within 5 standard errors."""
  batch = jax.tree.map(lambda x: np.asarray(x, np.float64), batch)
  per_seq_in = batch.inputs.mean(1)  # per-sequence averages are i.i.d.
  counted = batch.mask.sum(1, keepdims=True)
  per_seq_out = (batch.targets * batch.mask[..., None]).sum(1) / counted
  for per_seq, analytic in ((per_seq_in, problem.input_mean),
                            (per_seq_out, problem.target_mean)):
    mean = per_seq.mean(0)
    err = per_seq.std(0) / np.sqrt(len(per_seq))
    assert np.all(np.abs(mean - analytic) <= 5 * err + 1e-6), (
        mean, analytic, err)


def _check_baseline_on_samples(problem, sample, getkey):
  """Constant outputs on sampled batches give the analytic baseline."""
  base = problem.biases_baseline()
  if problem.output_kind == "softmax":
    batch = sample(getkey())
    logits = jax.nn.one_hot(
        jnp.full(batch.mask.shape, int(base.best_constant)), problem.out_dim)
    error = float(problem.zero_one(logits, batch))
    if isinstance(problem, P.MemorizationProblem):
      if problem.channels == "separate":  # exactly n / T
        assert error == pytest.approx(base.mean_predictor_error, abs=1e-6)
      else:  # the blank channel's symbol is recalled right: binomial
        n, k = problem.num_symbols, problem.alphabet_size
        p_wrong = (k - 1) / k
        se = np.sqrt(p_wrong / k / (n * _N)) * n / problem.T
        assert abs(error - n * p_wrong / problem.T) < 5 * se
    else:  # random classes: up to sampling error
      assert abs(error - 0.75) < 5 * np.sqrt(0.75 * 0.25 / _N)
    return
  for constant, expected in ((problem.target_mean[0],
                              base.mean_predictor_error),
                             (base.best_constant, base.best_constant_error)):
    errors = []
    for _ in range(5):
      batch = sample(getkey())
      outputs = jnp.full_like(batch.targets, constant)
      errors.append(float(problem.zero_one(outputs, batch)))
    se = np.sqrt(expected * (1 - expected) / (5 * _N))
    assert abs(np.mean(errors) - expected) < 5 * se, (np.mean(errors),
                                                      expected)


@pytest.mark.parametrize("problem", _ALL, ids=_ids(_ALL))
def test_generator(problem, getkey):
  """Shapes and dtypes, exact layout on 2,000 sequences, analytic means,
  same key -> same batch, different keys -> different batches, and the
  biases baseline reproduced by constant outputs on samples."""
  sample = _sampler(problem)
  key = getkey()
  batch = sample(key)
  _check_shapes(problem, batch)
  host = jax.tree.map(np.asarray, batch)
  if isinstance(problem, P.ArithmeticProblem):
    _check_arithmetic_layout(problem, host)
  elif isinstance(problem, P.MemorizationProblem):
    _check_memorization_layout(problem, host)
  else:
    _check_temporal_layout(problem, host)
  _check_means(problem, host)
  again, other = sample(key), sample(getkey())
  for x, y in zip(batch, again):
    np.testing.assert_array_equal(x, y)
  assert not np.array_equal(batch.inputs, other.inputs)
  assert not np.array_equal(batch.targets, other.targets)
  _check_baseline_on_samples(problem, sample, getkey)


@pytest.mark.parametrize("problem,name,kind,length,in_dim,out_dim", [
    (P.addition(80), "add T=80", "linear", 88, 2, 1),
    (P.multiplication(80), "mul T=80", "linear", 88, 2, 1),
    (P.memorization(5, 2, 200), "mem-5x2 T=200", "softmax", 200, 4, 3),
    (P.memorization(10, 5, 80), "mem-10x5 T=80", "softmax", 80, 7, 6),
    (P.memorization(10, 5, 80, channels="overlapping"),
     "mem-10x5 T=80, overlapping", "softmax", 80, 5, 5),
])
def test_names_and_shapes(problem, name, kind, length, in_dim, out_dim):
  assert (problem.name, problem.output_kind, problem.max_length,
          problem.in_dim, problem.out_dim) == (
              name, kind, length, in_dim, out_dim)


@pytest.mark.parametrize("problem,input_mean,target_mean", [
    # marker mean: P(I = 0) / max_length = (1/8) / 88 for T=80.
    (P.addition(80), [0.5, 1 / 8 / 88], [1.0]),
    (P.multiplication(80), [0.5, 1 / 8 / 88], [0.25]),
    (P.addition(80, target="average"), [0.5, 1 / 8 / 88], [0.5]),
    (P.addition(80, target="hochreiter"), [0.0, 1 / 8 / 88], [0.5]),
    (P.multiplication(80, values="symmetric"), [0.0, 1 / 8 / 88], [0.0]),
    (P.addition(200), [0.5, 0.0], [1.0]),  # I >= 2: the -1s and +1s cancel
    (P.memorization(5, 2, 200), [0.0125, 0.0125, 0.005, 0.97],
     [0.0125, 0.0125, 0.975]),
    (P.memorization(10, 5, 80), [0.025] * 5 + [0.0125, 0.8625],
     [0.025] * 5 + [0.875]),
    # the release's layout: go on symbol 3's channel, blank on symbol 4's.
    (P.memorization(10, 5, 80, channels="overlapping"),
     [0.025, 0.025, 0.025, 0.025 + 0.0125, 0.025 + 0.8625],
     [0.025] * 4 + [0.025 + 0.875]),
    (P.memorization(5, 2, 200, channels="overlapping"),
     [0.0125 + 0.005, 0.0125 + 0.97], [0.0125, 0.0125 + 0.975]),
])
def test_means_closed_form(problem, input_mean, target_mean):
  np.testing.assert_allclose(problem.input_mean, input_mean, atol=1e-7)
  np.testing.assert_allclose(problem.target_mean, target_mean, atol=1e-7)


def test_jit_equals_eager(getkey):
  problem, key = P.addition(80), getkey()
  for x, y in zip(problem.sample(key, _N), _sampler(problem)(key)):
    np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("problem,scan", [(_ARITHMETIC[0], True),
                                          (_MEMORIZATION[1], False),
                                          (_TEMPORAL[0], False)],
                         ids=_ids(_ONE_PER_KIND))
def test_vmap_and_scan_agree_with_jit(problem, scan, getkey):
  keys = jax.random.split(getkey(), 2)
  sample = _sampler(problem)
  outs = [jax.jit(jax.vmap(sample))(keys)]
  if scan:
    outs.append(jax.jit(lambda ks: jax.lax.scan(
        lambda c, k: (c, problem.sample(k, _N)), 0, ks)[1])(keys))
  for i, key in enumerate(keys):
    for out in outs:
      for x, y in zip(sample(key), out):
        np.testing.assert_array_equal(x, y[i])


@pytest.mark.parametrize("problem", _ONE_PER_KIND[:2],
                         ids=_ids(_ONE_PER_KIND[:2]))
def test_strict_dtype_promotion(problem, getkey):
  with jax.numpy_dtype_promotion("strict"):
    batch = jax.jit(lambda k: problem.sample(k, 3))(getkey())
    outputs = jnp.zeros_like(batch.targets)
    for value in (problem.loss(outputs, batch),
                  problem.zero_one(outputs, batch)):
      assert value.dtype == jnp.float32 and value.shape == ()
    assert all(x.dtype == jnp.float32 for x in problem.centered(batch))


def test_problems_are_immutable_hashable_static_args(getkey):
  problem = P.memorization(1, 2, 3)
  assert problem == P.MemorizationProblem(1, 2, 3)
  assert hash(problem) == hash(P.MemorizationProblem(1, 2, 3))
  assert P.addition(80) != P.addition(80, target="average")
  with pytest.raises(dataclasses.FrozenInstanceError):
    problem.T = 100  # type: ignore[misc]
  assert type(P.ArithmeticProblem(np.int64(80)).T) is int
  static = jax.jit(type(problem).sample, static_argnums=(0, 2))
  key = getkey()
  for x, y in zip(static(problem, key, _N), _sampler(problem)(key)):
    np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("build,match", [
    (lambda: P.addition(9), r"T must be an integer >= 10"),
    (lambda: P.addition(80.0), r"T must be an integer"),
    (lambda: P.addition(80, target="product"), r"target must be one of"),
    (lambda: P.addition(80, values="gaussian"), r"values must be one of"),
    (lambda: P.multiplication(80, values="normal"), r"values must be one of"),
    (lambda: P.ArithmeticProblem(80, tolerance=-0.1), r"tolerance must be"),
    (lambda: P.memorization(0, 2, 10), r"num_symbols must be an integer >= 1"),
    (lambda: P.memorization(5, 0, 200), r"alphabet_size must be an integer"),
    (lambda: P.memorization(10, 5, 20), r"T must be an integer >= 21"),
    (lambda: P.memorization(5, 2, 200, channels="shared"),
     r"channels must be one of \('separate', 'overlapping'\)"),
    (lambda: P.memorization(5, 1, 200, channels="overlapping"),
     r"alphabet_size must be an integer >= 2"),
    (lambda: P.temporal_order(5), r"T must be an integer >= 10"),
    (lambda: P.addition(80).sample(jax.random.key(0), 0),
     r"batch_size must be an integer >= 1"),
    (lambda: P.memorization().sample(jax.random.key(0), 2.5),
     r"batch_size must be an integer"),
])
def test_argument_errors(build, match):
  with pytest.raises((ValueError, TypeError), match=match):
    build()


# ------------------------------------------------------ the "biases" baseline


def _log_density_mass(a, b):
  """P(a <= UV <= b) for U, V ~ U[0, 1] (density -log z), by quadrature."""
  integrate = pytest.importorskip("scipy.integrate")
  return integrate.quad(lambda z: -np.log(z), a, b)[0]


# (problem, mean-predictor error, best-constant error), derived independently
# of the library: triangular laws in closed form, P(|S - c| <= d) =
# 1 - (1 - d)^2 for S = A + B around its mode; products by integrating the
# density -log z of UV numerically.
_BASELINES = [
    (P.addition(80), 1 - (0.08 - 0.04**2), 1 - (0.08 - 0.04**2)),
    (P.addition(80, target="average"), 1 - (0.16 - 0.08**2),
     1 - (0.16 - 0.08**2)),
    (P.addition(80, target="hochreiter"), 1 - (0.16 - 0.08**2),
     1 - (0.16 - 0.08**2)),
    (P.multiplication(80), lambda: 1 - _log_density_mass(0.21, 0.29),
     lambda: 1 - _log_density_mass(0.0, 0.08)),
    (P.multiplication(80, values="symmetric"),
     lambda: 1 - _log_density_mass(0.0, 0.04),
     lambda: 1 - _log_density_mass(0.0, 0.04)),
    (P.memorization(5, 2, 200), 5 / 200, 5 / 200),
    (P.memorization(10, 5, 80), 10 / 80, 10 / 80),
    # The release's layout: Table 5's biases, 8.0 and 2.5 wrong steps per
    # sequence, typed from the paper.
    (P.memorization(10, 5, 80, channels="overlapping"), 8.0 / 80, 8.0 / 80),
    (P.memorization(5, 2, 200, channels="overlapping"), 2.5 / 200,
     2.5 / 200),
    (P.temporal_order(80), 0.75, 0.75),
]


@pytest.mark.parametrize("problem,mean_err,best_err", _BASELINES,
                         ids=_ids([c[0] for c in _BASELINES]))
def test_biases_baseline_analytic(problem, mean_err, best_err):
  mean_err = mean_err() if callable(mean_err) else mean_err
  best_err = best_err() if callable(best_err) else best_err
  got = problem.biases_baseline()
  print(f"\n{problem.name:44s} mean predictor {got.mean_predictor_error:.4f}"
        f"  best constant {got.best_constant_error:.4f} at "
        f"{got.best_constant:.4f}")
  np.testing.assert_allclose(got.mean_predictor_error, mean_err, atol=1e-7)
  np.testing.assert_allclose(got.best_constant_error, best_err, atol=1e-7)
  assert got.best_constant_error <= got.mean_predictor_error + 1e-12


@pytest.mark.parametrize("problem", [
    P.memorization(10, 5, 80), P.memorization(5, 2, 200),
    P.memorization(10, 5, 80, channels="overlapping"),
    P.memorization(5, 2, 200, channels="overlapping")])
def test_timing_only_loss_is_the_loss_of_a_timing_only_predictor(problem):
  """The problem's own loss of a model that answers blank exactly at the
  non-recall steps and guesses uniformly over the K symbols at the n recall
  steps (the last n) equals timing_only_loss()."""
  batch = problem.sample(jax.random.key(3), 64)
  n, k, length = problem.num_symbols, problem.alphabet_size, problem.T
  recall = (jnp.arange(length) >= length - n)[None, :, None]
  blank = jax.nn.one_hot(problem.out_dim - 1, problem.out_dim)
  symbols = (jnp.arange(problem.out_dim) < k).astype(jnp.float32)
  logits = jnp.where(recall, jnp.where(symbols > 0, 0.0, -1e4),
                     jnp.where(blank > 0, 1e4, -1e4))
  logits = jnp.broadcast_to(logits, batch.targets.shape)
  assert float(problem.loss(logits, batch)) == pytest.approx(
      problem.timing_only_loss(), rel=1e-5)
