"""Tables as Markdown, CSV and JSON, written by process 0 only."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from jaxmomentum.reproduce import paper
from jaxmomentum.reproduce._cells import Cell
from jaxmomentum.training import GridResult


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
  first_seen = list(columns)  # list.sort empties columns while it sorts
  columns.sort(key=lambda c: (paper_order.index(c) if c in paper_order
                              else len(paper_order) + first_seen.index(c)))
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


def print_skip(message: str, printer: Callable[[str], None] = print) -> None:
  printer(f"[skip] {message}")
