"""One test per validation hole of issue 15 ("Nothing silently wrong").

Each input here was accepted, or failed with a raw traceback, before the
fix: a ``None`` or string learning rate, array hyperparameters and schedules
that broadcast into the params, integer params and accumulators, wrongly
shaped outputs given to a problem's loss, malformed data files, extreme
matrices given to ``estimate_spectral_radius``, grid values that the cast to
float32 changes, a huge ``TrainConfig`` and bad CLI flags. Each must now give
the right answer or our own error naming the argument (or file, or flag).
"""

import gzip
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import _optax_promotion as optax_promotion
import jaxmomentum as jm
from jaxmomentum import initializers
from jaxmomentum import problems as P
from jaxmomentum import training
from jaxmomentum.reproduce import cli

_OPTIMIZERS = {
    "cm": lambda lr: jm.cm(lr, 0.9),
    "nag": lambda lr: jm.nag(lr, 0.9),
    "adam": lambda lr: jm.adam(lr),
    "rmsprop": lambda lr: jm.rmsprop(lr),
}


# -- 2: learning_rate None / strings ----------------------------------------

@pytest.mark.parametrize("name", sorted(_OPTIMIZERS))
@pytest.mark.parametrize("lr", [None, "0.1", "fast", b"0.1", True])
def test_learning_rate_must_be_a_number(name, lr):
  with pytest.raises(TypeError, match="^learning_rate must be a number > 0"):
    _OPTIMIZERS[name](lr)


# -- 3: hyperparameters and schedules must be scalars ------------------------

@pytest.mark.parametrize("build", [
    lambda: jm.cm(jnp.array([1e-2, 1e-3]), 0.9),
    lambda: jm.cm(1e-2, np.array([0.9, 0.5])),
    lambda: jm.nag(np.ones((1,)) * 1e-2, 0.9),
    lambda: jm.adam(1e-3, b1=jnp.array([0.9, 0.8])),
    lambda: jm.rmsprop(1e-2, decay=[0.9, 0.99]),
    lambda: jm.rmsprop(1e-2, momentum=np.array([0.9])),
    lambda: jm.classical_momentum(jnp.zeros(2)),
])
def test_array_hyperparameters_are_refused(build):
  with pytest.raises(ValueError, match="must be a scalar"):
    build()


@pytest.mark.parametrize("build,arg", [
    (lambda s: jm.cm(1e-2, s), "momentum"),
    (lambda s: jm.nag(1e-2, s), "momentum"),
    (lambda s: jm.cm(s, 0.9), "learning_rate"),
    pytest.param(lambda s: jm.adam(s), "learning_rate",
                 marks=optax_promotion.ADAM),
    (lambda s: jm.rmsprop(1e-2, momentum=s), "momentum"),
])
def test_schedules_returning_arrays_are_refused(build, arg):
  def schedule(count):
    return jnp.full((2,), 0.5) + 0 * jnp.asarray(count, jnp.float32)

  opt = build(schedule)
  params = jnp.ones(())
  with pytest.raises(ValueError, match=f"the {arg} schedule must return a "
                     "scalar"):
    updates, _ = opt.update(jnp.ones(()), opt.init(params), params)
    assert updates.shape == ()  # before the fix: shape (2,)


def test_scalar_schedules_and_vmapped_grids_still_work():
  """A guard: the new checks must not refuse what is right."""
  opt = jm.nag(optax.linear_schedule(0.1, 0.01, 10), lambda t: 0.9)
  p = jnp.ones(3)
  u, _ = opt.update(p, opt.init(p), p)
  assert u.shape == (3,)

  def one(lr):
    o = jm.cm(lr, 0.9)
    return o.update(p, o.init(p))[0]

  assert jax.vmap(one)(jnp.array([0.1, 0.2])).shape == (2, 3)


# -- 4: integer params or accumulators ---------------------------------------

@pytest.mark.parametrize("build", [
    lambda: jm.cm(0.1, 0.9), lambda: jm.nag(0.1, 0.9), lambda: jm.adam(),
    lambda: jm.adam(bias_correction=False), lambda: jm.rmsprop(),
    lambda: jm.rmsprop(momentum=0.9)])
def test_integer_params_are_refused(build):
  opt = build()
  with pytest.raises(TypeError, match=r"params must be floating-point.*\['w'\]"):
    opt.init({"w": jnp.array([1, 2]), "b": jnp.zeros(2)})


@pytest.mark.parametrize("build,arg", [
    (lambda d: jm.cm(0.1, 0.9, accumulator_dtype=d), "accumulator_dtype"),
    (lambda d: jm.nag(0.1, 0.9, accumulator_dtype=d), "accumulator_dtype"),
    (lambda d: jm.rmsprop(momentum=0.9, accumulator_dtype=d),
     "accumulator_dtype"),
    (lambda d: jm.adam(mu_dtype=d), "mu_dtype"),
])
@pytest.mark.parametrize("dtype", [jnp.int32, "int8", bool])
def test_integer_accumulators_are_refused(build, arg, dtype):
  with pytest.raises(TypeError, match=f"^{arg} must be a floating dtype"):
    build(dtype)


# -- 5: problem losses check the outputs' shape ------------------------------

@pytest.mark.parametrize("problem", [P.addition(T=10), P.memorization(
    num_symbols=2, alphabet_size=2, T=10)], ids=["add", "mem"])
@pytest.mark.parametrize("wrong", ["last_dim", "no_batch_axis", "no_time"])
@pytest.mark.parametrize("metric", ["loss", "zero_one"])
def test_problem_metrics_refuse_wrong_output_shapes(problem, wrong, metric):
  batch = problem.sample(jax.random.key(0), 4)
  shape = batch.targets.shape
  outputs = jnp.zeros({"last_dim": shape[:2] + (shape[2] + 1,),
                       "no_batch_axis": shape[1:],
                       "no_time": shape[:1] + shape[2:]}[wrong])
  with pytest.raises(ValueError, match="must have the targets' shape"):
    getattr(problem, metric)(outputs, batch)
  good = getattr(problem, metric)(jnp.zeros(shape), batch)
  assert good.shape == ()


# -- 6: loaders --------------------------------------------------------------

scipy_io = pytest.importorskip("scipy.io")


def test_curves_without_cases_is_an_error(tmp_path):
  scipy_io.savemat(tmp_path / "digs3pts_1.mat", {
      "bdata": np.zeros((0, 784)), "bdatatest": np.zeros((0, 784))})
  with pytest.raises(P.DataFileError, match="digs3pts_1.mat.*no cases"):
    P.load_curves(tmp_path)


def test_curves_binary_uint8_pixels_are_not_divided_by_255(tmp_path):
  binary = (np.arange(2 * 784).reshape(2, 784) % 3 == 0).astype(np.uint8)
  scipy_io.savemat(tmp_path / "digs3pts_1.mat",
                   {"bdata": binary, "bdatatest": binary})
  np.testing.assert_array_equal(P.load_curves(tmp_path).train, binary)


def test_crafted_idx_header_names_the_file(tmp_path):
  # 65536**4 elements: the size in int64 wraps to 0, matching 0 data bytes.
  path = tmp_path / "train-images-idx3-ubyte"
  path.write_bytes(bytes([0, 0, 8, 4]) + np.full(4, 65536, ">u4").tobytes())
  with pytest.raises(P.DataFileError, match=str(path)):
    P.read_idx(path)


def _deny_access(monkeypatch, denied):
  real = os.access

  def access(path, mode, *args, **kwargs):
    if os.path.abspath(path) == os.path.abspath(denied):
      return False
    return real(path, mode, *args, **kwargs)

  monkeypatch.setattr(os, "access", access)


@pytest.mark.parametrize("loader", [P.load_mnist, P.load_curves,
                                    P.load_faces])
def test_unreadable_data_folder_is_not_reported_missing(tmp_path, loader,
                                                        monkeypatch):
  folder = tmp_path / "data"
  folder.mkdir()
  if os.geteuid() == 0:  # root reads anything: pretend the mode bits apply
    _deny_access(monkeypatch, folder)
  folder.chmod(0o000)
  try:
    with pytest.raises(P.DataFileError, match="data exists but cannot be read"):
      loader(folder)
  finally:
    folder.chmod(0o700)


def test_unreadable_idx_file_is_not_reported_missing(tmp_path, monkeypatch):
  path = tmp_path / "x-idx1-ubyte"
  path.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 1, 7])))
  if os.geteuid() == 0:
    _deny_access(monkeypatch, path)
  path.chmod(0o000)
  try:
    with pytest.raises(P.DataFileError, match="cannot be read"):
      P.read_idx(path)
  finally:
    path.chmod(0o600)


# -- 6: estimate_spectral_radius ---------------------------------------------

@pytest.mark.parametrize("matrix,expected", [
    (1e20 * np.eye(3, dtype=np.float32), 1e20),
    (1e-19 * np.eye(3, dtype=np.float32), 1e-19),
    (1e30 * np.array([[0, -2], [2, 0]], np.float32), 2e30),
    (2j * np.eye(3, dtype=np.complex64), 2.0),
    (np.array([[2j, 1], [0, 0.5]], np.complex64), 2.0),
    (3 * np.eye(2, dtype=np.int32), 3.0),
], ids=["1e20I", "1e-19I", "huge_rotation", "2jI", "complex_triangular",
        "int"])
def test_spectral_radius_of_extreme_and_complex_matrices(matrix, expected):
  got = float(initializers.estimate_spectral_radius(matrix))
  np.testing.assert_allclose(got, expected, rtol=2e-6)


@pytest.mark.parametrize("matrix,error", [
    (np.array([[np.nan, 0], [0, 1]]), ValueError),
    (np.array([[np.inf, 0], [0, 1]]), ValueError),
    ("eye", TypeError),
    (np.array([["a", "b"], ["c", "d"]]), TypeError),
])
def test_spectral_radius_refuses_non_numbers(matrix, error):
  with pytest.raises(error, match="matrix"):
    initializers.estimate_spectral_radius(matrix)


# -- 6: grid values cast to float32 / int32 ----------------------------------

@pytest.mark.parametrize("values,becomes", [
    ([1e-2, 1e-50], "1e-50 becomes 0"),
    ([1e39], "becomes inf"),
    ([1e-41], "becomes"),
    (np.array([2**40], np.int64), "becomes 0"),
])
def test_grid_values_changed_by_the_cast_are_refused(values, becomes):
  with pytest.raises(ValueError, match=f"'learning_rate'.*{becomes}"):
    training.Grid.product(learning_rate=values)


def test_grid_values_merely_rounded_are_kept():
  """A guard: ordinary rounding to float32 is not an error."""
  grid = training.Grid.product(learning_rate=[0.1, 1e-30, 3e38, 0.0],
                               steps=[2**31 - 1])
  np.testing.assert_array_equal(
      grid.values["learning_rate"],
      np.array([0.1, 1e-30, 3e38, 0.0], np.float32))


# -- 6: TrainConfig's chunk search -------------------------------------------

@pytest.mark.parametrize("num_steps", [2_147_483_647, 2_147_483_646,
                                       1_000_000_007])
def test_train_config_with_huge_num_steps_picks_the_smallest_chunk(num_steps):
  # Its speed (a sqrt(num_steps) search): benchmarks/timing_bounds.py.
  config = training.TrainConfig(num_steps=num_steps, batch_size=1,
                                eval_every=1)
  assert config.num_chunks <= 50
  assert num_steps % config.chunk_size == 0
  # The smallest chunk giving at most 50 chunks.
  assert all(num_steps % c or num_steps // c > 50
             for c in range(max(1, config.chunk_size - 1000),
                            config.chunk_size))


def test_train_config_refuses_more_steps_than_the_int32_counter():
  with pytest.raises(ValueError, match="num_steps"):
    training.TrainConfig(num_steps=2**31, batch_size=1, eval_every=2**30)


# -- 6: CLI flags are usage errors naming the flag ---------------------------

@pytest.mark.parametrize("flags,flag", [
    (["--steps", "750001"], "--steps"),
    (["--steps", "0"], "--steps"),
    (["--steps", "1e3"], "--steps"),
    (["--seeds", "-2"], "--seeds"),
    (["--checkpoint-every", "-5"], "--checkpoint-every"),
    (["--checkpoint-every", "nan"], "--checkpoint-every"),
    (["--learning-rates", "0.1,inf"], "--learning-rates"),
    (["--learning-rates", "0.1,-1"], "--learning-rates"),
    (["--mu", "1.5"], "--mu"),
    (["--problems", "xor"], "--problems"),
    (["--out", "FILE"], "--out"),
    (["--out", "FILE/below"], "--out"),
    (["--out", "/proc/jaxmomentum_test/out"], "--out"),
])
def test_bad_cli_flags_are_usage_errors_naming_the_flag(flags, flag,
                                                        tmp_path, capsys):
  a_file = tmp_path / "a_file"
  a_file.write_text("")
  flags = [f.replace("FILE", str(a_file)) for f in flags]
  if "--out" not in flags:
    flags += ["--out", str(tmp_path / "out")]
  with pytest.raises(SystemExit) as exit_info:
    cli.main(["reproduce", "table5", *flags])
  assert exit_info.value.code == 2
  err = capsys.readouterr().err
  assert f"error: argument {flag}" in err, err
  assert "Traceback" not in err
  assert not (tmp_path / "out").exists()


def test_steps_error_suggests_values_that_work(capsys, tmp_path):
  with pytest.raises(SystemExit):
    cli.main(["reproduce", "table1", "--protocol", "paper", "--steps",
              "750001", "--out", str(tmp_path)])
  err = capsys.readouterr().err
  assert "try 750000 or 751000" in err
  assert "eval_every must divide" in err


def test_cli_usage_error_exit_status_in_a_subprocess(tmp_path):
  """The real entry point: exit status 2, one error line, no traceback."""
  proc = subprocess.run(
      [sys.executable, "-m", "jaxmomentum.reproduce.cli", "reproduce",
       "table5", "--checkpoint-every", "-5", "--out", str(tmp_path / "o")],
      capture_output=True, text=True, timeout=120, check=False,
      env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(
          os.path.abspath(jm.__file__)))})
  assert proc.returncode == 2, proc.stderr
  assert "argument --checkpoint-every" in proc.stderr
  assert "Traceback" not in proc.stderr
