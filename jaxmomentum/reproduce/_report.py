"""Tables (Markdown, CSV, JSON) and learning-curve figures for the paper's runs.

Every table is a list of :class:`Cell`: our figure over seeds beside the
paper's value for the same table, row and column, with the learning rate
that was selected and the protocol that produced it.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from jaxmomentum.reproduce import paper
from jaxmomentum.training import GridResult
from jaxmomentum.training import SeedStats


@dataclasses.dataclass(frozen=True)
class Cell:
  """One cell of a reproduced table.

  Attributes:
    table, row, column: where it sits (the paper's keys, see
      :mod:`jaxmomentum.reproduce.paper`).
    ours: our figure over seeds (in the paper's unit), or ``None`` when the
      cell was not run (see ``note``).
    paper: the paper's value, ``None`` where the paper has none.
    unit: the unit both are in.
    learning_rate: the selected learning rate, if any.
    note: why a cell is empty, or what it measured instead (e.g. a stand-in
      data set).
  """

  table: str
  row: str
  column: str
  ours: Optional[SeedStats]
  paper: Optional[float]
  unit: str
  learning_rate: Optional[float] = None
  note: str = ""


def paper_value(table: str, row: str, column: str) -> Optional[float]:
  """The paper's value, or ``None`` when the paper has no such cell."""
  try:
    return paper.lookup(table, row, column)
  except KeyError:
    return None


def unit_of(table: str, row: str) -> str:
  """The unit the paper reports a row in."""
  return paper.unit(table, row)


def scaled(stats: SeedStats, factor: float) -> SeedStats:
  """``stats`` in another unit (e.g. a fraction as percent)."""
  if factor == 1.0:
    return stats
  return dataclasses.replace(
      stats, mean=stats.mean * factor, std=stats.std * factor,
      min=stats.min * factor, max=stats.max * factor)


def _num(x: Optional[float]) -> str:
  if x is None or (isinstance(x, float) and math.isnan(x)):
    return "—"
  return f"{x:.3g}"


def format_cell(cell: Cell) -> str:
  """``ours ± std / paper`` (with the learning rate and diverged count)."""
  if cell.ours is None:
    ours = cell.note or "not run"
  elif cell.ours.n == 0:
    ours = f"diverged ({cell.ours.n_diverged})"
  else:
    ours = _num(cell.ours.mean)
    if cell.ours.n > 1:
      ours += f" ± {_num(cell.ours.std)}"
    if cell.ours.n_diverged:
      ours += f" ({cell.ours.n_diverged} div.)"
  text = f"{ours} / {_num(cell.paper)}"
  if cell.learning_rate is not None:
    text += f" (ε={cell.learning_rate:g})"
  return text


def markdown(cells: Sequence[Cell], title: str, notes: Sequence[str] = ()
             ) -> str:
  """A Markdown table, rows and columns in order of first appearance."""
  rows = list(dict.fromkeys(c.row for c in cells))
  columns = list(dict.fromkeys(c.column for c in cells))
  paper_order = list(dict.fromkeys(
      e.column for e in paper.ALL if cells and e.table == cells[0].table))
  columns.sort(key=lambda c: (paper_order.index(c) if c in paper_order
                              else len(paper_order) + columns.index(c)))
  by_key = {(c.row, c.column): c for c in cells}
  lines = [f"### {title}", "",
           "Each cell: ours (mean ± std over seeds) / paper (selected "
           "learning rate ε).", "",
           "| row | unit | " + " | ".join(columns) + " |",
           "|---|---|" + "---|" * len(columns)]
  for row in rows:
    unit = next(c.unit for c in cells if c.row == row)
    values = [format_cell(by_key[(row, col)]) if (row, col) in by_key
              else "" for col in columns]
    lines.append(f"| {row} | {unit} | " + " | ".join(values) + " |")
  if notes:
    lines += [""] + [f"- {n}" for n in notes]
  return "\n".join(lines) + "\n"


CSV_FIELDS = ("table", "row", "column", "ours_mean", "ours_std", "ours_min",
              "ours_max", "seeds", "diverged", "paper", "unit",
              "learning_rate", "protocol", "note")


def write_csv(path: Path, cells: Sequence[Cell], protocol: str) -> None:
  with open(path, "w", newline="", encoding="utf-8") as f:
    writer = csv.writer(f)
    writer.writerow(CSV_FIELDS)
    for c in cells:
      s = c.ours
      stats = (["", "", "", "", 0, 0] if s is None else
               [s.mean, s.std, s.min, s.max, s.n, s.n_diverged])
      writer.writerow([c.table, c.row, c.column, *stats,
                       "" if c.paper is None else c.paper, c.unit,
                       "" if c.learning_rate is None else c.learning_rate,
                       protocol, c.note])


def result_json(result: GridResult, **labels: Any) -> dict:
  """Every run of a grid: hyperparameters, seeds and all metrics."""
  return {
      **labels,
      "axes": list(result.axes),
      "seeds": result.seeds.tolist(),
      "grid": {k: np.asarray(v).tolist() for k, v in result.grid.values.items()},
      "eval_steps": result.eval_steps.tolist(),
      "metrics": {k: np.asarray(v).tolist() for k, v in result.metrics.items()},
      "diverged_step": result.diverged_step.tolist(),
      "wall_s": result.wall_s,
      "chunks_run": result.chunks_run,
  }


def _jsonable(x):
  if dataclasses.is_dataclass(x) and not isinstance(x, type):
    return {k: _jsonable(v) for k, v in dataclasses.asdict(x).items()}
  if isinstance(x, dict):
    return {str(k): _jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_jsonable(v) for v in x]
  if isinstance(x, float) and not math.isfinite(x):
    return None
  return x


def with_paper_cells(cells: Sequence[Cell], table: str,
                     row_notes: Optional[dict] = None) -> list[Cell]:
  """``cells`` plus every cell of the paper's ``table`` that is not there.

  The added cells hold the paper's value with no figure of ours, noted
  ``row_notes[row]`` (default "not run"), so every reproduced table shows
  all of the paper's numbers.
  """
  row_notes = row_notes or {}
  have = {(c.row, c.column) for c in cells}
  return list(cells) + [
      Cell(table, e.row, e.column, None, e.value, e.unit,
           note=row_notes.get(e.row, "not run"))
      for e in paper.ALL
      if e.table == table and (e.row, e.column) not in have]


def write_outputs(out_dir: Path, name: str, title: str, cells: Sequence[Cell],
                  protocol, notes: Sequence[str], runs: Sequence[dict]
                  ) -> tuple[str, list[Path]]:
  """Writes ``NAME.md``, ``NAME.csv`` and ``NAME.json``; returns the table.

  In a multi-process run (``jax.distributed``) only process 0 writes; the
  others get the table and no paths.
  """
  table = markdown(cells, title, notes)
  if not writes_files():
    return table, []
  out_dir.mkdir(parents=True, exist_ok=True)
  paths = [out_dir / f"{name}.md", out_dir / f"{name}.csv",
           out_dir / f"{name}.json"]
  paths[0].write_text(table, encoding="utf-8")
  write_csv(paths[1], cells, protocol.name)
  paths[2].write_text(json.dumps(_jsonable({
      "table": name, "protocol": protocol, "notes": list(notes),
      "cells": list(cells), "runs": list(runs)})), encoding="utf-8")
  return table, paths


def writes_files() -> bool:
  """Whether this process writes tables and figures: process 0 only."""
  from jaxmomentum.training import is_main_process  # pylint: disable=import-outside-toplevel
  return is_main_process()


def pyplot():
  """matplotlib's pyplot on the Agg backend, or ``None`` if not installed or
  in a process other than process 0 (which draws no figures)."""
  if not writes_files():
    return None
  try:
    import matplotlib  # pylint: disable=import-outside-toplevel
  except ImportError:
    return None
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  return plt


@dataclasses.dataclass(frozen=True)
class Curve:
  """A learning curve over seeds: ``values`` is ``(seeds, evals)``."""

  label: str
  steps: np.ndarray
  values: np.ndarray
  style: str = "-"


def plot_curves(path: Path, panels: Sequence[tuple[str, Sequence[Curve]]],
                ylabel: str, suptitle: str, *, log_y: Optional[bool] = None
                ) -> Optional[Path]:
  """One panel per entry; each curve's mean over seeds and a min-max band.

  ``log_y=None`` uses a log scale when the values span more than a decade.
  """
  plt = pyplot()
  if plt is None or not panels:
    return None
  cols = min(4, len(panels))
  nrows = -(-len(panels) // cols)
  fig, axes = plt.subplots(nrows, cols, figsize=(3.6 * cols, 2.9 * nrows),
                           squeeze=False, sharey=True)
  if log_y is None:
    values = np.concatenate([np.ravel(c.values) for _, cs in panels
                             for c in cs] or [np.ones(1)])
    values = values[np.isfinite(values) & (values > 0)]
    log_y = bool(values.size) and values.max() > 10 * values.min()
  for ax, (title, curves) in zip(axes.flat, panels):
    for i, curve in enumerate(curves):
      values = np.asarray(curve.values, np.float64)
      finite = np.where(np.isfinite(values), values, np.nan)
      mean = np.nanmean(finite, axis=0) if np.isfinite(finite).any() else (
          np.full(values.shape[1], np.nan))
      color = f"C{i}"
      ax.plot(curve.steps, mean, curve.style, color=color, label=curve.label,
              linewidth=1.2)
      if values.shape[0] > 1 and np.isfinite(finite).any():
        ax.fill_between(curve.steps, np.nanmin(finite, axis=0),
                        np.nanmax(finite, axis=0), color=color, alpha=0.2,
                        linewidth=0)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("updates", fontsize=8)
    if log_y:
      ax.set_yscale("log")
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7)
  for ax in axes.flat[len(panels):]:
    ax.set_visible(False)
  for ax in axes[:, 0]:
    ax.set_ylabel(ylabel, fontsize=8)
  fig.suptitle(suptitle, fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def selected_curve(result: GridResult, metric: str, point: int, label: str,
                   factor: float = 1.0, style: str = "-") -> Curve:
  """The learning curve of one grid point over its seeds."""
  return Curve(label, result.eval_steps,
               np.asarray(result.metrics[metric])[:, point, :] * factor,
               style)


def momentum_columns(results: dict, table: str, row: str, mu_name: str,
                     factor: float = 1.0, note: str = ""
                     ) -> tuple[list[Cell], dict]:
  """One cell per (method, μ) column: the best learning rate's error.

  Per column, the learning rate with the lowest final ``loss`` (mean over
  seeds, :func:`jaxmomentum.training.summarize`) is selected and its final
  ``error`` reported over seeds, times ``factor``.

  Args:
    results: method -> :class:`GridResult` over (``mu_name``, ε).
    table, row: the paper's keys of the cells.
    mu_name: the grid's momentum hyperparameter (``"mu0"``, ``"mu_max"``).
    factor: unit conversion of the error.
    note: a note for every cell.

  Returns:
    The cells, and per column key (``"0.9N"``) the selected
    (method, grid point, learning rate), as :func:`momentum_panels`
    takes it.
  """
  from jaxmomentum import training  # pylint: disable=import-outside-toplevel
  unit = unit_of(table, row)
  cells, selected = [], {}
  for method, result in results.items():
    summary = training.summarize(result, objective="loss",
                                 select="learning_rate", report=("error",))
    for col in summary.rows:
      key = column_key(float(col.column[mu_name]), method)
      lr = float(col.best["learning_rate"])
      selected[key] = (method, col.point, lr)
      cells.append(Cell(table, row, key, scaled(col.report["error"], factor),
                        paper_value(table, row, key), unit, learning_rate=lr,
                        note=note))
  return cells, selected


def momentum_panels(results: dict, selected: dict, mu_symbol: str,
                    zero_label: str, factor: float = 1.0
                    ) -> list[tuple[str, list[Curve]]]:
  """One panel per μ value: the NAG and CM learning curves of its columns.

  Args:
    results: method -> :class:`GridResult`.
    selected: column key (``"0.9N"``) -> (method, grid point,
      learning rate) of the selected point.
    mu_symbol: the panel title's symbol (``"μ0"``, ``"μ_max"``).
    zero_label: the curve label of the μ = 0 column.
    factor: unit conversion of the ``error`` metric.
  """
  panels = []
  for mu in sorted({float(k.rstrip("NM")) for k in selected}):
    curves = []
    for method in ("nag", "cm"):
      key = column_key(mu, method)
      if key not in selected or (mu == 0 and method == "cm"):
        continue
      m, point, lr = selected[key]
      label = (zero_label if mu == 0 else m.upper()) + f", ε={lr:g}"
      curves.append(selected_curve(results[m], "error", point, label, factor))
    panels.append((f"{mu_symbol} = {mu:g}", curves))
  return panels


def column_key(mu: float, method: str) -> str:
  """The paper's column name: ``"0"`` or e.g. ``"0.99N"`` / ``"0.99M"``."""
  if mu == 0:
    return "0"
  return f"{mu:g}{'N' if method == 'nag' else 'M'}"


def print_skip(message: str, printer: Callable[[str], None] = print) -> None:
  printer(f"[skip] {message}")
