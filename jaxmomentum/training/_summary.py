"""Selection and aggregation over seeds, as in the paper (pure numpy).

Sutskever et al. (2013) report, for each column (momentum type x μ0 or
μmax), the learning rate with the best final training objective, and the
error of that learning rate averaged over seeds (4 for the RNNs). Here a run
that diverged (or whose objective is not finite) counts as ``+inf`` in the
selection and is reported, never averaged.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from jaxmomentum.training._grid import scalar


@dataclasses.dataclass(frozen=True)
class SeedStats:
  """A metric over the seeds of one grid point, finite runs only.

  Attributes:
    mean, std, min, max: over the ``n`` runs that did not diverge (``std`` is
      the sample standard deviation, ddof=1; 0 for one run; all NaN for none).
    n: runs included.
    n_diverged: runs left out because they diverged or were not finite.
  """

  mean: float
  std: float
  min: float
  max: float
  n: int
  n_diverged: int


def aggregate_over_seeds(values, diverged=None) -> SeedStats:
  """Mean and spread of ``values`` (one per seed) over the finite runs.

  Args:
    values: shape ``(num_seeds,)``.
    diverged: bool, same shape (default: none diverged). Non-finite values
      count as diverged too.

  Example:
    >>> aggregate_over_seeds([0.1, 0.3, float("nan")]).mean
    0.2
  """
  values = np.asarray(values, np.float64).reshape(-1)
  bad = ~np.isfinite(values)
  if diverged is not None:
    bad |= np.asarray(diverged, bool).reshape(-1)
  good = values[~bad]
  n = int(good.size)
  if n == 0:
    nan = math.nan
    return SeedStats(nan, nan, nan, nan, 0, int(bad.sum()))
  std = float(np.std(good, ddof=1)) if n > 1 else 0.0
  return SeedStats(float(np.mean(good)), std, float(np.min(good)),
                   float(np.max(good)), n, int(bad.sum()))


def mean_objective(objective, diverged=None) -> np.ndarray:
  """Mean over seeds (axis 0) per point; ``+inf`` if any seed diverged.

  Args:
    objective: ``(num_seeds, num_points)`` final training objective.
    diverged: bool, same shape. Non-finite objectives count as diverged.

  Returns:
    ``(num_points,)`` float64.
  """
  objective = np.asarray(objective, np.float64)
  bad = ~np.isfinite(objective)
  if diverged is not None:
    bad |= np.asarray(diverged, bool)
  mean = np.mean(np.where(bad, 0.0, objective), axis=0)
  return np.where(bad.any(axis=0), np.inf, mean)


def select_best(objective, column_ids, diverged=None) -> np.ndarray:
  """Per column, the point with the lowest mean objective over seeds.

  A point with a diverged seed scores ``+inf``. If every point of a column
  has one, the point with the fewest diverged seeds wins, then the lowest
  mean over its finite seeds. Ties go to the first point.

  Args:
    objective: ``(num_seeds, num_points)`` final training objective (lower is
      better).
    column_ids: ``(num_points,)`` integers ``0..C-1``: the column of each point
      (e.g. the index of its (momentum type, μ0) pair).
    diverged: bool ``(num_seeds, num_points)``.

  Returns:
    ``(C,)`` int: the index of the best point of each column.

  Example:
    >>> obj = np.array([[3., 1., 2., 5.], [3., 2., 1., 4.]])
    >>> select_best(obj, column_ids=[0, 0, 1, 1]).tolist()
    [1, 2]
  """
  objective = np.asarray(objective, np.float64)
  column_ids = np.asarray(column_ids)
  if objective.ndim != 2 or column_ids.shape != objective.shape[1:]:
    raise ValueError(
        f"objective must be (num_seeds, num_points) and column_ids "
        f"(num_points,), got {objective.shape} and {column_ids.shape}")
  bad = ~np.isfinite(objective)
  if diverged is not None:
    bad |= np.asarray(diverged, bool)
  n_bad = bad.sum(axis=0)
  n_good = np.maximum((~bad).sum(axis=0), 1)
  finite_mean = np.where(bad, 0.0, objective).sum(axis=0) / n_good
  finite_mean = np.where(n_bad == objective.shape[0], np.inf, finite_mean)
  best = []
  for c in range(int(column_ids.max()) + 1 if column_ids.size else 0):
    points = np.flatnonzero(column_ids == c)
    if points.size == 0:
      raise ValueError(f"column {c} has no points")
    order = np.lexsort((points, finite_mean[points], n_bad[points]))
    best.append(points[order[0]])
  return np.asarray(best, np.int64)


@dataclasses.dataclass(frozen=True)
class ColumnSummary:
  """The selected point of one column and its statistics over seeds.

  Attributes:
    column: the hyperparameters that define the column.
    best: the selected hyperparameters (``{select: value}``).
    point: index of the selected grid point.
    objective: the final objective over seeds at that point.
    report: name -> final value of each reported metric over seeds.
    candidates: ``select`` value -> (mean objective over seeds, ``+inf`` if
      any diverged; number of diverged seeds), for every point of the column.
  """

  column: Mapping[str, Any]
  best: Mapping[str, Any]
  point: int
  objective: SeedStats
  report: Mapping[str, SeedStats]
  candidates: Mapping[Any, tuple[float, int]]


@dataclasses.dataclass(frozen=True)
class DivergedRun:
  """A run that became non-finite: its seed, hyperparameters and update."""

  seed: int
  hparams: Mapping[str, Any]
  step: int


@dataclasses.dataclass(frozen=True)
class Summary:
  """The paper's table for one grid: one row per column, plus diverged runs."""

  objective_name: str
  select: Optional[str]
  rows: tuple[ColumnSummary, ...]
  diverged_runs: tuple[DivergedRun, ...]

  def format(self) -> str:
    """A plain-text table (and the list of diverged runs)."""
    names = list(self.rows[0].report) if self.rows else []
    header = ["column", f"best {self.select}" if self.select else "point",
              f"{self.objective_name} mean"]
    header += [f"{n} mean ± std [min, max]" for n in names] + ["diverged"]
    lines = []
    for row in self.rows:
      col = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                      for k, v in row.column.items()) or "-"
      best = (f"{row.best[self.select]:g}" if self.select else str(row.point))
      cells = [col, best, f"{row.objective.mean:.6g}"]
      for n in names:
        s = row.report[n]
        cells.append(f"{s.mean:.4g} ± {s.std:.2g} [{s.min:.4g}, {s.max:.4g}]")
      cells.append(str(sum(d for _, d in row.candidates.values())))
      lines.append(cells)
    widths = [max(len(r[i]) for r in [header] + lines)
              for i in range(len(header))]
    out = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
           for r in [header] + lines]
    if self.diverged_runs:
      out.append(f"{len(self.diverged_runs)} diverged run(s):")
      for d in self.diverged_runs:
        hp = ", ".join(f"{k}={v:g}" for k, v in d.hparams.items())
        out.append(f"  seed {d.seed}, {hp}: at update {d.step}")
    return "\n".join(out)


def _column_ids(grid_values: Mapping[str, np.ndarray], names: Sequence[str],
                size: int):
  keys = [tuple(scalar(grid_values[n][p]) for n in names)
          for p in range(size)]
  unique = list(dict.fromkeys(keys))
  index = {k: i for i, k in enumerate(unique)}
  return np.asarray([index[k] for k in keys]), unique


def summarize(result, *, objective: str = "loss",
              select: Optional[str] = "learning_rate",
              report: Sequence[str] = ("error",)) -> Summary:
  """Best ``select`` value per column and the seed statistics there.

  Columns are the distinct combinations of every other hyperparameter of the
  grid, in order of first appearance. Within a column, the point with the
  lowest final ``objective`` averaged over seeds wins (diverged runs count
  as ``+inf``, :func:`select_best`); ``report`` metrics are then aggregated
  over the seeds of that point (:func:`aggregate_over_seeds`).

  Args:
    result: a :class:`GridResult` (anything with ``metrics``, ``grid``,
      ``diverged_step`` and ``seeds``).
    objective: the metric to select on (final value; e.g. ``"loss"`` on fresh
      batches, the training objective for infinite data, or
      ``"train_loss"``).
    select: the hyperparameter to select (``None``: no selection, one row per
      point).
    report: metrics to aggregate (e.g. ``("error",)``; the zero-one error for
      the RNN problems, the squared error for the autoencoders).

  Example:
    >>> summary = summarize(result, objective="loss",
    ...                     select="learning_rate",
    ...                     report=("error",))  # doctest: +SKIP
    >>> print(summary.format())  # doctest: +SKIP
  """
  grid = result.grid
  for name in (objective, *report):
    if name not in result.metrics:
      raise ValueError(f"metric {name!r} not in the result; it has "
                       f"{sorted(result.metrics)}")
  if select is not None and select not in grid.values:
    raise ValueError(f"select={select!r} is not a grid hyperparameter; the "
                     f"grid has {list(grid.values)}")
  diverged = np.asarray(result.diverged_step) >= 0
  final_objective = np.asarray(result.metrics[objective])[..., -1]
  if select is None:
    column_ids = np.arange(grid.size)
    columns = [tuple(grid.point(p).values()) for p in range(grid.size)]
    column_names = list(grid.values)
  else:
    column_names = [n for n in grid.values if n != select]
    column_ids, columns = _column_ids(grid.values, column_names, grid.size)
  best = select_best(final_objective, column_ids, diverged)
  means = mean_objective(final_objective, diverged)
  rows = []
  for c, p in enumerate(best):
    members = np.flatnonzero(column_ids == c)
    candidates = {
        (scalar(grid.values[select][q]) if select else int(q)):
        (float(means[q]), int(diverged[:, q].sum())) for q in members}
    rows.append(ColumnSummary(
        column=dict(zip(column_names, columns[c])),
        best={select: scalar(grid.values[select][p])} if select else {},
        point=int(p),
        objective=aggregate_over_seeds(final_objective[:, p], diverged[:, p]),
        report={n: aggregate_over_seeds(
            np.asarray(result.metrics[n])[:, p, -1], diverged[:, p])
                for n in report},
        candidates=candidates))
  diverged_runs = tuple(
      DivergedRun(seed=int(result.seeds[s]), hparams=grid.point(int(p)),
                  step=int(result.diverged_step[s, p]))
      for s, p in zip(*np.nonzero(diverged)))
  return Summary(objective_name=objective, select=select, rows=tuple(rows),
                 diverged_runs=diverged_runs)
