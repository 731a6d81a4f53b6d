"""The paper's reported numbers, transcribed once, each with table/row/column.

Source: Sutskever, Martens, Dahl & Hinton, *On the importance of
initialization and momentum in deep learning*, ICML 2013, Tables 1, 2, 3 and 5.
Column keys: ``"0"`` is μ = 0 (plain SGD); ``"0.99N"`` is NAG with μ_max (or
μ0) = 0.99 and ``"0.99M"`` classical momentum. Table 5's memorization rows are
in percent of time steps, as printed; every other RNN value is a fraction of
sequences; autoencoder values are squared errors (sum over output
dimensions, averaged over training cases). ``None`` marks "NA" in the paper.
"""

from __future__ import annotations

import dataclasses
from typing import Optional


@dataclasses.dataclass(frozen=True)
class PaperValue:
  table: str
  row: str
  column: str
  value: Optional[float]
  unit: str


def _table(table: str, columns: tuple[str, ...], rows: dict, unit) -> tuple:
  out = []
  for row, values in rows.items():
    assert len(values) == len(columns), (table, row)
    row_unit = unit(row) if callable(unit) else unit
    out += [PaperValue(table, row, c, v, row_unit)
            for c, v in zip(columns, values)]
  return tuple(out)


TABLE1_COLUMNS = ("0", "0.9N", "0.99N", "0.995N", "0.999N", "0.9M", "0.99M",
                  "0.995M", "0.999M", "SGD_C", "HF+", "HF*")
TABLE1 = _table("1", TABLE1_COLUMNS, {
    "curves": (0.48, 0.16, 0.096, 0.091, 0.074, 0.15, 0.10, 0.10, 0.10, 0.16,
               0.058, 0.11),
    "mnist": (2.1, 1.0, 0.73, 0.75, 0.80, 1.0, 0.77, 0.84, 0.90, 0.9, 0.69,
              1.40),
    "faces": (36.4, 14.2, 8.5, 7.8, 7.7, 15.3, 8.7, 8.3, 9.3, None, 7.5,
              12.0),
}, "squared error")

TABLE2_COLUMNS = ("before", "after")
TABLE2 = _table("2", TABLE2_COLUMNS, {
    "curves": (0.096, 0.074),
    "mnist": (1.20, 0.73),
    "faces": (10.83, 7.7),
}, "squared error")

TABLE3_COLUMNS = ("0.25", "0.5", "1", "2", "4")
TABLE3 = _table("3", TABLE3_COLUMNS, {
    "curves": (16, 16, 0.074, 0.083, 0.35),
}, "squared error")

TABLE5_COLUMNS = ("biases", "0", "0.9N", "0.98N", "0.995N", "0.9M", "0.98M",
                  "0.995M")
TABLE5 = _table("5", TABLE5_COLUMNS, {
    "add80": (0.82, 0.39, 0.02, 0.21, 0.00025, 0.43, 0.62, 0.036),
    "mul80": (0.84, 0.48, 0.36, 0.22, 0.0013, 0.029, 0.025, 0.37),
    "mem5_200": (2.5, 1.27, 1.02, 0.96, 0.63, 1.12, 1.09, 0.92),
    "mem20_80": (8.0, 5.37, 2.77, 0.0144, 0.00005, 1.75, 0.0017, 0.053),
}, lambda row: "percent of time steps" if row.startswith("mem")
   else "fraction of sequences")

ALL = TABLE1 + TABLE2 + TABLE3 + TABLE5


def lookup(table: str, row: str, column: str) -> Optional[float]:
  """The paper's value for one cell; ``KeyError`` names what is unknown."""
  for entry in ALL:
    if (entry.table, entry.row, entry.column) == (table, row, column):
      return entry.value
  raise KeyError(f"no value in Table {table} at row {row!r}, column "
                 f"{column!r}")


def unit(table: str, row: str) -> str:
  """The unit of a row; a row of ours the paper lacks takes the table's
  unit when all its rows share one (Tables 1-3: squared error)."""
  units = set()
  for entry in ALL:
    if (entry.table, entry.row) == (table, row):
      return entry.unit
    if entry.table == table:
      units.add(entry.unit)
  if len(units) == 1:
    return units.pop()
  raise KeyError(f"no row {row!r} in Table {table}")
