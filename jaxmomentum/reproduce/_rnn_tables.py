"""Table 5: the RNN long-term-dependency problems with NAG and CM.

For each problem (a row of :data:`jaxmomentum.reproduce.paper.TABLE5`),
method (NAG or CM) and μ0, the RNN of Section 4 (100 tanh
units, Table 4 initialization, centered inputs and targets) is trained with
μ = 0.9 for the warm-up, then μ0, at every learning rate of the protocol and
every seed, as one grid per problem (NAG and CM runs side by side in one
compiled program, the method a per-run switch) through
:func:`jaxmomentum.training.run_grid`; with several accelerators and
problems, the problems' grids run concurrently on disjoint sets of devices.
Per column the learning rate with the lowest final training loss (mean over
seeds, on fresh sequences) is selected and its zero-one error reported as
mean ± std over seeds.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
import threading
from typing import Callable, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp

from jaxmomentum import problems as problems_lib
from jaxmomentum import schedules
from jaxmomentum import training
from jaxmomentum.models import RNN
from jaxmomentum.reproduce import _cells
from jaxmomentum.reproduce import _methods
from jaxmomentum.reproduce import _plots
from jaxmomentum.reproduce import _rnn_traces
from jaxmomentum.reproduce import _writers
from jaxmomentum.reproduce import paper
from jaxmomentum.reproduce._protocols import RNNProtocol

RowLike = Union[str, paper.Table5Row]


def protocol_problem(problem, protocol: RNNProtocol):
  """``problem`` with the protocol's memorization layout (others as given)."""
  if (isinstance(problem, problems_lib.MemorizationProblem)
      and problem.channels != protocol.memorization_channels):
    return dataclasses.replace(problem,
                               channels=protocol.memorization_channels)
  return problem


def rnn_model(row: RowLike, protocol: RNNProtocol, *,
              unroll: Optional[int] = None
              ) -> tuple[problems_lib.ScoredProblem, RNN]:
  """A Table 5 row's problem (in the protocol's layout) and its RNN (Section
  4, Table 4 initialization; ``row`` and ``unroll`` as in :func:`rnn_task`).
  """
  row = paper.table5_row(row)
  problem = protocol_problem(row.problem, protocol)
  bias = paper.table4_output_bias(problem, protocol.output_bias,
                                  protocol.center)
  input_scale = (row.input_scale if protocol.input_scale is None
                 else protocol.input_scale)
  model = RNN(
      output_size=problem.out_dim, hidden_size=protocol.hidden_size,
      head="linear" if problem.output_kind == "linear" else "softmax",
      init_recipe=paper.table4_rnn_init(
          input_scale, output_bias=jnp.asarray(bias)),
      unroll=protocol.unroll if unroll is None else unroll)
  return problem, model


class RNNTask(NamedTuple):
  """The pure functions of one Table 5 problem under a protocol's choices."""
  init_fn: Callable
  sample_fn: Callable
  loss_fn: Callable
  eval_fn: Callable


def rnn_task(row: RowLike, protocol: RNNProtocol, *,
             unroll: Optional[int] = None, traces: bool = False) -> RNNTask:
  """The model, data, loss and metrics of a row of Table 5 (Section 4,
  Table 4).

  ``row``: a key of :data:`jaxmomentum.reproduce.paper.TABLE5` or a
  :class:`~jaxmomentum.reproduce.paper.Table5Row` (e.g. one with another
  problem, ``dataclasses.replace(paper.TABLE5["add"], problem=...)``).

  ``unroll``: time steps per iteration of the RNN's loops (default
  ``protocol.unroll``); a speed knob, the numbers stay the same up to float
  rounding. ``traces``: also evaluate the communication traces of
  :mod:`jaxmomentum.reproduce._rnn_traces` (spectral radius, saturation,
  gradient reaching the information steps, answer sensitivity).
  """
  problem, model = rnn_model(row, protocol, unroll=unroll)
  dummy = jnp.zeros((1, problem.max_length, problem.in_dim), jnp.float32)
  normalization = protocol.loss_normalization

  def init_fn(rng):
    return model.init(rng, dummy)

  def sample_fn(rng, batch_size, data):  # no data: generated on device
    del data
    batch = problem.sample(rng, batch_size)
    return problem.centered(batch) if protocol.center else batch

  def loss_fn(params, batch):
    return problem.loss(model.apply(params, batch.inputs), batch,
                        normalization=normalization)

  def eval_fn(params, batch):
    metrics = problem.metrics(model.apply(params, batch.inputs), batch,
                              normalization=normalization)
    if traces:
      metrics.update(_rnn_traces.communication_traces(
          model, problem, params, batch, normalization=normalization))
    return metrics

  return RNNTask(init_fn, sample_fn, loss_fn, eval_fn)


def make_rnn_trainer(row: RowLike, protocol: RNNProtocol, method: str, *,
                     unroll: Optional[int] = None, traces: bool = False
                     ) -> training.Trainer:
  """The trainer of a Table 5 row's grid over (μ0, ε) (``row``: as in
  :func:`rnn_task`).

  ``method``: ``"nag"``, ``"cm"``, or ``"nag+cm"`` (both in one program:
  the grid then also has a ``nesterov`` hyperparameter, 1 for NAG runs, 0
  for CM runs). ``unroll``, ``traces``: as in :func:`rnn_task`.
  """
  optimizer = _methods.optimizer(method)
  init_fn, sample_fn, loss_fn, eval_fn = rnn_task(row, protocol,
                                                  unroll=unroll, traces=traces)

  def optimizer_factory(learning_rate, mu0, **switch):  # switch: nesterov
    return optimizer(learning_rate, schedules.rnn_warmup_schedule(
        mu0, protocol.warmup_steps, protocol.warmup_momentum), **switch)

  return training.make_train(
      protocol.train_config(), init_fn, loss_fn, sample_fn, optimizer_factory,
      eval_fn=eval_fn, params_for_eval=_methods.params_for_eval(method))


def _tag(protocol: RNNProtocol, row: RowLike, method: str) -> str:
  """The run tag in the checkpoints' fingerprint: byte-identical to the
  tags of existing checkpoints (so they resume), hence its ``"problem"``
  (the row's label) and ``"momentum"`` (the method) keys."""
  from jaxmomentum import __version__  # pylint: disable=import-outside-toplevel
  fields = {k: getattr(protocol, k) for k in (
      "num_steps", "batch_size", "warmup_steps", "warmup_momentum",
      "eval_every", "eval_batch_size", "num_eval_batches", "hidden_size")}
  # The fidelity options join the tag only when they differ from the
  # defaults, so checkpoints made before they existed still resume.
  # The memorization layout joins only the memorization rows' tags: the
  # other rows' runs do not depend on it.
  memorization = isinstance(paper.table5_row(row).problem,
                            problems_lib.MemorizationProblem)
  for k, default in (("loss_normalization", "step_mean"),
                     ("input_scale", None), ("output_bias", "mean"),
                     ("center", True),
                     ("memorization_channels", "separate")):
    if k == "memorization_channels" and not memorization:
      continue
    if getattr(protocol, k) != default:
      fields[k] = getattr(protocol, k)
  return json.dumps({"version": __version__, "table": "5",
                     "problem": paper.table5_row(row).label, "momentum": method,
                     **fields}, sort_keys=True)


def run_grids(protocol: RNNProtocol, row: RowLike, out_dir: Path, *,
              progress: bool = True, checkpoint_every_s: float = 30.0,
              log=print, merged: bool = True, devices=None
              ) -> dict[str, training.GridResult]:
  """The NAG and CM grids of a Table 5 row; resumes from ``out_dir``.

  ``merged``: NAG and CM as one program (checkpoints in
  ``checkpoints/table5/<key>-nag+cm``), else one per method (in
  ``<key>-nag`` and ``<key>-cm``; an existing checkpoint of that layout is
  resumed that way either way). ``devices``: default all.
  """
  row = paper.table5_row(row)
  return _methods.run_method_grids(
      f"Table 5, {row.label}",
      lambda method: make_rnn_trainer(row, protocol, method),
      "mu0", protocol.mu0s, protocol,
      out_dir / "checkpoints" / "table5" / row.key,
      lambda method: _tag(protocol, row, method),
      progress=progress, checkpoint_every_s=checkpoint_every_s, log=log,
      merged=merged, devices=devices)


def cells_for(row: RowLike, results: dict[str, training.GridResult],
              protocol: Optional[RNNProtocol] = None
              ) -> tuple[list[_cells.Cell], dict]:
  """The Table 5 cells of one row, and per column its selected point.

  ``protocol``: the runs' protocol, for its memorization layout's biases
  (default: the default layout).
  """
  row = paper.table5_row(row)
  factor = row.unit_factor
  problem = (row.problem if protocol is None
             else protocol_problem(row.problem, protocol))
  baseline = problem.biases_baseline().mean_predictor_error * factor
  cells = [_cells.Cell(
      "5", row.key, "biases",
      training.SeedStats(baseline, 0.0, baseline, baseline, 1, 0),
      _cells.paper_value("5", row.key, "biases"), row.unit,
      note="constant predictor of our generator (analytic)")]
  run_cells, selected = _cells.momentum_columns(results, "5", row.key,
                                                 "mu0", factor)
  cells += run_cells
  order = ["biases"] + sorted(
      (c.column for c in cells if c.column != "biases"),
      key=lambda k: (k != "0", k[-1:] == "M", float(k.rstrip("NM") or 0)))
  cells.sort(key=lambda c: order.index(c.column))
  return cells, selected


def plot_problem(path: Path, row: RowLike,
                 results: dict[str, training.GridResult], selected: dict,
                 protocol: Optional[RNNProtocol] = None) -> Optional[Path]:
  """Learning curves: zero-one error vs updates, one panel per μ0, with the
  biases error of the generator the runs used (``protocol``'s layout)."""
  row = paper.table5_row(row)
  problem = (row.problem if protocol is None
             else protocol_problem(row.problem, protocol))
  biases = problem.biases_baseline().mean_predictor_error * row.unit_factor
  return _plots.plot_curves(
      path, _plots.momentum_panels(results, selected, "μ0",
                                    "SGD after warm-up", row.unit_factor),
      f"zero-one error ({row.unit})",
      f"Table 5, {row.label}: mean and min-max over seeds",
      references=[(f"biases ({biases:.3g})", biases)])


def _placements(problems: tuple[str, ...], concurrent: Optional[bool]
                ) -> Optional[list[tuple[list, tuple[str, ...]]]]:
  """``None`` (one problem after another on all devices) or, per disjoint
  group of devices, the problems it runs one after another.

  Auto (``concurrent=None``): side by side with several problems and
  devices in one process, unless the devices are CPUs: there a grid already
  splits evenly over every core (``lax.map`` per device), while whole
  problems of unequal length (mem-5 is T = 200, the others 80) do not.
  Problems go to groups longest first, each to the least loaded group.
  """
  single = jax.process_count() == 1
  if concurrent is None:
    concurrent = (len(problems) > 1 and jax.device_count() > 1 and single
                  and jax.devices()[0].platform != "cpu")
  if not concurrent:
    return None
  if not single:
    raise ValueError("concurrent=True needs a single process; with "
                     "jax.distributed every grid spans all processes")
  groups = training.device_groups(len(problems))
  length = {p: paper.TABLE5[p].problem.max_length for p in problems}
  load, assigned = [0] * len(groups), [[] for _ in groups]
  for name in sorted(problems, key=lambda p: -length[p]):
    i = load.index(min(load))
    load[i] += length[name] / len(groups[i])
    assigned[i].append(name)
  return [(group, tuple(p for p in problems if p in names))
          for group, names in zip(groups, assigned) if names]


def run_all_grids(protocol: RNNProtocol, out_dir: Path, *,
                  concurrent: Optional[bool] = None, **kwargs
                  ) -> dict[str, dict[str, training.GridResult]]:
  """:func:`run_grids` of every row of ``protocol.problems``, by key.

  With ``concurrent`` (default: when there are several problems and
  devices other than CPUs, in a single process) the devices are split into
  disjoint groups (:func:`jaxmomentum.training.device_groups`), one per
  problem or fewer, and the groups run their problems at the same time,
  one thread each. The results do not depend on it. Interrupted (Ctrl-C),
  the threads die with the process; every grid resumes from its last
  checkpoint.
  """
  placements = _placements(tuple(protocol.problems), concurrent)
  if placements is None:
    return {name: run_grids(protocol, name, out_dir, **kwargs)
            for name in protocol.problems}
  results, errors = {}, []

  def work(devices, names):
    try:
      for name in names:
        results[name] = run_grids(protocol, name, out_dir, devices=devices,
                                  **kwargs)
    except BaseException as err:  # pylint: disable=broad-except
      errors.append(err)

  threads = [threading.Thread(target=work, args=placement, daemon=True,
                              name=f"table5-{'+'.join(placement[1])}")
             for placement in placements]
  for thread in threads:
    thread.start()
  for thread in threads:
    while thread.is_alive():  # a timeout keeps the main thread interruptible
      thread.join(timeout=0.5)
  if errors:
    raise errors[0]
  return {name: results[name] for name in protocol.problems}


def _best_nag(results: dict[str, training.GridResult], selected: dict,
              protocol: RNNProtocol):
  """The NAG curve for the HF figure: the NAG column (μ0 > 0, else μ0 = 0)
  with the lowest final error at its selected ε, and its wall times."""
  from jaxmomentum.reproduce import _hf_rnn  # pylint: disable=import-outside-toplevel
  if "nag" not in results:
    return None
  keys = [k for k in selected if k.endswith("N")] or [
      k for k in selected if k == "0"]
  if not keys:
    return None
  result = results["nag"]

  def final_error(key):
    return float(jnp.mean(result.final("error")[:, selected[key][1]]))

  key = min(keys, key=final_error)
  _, point, lr = selected[key]
  # NAG and CM in one program share its chunk times: a run's share counts
  # every run of that program.
  runs = sum(r.seeds.size * r.grid.size for r in results.values()) if (
      len(results) > 1 and len({r.chunk_s for r in results.values()}) == 1
      ) else None
  wall = _hf_rnn.wall_seconds(result, protocol.train_config().chunk_size,
                              len(jax.devices()), num_runs=runs)
  mu = "0 (SGD after warm-up)" if key == "0" else key.rstrip("N")
  return (f"NAG, μ0 = {mu}, ε={lr:g}", result, point, wall)


def reproduce(protocol: RNNProtocol, out_dir: Path, *, progress: bool = True,
              checkpoint_every_s: float = 30.0, log=print,
              concurrent: Optional[bool] = None, hf=None
              ) -> tuple[str, list[Path]]:
  """Runs Table 5 for ``protocol.problems``; writes table, CSV, JSON, PNGs.

  ``concurrent``: run the problems' grids side by side on disjoint device
  groups (:func:`run_all_grids`; default: when there are several problems
  and accelerators). In a multi-process run only process 0 writes.

  ``hf``: also run the HF row of our own (not in the paper), an
  :class:`~jaxmomentum.reproduce._hf_rnn.HFRNNProtocol`
  (:func:`~jaxmomentum.reproduce._hf_rnn.hf_protocol_for` gives the one
  that goes with ``protocol``): a column ``HF (ours, 2011 release settings;
  not in the paper)`` in the table, and per problem a figure
  ``table5_<key>_hf_vs_nag.png`` of the error against gradient-equivalent
  evaluations and against wall time, HF and the best NAG column. Its runs
  checkpoint in ``checkpoints/table5/<key>-hf`` and resume. ``None``
  (default): no HF runs, the outputs as before.
  """
  out_dir = Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  cells, runs, figures = [], [], []
  all_results = run_all_grids(protocol, out_dir, concurrent=concurrent,
                              progress=progress,
                              checkpoint_every_s=checkpoint_every_s, log=log)
  for name, results in all_results.items():
    problem_cells, selected = cells_for(name, results, protocol)
    cells += problem_cells
    for method, result in results.items():
      runs.append(_writers.result_json(result, problem=paper.TABLE5[name].label,
                                      method=method))
    figure = plot_problem(out_dir / f"table5_{name}_curves.png", name,
                          results, selected, protocol)
    if figure is not None:
      figures.append(figure)
    if hf is not None:
      figures += _hf_row(name, results, selected, protocol, hf, out_dir,
                         cells, runs, progress=progress,
                         checkpoint_every_s=checkpoint_every_s, log=log)
  notes = [f"protocol: {protocol.name}"] + [
      f"differs from the paper: {d}" for d in protocol.differences()] + [
      "problems: the 2011 release's generators (jaxmomentum.problems "
      "defaults: add target A+B, values U[0,1]); see the biases column for "
      "how they compare with the paper's.",
      "μ0 = 0 runs NAG (μ = 0.9 during the warm-up, then plain SGD).",
      "selection: per column the learning rate with the lowest final "
      "training loss (mean over seeds, fresh sequences); NAG evaluated at θ.",
  ]
  if hf is not None:
    notes.append(
        f"{hf.describe()}. The HF column is ours, not in the paper: "
        "jaxmomentum.hessian_free with the 2011 HF-RNN release's settings "
        "(structural damping 0.03, λ0 = 0.01 × outputs, L2 2e-5); see "
        "jaxmomentum/reproduce/_hf_rnn.py for every constant's source.")
  cells = _cells.with_paper_cells(cells, "5")
  title = "Table 5: RNN zero-one errors (ours / paper)"
  table, paths = _writers.write_outputs(out_dir, "table5", title, cells,
                                       protocol, notes, runs)
  return table, paths + figures


def _hf_row(name: str, results, selected, protocol: RNNProtocol, hf,
            out_dir: Path, cells: list, runs: list, *, progress: bool,
            checkpoint_every_s: float, log) -> list[Path]:
  """The HF runs of one problem: its cell and runs appended to ``cells`` and
  ``runs``; returns the HF-vs-NAG figure's path (none without
  matplotlib)."""
  from jaxmomentum.reproduce import _hf_rnn  # pylint: disable=import-outside-toplevel
  result = _hf_rnn.run_hf(name, protocol, hf, out_dir, progress=progress,
                          checkpoint_every_s=checkpoint_every_s, log=log)
  cells.append(_hf_rnn.hf_cell(name, result, hf))
  runs.append(_writers.result_json(result, problem=paper.TABLE5[name].label,
                                   method="hf"))
  wall = _hf_rnn.wall_seconds(result, hf.train_config(protocol).chunk_size,
                              len(jax.devices()))
  figure = _hf_rnn.plot_hf_vs_nag(
      out_dir / f"table5_{name}_hf_vs_nag.png", name, result, wall,
      _best_nag(results, selected, protocol))
  if figure is None:
    _writers.print_skip(f"table5_{name}_hf_vs_nag.png: matplotlib is not "
                        "installed (pip install jaxmomentum[plot]) or this "
                        "is not process 0", log)
    return []
  return [figure]
