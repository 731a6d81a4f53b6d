"""Table 1's HF column, ours: Martens' (2010) HF on the autoencoder rows.

``jaxmomentum.hessian_free`` with Martens' protocol (``nnet_demo_2.m``):
cross-entropy summed over a case's pixels (squared error for FACES' linear
output) and averaged over cases, λ₀ = 45, weight cost 2e-5, the gradient,
backtracking and line search on the whole training set, G and ρ on a cycled
1/4 of it, at most 250 CG iterations, 500 HF updates. The reported error is
the squared error summed over pixels and averaged over the training cases,
as for the momentum columns; it goes in the paper's ``HF*`` cell, labelled
ours. The runs go through :func:`jaxmomentum.training.run_grid`, so they
checkpoint under the table's ``--out`` and resume.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
from pathlib import Path
import time
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxmomentum
from jaxmomentum import problems
from jaxmomentum import training
from jaxmomentum._validation import check_int, check_range
from jaxmomentum.models import AutoencoderArchitecture
from jaxmomentum.models import DeepAutoencoder
from jaxmomentum.reproduce import _cells
from jaxmomentum.reproduce import paper


@dataclasses.dataclass(frozen=True)
class HFProtocol:
  """How the HF runs of Table 1 are made.

  Attributes:
    name: ``"paper"`` or ``"quick"``.
    num_updates: HF updates per run (Martens: at most 500).
    cg_max_iters: CG iterations per update (250).
    initial_damping: λ₀ (45, for the per-case summed loss).
    num_chunks: the curvature batch is the training set's
      ``(k mod num_chunks)``-th chunk at update k (4 for CURVES).
    l2_reg: the weight cost (2e-5).
    seeds: seeds (initializations) per row.
    max_cases: use the first ``max_cases`` training cases (``None``: all).
  """

  name: str
  num_updates: int
  cg_max_iters: int
  initial_damping: float
  num_chunks: int
  l2_reg: float
  seeds: int
  max_cases: Optional[int] = None

  def __post_init__(self):
    check_int("num_updates", self.num_updates, 1)
    check_int("cg_max_iters", self.cg_max_iters, 1)
    check_range("initial_damping", self.initial_damping, 0.0, low_open=True)
    check_int("num_chunks", self.num_chunks, 1)
    check_range("l2_reg", self.l2_reg, 0.0)
    check_int("seeds", self.seeds, 1)
    if self.max_cases is not None:
      check_int("max_cases", self.max_cases, self.num_chunks)

  def describe(self) -> str:
    cases = "all" if self.max_cases is None else f"the first {self.max_cases:,}"
    return (f"HF (ours, Martens 2010 constants): {self.num_updates} updates, "
            f"≤{self.cg_max_iters} CG iterations, λ0 = "
            f"{self.initial_damping:g}, weight cost {self.l2_reg:g}, "
            f"curvature on a cycled 1/{self.num_chunks} of {cases} training "
            f"cases, {self.seeds} seed(s)")


HF_PAPER = HFProtocol("paper", num_updates=500, cg_max_iters=250,
                      initial_damping=45.0, num_chunks=4, l2_reg=2e-5,
                      seeds=4)
# A documented reduction: 25 updates of at most 50 CG iterations on the first
# 2,000 training cases, one seed (a few minutes per row on 2 CPU cores).
HF_QUICK = HFProtocol("quick", num_updates=25, cg_max_iters=50,
                      initial_damping=45.0, num_chunks=4, l2_reg=2e-5,
                      seeds=1, max_cases=2000)
HF_PROTOCOLS = {"paper": HF_PAPER, "quick": HF_QUICK}


def hf_protocol_for(protocol) -> Optional[HFProtocol]:
  """The HF protocol of a Table 1 protocol named ``paper`` or ``quick`` (with
  or without ``+overrides``); ``None`` (no HF run) for any other name."""
  return HF_PROTOCOLS.get(protocol.name.split("+")[0])


def make_hf_trainer(data: jax.Array, architecture: AutoencoderArchitecture,
                    protocol: HFProtocol) -> training.Trainer:
  """The engine's trainer of Table 1's HF runs on ``data`` (already cut to
  the used cases, a multiple of ``protocol.num_chunks``).

  Every update is on the whole ``data`` (``sample_fn`` returns it): the
  gradient, backtracking and line search; G and ρ on chunk ``k mod
  num_chunks`` at HF step ``k``. The grid's hyperparameter ``init_seed``
  seeds the initialization (``model.init(jax.random.key(init_seed), ...)``,
  as before the runs went through the engine, so the numbers are those of
  one standalone run per seed); the metric ``error`` is the squared error
  summed over the outputs, mean over ``data``, after each update.
  """
  chunk = data.shape[0] // protocol.num_chunks
  model = DeepAutoencoder(architecture)
  # The momentum tables' objective and error, with HF's closed-form curvature.
  problem = problems.reconstruction(architecture.output)
  loss = problem.matching_loss()

  def outputs_fn(params, x):
    return model.apply(params, x, logits=True)

  hf = jaxmomentum.hessian_free(
      outputs_fn, loss, initial_damping=protocol.initial_damping,
      cg_max_iters=protocol.cg_max_iters, l2_reg=protocol.l2_reg)

  def update_fn(grads, state, params=None, *, batch=None, **extra_args):
    del extra_args
    cbatch = jax.lax.dynamic_slice_in_dim(
        batch, (state.count % protocol.num_chunks) * chunk, chunk)
    return hf.update(grads, state, params, batch=batch,
                     curvature_batch=cbatch)

  def optimizer_factory():
    return optax.GradientTransformationExtraArgs(hf.init, update_fn)

  def init_fn(key, init_seed):
    del key  # the seed comes from the grid, as in a standalone run
    return model.init(jax.random.key(init_seed), jnp.zeros_like(data[:1]))

  def sample_fn(key, batch_size, x):  # every update: the whole set
    del key, batch_size
    return x

  def loss_fn(params, x):
    return loss(outputs_fn(params, x), x)

  def eval_fn(params, x):
    return {"error": problem.error(outputs_fn(params, x), x)}

  config = training.TrainConfig(
      num_steps=protocol.num_updates, batch_size=data.shape[0], eval_every=1)
  return training.make_train(config, init_fn, loss_fn, sample_fn,
                             optimizer_factory, eval_fn=eval_fn,
                             init_hparams=("init_seed",), data=data)


_TRAINERS: collections.OrderedDict = collections.OrderedDict()


def _cached_trainer(data: jax.Array, architecture: AutoencoderArchitecture,
                    protocol: HFProtocol) -> training.Trainer:
  """:func:`make_hf_trainer`, one per (data, architecture, protocol): a
  resumed or repeated run reuses its compiled program (the engine caches
  programs per trainer). The two most recent are kept."""
  digest = hashlib.sha1(np.asarray(data).tobytes()).hexdigest()
  key = (digest, data.shape, architecture, protocol)
  if key not in _TRAINERS:
    _TRAINERS[key] = make_hf_trainer(data, architecture, protocol)
    while len(_TRAINERS) > 2:
      _TRAINERS.popitem(last=False)
  return _TRAINERS[key]


def train_hf(data: np.ndarray, architecture: AutoencoderArchitecture,
             protocol: HFProtocol, *, out_dir: Optional[Path] = None,
             progress: bool = False, checkpoint_every_s: float = 30.0,
             tag: str = ""):
  """HF on ``data`` for every seed: (final errors, errors per update, s).

  Errors are the squared error summed over the outputs, mean over the
  (used) training cases, after each update (seed axis first). The runs go
  through :func:`jaxmomentum.training.run_grid` (one grid point per seed):
  with ``out_dir`` they checkpoint there and resume (``tag`` joins the
  fingerprint).
  """
  data = jnp.asarray(data if protocol.max_cases is None
                     else data[:protocol.max_cases], jnp.float32)
  chunk = data.shape[0] // protocol.num_chunks
  data = data[:chunk * protocol.num_chunks]
  trainer = _cached_trainer(data, architecture, protocol)
  tic = time.perf_counter()
  result = training.run_grid(
      trainer, {"init_seed": list(range(protocol.seeds))}, seeds=[0],
      out_dir=out_dir, checkpoint_every_s=checkpoint_every_s,
      progress=progress, tag=tag)
  errors = np.asarray(result.metrics["error"][0])
  return errors[:, -1], errors, time.perf_counter() - tic


def _tag(problem: str, architecture, protocol: HFProtocol, note: str) -> str:
  """The checkpoints' tag: package version, row, data note, architecture and
  HF protocol."""
  from jaxmomentum import __version__  # pylint: disable=import-outside-toplevel
  return json.dumps({"version": __version__, "table": "1", "method": "hf",
                     "problem": problem, "data": note,
                     "architecture": repr(architecture),
                     "hf": dataclasses.asdict(protocol)}, sort_keys=True)


def hf_cell(problem: str, data: np.ndarray, protocol: HFProtocol, *,
            note: str = "", architecture: Optional[AutoencoderArchitecture]
            = None, log: Callable[[str], None] = print,
            out_dir: Optional[Path] = None, progress: bool = False,
            checkpoint_every_s: float = 30.0) -> _cells.Cell:
  """Our HF figure for a Table 1 row, in the paper's ``HF*`` cell.

  ``out_dir``: the runs checkpoint in ``out_dir/checkpoints/table1/
  <problem>-hf`` and resume from there (``None``: no checkpoints).
  """
  architecture = architecture or paper.TABLE1_ARCHITECTURES[problem]
  log(f"Table 1, {problem}: {protocol.describe()}")
  checkpoints = (None if out_dir is None else
                 Path(out_dir) / "checkpoints" / "table1" / f"{problem}-hf")
  final, _, seconds = train_hf(
      data, architecture, protocol, out_dir=checkpoints, progress=progress,
      checkpoint_every_s=checkpoint_every_s,
      tag=_tag(problem, architecture, protocol, note))
  log(f"  HF done in {seconds:.0f} s: error {final.tolist()}")
  stats = training.aggregate_over_seeds(final, ~np.isfinite(final))
  label = "HF ours (Martens 2010 constants)"
  if protocol.name != "paper":
    label += (f"; {protocol.name}: {protocol.num_updates} updates, "
              f"≤{protocol.cg_max_iters} CG")
  if note:
    label += f"; {note}"
  return _cells.Cell("1", problem, "HF*", stats,
                      _cells.paper_value("1", problem, "HF*"),
                      _cells.unit_of("1", problem), note=label)
