"""Argument checks shared by every public builder.

Constants are checked when an optimizer, schedule or initializer is built, so a
bad value fails at construction with an error that names the argument and its
allowed range. Schedules (callables) and traced arrays (inside ``jit`` or
``vmap``) cannot be checked then and pass through unchanged.
"""

from __future__ import annotations

import math
from typing import Any

import jax
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
  accepted unchecked.
  """
  if value is None or not is_checkable(value):
    return
  try:
    arr = np.asarray(value, dtype=np.float64)
  except (TypeError, ValueError) as err:
    raise TypeError(
        f"{name} must be a number, an array of numbers or a schedule "
        f"(a function of the step count); got {value!r}") from err
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
