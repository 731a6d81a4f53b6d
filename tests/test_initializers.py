"""Sparse and echo-state initializers: what they promise, checked.

Exact fan-in, distinct and uniformly spread positions, N(0, scale²) values,
spectral radius against ``numpy.linalg.eigvals`` (float64) under ``jit``, the
Flax linen and nnx use, and argument errors.
"""


import flax.linen as nn
from flax import nnx
import jax
import jax.extend as jex
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxmomentum import initializers
from jaxmomentum.initializers import echo_state
from jaxmomentum.initializers import estimate_spectral_radius
from jaxmomentum.initializers import sparse


def nonzero_per_unit(w):
  """Nonzero count of every output unit: the last axis is the units."""
  w = np.asarray(w)
  return (w != 0).reshape(-1, w.shape[-1]).sum(axis=0)


def true_radius(w):
  return np.abs(np.linalg.eigvals(np.asarray(w, np.float64))).max()


# ---------------------------------------------------------------- sparse

# (shape, num_connections, batch_axis, expected nonzeros per unit)
# (shape, num_connections, batch_axis, expected nonzeros per unit). Small
# shapes, shared across tests: each new shape costs a compile.
_FAN_IN_CASES = [
    ((40, 16), 15, (), 15),          # fan-in above 15
    ((15, 16), 15, (), 15),          # fan-in equal to 15: dense
    ((6, 16), 15, (), 6),            # fan-in below 15: every input
    ((40, 16), 1, (), 1),
    ((3, 3, 4, 8), 15, (), 15),      # conv kernel: fan-in 3*3*4 = 36
    ((3, 3, 1, 8), 15, (), 9),       # conv kernel: fan-in 9 < 15
]


@pytest.mark.parametrize("shape,k,batch_axis,expected", _FAN_IN_CASES)
def test_sparse_exact_fan_in(getkey, shape, k, batch_axis, expected):
  w = sparse(k, batch_axis=batch_axis)(getkey(), shape)
  assert w.shape == shape and w.dtype == jnp.float32
  counts = nonzero_per_unit(w)
  # Exactly `expected` nonzeros per unit: the scatter wrote `expected`
  # values at *distinct* rows (a repeated row would leave fewer nonzeros).
  np.testing.assert_array_equal(counts, expected)


@pytest.mark.parametrize("shape,batch_axis", [
    ((5, 40, 16), (0,)),         # a stack of 5 independent (40, 16) kernels
    ((40, 5, 16), (1,)),         # stack axis in the middle: same draws
    ((5, 2, 20, 16), (0, -3)),   # two stack axes, negative index
])
def test_sparse_batch_axis(getkey, shape, batch_axis):
  w = np.asarray(sparse(15, batch_axis=batch_axis)(getkey(), shape))
  ndim = len(shape)
  batch = sorted(a % ndim for a in batch_axis)
  fan = [a for a in range(ndim - 1) if a not in batch]
  w = np.transpose(w, batch + fan + [ndim - 1])
  w = w.reshape(int(np.prod([shape[a] for a in batch])), -1, shape[-1])
  # 15 per unit *in every stacked matrix* (not 15 spread over the stack).
  np.testing.assert_array_equal((w != 0).sum(axis=1), 15)
  # The stacked matrices differ.
  assert not np.array_equal(w[0] != 0, w[1] != 0)


_draw_sparse = jax.jit(lambda key, scale: sparse(15, scale)(key, (1000, 400)))


@pytest.mark.parametrize("scale", [0.25, 1.0, 4.0])
def test_sparse_values_are_normal_with_std_scale(getkey, scale):
  key = getkey()
  w = np.asarray(_draw_sparse(key, scale))   # scale traced: one compile
  values = w[w != 0]
  assert values.size == 15 * 400
  # Kolmogorov-Smirnov against N(0, scale^2): 6000 values.
  assert stats.kstest(values / scale, "norm").pvalue > 1e-3
  # Std within 4 standard errors (se of the std ≈ scale / sqrt(2 n)).
  se = scale / np.sqrt(2 * values.size)
  assert abs(values.std() - scale) < 4 * se
  assert abs(values.mean()) < 4 * scale / np.sqrt(values.size)
  # The scale only multiplies: same key, same positions and draws.
  np.testing.assert_allclose(w, scale * np.asarray(_draw_sparse(key, 1.0)),
                             rtol=1e-6)


def test_sparse_positions_are_uniform(getkey):
  """Chi-square: every input is chosen equally often, and the k chosen
  inputs of a unit are a uniform k-subset (columns are independent draws)."""
  fan_in, fan_out, k = 40, 4000, 15
  chosen = np.asarray(sparse(k)(getkey(), (fan_in, fan_out)) != 0)
  counts = chosen.sum(axis=1)                              # per input
  expected = fan_out * k / fan_in
  assert stats.chisquare(counts, np.full(fan_in, expected)).pvalue > 1e-3
  # The number of chosen inputs among the first half of a column is
  # hypergeometric (a bias to low or high indices, or clumping, shows here).
  first_half = chosen[: fan_in // 2].sum(axis=0)
  hyper = stats.hypergeom(fan_in, fan_in // 2, k)
  observed = np.bincount(first_half, minlength=k + 1)
  expected = hyper.pmf(np.arange(k + 1)) * fan_out
  keep = expected >= 5  # pool the tails (chi-square needs >= 5 per cell)
  observed = np.append(observed[keep], observed[~keep].sum())
  expected = np.append(expected[keep], expected[~keep].sum())
  expected *= observed.sum() / expected.sum()
  assert stats.chisquare(observed, expected).pvalue > 1e-3


def test_sparse_jit_equals_eager(getkey):
  key = getkey()
  init = sparse(15, 2.0)
  eager = init(key, (40, 16))
  jitted = jax.jit(init, static_argnums=1)(key, (40, 16))
  np.testing.assert_array_equal(np.asarray(eager) != 0,
                                np.asarray(jitted) != 0)
  np.testing.assert_allclose(eager, jitted, rtol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.bfloat16])
def test_sparse_dtype(getkey, dtype):
  w = sparse(15)(getkey(), (40, 16), dtype)
  assert w.dtype == dtype
  np.testing.assert_array_equal(nonzero_per_unit(w.astype(jnp.float32)), 15)


def test_sparse_layer_tanh_variant(getkey):
  key = getkey()
  logistic = initializers.sparse_layer(15, 2.0)
  tanh = initializers.sparse_layer(15, 2.0, activation="tanh")
  np.testing.assert_allclose(tanh.kernel_init(key, (40, 16)),
                             0.25 * logistic.kernel_init(key, (40, 16)),
                             rtol=1e-6)
  np.testing.assert_array_equal(logistic.bias_init(key, (16,)), 0.0)
  np.testing.assert_array_equal(tanh.bias_init(key, (16,)), 0.5)


def test_sparse_works_as_flax_kernel_init_linen_and_nnx(getkey):
  si = initializers.sparse_layer(15, 1.0)
  dense = nn.Dense(16, kernel_init=si.kernel_init, bias_init=si.bias_init)
  params = dense.init(getkey(), jnp.ones((2, 40)))["params"]
  np.testing.assert_array_equal(nonzero_per_unit(params["kernel"]), 15)
  linear = nnx.Linear(40, 16, kernel_init=si.kernel_init,
                      bias_init=si.bias_init, rngs=nnx.Rngs(0))
  np.testing.assert_array_equal(nonzero_per_unit(linear.kernel[...]), 15)
  conv = nnx.Conv(4, 8, kernel_size=(3, 3), kernel_init=sparse(15),
                  rngs=nnx.Rngs(1))
  np.testing.assert_array_equal(nonzero_per_unit(conv.kernel[...]), 15)


def test_sparse_large_kernel_under_jit(getkey):
  # Its speed (a bound, ~0.03 s on 2 cores): benchmarks/timing_bounds.py;
  # that nothing is unrolled per unit: the next test.
  init = jax.jit(sparse(15), static_argnums=1)
  w = init(getkey(), (2000, 1000))
  np.testing.assert_array_equal(nonzero_per_unit(w), 15)


def _count_equations(jaxpr):
  """Equations of ``jaxpr`` and of every jaxpr nested in it (jit, loops)."""
  count = 0
  for eqn in jaxpr.eqns:
    count += 1
    for param in eqn.params.values():
      for sub in param if isinstance(param, (tuple, list)) else [param]:
        if isinstance(sub, jex.core.ClosedJaxpr):
          count += _count_equations(sub.jaxpr)
        elif isinstance(sub, jex.core.Jaxpr):
          count += _count_equations(sub)
  return count


def test_sparse_is_vectorised_no_loop_per_unit():
  """The traced program has the same size for 16 and 2000 units (and any
  fan-in): nothing is unrolled per unit or per input."""
  key = jax.random.key(0)
  sizes = {shape: _count_equations(
      jax.make_jaxpr(sparse(15), static_argnums=1)(key, shape).jaxpr)
           for shape in [(40, 16), (40, 2000), (2000, 1000)]}
  assert len(set(sizes.values())) == 1, sizes


# ------------------------------------------------------------ echo state

@pytest.mark.parametrize("n", [10, 100, 300])
def test_echo_state_spectral_radius_under_jit(getkey, n):
  targets = jnp.array([1.1, 0.9])
  keys = jax.random.split(getkey(), 2)

  @jax.jit
  def draw(key, radius):
    return echo_state(radius, 15)(key, (n, n))

  for key, target in zip(keys, targets):
    w = np.asarray(draw(key, target))
    assert w.dtype == np.float32
    np.testing.assert_array_equal(nonzero_per_unit(w), min(15, n))
    assert abs(true_radius(w) / float(target) - 1) <= 1e-4


def test_echo_state_stacked(getkey):
  w = echo_state(1.1, 5)(getkey(), (3, 40, 40))
  for matrix in np.asarray(w):
    assert abs(true_radius(matrix) / 1.1 - 1) <= 1e-4
    np.testing.assert_array_equal(nonzero_per_unit(matrix), 5)
  assert not np.array_equal(w[0], w[1])


def test_echo_state_works_as_nnx_kernel_init():
  # (100, 100) float32 as in tests/test_reproduce_paper.py's Table 4 check.
  linear = nnx.Linear(100, 100, use_bias=False,
                      kernel_init=echo_state(1.1, 15), rngs=nnx.Rngs(2))
  w = np.asarray(linear.kernel[...])
  np.testing.assert_array_equal(nonzero_per_unit(w), 15)
  assert abs(true_radius(w) / 1.1 - 1) <= 1e-4


@pytest.mark.parametrize("name,init,shape", [
    ("echo_state", echo_state(1.1, 15), (20, 20)),
    ("sparse", sparse(15), (40, 16)),
])
def test_initializers_lower_for_gpu_and_tpu(name, init, shape):
  """Jitted, they lower for CUDA and TPU to plain HLO: no custom calls (an
  ``eig`` would be a LAPACK custom call on CUDA, and fails to lower on TPU:
  "MLIR translation rule for primitive 'eig' not found for platform tpu")."""
  del name
  traced = jax.jit(init, static_argnums=1).trace(jax.random.key(0), shape)
  for platform in ("cuda", "tpu"):
    text = traced.lower(lowering_platforms=(platform,)).as_text()
    assert "custom_call" not in text, platform
    assert "eig" not in text.lower(), platform


def test_estimate_spectral_radius_without_jit():
  # Op by op (lax.fori_loop hands a Python int to its body then).
  rot = np.array([[0.0, -2.0], [2.0, 0.0]], np.float32)
  with jax.disable_jit():
    eager = float(estimate_spectral_radius(rot, num_squarings=20))
  jitted = float(estimate_spectral_radius(rot, num_squarings=20))
  assert abs(eager / jitted - 1) <= 1e-6
  assert abs(eager / 2.0 - 1) <= 1e-5   # truncation log(sqrt(2)) / 2**20


def _jordan(n):
  return np.eye(n) * 0.7 + np.eye(n, k=1)


# Matrices where plain power iteration fails or is slow.
_RADIUS_CASES = {
    "complex pair": np.array([[0.0, -2.0], [2.0, 0.0]]),
    "rotation + small": np.array([[0.6, -0.8, 0.0], [0.8, 0.6, 0.0],
                                  [0.0, 0.0, 0.3]]),
    "negative dominant": np.diag([-3.0, 2.9, 1.0]),
    "permutation cycle": np.roll(np.eye(7), 1, axis=0) * 1.3,
    "jordan block": _jordan(4),
    "nilpotent": np.triu(np.ones((5, 5)), k=1),
    "dense gaussian": np.random.default_rng(0).normal(size=(60, 60)),
    "non-normal": np.triu(np.random.default_rng(1).normal(size=(30, 30))),
}


@pytest.mark.parametrize("name", list(_RADIUS_CASES))
def test_estimate_spectral_radius_hard_cases(name):
  matrix = _RADIUS_CASES[name].astype(np.float32)
  got = float(jax.jit(estimate_spectral_radius)(matrix))
  want = true_radius(matrix)
  if want == 0:
    assert got == 0
  else:
    # A Jordan block converges as p log(k) / k, k = 2**j, until its powers
    # underflow (j ~ 21 in float32): still well below 1e-4.
    tol = 1e-4 if name == "jordan block" else 1e-5
    assert abs(got / want - 1) <= tol, (got, want)


def test_estimate_spectral_radius_sparse_k1(getkey):
  # One connection per unit: a functional graph, eigenvalues on few circles.
  for key in jax.random.split(getkey(), 3):
    w = np.asarray(sparse(1)(key, (50, 50)))
    assert abs(float(estimate_spectral_radius(w)) / true_radius(w) - 1) < 1e-5


# ----------------------------------------------------------- bad arguments

def _key():
  return jax.random.key(0)


_BAD_ARGUMENTS = [
    (lambda: sparse(num_connections=0), ValueError, "num_connections"),
    (lambda: sparse(num_connections=-3), ValueError, "num_connections"),
    (lambda: sparse(num_connections=2.5), TypeError, "num_connections"),
    (lambda: sparse(scale=-1.0), ValueError, "scale"),
    (lambda: sparse(scale=0.0), ValueError, "scale"),
    (lambda: sparse()(_key(), (5,)), ValueError, "shape"),
    (lambda: sparse()(_key(), (5, 4), jnp.int32), TypeError, "dtype"),
    (lambda: sparse(batch_axis=(1,))(_key(), (5, 4)), ValueError,
     "batch_axis"),
    (lambda: sparse(batch_axis=(0, 1))(_key(), (3, 5, 4)), ValueError,
     "batch_axis"),
    (lambda: echo_state(spectral_radius=-1.1), ValueError, "spectral_radius"),
    (lambda: echo_state(num_connections=0), ValueError, "num_connections"),
    (lambda: echo_state()(_key(), (10, 12)), ValueError, "shape"),
    (lambda: echo_state()(_key(), (10,)), ValueError, "shape"),
    (lambda: estimate_spectral_radius(jnp.ones((3, 4))), ValueError,
     "matrix"),
    (lambda: initializers.sparse_layer(activation="relu"), ValueError,
     "activation"),
    (lambda: initializers.sparse_layer(scale=-2.0, activation="tanh"),
     ValueError, "scale"),
]


@pytest.mark.parametrize("make,error,name", _BAD_ARGUMENTS)
def test_bad_arguments_name_the_argument(make, error, name):
  with pytest.raises(error, match=name):
    make()
