"""Argument checks shared by every public builder.

Constants are checked when an optimizer, schedule or initializer is built, so a
bad value fails at construction with an error that names the argument and its
allowed range. Schedules (callables) and traced arrays (inside ``jit`` or
``vmap``) cannot be checked then and pass through unchanged.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def _interval(low: float, high: float, low_open: bool, high_open: bool) -> str:
  if math.isinf(high) and math.isinf(low):
    return "a finite number"
  if math.isinf(high):
    return f"{'>' if low_open else '>='} {low:g}"
  if math.isinf(low):
    return f"{'<' if high_open else '<='} {high:g}"
  left = "(" if low_open else "["
  right = ")" if high_open else "]"
  return f"in {left}{low:g}, {high:g}{right}"


def is_checkable(value: Any) -> bool:
  """True for a concrete number or array, False for a schedule or a tracer."""
  if callable(value) or isinstance(value, jax.core.Tracer):
    return False
  return True


def check_range(
    name: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
  """Raises ``ValueError`` naming ``name`` unless ``value`` lies in the range.

  Every element of an array value is checked. Schedules and tracers are
  accepted unchecked; ``None``, strings, bools and complex or object arrays
  raise ``TypeError``.
  """
  if not is_checkable(value):
    return
  message = (f"{name} must be a number, an array of numbers or a schedule "
             f"(a function of the step count); got {value!r}")
  if value is None or isinstance(value, (str, bytes, bool, np.bool_)):
    raise TypeError(message)
  try:
    arr = np.asarray(value)
  except Exception as err:  # pylint: disable=broad-except
    raise TypeError(message) from err
  if arr.dtype.kind not in "iuf":  # no strings, bools, complex or objects
    raise TypeError(message)
  arr = arr.astype(np.float64)
  bad = ~np.isfinite(arr)
  bad |= (arr <= low) if low_open else (arr < low)
  bad |= (arr >= high) if high_open else (arr > high)
  if np.any(bad):
    shown = value if arr.ndim == 0 else arr[bad].tolist()
    raise ValueError(
        f"{name} must be {_interval(low, high, low_open, high_open)}, "
        f"got {shown!r}")


def check_int(name: str, value: Any, low: int = 0, high: int | None = None
              ) -> int:
  """Returns ``value`` as an ``int`` or raises naming ``name`` and the range."""
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
    raise TypeError(f"{name} must be an integer, got {value!r}")
  value = int(value)
  if value < low or (high is not None and value > high):
    upper = "" if high is None else f" and <= {high}"
    raise ValueError(f"{name} must be an integer >= {low}{upper}, got {value}")
  return value


def check_hyperparameter(
    name: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
    schedule: bool = True,
) -> Any:
  """Checks one optimizer hyperparameter; returns it (a schedule wrapped).

  A constant must be a real scalar (a Python number or a 0-d array) in the
  range; ``None``, strings, bools and arrays of any other shape raise,
  naming ``name``. With ``schedule=True`` a callable is accepted and returned
  wrapped so that it raises, naming ``name``, if it returns a non-scalar. A
  tracer (inside ``jit``/``vmap``) must be a scalar; its value is not checked.
  """
  interval = _interval(low, high, low_open, high_open)
  number = interval if interval == "a finite number" else f"a number {interval}"
  allowed = (f"{number} or a schedule (a function of the step count)"
             if schedule else number)
  if value is None or isinstance(value, (str, bytes, bool, np.bool_)):
    raise TypeError(f"{name} must be {allowed}, got {value!r}")
  if callable(value):
    if not schedule:
      raise TypeError(f"{name} must be {allowed}, got the function {value!r}"
                      "; wrap the optimizer in optax.inject_hyperparams to "
                      "schedule it")
    return _scalar_schedule(name, value)
  if isinstance(value, jax.core.Tracer):
    if np.ndim(value) != 0:
      raise ValueError(f"{name} must be a scalar, got a traced array of shape "
                       f"{np.shape(value)}")
    return value
  try:
    arr = np.asarray(value)
  except Exception as err:  # pylint: disable=broad-except
    raise TypeError(f"{name} must be {allowed}, got {value!r}") from err
  if arr.dtype.kind not in "iuf":
    raise TypeError(f"{name} must be {allowed}, got {value!r} (dtype "
                    f"{arr.dtype})")
  if arr.ndim:
    raise ValueError(
        f"{name} must be a scalar, got an array of shape {arr.shape}; for a "
        "grid of values, vmap over scalars (training.run_grid does)")
  check_range(name, value, low, high, low_open=low_open, high_open=high_open)
  return value


def _scalar_schedule(name: str, schedule):
  """``schedule`` wrapped to raise, naming ``name``, on a non-scalar value."""
  if getattr(schedule, "_jaxmomentum_checked", None) == name:
    return schedule

  @functools.wraps(schedule)
  def checked(count):
    value = schedule(count)
    try:
      shape = jnp.shape(value)
      dtype = jnp.result_type(value)
    except TypeError as err:
      raise TypeError(f"the {name} schedule must return a number, returned "
                      f"{value!r}") from err
    if shape != ():
      raise ValueError(f"the {name} schedule must return a scalar, returned "
                       f"shape {shape}")
    if not jnp.issubdtype(dtype, jnp.number) or jnp.issubdtype(
        dtype, jnp.complexfloating):
      raise TypeError(f"the {name} schedule must return a real number, "
                      f"returned dtype {dtype}")
    return value

  checked._jaxmomentum_checked = name  # pylint: disable=protected-access
  return checked


def check_float_dtype(name: str, dtype: Any) -> None:
  """Raises ``TypeError`` unless ``dtype`` is ``None`` or a floating dtype."""
  if dtype is None:
    return
  try:
    ok = jnp.issubdtype(np.dtype(dtype), jnp.floating)
  except TypeError as err:
    raise TypeError(f"{name} must be a floating dtype (e.g. jnp.float32) or "
                    f"None, got {dtype!r}") from err
  if not ok:
    raise TypeError(f"{name} must be a floating dtype (e.g. jnp.float32) or "
                    f"None, got {np.dtype(dtype)}: an integer accumulator "
                    "truncates the updates")


def check_float_params(params: Any, what: str = "params") -> None:
  """Raises ``TypeError`` naming the leaf if a leaf of ``params`` is not float.

  Integer (or bool) params would silently truncate every update.
  """
  for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
    dtype = jnp.result_type(leaf)
    if not jnp.issubdtype(dtype, jnp.inexact):
      where = jax.tree_util.keystr(path) or "(the array)"
      raise TypeError(
          f"{what} must be floating-point arrays, got dtype {dtype} at "
          f"{where}: updates of an integer array are truncated; cast it, "
          "e.g. jnp.asarray(x, jnp.float32)")


def check_scalar(name: str, value: Any, low: float = -math.inf,
                 high: float = math.inf, *, low_open: bool = False,
                 high_open: bool = False) -> None:
  """:func:`check_range` for a scalar: arrays of other shapes raise too."""
  check_hyperparameter(name, value, low, high, low_open=low_open,
                       high_open=high_open, schedule=False)
