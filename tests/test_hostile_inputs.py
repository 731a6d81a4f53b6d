"""Hostile and careless inputs to the public API, the loaders and the CLI.

Table-driven (deterministic, so the counts are stable): every case is one
input, either valid, with a check that the result is *right* (compared with
an independent numpy reference where there is one), or invalid, with the
name of the argument (file, flag) the error must carry. A case passes when a
valid input gives the right result, or an invalid one raises a
``ValueError``/``TypeError`` (our ``DataFileError``, ``CheckpointError``, or
a usage error with exit status 2 for the CLI) *raised by jaxmomentum's own
code* and naming the argument. It fails when an invalid input is accepted, a
valid one is refused or computed wrongly, or an error comes from inside jax,
numpy, scipy or orbax.

Run as a script for the counts quoted in the README's Reliability section::

  python tests/test_hostile_inputs.py
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import gzip
import io
import math
import os
import shutil
import sys
import tempfile
import traceback
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import _optax_promotion

import jaxmomentum as jm
from jaxmomentum import initializers
from jaxmomentum import problems as P
from jaxmomentum import schedules
from jaxmomentum import training
from jaxmomentum.reproduce import cli

_PACKAGE_DIR = os.path.dirname(os.path.abspath(jm.__file__))
_NAN, _INF = float("nan"), float("inf")


class Case(NamedTuple):
  """One input: ``call()`` runs it; ``arg`` is None for a valid input (then
  ``check(result)`` asserts it is right) or the name the error must carry."""

  id: str
  call: Callable[[], Any]
  arg: Optional[str]
  check: Optional[Callable[[Any], None]] = None


def _raised_by_us(err: BaseException) -> bool:
  """The innermost frame of the traceback is in the jaxmomentum package."""
  frames = traceback.extract_tb(err.__traceback__)
  return bool(frames) and os.path.abspath(frames[-1].filename).startswith(
      _PACKAGE_DIR)


def outcome(case: Case) -> str:
  """``"correct"``, ``"clear error"``, or what went wrong."""
  try:
    result = case.call()
  except Exception as err:  # pylint: disable=broad-except
    text = f"{type(err).__name__}: {str(err)[:300]}"
    if case.arg is None:
      return f"valid input refused: {text}"
    if isinstance(err, _UsageError):  # the CLI's exit status 2, checked
      return "clear error"
    if not isinstance(err, (ValueError, TypeError)) or not _raised_by_us(err):
      return f"unclear error (not ours): {text}"
    if case.arg not in str(err):
      return f"unclear error (does not name {case.arg!r}): {text}"
    return "clear error"
  if case.arg is not None:
    return (f"silently wrong: accepted, expected an error naming "
            f"{case.arg!r}; got {str(result)[:200]}")
  try:
    if case.check is not None:
      case.check(result)
  except AssertionError as err:
    return f"silently wrong: {str(err)[:300]}"
  return "correct"


# -- optimizers --------------------------------------------------------------

_G = np.array([1.0, -2.0, 0.5], np.float32)  # params and gradient


def _first_update(opt, params=_G, grads=_G):
  state = opt.init(jnp.asarray(params))
  updates, _ = opt.update(jnp.asarray(grads), state, jnp.asarray(params))
  return updates


# Independent first-update references (float64) for each factory.
def _ref_cm(learning_rate=0.1, momentum=0.9, **_):
  return -learning_rate * _G


def _ref_nag(learning_rate=0.1, momentum=0.9, **_):
  return -(1 + momentum) * learning_rate * _G


def _ref_adam(learning_rate=1e-3, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0,
              **_):
  g = _G.astype(np.float64)
  return -learning_rate * g / (np.sqrt(g * g + eps_root) + eps)


def _ref_rmsprop(learning_rate=1e-2, decay=0.99, eps=1e-8, initial_scale=0.0,
                 **_):
  g = _G.astype(np.float64)
  return -learning_rate * g / (
      np.sqrt(decay * initial_scale + (1 - decay) * g * g) + eps)


def _ref_cm_transform(momentum=0.9, **_):
  return _G


def _ref_nag_transform(momentum=0.9, **_):
  return (1 + momentum) * _G


def _ref_adam_transform(**kw):
  return _ref_adam(learning_rate=-1.0, **kw)


def _ref_rms_transform(**kw):
  return _ref_rmsprop(learning_rate=-1.0, **kw)


_UNIT = (0.0, 1.0, False, False)        # [0, 1]
_UNIT_OPEN = (0.0, 1.0, False, True)    # [0, 1)
_POSITIVE = (0.0, math.inf, True, False)
_NONNEG = (0.0, math.inf, False, False)

# factory, reference, {argument: (range, schedule allowed, None allowed)}
_OPTIMIZERS = {
    "cm": (jm.cm, _ref_cm, dict(learning_rate=0.1, momentum=0.9),
           {"learning_rate": (_POSITIVE, True, False),
            "momentum": (_UNIT, True, False)}),
    "nag": (jm.nag, _ref_nag, dict(learning_rate=0.1, momentum=0.9),
            {"learning_rate": (_POSITIVE, True, False),
             "momentum": (_UNIT, True, False)}),
    "adam": (jm.adam, _ref_adam, {},
             {"learning_rate": (_POSITIVE, True, False),
              "b1": (_UNIT_OPEN, False, False),
              "b2": (_UNIT_OPEN, False, False),
              "eps": (_NONNEG, False, False),
              "eps_root": (_NONNEG, False, False)}),
    "rmsprop": (jm.rmsprop, _ref_rmsprop, {},
                {"learning_rate": (_POSITIVE, True, False),
                 "decay": (_UNIT_OPEN, False, False),
                 "eps": (_NONNEG, False, False),
                 "momentum": (_UNIT, True, True),
                 "initial_scale": (_NONNEG, False, False)}),
    "classical_momentum": (jm.classical_momentum, _ref_cm_transform,
                           dict(momentum=0.9),
                           {"momentum": (_UNIT, True, False)}),
    "nesterov_momentum": (jm.nesterov_momentum, _ref_nag_transform,
                          dict(momentum=0.9),
                          {"momentum": (_UNIT, True, False)}),
    "scale_by_adam": (jm.scale_by_adam, _ref_adam_transform, {},
                      {"b1": (_UNIT_OPEN, False, False),
                       "b2": (_UNIT_OPEN, False, False),
                       "eps": (_NONNEG, False, False)}),
    "scale_by_rms": (jm.scale_by_rms, _ref_rms_transform, {},
                     {"decay": (_UNIT_OPEN, False, False),
                      "eps": (_NONNEG, False, False),
                      "initial_scale": (_NONNEG, False, False)}),
}


def _const_schedule(count):  # strict-promotion clean: count is an int array
  return 0.5 + 0.0 * jnp.asarray(count, jnp.float32)


def _vector_schedule(count):
  return jnp.full((2,), 0.5) + 0.0 * jnp.asarray(count, jnp.float32)


# label -> (value, the number it stands for, or None if it is not a number)
_HYPERPARAMETER_VALUES = {
    "None": (None, None), "str_number": ("0.5", None), "str": ("fast", None),
    "bytes": (b"0.5", None), "True": (True, None), "nan": (_NAN, None),
    "inf": (_INF, None), "-inf": (-_INF, None), "-1": (-1.0, None),
    "0": (0.0, 0.0), "0.5": (0.5, 0.5), "int_1": (1, 1.0), "1.5": (1.5, 1.5),
    "complex": (0.5 + 0j, None), "list": ([0.5], None), "tuple": ((0.5,), None),
    "dict": ({"value": 0.5}, None), "object": (object(), None),
    "vector": (np.array([0.1, 0.2]), None),
    "jnp_vector": (jnp.array([0.1, 0.2]), None),
    "matrix_1x1": (np.array([[0.5]]), None),
    "np_0d": (np.array(0.5), 0.5), "np_float32": (np.float32(0.5), 0.5),
    "jnp_scalar": (jnp.float32(0.5), 0.5), "np_int": (np.int64(0), 0.0),
    "schedule": (_const_schedule, "schedule"),
    "vector_schedule": (_vector_schedule, None),
    "string_array": (np.array(["0.5"]), None),
}


def _in_range(x: float, spec) -> bool:
  low, high, low_open, high_open = spec
  if not math.isfinite(x):
    return False
  return ((x > low) if low_open else (x >= low)) and (
      (x < high) if high_open else (x <= high))


def _optimizer_cases():
  for name, (factory, ref, base, args) in _OPTIMIZERS.items():
    for arg, (spec, schedulable, optional) in args.items():
      for label, (value, number) in _HYPERPARAMETER_VALUES.items():
        if value is None:
          valid = optional
          expect_kw = {}
        elif number == "schedule":
          valid = schedulable and _in_range(0.5, spec)
          expect_kw = {arg: 0.5}
        else:
          valid = number is not None and _in_range(number, spec)
          expect_kw = {arg: number}
        kwargs = {**base, arg: value}

        def call(factory=factory, kwargs=kwargs):
          return _first_update(factory(**kwargs))

        def check(updates, ref=ref, kw={**base, **expect_kw}):
          updates = np.asarray(updates)
          assert updates.shape == _G.shape and updates.dtype == np.float32, (
              f"updates {updates.shape} {updates.dtype}")
          np.testing.assert_allclose(updates, ref(**kw), rtol=1e-5, atol=0)

        yield Case(f"{name}-{arg}-{label}", call, None if valid else arg,
                   check)


_PARAMS = {
    "int32": (np.array([1, 2, 3], np.int32), False),
    "int8": (np.array([1, 2, 3], np.int8), False),
    "uint8": (np.array([1, 2, 3], np.uint8), False),
    "bool": (np.array([True, False, True]), False),
    "float16": (np.array([1.0, -2.0, 0.5], np.float16), True),
    "bfloat16": (jnp.array([1.0, -2.0, 0.5], jnp.bfloat16), True),
    "float32": (_G, True),
}


def _params_cases():
  for name in _OPTIMIZERS:
    factory, ref, base, _ = _OPTIMIZERS[name]
    for label, (params, valid) in _PARAMS.items():
      def call(factory=factory, base=base, params=params):
        return _first_update(factory(**base), params=params,
                             grads=jnp.asarray(params).astype(
                                 jnp.asarray(params).dtype))

      def check(updates, params=params, ref=ref, base=base):
        updates = np.asarray(updates, np.float64)
        assert jnp.asarray(updates).shape == _G.shape
        np.testing.assert_allclose(updates, ref(**base), rtol=1e-2)

      yield Case(f"{name}-params-{label}", call, None if valid else "params",
                 check)
  dtypes = {"None": (None, True), "float32": (jnp.float32, True),
            "str_float32": ("float32", True), "bfloat16": (jnp.bfloat16, True),
            "int32": (jnp.int32, False), "str_int8": ("int8", False),
            "bool": (bool, False), "nonsense": ("nonsense", False),
            "number": (3.5, False)}
  for name, arg in [("cm", "accumulator_dtype"), ("nag", "accumulator_dtype"),
                    ("adam", "mu_dtype")]:
    factory, ref, base, _ = _OPTIMIZERS[name]
    for label, (dtype, valid) in dtypes.items():
      def call(factory=factory, base=base, arg=arg, dtype=dtype):
        return _first_update(factory(**base, **{arg: dtype}))

      def check(updates, ref=ref, base=base):
        np.testing.assert_allclose(np.asarray(updates, np.float64),
                                   ref(**base), rtol=1e-2)

      yield Case(f"{name}-{arg}-{label}", call, None if valid else arg, check)


# -- schedules, initializers, problems, TrainConfig --------------------------

_COUNT_VALUES = {
    "0": 0, "1": 1, "15": 15, "-1": -1, "1.5": 1.5, "str": "15", "None": None,
    "True": True, "np_int": np.int64(15), "nan": _NAN, "float_int": 15.0,
}


def _count_cases(name, build, arg, low, check, high=None):
  """Cases for an integer argument ``arg`` (valid: ints in [low, high])."""
  for label, value in _COUNT_VALUES.items():
    valid = (isinstance(value, (int, np.integer))
             and not isinstance(value, bool) and value >= low
             and (high is None or value <= high))
    yield Case(f"{name}-{arg}-{label}", lambda v=value: build(v),
               None if valid else arg, check)


_SCALAR_VALUES = {k: v for k, v in _HYPERPARAMETER_VALUES.items()
                  if k not in ("schedule", "vector_schedule")}


def _scalar_cases(name, build, arg, spec, check, optional=False):
  """Cases for a real scalar (or array of reals) argument in ``spec``."""
  for label, (value, number) in _SCALAR_VALUES.items():
    valid = (optional if value is None else
             number is not None and _in_range(number, spec))
    yield Case(f"{name}-{arg}-{label}", lambda v=value: build(v),
               None if valid else arg, lambda r, v=number: check(r, v))


def _schedule_check(expected_at):
  def check(schedule, value):
    for t in (0, 10, 600):
      got = float(schedule(t))
      want = expected_at(t, value)
      assert abs(got - want) <= 1e-6, f"schedule({t}) = {got}, want {want}"
  return check


def _other_api_cases():
  # schedules
  yield from _scalar_cases(
      "sutskever_schedule", schedules.sutskever_schedule, "mu_max", _UNIT,
      _schedule_check(lambda t, m: min(1 - 1 / (2 * (t // 250 + 1)), m)))
  yield from _count_cases(
      "sutskever_schedule", lambda n: schedules.sutskever_schedule(0.99, n),
      "stage_length", 1,
      lambda s: np.testing.assert_allclose(float(s(0)), 0.5))
  yield from _scalar_cases(
      "rnn_warmup_schedule", lambda v: schedules.rnn_warmup_schedule(v, 5),
      "mu0", _UNIT, _schedule_check(lambda t, m: 0.9 if t < 5 else m))
  yield from _count_cases(
      "rnn_warmup_schedule", lambda n: schedules.rnn_warmup_schedule(0.5, n),
      "warmup_steps", 0,
      lambda s: np.testing.assert_allclose(float(s(600)), 0.5))
  yield from _scalar_cases(
      "low_momentum_finetuning",
      lambda v: schedules.low_momentum_finetuning(0.99, 100, 10, v),
      "final_momentum", _UNIT,
      _schedule_check(lambda t, m: 0.99 if t < 90 else m))
  # initializers
  def sparse_check(init):
    w = np.asarray(init(jax.random.key(0), (20, 8)))
    assert w.shape == (20, 8) and np.all(np.sum(w != 0, axis=0) == 15)
  yield from _count_cases("sparse", lambda n: initializers.sparse(n),
                          "num_connections", 1,
                          lambda init: None)
  yield from _scalar_cases("sparse", lambda s: initializers.sparse(15, s),
                           "scale", _POSITIVE,
                           lambda init, v: sparse_check(init))

  def echo_check(init, radius):
    w = np.asarray(init(jax.random.key(0), (12, 12)), np.float64)
    got = np.max(np.abs(np.linalg.eigvals(w)))
    np.testing.assert_allclose(got, radius, rtol=1e-4)
  yield from _scalar_cases(
      "echo_state", lambda r: initializers.echo_state(r, 5),
      "spectral_radius", _POSITIVE, echo_check)
  # problems (sampling is tested in test_problems_rnn.py; here: the value
  # stored is the integer asked for)
  def field_check(field, want):
    def check(problem):
      got = getattr(problem, field)
      assert type(got) is int and got == want, f"{field} = {got!r}"
    return check
  yield from _count_cases("addition", lambda t: P.addition(t), "T", 10,
                          field_check("T", 15))
  yield from _count_cases("memorization",
                          lambda n: P.memorization(n, 2, 40),
                          "num_symbols", 1, lambda p: field_check(
                              "num_symbols", 15 if p.num_symbols > 1 else 1)(p))
  yield from _count_cases("memorization",
                          lambda k: P.memorization(2, k, 40),
                          "alphabet_size", 1, lambda p: field_check(
                              "alphabet_size", 15 if p.alphabet_size > 1
                              else 1)(p))
  yield from _count_cases("temporal_order", lambda t: P.temporal_order(t),
                          "T", 10, field_check("T", 15))
  # TrainConfig: the step counter is an int32
  def config_check(config):
    assert config.num_steps % config.chunk_size == 0
    assert config.chunk_size % config.eval_every == 0
  yield from _count_cases(
      "TrainConfig", lambda n: training.TrainConfig(
          num_steps=n * 4 if isinstance(n, (int, np.integer)) and not
          isinstance(n, bool) else n, batch_size=2, eval_every=4),
      "num_steps", 1, config_check)
  yield from _count_cases(
      "TrainConfig", lambda n: training.TrainConfig(
          num_steps=60, batch_size=n, eval_every=4), "batch_size", 1,
      config_check)
  for label, n in [("int32_max", 2**31 - 1), ("too_big", 2**31),
                   ("prime", 1_000_000_007)]:
    yield Case(f"TrainConfig-num_steps-{label}",
               lambda n=n: training.TrainConfig(num_steps=n, batch_size=1,
                                                eval_every=1),
               "num_steps" if n > 2**31 - 1 else None, config_check)


# -- estimate_spectral_radius, metrics, grids --------------------------------

def _radius_cases():
  rng = np.random.default_rng(0)
  # 3 x 3 (one compilation per dtype) unless the shape is the point.
  rotation = np.zeros((3, 3), np.float32)
  rotation[:2, :2] = [[0, -2], [2, 0]]
  matrices = {
      "random": rng.normal(size=(3, 3)).astype(np.float32),
      "1e20_I": 1e20 * np.eye(3, dtype=np.float32),
      "1e-19_I": 1e-19 * np.eye(3, dtype=np.float32),
      "1e35_random": 1e35 * rng.normal(size=(3, 3)).astype(np.float32),
      "1e-30_random": 1e-30 * rng.normal(size=(3, 3)).astype(np.float32),
      "complex": (rng.normal(size=(3, 3)) + 1j * rng.normal(size=(3, 3))
                  ).astype(np.complex64),
      "2j_I": 2j * np.eye(3, dtype=np.complex64),
      "int": np.array([[2, 1, 0], [0, 3, 0], [0, 0, 1]], np.int32),
      "zero": np.zeros((3, 3), np.float32),
      "nilpotent": np.triu(np.ones((3, 3), np.float32), 1),
      "rotation": rotation,
      "batch": rng.normal(size=(2, 3, 3)).astype(np.float32),
  }
  for label, m in matrices.items():
    def check(got, m=m):
      want = np.max(np.abs(np.linalg.eigvals(m.astype(np.complex128))),
                    axis=-1)
      np.testing.assert_allclose(np.asarray(got, np.float64), want,
                                 rtol=1e-4, atol=0)
    yield Case(f"spectral_radius-{label}",
               lambda m=m: initializers.estimate_spectral_radius(m), None,
               check)
  bad = {"nan": np.array([[_NAN, 0], [0, 1]]),
         "inf": np.array([[_INF, 0], [0, 1]]),
         "not_square": np.ones((2, 3)), "vector": np.ones(3),
         "scalar": 1.0, "str": "eye", "None": None,
         "strings": np.array([["a", "b"], ["c", "d"]]),
         "objects": np.array([[object(), 1], [1, 1]], dtype=object)}
  for label, m in bad.items():
    yield Case(f"spectral_radius-{label}",
               lambda m=m: initializers.estimate_spectral_radius(m), "matrix")
  for label, n in [("0", 0), ("str", "24"), ("float", 2.5)]:
    yield Case(f"spectral_radius-num_squarings-{label}",
               lambda n=n: initializers.estimate_spectral_radius(
                   np.eye(2), n), "num_squarings")


def _metric_cases():
  b, t, d = 3, 4, 2
  rng = np.random.default_rng(1)
  targets = rng.normal(size=(b, t, d)).astype(np.float32)
  onehot = np.eye(d, dtype=np.float32)[rng.integers(0, d, (b, t))]
  mask = (rng.random((b, t)) < 0.7).astype(np.float32)
  metrics = {
      "squared_error": (P.squared_error, targets, "outputs",
                        lambda o, y, m: np.sum(m * np.sum((o - y) ** 2, -1))
                        / np.sum(m)),
      "threshold_error": (P.threshold_error, targets, "outputs",
                          lambda o, y, m: np.sum(
                              m * (np.max(np.abs(o - y), -1) > 0.04))
                          / np.sum(m)),
      "softmax_cross_entropy": (
          P.softmax_cross_entropy, onehot, "logits",
          lambda o, y, m: np.sum(m * -np.sum(
              y * (o - np.log(np.sum(np.exp(o), -1, keepdims=True))), -1))
          / np.sum(m)),
      "argmax_error": (P.argmax_error, onehot, "logits",
                       lambda o, y, m: np.sum(m * (np.argmax(o, -1) !=
                                                   np.argmax(y, -1)))
                       / np.sum(m)),
  }
  shapes = {"right": (b, t, d), "last_dim+1": (b, t, d + 1),
            "last_dim_1": (b, t, 1), "no_batch": (t, d), "no_time": (b, d),
            "extra_axis": (1, b, t, d), "flat": (b * t * d,),
            "transposed": (t, b, d)}
  for name, (fn, y, arg, ref) in metrics.items():
    for label, shape in shapes.items():
      outputs = rng.normal(size=shape).astype(np.float32)

      def check(got, outputs=outputs, y=y, ref=ref):
        np.testing.assert_allclose(float(got), ref(outputs, y, mask),
                                   rtol=1e-5)
      yield Case(f"{name}-{label}",
                 lambda fn=fn, o=outputs, y=y: fn(o, y, mask),
                 None if label == "right" else arg, check)
    yield Case(f"{name}-mask_shape", lambda fn=fn, y=y: fn(y, y, mask[:, :1]),
               "mask")


_GRID_SPECS = {
    "ok": ({"learning_rate": [0.1, 1e-30, 3e38], "steps": [1, 2**31 - 1]},
           None),
    "nan_kept": ({"learning_rate": [_NAN]}, None),
    "underflow": ({"learning_rate": [1e-50]}, "learning_rate"),
    "subnormal": ({"learning_rate": [1e-41]}, "learning_rate"),
    "overflow": ({"learning_rate": [1e39]}, "learning_rate"),
    "int_overflow": ({"steps": np.array([2**40])}, "steps"),
    "strings": ({"learning_rate": ["0.1"]}, "learning_rate"),
    "None": ({"learning_rate": [None]}, "learning_rate"),
    "empty": ({"learning_rate": []}, "learning_rate"),
    "nested": ({"learning_rate": [[0.1, 0.2]]}, "learning_rate"),
    "not_a_grid": (42, "grid"),
}


def _grid_cases():
  for label, (spec, arg) in _GRID_SPECS.items():
    def check(grid, spec=spec):
      for axis, (name, values) in enumerate(spec.items()):
        want = np.asarray(values)
        got = np.unique(grid.values[name])
        want = want.astype(np.float32 if want.dtype.kind == "f" else np.int32)
        np.testing.assert_array_equal(np.sort(got), np.sort(want))
        assert grid.shape[axis] == len(want)
    yield Case(f"grid-{label}", lambda s=spec: training.Grid.product(**s)
               if isinstance(s, dict) else training.run_grid(None, s),
               arg if label != "not_a_grid" else "trainer", check)


# -- data files --------------------------------------------------------------

def _idx(array, code=0x08, dims=None):
  array = np.asarray(array)
  dims = array.shape if dims is None else dims
  header = bytes([0, 0, code, len(dims)]) + np.asarray(dims, ">u4").tobytes()
  dtype = {0x08: "u1", 0x0B: ">i2", 0x0D: ">f4"}[code]
  return header + np.ascontiguousarray(array, dtype).tobytes()


_IMAGES = np.arange(2 * 28 * 28).reshape(2, 28, 28) % 256


def _idx_files():
  good = _idx(_IMAGES)
  return {
      "good": (good, True), "good_gzip": (gzip.compress(good), True),
      "empty": (b"", False), "one_byte": (b"\x00", False),
      "bad_magic": (b"\x01\x02" + good[2:], False),
      "unknown_type": (good[:2] + b"\x07" + good[3:], False),
      "ndim_0": (bytes([0, 0, 8, 0]), False),
      "short_header": (good[:9], False), "truncated": (good[:-5], False),
      "trailing": (good + b"\x00", False),
      "wrapping_dims": (bytes([0, 0, 8, 4]) + np.full(4, 65536, ">u4")
                        .tobytes(), False),
      "huge_dims": (bytes([0, 0, 8, 3]) + np.full(3, 2**32 - 1, ">u4")
                    .tobytes(), False),
      "gzip_garbage": (b"\x1f\x8b" + b"garbage" * 3, False),
      "gzip_truncated": (gzip.compress(good)[:-10], False),
      "int16_pixels": (_idx(_IMAGES, 0x0B), False),
      "float_pixels": (_idx(_IMAGES / 255, 0x0D), False),
      "wrong_image_size": (_idx(np.zeros((2, 27, 28))), False),
      "zero_images": (_idx(np.zeros((0, 28, 28))), False),
  }


def _mat_files(workdir):
  try:
    import scipy.io  # pylint: disable=g-import-not-at-top
  except ImportError:  # the [data] extra: no .mat cases without it
    return {}
  px = np.linspace(0, 1, 784 * 3, dtype=np.float64).reshape(3, 784)
  contents = {
      "good": ({"bdata": px, "bdatatest": px}, px),
      "transposed": ({"bdata": px.T, "bdatatest": px.T}, px),
      "uint8": ({"bdata": (px * 255).round().astype(np.uint8),
                 "bdatatest": (px * 255).round().astype(np.uint8)},
                (px * 255).round() / 255),
      "binary_uint8": ({"bdata": (px > 0.5).astype(np.uint8),
                        "bdatatest": (px > 0.5).astype(np.uint8)},
                       (px > 0.5).astype(np.float64)),
      "no_cases": ({"bdata": np.zeros((0, 784)),
                    "bdatatest": np.zeros((0, 784))}, None),
      "missing_variable": ({"bdata": px}, None),
      "wrong_pixels": ({"bdata": px[:, :700], "bdatatest": px[:, :700]},
                       None),
      "nan": ({"bdata": np.where(px > 0.5, np.nan, px), "bdatatest": px},
              None),
      "above_1": ({"bdata": px * 2, "bdatatest": px}, None),
      "negative": ({"bdata": px - 1, "bdatatest": px}, None),
      "strings": ({"bdata": np.array(["a"] * 784), "bdatatest": px}, None),
      "3d": ({"bdata": px.reshape(3, 28, 28), "bdatatest": px}, None),
  }
  files = {}
  for label, (variables, expected) in contents.items():
    path = os.path.join(workdir, f"curves_{label}.mat")
    scipy.io.savemat(path, variables)
    files[label] = (path, expected)
  for label, data in [("garbage", b"not a mat file at all" * 10),
                      ("empty_file", b""), ("truncated", None)]:
    path = os.path.join(workdir, f"curves_{label}.mat")
    if data is None:
      data = open(files["good"][0], "rb").read()[:300]
    with open(path, "wb") as f:
      f.write(data)
    files[label] = (path, None)
  return files


def _file_cases(workdir):
  for label, (data, valid) in _idx_files().items():
    path = os.path.join(workdir, f"{label}-idx3-ubyte")
    with open(path, "wb") as f:
      f.write(data)

    def check(data):
      np.testing.assert_allclose(data, _IMAGES.reshape(2, 784) / 255,
                                 rtol=1e-6)
    yield Case(f"idx-{label}", lambda p=path: _mnist_from_idx(p),
               None if valid else _mnist_folder(path), check)
  # A missing file is a FileNotFoundError naming it (not a DataFileError).
  yield Case("idx-missing", lambda: _expect_missing(
      P.read_idx, os.path.join(workdir, "nope-idx3-ubyte")), None)
  for label, (path, expected) in _mat_files(workdir).items():
    def check(data, expected=expected):
      np.testing.assert_allclose(data.train, expected, rtol=1e-6, atol=1e-7)
      np.testing.assert_allclose(data.test, expected, rtol=1e-6, atol=1e-7)
    yield Case(f"curves-{label}", lambda p=path: P.load_curves(p),
               None if expected is not None else path, check)
  npz = {
      "good": ({"x_train": _IMAGES.astype(np.uint8),
                "x_test": _IMAGES.astype(np.uint8)}, True),
      "missing_key": ({"x_train": _IMAGES.astype(np.uint8)}, False),
      "float": ({"x_train": _IMAGES / 255.0, "x_test": _IMAGES / 255.0},
                False),
      "objects": ({"x_train": np.array([object()] * 3, dtype=object),
                   "x_test": _IMAGES.astype(np.uint8)}, False),
      "zero_cases": ({"x_train": np.zeros((0, 28, 28), np.uint8),
                      "x_test": _IMAGES.astype(np.uint8)}, False),
  }
  for label, (arrays, valid) in npz.items():
    path = os.path.join(workdir, f"mnist_{label}.npz")
    np.savez(path, **arrays)

    def check(data):
      np.testing.assert_allclose(data.train, _IMAGES.reshape(2, 784) / 255,
                                 rtol=1e-6)
    yield Case(f"npz-{label}", lambda p=path: P.load_mnist(p),
               None if valid else path, check)
  path = os.path.join(workdir, "not_a_zip.npz")
  with open(path, "wb") as f:
    f.write(b"PK\x03\x04 but not really a zip")
  yield Case("npz-not_a_zip", lambda: P.load_mnist(path), path)


def _mnist_folder(path):
  return os.path.join(os.path.dirname(path), "mnist_" + os.path.basename(path))


def _mnist_from_idx(path):
  """load_mnist of a folder whose train and test files are ``path``."""
  folder = _mnist_folder(path)
  os.makedirs(folder, exist_ok=True)
  for name in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"):
    target = os.path.join(folder, name)
    if not os.path.exists(target):
      os.symlink(path, target)
  return P.load_mnist(folder).train


def _expect_missing(fn, path):
  try:
    fn(path)
  except FileNotFoundError as err:
    assert path in str(err)
    return "missing"
  raise AssertionError("no FileNotFoundError")


# -- run_grid and the CLI ----------------------------------------------------

def _run_grid_cases(workdir):
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
  import _training_toy as toy  # pylint: disable=g-import-not-at-top
  trainer = toy.make_trainer(num_steps=4, eval_every=2, chunk_size=2)
  grid = {"learning_rate": [0.01], "momentum": [0.9]}
  a_file = os.path.join(workdir, "a_file")
  with open(a_file, "w") as f:
    f.write("")
  bad = {
      "seeds": [0, -1, 2**31 + 1, 1.5, "4", [], [-1], ["0"], [2**31], None],
      "checkpoint_every_s": [-1.0, _NAN, "1", None],
      "batching": ["foo", None, 3],
      "out_dir": [a_file, os.path.join(a_file, "below")],
      "trainer": [None, "trainer", toy.loss],
  }
  for arg, values in bad.items():
    for i, value in enumerate(values):
      kwargs = {"progress": False, arg: value}
      t = kwargs.pop("trainer", trainer)
      expect = "out_dir" if arg == "out_dir" else (
          "seed" if arg == "seeds" else arg)
      yield Case(f"run_grid-{arg}-{i}",
                 lambda t=t, kw=kwargs: training.run_grid(t, grid, **kw),
                 expect)


_CLI_FLAGS = {
    "--steps": ["0", "-1", "1.5", "abc", "", "1e3", "750001", "99999999999"],
    "--seeds": ["0", "-2", "x", "99999999999"],
    "--checkpoint-every": ["-5", "nan", "inf", "abc", ""],
    "--learning-rates": ["", "abc", "0.1,x", "nan", "-1", "0", "1e400",
                         ",,"],
    "--mu": ["1.5", "-0.1", "nan", "a", ""],
    "--problems": ["xor", "add,xor", ",", ""],
    "--protocol": ["fast"],
    "--out": ["FILE", "FILE/below", "/proc/jaxmomentum_hostile/out"],
}


def _cli_cases(workdir):
  a_file = os.path.join(workdir, "cli_file")
  with open(a_file, "w") as f:
    f.write("")
  for flag, values in _CLI_FLAGS.items():
    for i, value in enumerate(values):
      value = value.replace("FILE", a_file)
      argv = ["reproduce", "table5", flag, value]
      if flag != "--out":
        argv += ["--out", os.path.join(workdir, "cli_out_never_made")]

      def call(argv=argv, flag=flag):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(
            io.StringIO()):
          try:
            cli.main(argv)
          except SystemExit as exit_:
            code = exit_.code
          else:
            code = 0
        text = err.getvalue()
        if code == 2 and f"argument {flag}" in text and (
            "Traceback" not in text):
          raise _UsageError(flag, text)
        return f"exit {code}: {text[-300:]}"

      yield Case(f"cli{flag}-{i}", call, flag)


class _UsageError(ValueError):
  """A CLI usage error (exit status 2) naming the flag, as a case result."""

  def __init__(self, flag, text):
    super().__init__(f"usage error naming {flag}: {text.strip()[-200:]}")


# -- all cases ---------------------------------------------------------------

_WORKDIR = tempfile.mkdtemp(prefix="jaxmomentum_hostile_")
atexit.register(shutil.rmtree, _WORKDIR, ignore_errors=True)


def all_cases() -> list[Case]:
  cases = [*_optimizer_cases(), *_params_cases(), *_other_api_cases(),
           *_radius_cases(), *_metric_cases(), *_grid_cases(),
           *_file_cases(_WORKDIR), *_run_grid_cases(_WORKDIR),
           *_cli_cases(_WORKDIR)]
  ids = [c.id for c in cases]
  assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]
  return cases


_CASES = all_cases()


_NP_INT = pytest.mark.standard_promotion(
    reason="an np.int64 hyperparameter is not weakly typed: the update mixes "
    "it with float32 (the package does not cast integer NumPy scalars yet)")


def _marks(case):
  # Valid inputs whose update runs optax's bias correction (a Python float
  # raised to the int32 step count), which strict promotion rejects.
  if case.id.startswith(("adam-", "scale_by_adam-")) or (
      case.id.startswith("rmsprop-") and case.id.endswith("schedule")):
    return [_optax_promotion.ADAM]
  if case.id.endswith("-np_int"):
    return [_NP_INT]
  return []


@pytest.mark.parametrize("case", [
    pytest.param(c, marks=_marks(c), id=c.id) for c in _CASES])
def test_hostile_input(case):
  result = outcome(case)
  assert result in ("correct", "clear error"), f"{case.id}: {result}"


def main() -> int:
  counts = collections.Counter()
  groups = collections.defaultdict(collections.Counter)
  bad = []
  for case in _CASES:
    result = outcome(case)
    kind = result.split(":")[0].split(" (")[0]
    counts[kind] += 1
    groups[case.id.split("-")[0]][kind] += 1
    if kind not in ("correct", "clear error"):
      bad.append(f"{case.id}: {result}")
  print(f"inputs tried: {len(_CASES)}")
  for kind, n in sorted(counts.items()):
    print(f"  {kind}: {n}")
  for group, c in sorted(groups.items()):
    print(f"  {group}: {dict(c)}")
  print("\n".join(bad))
  return 1 if bad else 0


if __name__ == "__main__":
  sys.exit(main())
