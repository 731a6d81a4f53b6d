"""Tables 1-3: deep autoencoders with NAG and CM, finetuning, SI scale.

Each Table 1 row trains the sparse-initialized autoencoder of Section 3 with
μ_t from Eq. 5 (capped at μ_max, reduced to 0.9 for the final updates as in
Table 2), at every learning rate of the protocol and every seed, as one grid
per (problem, method). Per column the learning rate with the lowest
final training objective wins; its squared error (sum over output
dimensions, mean over training cases) is reported over seeds.

* Table 2 reads the same NAG runs: the error of the best NAG column just
  before μ drops to 0.9 and at the end (the runs are shared through their
  checkpoints, so ``table2`` after ``table1`` trains nothing).
* Table 3 trains NAG at μ_max = 0.999 on the CURVES row over the SI scales
  (a grid over ``init_scale`` and the learning rate).

The rows' data: :mod:`._datasets` (a missing file skips its row with a
message); cells, writers and figures: :mod:`._cells`, :mod:`._writers`,
:mod:`._plots`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional

import jax.numpy as jnp
import numpy as np

from jaxmomentum import problems as problems_lib
from jaxmomentum import schedules
from jaxmomentum import training
from jaxmomentum.models import DeepAutoencoder
from jaxmomentum.reproduce import _cells
from jaxmomentum.reproduce import _hf_tables
from jaxmomentum.reproduce import _methods
from jaxmomentum.reproduce import _plots
from jaxmomentum.reproduce import _writers
from jaxmomentum.reproduce._datasets import ARCHITECTURES
from jaxmomentum.reproduce._datasets import Dataset
from jaxmomentum.reproduce._datasets import load_datasets
from jaxmomentum.reproduce._datasets import row_notes
from jaxmomentum.reproduce._datasets import STANDIN_LABEL
from jaxmomentum.reproduce._protocols import AutoencoderProtocol


def make_autoencoder_trainer(dataset: Dataset, protocol: AutoencoderProtocol,
                             method: str, *, mu_max: Optional[float] = None,
                             grid_init_scale: bool = False
                             ) -> training.Trainer:
  """The trainer of one row: a grid over (μ_max, ε) or (init_scale, ε).

  The objective and the reported ``error`` are the architecture's
  :func:`jaxmomentum.problems.reconstruction` (cross-entropy of a logistic
  output or squared error of a linear one; the reconstruction's squared
  error), as the RNN tables' are their problem's. ``mu_max`` fixes μ_max
  (Table 3); else it is a grid hyperparameter. ``grid_init_scale`` makes
  the SI scale one too.
  """
  architecture = ARCHITECTURES[dataset.problem]
  problem = problems_lib.reconstruction(architecture.output)
  data = jnp.asarray(dataset.train, jnp.float32)
  dummy = jnp.zeros((1, architecture.input_dim), jnp.float32)

  def model(init_scale=1.0):
    return DeepAutoencoder(architecture, init_scale=init_scale)

  def init_fn(key, init_scale=1.0):
    return model(init_scale).init(key, dummy)


  def loss_fn(params, x):
    return problem.loss(model().apply(params, x, logits=True), x)

  def eval_fn(params, x):
    return problem.metrics(model().apply(params, x, logits=True), x)

  optimizer = _methods.optimizer(method)

  def momentum_schedule(mu):
    return schedules.low_momentum_finetuning(
        schedules.sutskever_schedule(mu, protocol.stage_length),
        total_steps=protocol.num_steps,
        num_final_steps=protocol.finetune_steps)

  if mu_max is None:
    def optimizer_factory(learning_rate, mu_max, **switch):  # nesterov
      return optimizer(learning_rate, momentum_schedule(mu_max), **switch)
  else:
    def optimizer_factory(learning_rate, **switch):
      return optimizer(learning_rate, momentum_schedule(mu_max), **switch)

  return training.make_train(
      protocol.train_config(), init_fn, loss_fn,
      problems_lib.sample_minibatch,  # data: an argument, not a constant
      optimizer_factory,
      eval_fn=eval_fn, params_for_eval=_methods.params_for_eval(method),
      init_hparams=("init_scale",) if grid_init_scale else (), data=data)


def _tag(protocol: AutoencoderProtocol, dataset: Dataset, **extra) -> str:
  from jaxmomentum import __version__  # pylint: disable=import-outside-toplevel
  fields = {k: getattr(protocol, k) for k in (
      "num_steps", "batch_size", "stage_length", "finetune_steps",
      "eval_every", "eval_batch_size", "num_eval_batches")}
  return json.dumps({"version": __version__, "data": dataset.label,
                     "cases": int(dataset.train.shape[0]), **fields, **extra},
                    sort_keys=True, default=str)


def run_table1_grids(dataset: Dataset, protocol: AutoencoderProtocol,
                     out_dir: Path, *, progress=True,
                     checkpoint_every_s: float = 30.0, log=print
                     ) -> dict[str, training.GridResult]:
  """The NAG and CM grids of one Table 1 row (resumed from ``out_dir``)."""
  return _methods.run_method_grids(
      f"Table 1, {dataset.label}",
      lambda method: make_autoencoder_trainer(dataset, protocol, method),
      "mu_max", protocol.mu_maxes, protocol,
      out_dir / "checkpoints" / "table1" / dataset.problem,
      # "momentum": the tag's key for the method, as in existing checkpoints.
      lambda method: _tag(protocol, dataset, table="1", momentum=method),
      progress=progress, checkpoint_every_s=checkpoint_every_s, log=log)


def _data_note(dataset: Dataset) -> str:
  return f"data: {dataset.label}" if dataset.is_standin else ""


def table1_cells(dataset: Dataset, results: dict[str, training.GridResult]
                 ) -> tuple[list[_cells.Cell], dict]:
  return _cells.momentum_columns(results, "1", dataset.problem, "mu_max",
                                  note=_data_note(dataset))


def table2_cells(dataset: Dataset, result: training.GridResult,
                 protocol: AutoencoderProtocol) -> list[_cells.Cell]:
  """Before and after low-momentum finetuning, at the best NAG column."""
  row = dataset.problem
  unit = _cells.unit_of("2", row)
  summary = training.summarize(result, objective="loss",
                               select="learning_rate", report=("error",))
  candidates = [c for c in summary.rows if float(c.column["mu_max"]) > 0]
  if not candidates:
    return []
  best = min(candidates, key=lambda c: (
      np.inf if np.isnan(c.objective.mean) else c.objective.mean))
  before_step = protocol.num_steps - protocol.finetune_steps
  steps = list(result.eval_steps)
  cells = []
  for key, step in (("before", before_step), ("after", protocol.num_steps)):
    if step not in steps:
      continue
    values = np.asarray(result.metrics["error"])[:, best.point,
                                                 steps.index(step)]
    stats = training.aggregate_over_seeds(values,
                                          result.diverged_step[:, best.point]
                                          >= 0)
    note = f"NAG μ_max={float(best.column['mu_max']):g}, update {step:,}"
    if dataset.is_standin:
      note += f"; {_data_note(dataset)}"
    cells.append(_cells.Cell(
        "2", row, key, stats, _cells.paper_value("2", row, key), unit,
        learning_rate=float(best.best["learning_rate"]), note=note))
  return cells


def run_table3_grid(dataset: Dataset, protocol: AutoencoderProtocol,
                    out_dir: Path, *, progress=True,
                    checkpoint_every_s: float = 30.0, log=print
                    ) -> training.GridResult:
  trainer = make_autoencoder_trainer(dataset, protocol, "nag",
                                     mu_max=protocol.table3_mu_max,
                                     grid_init_scale=True)
  grid = training.Grid.product(init_scale=list(protocol.si_scales),
                               learning_rate=list(protocol.learning_rates))
  log(f"Table 3, {dataset.label}, NAG μ_max={protocol.table3_mu_max:g}: "
      f"{len(protocol.si_scales)} SI scales x {len(protocol.learning_rates)} "
      f"learning rates x {protocol.seeds} seeds, {protocol.num_steps:,} "
      "updates each")
  return training.run_grid(
      trainer, grid, seeds=protocol.seeds,
      out_dir=out_dir / "checkpoints" / "table3" / dataset.problem,
      checkpoint_every_s=checkpoint_every_s, progress=progress,
      tag=_tag(protocol, dataset, table="3",
               mu_max=protocol.table3_mu_max))


def table3_cells(dataset: Dataset, result: training.GridResult
                 ) -> list[_cells.Cell]:
  summary = training.summarize(result, objective="loss",
                               select="learning_rate", report=("error",))
  cells = []
  for col in summary.rows:
    key = f"{float(col.column['init_scale']):g}"
    cells.append(_cells.Cell(
        "3", "curves", key, col.report["error"],
        _cells.paper_value("3", "curves", key),
        _cells.unit_of("3", "curves"),
        learning_rate=float(col.best["learning_rate"]),
        note=_data_note(dataset)))
  return cells


def _plot_table1(path: Path, dataset: Dataset, results, selected
                 ) -> Optional[Path]:
  return _plots.plot_curves(
      path, _plots.momentum_panels(results, selected, "μ_max", "SGD"),
      "squared error",
      f"Table 1, {dataset.label}: mean and min-max over seeds")


def _notes(protocol: AutoencoderProtocol, skipped: list[str],
           datasets: list[Dataset]) -> list[str]:
  notes = [f"protocol: {protocol.name}"] + [
      f"differs from the paper: {d}" for d in protocol.differences()]
  for d in datasets:
    if d.is_standin:
      notes.append(f"the curves row ran on the {STANDIN_LABEL}, "
                   f"{d.train.shape[0]:,} images: its numbers are not "
                   "comparable with the paper's CURVES values")
  notes += [f"skipped: {s}" for s in skipped]
  notes.append("objective: cross-entropy (logistic outputs) or squared "
               "error (linear outputs); error: squared error summed over "
               "output dimensions, averaged over training cases (estimated "
               "on randomly drawn training cases); selection: per column the "
               "learning rate with the lowest final objective (mean over "
               "seeds); NAG evaluated at θ; μ_max = 0 runs NAG (plain SGD).")
  return notes


def reproduce_table1(protocol: AutoencoderProtocol, out_dir: Path, *,
                     data_dir: Optional[str] = None,
                     synthetic_curves: bool = False, progress: bool = True,
                     checkpoint_every_s: float = 30.0,
                     log: Callable[[str], None] = print,
                     with_table2: bool = False
                     ) -> tuple[str, list[Path]]:
  """Table 1 (and, with ``with_table2``, Table 2 from the same runs).

  Under the ``paper`` and ``quick`` protocols each row also runs our HF
  (:mod:`jaxmomentum.reproduce._hf_tables`) into the paper's HF* cell,
  labelled ours (checkpointed in ``checkpoints/table1/<row>-hf``).
  """
  out_dir = Path(out_dir)
  datasets, skipped = load_datasets(protocol, data_dir, synthetic_curves,
                                protocol.problems, log)
  hf_protocol = _hf_tables.hf_protocol_for(protocol)
  cells, t2_cells, runs, figures = [], [], [], []
  for dataset in datasets:
    results = run_table1_grids(dataset, protocol, out_dir, progress=progress,
                               checkpoint_every_s=checkpoint_every_s, log=log)
    row_cells, selected = table1_cells(dataset, results)
    cells += row_cells
    if hf_protocol is not None:  # our HF in the paper's HF* cell
      cells.append(_hf_tables.hf_cell(
          dataset.problem, dataset.train, hf_protocol,
          note=_data_note(dataset), log=log, out_dir=out_dir,
          progress=progress, checkpoint_every_s=checkpoint_every_s))
    if "nag" in results:
      t2_cells += table2_cells(dataset, results["nag"], protocol)
    for method, result in results.items():
      runs.append(_writers.result_json(result, problem=dataset.problem,
                                      data=dataset.label, method=method))
    out_dir.mkdir(parents=True, exist_ok=True)
    figure = _plot_table1(out_dir / f"table1_{dataset.problem}_curves.png",
                          dataset, results, selected)
    figures += [figure] if figure else []
  cells = _cells.with_paper_cells(cells, "1", row_notes(skipped))
  notes = _notes(protocol, skipped, datasets)
  if hf_protocol is not None and datasets:
    notes.append(f"HF* column, ours: {hf_protocol.describe()}")
  table, paths = _writers.write_outputs(
      out_dir, "table1", "Table 1: autoencoder squared errors (ours / paper)",
      cells, protocol, notes, runs)
  if with_table2:
    t2_cells = _cells.with_paper_cells(t2_cells, "2", row_notes(skipped))
    t2_table, t2_paths = _writers.write_outputs(
        out_dir, "table2",
        "Table 2: NAG before / after low-momentum finetuning (ours / paper)",
        t2_cells, protocol, notes + [
            f"before: the error at update {protocol.num_steps - protocol.finetune_steps:,}"
            f", when μ drops to 0.9 for the final {protocol.finetune_steps:,} "
            "updates; after: at the end; the column is the best NAG μ_max "
            "(Table 1's selection)."], [])
    figure = _plots.plot_table2(out_dir / "table2_finetuning.png", t2_cells)
    table += "\n" + t2_table
    paths += t2_paths + ([figure] if figure else [])
  return table, paths + figures


def reproduce_table2(protocol: AutoencoderProtocol, out_dir: Path, **kwargs
                     ) -> tuple[str, list[Path]]:
  """Table 2 from Table 1's NAG runs (trains them if they are not there)."""
  table, paths = reproduce_table1(protocol, out_dir, with_table2=True,
                                  **kwargs)
  return table, paths


def reproduce_table3(protocol: AutoencoderProtocol, out_dir: Path, *,
                     data_dir: Optional[str] = None,
                     synthetic_curves: bool = False, progress: bool = True,
                     checkpoint_every_s: float = 30.0,
                     log: Callable[[str], None] = print
                     ) -> tuple[str, list[Path]]:
  """Table 3: error vs SI scale on the CURVES row (NAG, μ_max = 0.999)."""
  out_dir = Path(out_dir)
  datasets, skipped = load_datasets(protocol, data_dir, synthetic_curves,
                                ("curves",), log)
  cells, runs, figures = [], [], []
  for dataset in datasets:
    result = run_table3_grid(dataset, protocol, out_dir, progress=progress,
                             checkpoint_every_s=checkpoint_every_s, log=log)
    cells += table3_cells(dataset, result)
    runs.append(_writers.result_json(result, problem=dataset.problem,
                                    data=dataset.label, method="nag"))
    out_dir.mkdir(parents=True, exist_ok=True)
    figure = _plots.plot_table3(out_dir / "table3_si_scale.png", cells,
                          dataset.label)
    figures += [figure] if figure else []
  cells = _cells.with_paper_cells(cells, "3", row_notes(skipped))
  table, paths = _writers.write_outputs(
      out_dir, "table3", "Table 3: squared error vs SI scale (ours / paper)",
      cells, protocol, _notes(protocol, skipped, datasets) + [
          f"NAG with μ_max = {protocol.table3_mu_max:g}; the best learning "
          "rate per scale."], runs)
  return table, paths + figures
