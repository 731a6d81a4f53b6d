"""Hyperparameter grids: a flat list of points, each a name -> scalar map."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence, Union

import numpy as np

GridSpec = Union[Mapping[str, Any], Sequence[Mapping[str, Any]], "Grid"]


def _as_values(name: str, values: Any) -> np.ndarray:
  arr = np.asarray(values)
  if arr.ndim == 0:
    arr = arr[None]
  if arr.ndim != 1 or arr.size == 0:
    raise ValueError(
        f"grid values for {name!r} must be a non-empty 1-D sequence of "
        f"scalars, got shape {arr.shape}")
  if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
    raise TypeError(f"grid values for {name!r} must be numbers, got "
                    f"dtype {arr.dtype}")
  if np.issubdtype(arr.dtype, np.floating):
    return _cast_checked(name, arr, np.float32)
  if np.issubdtype(arr.dtype, np.integer):
    return _cast_checked(name, arr, np.int32)
  return arr


def _cast_checked(name: str, arr: np.ndarray, dtype) -> np.ndarray:
  """``arr`` in the runs' ``dtype``; ``ValueError`` if that changes a value
  by more than rounding (a float that over- or underflows, an integer out of
  range), naming the grid axis and the value."""
  with np.errstate(over="ignore", under="ignore", invalid="ignore"):
    cast = arr.astype(dtype)
  if np.issubdtype(dtype, np.integer):
    changed = cast.astype(arr.dtype) != arr
    allowed = f"integers in [{np.iinfo(dtype).min}, {np.iinfo(dtype).max}]"
  else:
    wide = arr.astype(np.float64)
    back = cast.astype(np.float64)
    finite = np.isfinite(wide)  # NaN and inf stay what they are
    changed = finite & ~(np.abs(back - wide) <= np.abs(wide) * 2.0**-23)
    tiny, big = np.finfo(dtype).tiny, np.finfo(dtype).max
    allowed = f"0 or magnitudes in [{tiny:.3g}, {big:.3g}]"
  if np.any(changed):
    bad, became = arr[changed][0].item(), cast[changed][0].item()
    raise ValueError(
        f"grid values for {name!r} must survive the cast to the runs' dtype "
        f"{np.dtype(dtype).name}: {bad!r} becomes {became:.9g} (allowed: "
        f"{allowed})")
  return cast


def scalar(value: Any) -> Any:
  """A grid value as a Python scalar; a float32 as the shortest decimal that
  rounds to it (``np.float32(0.9)`` -> ``0.9``, not ``0.8999999761581421``)."""
  value = np.asarray(value)
  if np.issubdtype(value.dtype, np.floating):
    return float(str(value.astype(np.float32)))
  return value.item()


@dataclasses.dataclass(frozen=True)
class Grid:
  """A flat list of ``size`` hyperparameter points.

  Attributes:
    values: name -> 1-D array of length ``size``; point ``p`` is
      ``{name: values[name][p]}``. Floats are stored as float32, integers as
      int32 (the dtypes the traced hyperparameters will have).
    shape: for a cartesian product, the length of each axis in the order of
      ``names`` (point ``p`` is ``np.unravel_index(p, shape)``); for explicit
      points, ``(size,)``.
  """

  values: Mapping[str, np.ndarray]
  shape: tuple[int, ...]

  @property
  def names(self) -> tuple[str, ...]:
    return tuple(self.values)

  @property
  def size(self) -> int:
    return int(np.prod(self.shape)) if self.values else 1

  def point(self, p: int) -> dict[str, Any]:
    """The hyperparameters of point ``p`` as Python scalars."""
    return {k: scalar(v[p]) for k, v in self.values.items()}

  @classmethod
  def product(cls, **axes: Any) -> "Grid":
    """Every combination, the first name varying slowest (as itertools).

    Example:
      >>> Grid.product(learning_rate=[1e-3, 1e-4], mu0=[0.9, 0.99]).size
      4
    """
    arrays = {k: _as_values(k, v) for k, v in axes.items()}
    if not arrays:
      return cls(values={}, shape=())
    mesh = np.meshgrid(*arrays.values(), indexing="ij")
    values = {k: m.reshape(-1) for k, m in zip(arrays, mesh)}
    return cls(values=values, shape=tuple(a.size for a in arrays.values()))

  @classmethod
  def points(cls, points: Sequence[Mapping[str, Any]]) -> "Grid":
    """Explicit points, each a mapping with the same names.

    Example:
      >>> Grid.points([{"learning_rate": 1e-3}, {"learning_rate": 3e-4}]).size
      2
    """
    points = list(points)
    if not points:
      raise ValueError("points must hold at least one point")
    names = list(points[0])
    for i, p in enumerate(points):
      if sorted(p) != sorted(names):
        raise ValueError(f"grid point {i} has names {sorted(p)}, expected "
                         f"{sorted(names)}")
    values = {k: _as_values(k, [p[k] for p in points]) for k in names}
    return cls(values=values, shape=(len(points),))


def as_grid(grid: GridSpec) -> Grid:
  """A :class:`Grid` from a Grid, a name -> values mapping (cartesian product)
  or a sequence of points."""
  if isinstance(grid, Grid):
    return grid
  if isinstance(grid, Mapping):
    return Grid.product(**grid)
  if isinstance(grid, (list, tuple)):
    return Grid.points(grid)
  raise TypeError(
      "grid must be a Grid, a mapping name -> values (cartesian product) or a "
      f"sequence of points (mappings), got {type(grid).__name__}")

