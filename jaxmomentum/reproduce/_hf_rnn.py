r"""Table 5's HF row, ours: Hessian-free on the RNN problems (not in the paper).

The paper's Table 5 has no Hessian-free column (only Table 1 has one). This
module adds a row of our own, labelled ``HF (ours, 2011 release settings;
not in the paper)``: :func:`jaxmomentum.hessian_free` with the settings of
Sutskever's 2011 HF-RNN release (Martens & Sutskever 2011; the release's
``opt/hf.py`` and ``opt/r/demo.py``), trained on the same problems, model,
initialization, centering and loss normalization as the momentum columns
(:func:`jaxmomentum.reproduce._rnn_tables.rnn_task`), with fresh sequences
every update, and scored with the same zero-one error on the same kind of
fresh evaluation batches.

**Settings and their sources** (:data:`HF_RNN_PAPER`):

==========================  ================================================
100 tanh units              the release (``opt/r/demo.py``); Table 4's model
structural damping μ        0.03 (Martens & Sutskever 2011; the release)
λ₀                          0.01 · n_out, n_out the problem's output units
                            (the release; 0.01 for add/mul, 0.03 for mem-5,
                            0.06 for mem-20)
L2 (weight cost)            2e-5 (the release and Martens 2010)
loss                        per counted output (step mean; the release's
                            ``HF._op``), the protocol's normalization
gradient batch              10,000 fresh sequences per update (the release:
                            10 batches of 1,000)
curvature batch (G, ρ)      the first 1,000 of them (the release: batch 0)
backtracking + line search  the next 1,000 (the release: batch 1 for
                            backtracking, batch 2 for the line search; ours
                            has one ``batch`` argument for both)
CG iterations               at most 300, at least 299 (the release: 300,
                            min 299), Martens' stopping rule, hot start 0.95
                            and reset to 0 after a rejected step
LM rule                     ρ < ¼: λ·3/2, ρ > ¾: λ·2/3 (identical in both)
==========================  ================================================

**Where ours differs from the release** (the engine is Martens' 2010
algorithm, :func:`jaxmomentum.hessian_free`): backtracking over Martens'
saved iterates :math:`\lceil 5\cdot 1.3^j\rceil` (the release: every 10 CG
steps, keep the best); ρ with the damping off (the release: on); Armijo
line search c = 1e-2, 60 tries (the release: any decrease, 50 tries); the
structural damping term normalized per sequence (the curvature module's
convention) while the loss is per counted output; mem-5's batches of 32 in
the release are not reproduced (all rows use the sizes above). The release
trains until the test zero-one error falls below 0.001; ours runs a fixed
number of updates (:attr:`HFRNNProtocol.num_updates`, our choice) so that
every run is one fixed-shape program.

**Cost convention** (the figure's x axis, metric ``grad_evals``): one
gradient-equivalent evaluation is one forward and one backward pass over
``reference_batch`` sequences (the momentum runs' minibatch, 100), so one
NAG update costs exactly 1. A forward pass counts ½ and a backward pass ½
of a gradient, per sequence; a Gauss-Newton product (one forward-mode pass
through the linearization and one reverse pass) counts 1. Per HF update on
:math:`B_g` gradient, :math:`B_c` curvature and :math:`B_l` line-search
sequences:

.. math::

  B_g + B_c\,(\tfrac12 + n_{CG} + 2 + 2\cdot\tfrac12)
  + B_l\cdot\tfrac12\,(2 + n_{bt} + \max(n_{ls} - 1, 0)),

(gradient; linearization, :math:`n_{CG}` CG products plus the initial
residual and ρ's :math:`p^\top G p`, the two ρ losses; the loss before and
after the step, :math:`n_{bt}` backtracking and :math:`n_{ls}-1` new line
search evaluations), divided by ``reference_batch``. Evaluations for the
table are not counted (they are not part of training, for NAG either).
``benchmarks/bench_hessian_free.py`` measures a G·v product at about 1.5
gradients on the CPU, so this convention undercounts HF by up to that
factor; the wall-time panel is measured.

References:
  Martens & Sutskever, *Learning recurrent neural networks with
  Hessian-free optimization*, ICML 2011, and Sutskever's code release
  (HF-RNN, 2011). Martens, *Deep learning via Hessian-free optimization*,
  ICML 2010. Sutskever et al. (2013), Section 5 and Table 5.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from pathlib import Path
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmomentum import curvature
from jaxmomentum import training
from jaxmomentum._hessian_free import hessian_free
from jaxmomentum._hessian_free import HessianFreeState
from jaxmomentum._validation import check_int, check_range
from jaxmomentum.models import rnn_outputs_and_preactivations
from jaxmomentum.reproduce import _cells
from jaxmomentum.reproduce import _plots
from jaxmomentum.reproduce import _rnn_tables
from jaxmomentum.reproduce import paper
from jaxmomentum.reproduce._protocols import RNNProtocol

COLUMN = "HF (ours, 2011 release settings; not in the paper)"
# HF-RNN release (opt/r/demo.py): structural damping mu and lambda0 / n_out.
STRUCTURAL_DAMPING = 0.03
DAMPING_PER_OUTPUT = 0.01
# The release's weight cost (also Martens 2010's).
L2_REG = 2e-5
# NAG's minibatch in Table 5 (Section 4.2): the unit of the cost axis.
REFERENCE_BATCH = 100


@dataclasses.dataclass(frozen=True)
class HFRNNProtocol:
  """How Table 5's HF runs are made (see the module docstring's sources).

  Attributes:
    name: ``"paper"`` (the release's sizes) or ``"quick"``.
    num_updates: HF updates per run, >= 1 (our choice: the release stops at
      a test error below 0.001 instead).
    gradient_batch: fresh sequences per update for the gradient, >= 2
      (release: 10,000).
    curvature_batch: the first this many of them give G and ρ, >= 1
      (release: 1,000).
    linesearch_batch: the next this many give backtracking and the line
      search, >= 1 (release: 1,000); ``curvature_batch + linesearch_batch
      <= gradient_batch``.
    cg_max_iters: CG iterations per update, >= 1 (release: 300).
    cg_min_iters: iterations before the stopping rule applies, in [1,
      cg_max_iters] (release: 299).
    seeds: seeds (initializations and data streams), >= 1 (4, as the
      momentum columns).
    eval_every: updates between evaluations; divides ``num_updates``.
    damping_per_output: λ₀ / n_out, > 0 (release: 0.01).
    structural_damping: μ >= 0 (release: 0.03).
    l2_reg: the weight cost, >= 0 (release: 2e-5).

  Example:
    >>> from jaxmomentum.reproduce import _hf_rnn, paper
    >>> _hf_rnn.HF_RNN_PAPER.initial_damping(paper.TABLE5["mem20"].problem)
    0.06
    >>> _hf_rnn.HFRNNProtocol("x", num_updates=10, gradient_batch=100,
    ...                       curvature_batch=80, linesearch_batch=80,
    ...                       cg_max_iters=5, cg_min_iters=1, seeds=1,
    ...                       eval_every=5)
    Traceback (most recent call last):
    ...
    ValueError: curvature_batch + linesearch_batch must not exceed gradient_batch=100, got 80 + 80
  """

  name: str
  num_updates: int
  gradient_batch: int
  curvature_batch: int
  linesearch_batch: int
  cg_max_iters: int
  cg_min_iters: int
  seeds: int
  eval_every: int
  damping_per_output: float = DAMPING_PER_OUTPUT
  structural_damping: float = STRUCTURAL_DAMPING
  l2_reg: float = L2_REG

  def __post_init__(self):
    check_int("num_updates", self.num_updates, 1)
    check_int("gradient_batch", self.gradient_batch, 2)
    check_int("curvature_batch", self.curvature_batch, 1)
    check_int("linesearch_batch", self.linesearch_batch, 1)
    if self.curvature_batch + self.linesearch_batch > self.gradient_batch:
      raise ValueError(
          "curvature_batch + linesearch_batch must not exceed gradient_batch"
          f"={self.gradient_batch}, got {self.curvature_batch} + "
          f"{self.linesearch_batch}")
    check_int("cg_max_iters", self.cg_max_iters, 1)
    check_int("cg_min_iters", self.cg_min_iters, 1, self.cg_max_iters)
    check_int("seeds", self.seeds, 1)
    check_int("eval_every", self.eval_every, 1, self.num_updates)
    if self.num_updates % self.eval_every:
      raise ValueError(f"eval_every must divide num_updates="
                       f"{self.num_updates}, got {self.eval_every}")
    check_range("damping_per_output", self.damping_per_output, 0.0,
                low_open=True)
    check_range("structural_damping", self.structural_damping, 0.0)
    check_range("l2_reg", self.l2_reg, 0.0)

  def initial_damping(self, problem) -> float:
    """λ₀ = ``damping_per_output`` × the problem's output units."""
    return self.damping_per_output * problem.out_dim

  def train_config(self, rnn: RNNProtocol) -> training.TrainConfig:
    """The engine's configuration: one chunk per evaluation period (so the
    chunk times give a wall-time curve), the RNN protocol's evaluation."""
    return training.TrainConfig(
        num_steps=self.num_updates, batch_size=self.gradient_batch,
        eval_every=self.eval_every, eval_batch_size=rnn.eval_batch_size,
        num_eval_batches=rnn.num_eval_batches, chunk_size=self.eval_every)

  def describe(self) -> str:
    return (f"HF (ours, 2011 release settings): {self.num_updates:,} "
            f"updates, gradient on {self.gradient_batch:,} fresh sequences, "
            f"G and ρ on {self.curvature_batch:,}, backtracking and line "
            f"search on {self.linesearch_batch:,}, CG {self.cg_min_iters}-"
            f"{self.cg_max_iters} iterations, λ0 = {self.damping_per_output:g}"
            f"·n_out, μ = {self.structural_damping:g}, L2 "
            f"{self.l2_reg:g}, {self.seeds} seed(s)")


HF_RNN_PAPER = HFRNNProtocol(
    "paper", num_updates=1000, gradient_batch=10_000, curvature_batch=1000,
    linesearch_batch=1000, cg_max_iters=300, cg_min_iters=299, seeds=4,
    eval_every=10)
# A documented reduction for CPUs: 40 updates on 500 fresh sequences (G and
# ρ on the first 100, backtracking and line search on the next 100), at most
# 30 CG iterations with Martens' stopping rule from the first, 2 seeds (as
# RNN_QUICK): about 40 gradient-equivalents per update, 1,600 per run
# (RNN_QUICK's NAG runs: 500); about a minute of CPU per row of T = 80 plus
# ~20 s of compilation (benchmarks/RESULTS.md).
HF_RNN_QUICK = HFRNNProtocol(
    "quick", num_updates=40, gradient_batch=500, curvature_batch=100,
    linesearch_batch=100, cg_max_iters=30, cg_min_iters=1, seeds=2,
    eval_every=5)
HF_RNN_PROTOCOLS = {"paper": HF_RNN_PAPER, "quick": HF_RNN_QUICK}


def hf_protocol_for(protocol: RNNProtocol) -> HFRNNProtocol:
  """:data:`HF_RNN_PAPER` for the paper protocol (with or without
  ``+overrides``), else :data:`HF_RNN_QUICK`."""
  return HF_RNN_PROTOCOLS["paper" if protocol.name.split("+")[0] == "paper"
                          else "quick"]


class CountedHFState(NamedTuple):
  """State of :func:`release_hessian_free`: HF's, and the cost so far."""

  hf: HessianFreeState
  grad_evals: jax.Array  # float32: gradient-equivalents so far (see module)


def step_cost(info, protocol: HFRNNProtocol) -> jax.Array:
  """One HF update's cost in sequence-gradients (the module's convention),
  from its :class:`~jaxmomentum.HessianFreeInfo`."""
  f32 = jnp.float32
  products = info.cg_iters.astype(f32) + 2.0  # + initial residual, pᵀGp
  curvature_cost = protocol.curvature_batch * (0.5 + products + 1.0)
  evaluations = (2.0 + info.backtracking_steps.astype(f32)
                 + jnp.maximum(info.linesearch_steps.astype(f32) - 1.0, 0.0))
  return (protocol.gradient_batch + curvature_cost
          + protocol.linesearch_batch * 0.5 * evaluations)


def hf_loss(problem, normalization: str) -> Callable:
  """The problem's training loss as a function of the logits ``z``: a
  :class:`~jaxmomentum.curvature.MatchingLoss` (closed-form H_L) for the
  step mean, else the problem's own loss (H_L by autodiff)."""
  if normalization == "step_mean":
    factory = (curvature.squared_error if problem.output_kind == "linear"
               else curvature.softmax_cross_entropy)
    return factory(targets=lambda b: b.targets, weights=lambda b: b.mask)
  return lambda z, batch: problem.loss(z, batch, normalization=normalization)


def _rows(batch, start: int, size: int):
  return jax.tree.map(lambda leaf: leaf[start:start + size], batch)


def release_hessian_free(outputs_fn: Callable, loss_fn: Callable,
                         protocol: HFRNNProtocol, initial_damping: Any, *,
                         reference_batch: int = REFERENCE_BATCH
                         ) -> optax.GradientTransformationExtraArgs:
  """:func:`jaxmomentum.hessian_free` with the release's settings, fed the
  release's batches, counting its cost.

  ``update(grads, state, params, batch=...)``: ``grads`` on the whole
  ``batch`` (``protocol.gradient_batch`` sequences, as the training engine
  gives them); G and ρ use its first ``protocol.curvature_batch`` sequences,
  backtracking and the line search the next ``protocol.linesearch_batch``.
  The state carries the gradient-equivalents spent so far
  (:func:`step_cost` / ``reference_batch``, >= 1).
  """
  check_int("reference_batch", reference_batch, 1)
  hf = hessian_free(
      outputs_fn, loss_fn, initial_damping=initial_damping,
      cg_max_iters=protocol.cg_max_iters, cg_min_iters=protocol.cg_min_iters,
      l2_reg=protocol.l2_reg, structural_damping=protocol.structural_damping,
      hidden_activation="tanh")

  def init_fn(params):
    return CountedHFState(hf.init(params), jnp.zeros([], jnp.float32))

  def update_fn(grads, state, params=None, *, batch=None, **extra_args):
    del extra_args
    if batch is None:
      raise ValueError("release_hessian_free needs the data: update(grads, "
                       "state, params, batch=...)")
    size = jax.tree.leaves(batch)[0].shape[0]
    if size != protocol.gradient_batch:
      raise ValueError(f"batch must hold gradient_batch="
                       f"{protocol.gradient_batch} sequences, got {size}")
    updates, hf_state = hf.update(
        grads, state.hf, params,
        batch=_rows(batch, protocol.curvature_batch,
                    protocol.linesearch_batch),
        curvature_batch=_rows(batch, 0, protocol.curvature_batch))
    cost = step_cost(hf_state.info, protocol) / reference_batch
    return updates, CountedHFState(hf_state, state.grad_evals + cost)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def make_hf_trainer(row: _rnn_tables.RowLike, rnn: RNNProtocol,
                    protocol: HFRNNProtocol, *, unroll: Optional[int] = None
                    ) -> training.Trainer:
  """The engine's trainer of a Table 5 row's HF runs; the grid's one
  hyperparameter is ``initial_damping``.

  The model, data stream, loss and evaluation are the momentum columns'
  (:func:`~jaxmomentum.reproduce._rnn_tables.rnn_task` under ``rnn``); the
  gradient is the engine's (through the RNN's fast backward pass), G·v goes
  through :func:`jaxmomentum.models.rnn_outputs_and_preactivations` (with
  the hidden pre-activations for structural damping). The metrics add
  ``grad_evals`` (gradient-equivalents so far), ``cg_iters`` (of the last
  update) and ``damping`` (λ) to ``loss`` and ``error``.
  """
  problem, model = _rnn_tables.rnn_model(row, rnn, unroll=unroll)
  task = _rnn_tables.rnn_task(row, rnn, unroll=unroll)
  loss_z = hf_loss(problem, rnn.loss_normalization)

  def outputs_fn(params, batch):
    return rnn_outputs_and_preactivations(model, params, batch.inputs)

  def optimizer_factory(initial_damping):
    return release_hessian_free(outputs_fn, loss_z, protocol,
                                initial_damping)

  def params_for_eval(opt_state, params):
    return params, opt_state

  def eval_fn(params_and_state, batch):
    params, state = params_and_state
    metrics = dict(task.eval_fn(params, batch))
    metrics.update(grad_evals=state.grad_evals,
                   cg_iters=state.hf.info.cg_iters.astype(jnp.float32),
                   damping=state.hf.damping.astype(jnp.float32))
    return metrics

  return training.make_train(
      protocol.train_config(rnn), task.init_fn, task.loss_fn, task.sample_fn,
      optimizer_factory, eval_fn=eval_fn, params_for_eval=params_for_eval)


@functools.lru_cache(maxsize=8)
def _cached_trainer(row, rnn: RNNProtocol, protocol: HFRNNProtocol
                    ) -> training.Trainer:
  """One trainer per (row, protocols): a resumed or repeated run reuses its
  compiled program (the engine caches programs per trainer)."""
  return make_hf_trainer(row, rnn, protocol)


def _tag(rnn: RNNProtocol, row, protocol: HFRNNProtocol) -> str:
  """The checkpoints' tag: the package version, the row, the HF protocol and
  the RNN protocol's fields that change the runs."""
  from jaxmomentum import __version__  # pylint: disable=import-outside-toplevel
  fields = {k: getattr(rnn, k) for k in (
      "eval_batch_size", "num_eval_batches", "hidden_size",
      "loss_normalization", "input_scale", "output_bias", "center",
      "memorization_channels")}
  return json.dumps({"version": __version__, "table": "5", "method": "hf",
                     "problem": paper.table5_row(row).label,
                     "hf": dataclasses.asdict(protocol), **fields},
                    sort_keys=True)


def run_hf(row: _rnn_tables.RowLike, rnn: RNNProtocol,
           protocol: HFRNNProtocol, out_dir: Optional[Path], *,
           progress: bool = True, checkpoint_every_s: float = 30.0,
           log: Callable[[str], None] = print, devices=None
           ) -> training.GridResult:
  """The HF runs of a Table 5 row (``protocol.seeds`` seeds at λ₀ =
  ``protocol.initial_damping(problem)``) through
  :func:`jaxmomentum.training.run_grid`: checkpointed in
  ``out_dir/checkpoints/table5/<key>-hf`` and resumed from there
  (``out_dir=None``: no checkpoints)."""
  row = paper.table5_row(row)
  problem = _rnn_tables.protocol_problem(row.problem, rnn)
  log(f"Table 5, {row.label}: {protocol.describe()}")
  grid = {"initial_damping": [protocol.initial_damping(problem)]}
  checkpoints = (None if out_dir is None else
                 Path(out_dir) / "checkpoints" / "table5" / f"{row.key}-hf")
  return training.run_grid(
      _cached_trainer(row, rnn, protocol), grid, seeds=protocol.seeds,
      out_dir=checkpoints, checkpoint_every_s=checkpoint_every_s,
      progress=progress, tag=_tag(rnn, row, protocol), devices=devices)


def hf_cell(row: _rnn_tables.RowLike, result: training.GridResult,
            protocol: HFRNNProtocol) -> _cells.Cell:
  """The row's HF cell: final zero-one error over seeds, in the row's unit,
  in the column :data:`COLUMN` (no paper value: the paper has none)."""
  row = paper.table5_row(row)
  final = result.final("error")[:, 0] * row.unit_factor
  stats = training.aggregate_over_seeds(final, result.diverged[:, 0])
  note = (f"ours, not in the paper; {protocol.name}: "
          f"{protocol.num_updates:,} updates, ≤{protocol.cg_max_iters} CG, "
          f"{float(np.mean(result.final('grad_evals'))):,.0f} "
          "gradient-equivalents per run")
  return _cells.Cell("5", row.key, COLUMN, stats, None, row.unit, note=note)


def wall_seconds(result: training.GridResult, chunk_size: int,
                 num_devices: int, *, num_runs: Optional[int] = None
                 ) -> Optional[np.ndarray]:
  """Seconds of one run at each evaluation, from the grid's chunk times.

  A chunk's time is shared by its runs: each device runs
  ``ceil(runs / num_devices)`` of them (one after another on CPUs, batched
  elsewhere), so a run's share is the chunk time over that. The first
  chunk's time includes compilation and is replaced by the mean of the
  others (when there are others); chunks not timed by this call (resumed
  from a checkpoint) get that mean too. ``None`` when no chunk was timed.
  ``num_runs``: the runs of the program that was timed (default: the
  result's; more when the result is one method's share of a merged grid).
  """
  times = np.asarray(result.chunk_s, np.float64)
  if times.size == 0:
    return None
  if times.size > 1:
    times = np.concatenate([[times[1:].mean()], times[1:]])
  num_evals = result.eval_steps.size
  evals_per_chunk = max(1, chunk_size // int(result.eval_steps[0]))
  num_chunks = num_evals // evals_per_chunk
  times = np.concatenate([np.full(num_chunks - times.size, times.mean()),
                          times])
  runs = num_runs or result.seeds.size * result.grid.size
  per_run = times / math.ceil(runs / max(1, num_devices))
  per_eval = np.repeat(per_run / evals_per_chunk, evals_per_chunk)
  return np.cumsum(per_eval)


def plot_hf_vs_nag(path: Path, row: _rnn_tables.RowLike,
                   hf: training.GridResult, hf_wall: Optional[np.ndarray],
                   nag: Optional[tuple[str, training.GridResult, int,
                                       Optional[np.ndarray]]] = None
                   ) -> Optional[Path]:
  """Zero-one error against gradient-equivalent evaluations (left) and
  against wall time per run (right), HF and NAG in one figure.

  Args:
    path: the PNG to write.
    row: the Table 5 row.
    hf: :func:`run_hf`'s result (metrics ``error`` and ``grad_evals``).
    hf_wall: seconds per run at each evaluation (:func:`wall_seconds`), or
      ``None`` (then the right panel says so).
    nag: ``(label, result, grid point, wall seconds or None)`` of the NAG
      curve (one NAG update = one gradient-equivalent), or ``None``.

  Returns:
    ``path``, or ``None`` without matplotlib (or off process 0).
  """
  plt = _plots.pyplot()
  if plt is None:
    return None
  row = paper.table5_row(row)
  fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.4), sharey=True)
  curves = [("HF (ours, 2011 release settings)", "C3",
             np.asarray(hf.metrics["grad_evals"])[:, 0],
             np.asarray(hf.metrics["error"])[:, 0] * row.unit_factor,
             hf_wall)]
  if nag is not None:
    label, result, point, wall = nag
    steps = np.broadcast_to(result.eval_steps.astype(np.float64),
                            (result.seeds.size, result.eval_steps.size))
    curves.append((label, "C0", steps,
                   np.asarray(result.metrics["error"])[:, point]
                   * row.unit_factor, wall))
  for label, color, cost, error, wall in curves:
    mean = np.nanmean(error, axis=0)
    x = np.nanmean(cost, axis=0)
    axes[0].plot(x, mean, color=color, label=label, linewidth=1.2)
    if error.shape[0] > 1:
      axes[0].fill_between(x, np.nanmin(error, 0), np.nanmax(error, 0),
                           color=color, alpha=0.2, linewidth=0)
    if wall is not None:
      axes[1].plot(wall, mean, color=color, label=label, linewidth=1.2)
  if hf_wall is None:
    axes[1].text(0.5, 0.5, "HF: no chunk timed in this call\n(resumed from "
                 "a complete checkpoint)", ha="center", va="center",
                 transform=axes[1].transAxes, fontsize=7)
  axes[0].set_xlabel("gradient-equivalent evaluations (100 sequences; "
                     "Gv = 1)", fontsize=8)
  axes[1].set_xlabel("wall time per run (s)", fontsize=8)
  axes[0].set_ylabel(f"zero-one error ({row.unit})", fontsize=8)
  for ax in axes:
    ax.set_xscale("log")
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7)
  fig.suptitle(f"Table 5, {row.label}: HF (ours, not in the paper) vs NAG; "
               "mean and min-max over seeds", fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path
