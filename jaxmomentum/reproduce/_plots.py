"""Figures of the reproduced tables (matplotlib on the Agg backend).

Learning curves (:func:`plot_curves`, one panel per μ from
:func:`momentum_panels`) and Tables 2 and 3's summaries. Every function
returns the figure's path, or ``None`` where matplotlib is missing or the
process is not process 0.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from jaxmomentum.reproduce._cells import Cell
from jaxmomentum.reproduce._cells import column_key
from jaxmomentum.reproduce._writers import writes_files
from jaxmomentum.training import GridResult


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
                ylabel: str, suptitle: str, *, log_y: Optional[bool] = None,
                references: Sequence[tuple[str, float]] = ()
                ) -> Optional[Path]:
  """One panel per entry; each curve's mean over seeds and a min-max band.

  ``log_y=None`` uses a log scale when the values span more than a decade.
  ``references``: ``(label, value)`` pairs drawn as horizontal lines on
  every panel (e.g. the biases error a run must get below).
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
    for j, (label, value) in enumerate(references):
      ax.axhline(value, color="k", linewidth=0.8, linestyle=(":", "-.")[j % 2],
                 label=label)
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


def plot_table2(path: Path, cells: list[Cell]) -> Optional[Path]:
  plt = pyplot()
  rows = list(dict.fromkeys(c.row for c in cells))
  if plt is None or not rows:
    return None
  fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(rows), 3.2))
  width = 0.2
  for i, row in enumerate(rows):
    by_col = {c.column: c for c in cells if c.row == row}
    for j, (col, color) in enumerate((("before", "C1"), ("after", "C0"))):
      cell = by_col.get(col)
      if cell is None or cell.ours is None:
        continue
      ax.bar(i + (j - 0.5) * width * 2, cell.ours.mean, width * 1.8,
             yerr=cell.ours.std, color=color,
             label=f"ours, {col}" if i == 0 else None)
      if cell.paper is not None:
        ax.plot(i + (j - 0.5) * width * 2, cell.paper, "k_", markersize=14,
                label=f"paper, {col}" if i == 0 and j == 0 else None)
  ax.set_xticks(range(len(rows)), rows)
  ax.set_ylabel("squared error")
  ax.set_title("Table 2: before / after low-momentum finetuning (NAG)",
               fontsize=9)
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def plot_table3(path: Path, cells: list[Cell], label: str
                 ) -> Optional[Path]:
  plt = pyplot()
  if plt is None or not cells:
    return None
  scales = [float(c.column) for c in cells]
  fig, ax = plt.subplots(figsize=(4.6, 3.2))
  ours = [c.ours.mean if c.ours is not None else np.nan for c in cells]
  spread = [c.ours.std if c.ours is not None else 0.0 for c in cells]
  ax.errorbar(scales, ours, yerr=spread, fmt="o-", label=f"ours ({label})")
  theirs = [(s, c.paper) for s, c in zip(scales, cells) if c.paper is not None]
  if theirs:
    ax.plot(*zip(*theirs), "ks--", label="paper (CURVES)")
  ax.set_xscale("log", base=2)
  ax.set_yscale("log")
  ax.set_xlabel("SI scale multiplier")
  ax.set_ylabel("squared error")
  ax.set_title("Table 3: error vs sparse-init scale", fontsize=9)
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path
