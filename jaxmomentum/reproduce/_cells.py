"""The cells of a reproduced table: ours beside the paper's, per column.

Every table is a list of :class:`Cell`: our figure over seeds beside the
paper's value for the same table, row and column (from
:mod:`jaxmomentum.reproduce.paper`), with the learning rate that was
selected. :func:`momentum_columns` makes a table's (method, μ) cells from
grid results; :mod:`._writers` writes them and :mod:`._plots` draws the
learning curves.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

from jaxmomentum.reproduce import paper
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


def column_key(mu: float, method: str) -> str:
  """The paper's column name: ``"0"`` or e.g. ``"0.99N"`` / ``"0.99M"``."""
  if mu == 0:
    return "0"
  return f"{mu:g}{'N' if method == 'nag' else 'M'}"
