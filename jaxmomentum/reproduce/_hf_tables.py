"""Table 1's HF column, ours: Martens' (2010) HF on the autoencoder rows.

``jaxmomentum.hessian_free`` with Martens' protocol (``nnet_demo_2.m``):
cross-entropy summed over a case's pixels (squared error for FACES' linear
output) and averaged over cases, λ₀ = 45, weight cost 2e-5, the gradient,
backtracking and line search on the whole training set, G and ρ on a cycled
1/4 of it, at most 250 CG iterations, 500 HF updates. The reported error is
the squared error summed over pixels and averaged over the training cases,
as for the momentum columns; it goes in the paper's ``HF*`` cell, labelled
ours.
"""

from __future__ import annotations

import dataclasses
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


def train_hf(data: np.ndarray, architecture: AutoencoderArchitecture,
             protocol: HFProtocol):
  """HF on ``data`` for every seed: (final errors, errors per update, s).

  Errors are the squared error summed over the outputs, mean over the
  (used) training cases, after each update (seed axis first).
  """
  data = jnp.asarray(data if protocol.max_cases is None
                     else data[:protocol.max_cases], jnp.float32)
  chunk = data.shape[0] // protocol.num_chunks
  data = data[:chunk * protocol.num_chunks]
  model = DeepAutoencoder(architecture)
  # The momentum tables' objective and error, with HF's closed-form curvature.
  problem = problems.reconstruction(architecture.output)
  loss = problem.matching_loss()

  def outputs_fn(params, x):
    return model.apply(params, x, logits=True)

  def error(params):
    return problem.error(outputs_fn(params, data), data)

  hf = jaxmomentum.hessian_free(
      outputs_fn, loss, initial_damping=protocol.initial_damping,
      cg_max_iters=protocol.cg_max_iters, l2_reg=protocol.l2_reg)

  def run(key):
    params = model.init(key, data[:1])

    def step(carry, k):
      params, state = carry
      cbatch = jax.lax.dynamic_slice_in_dim(
          data, (k % protocol.num_chunks) * chunk, chunk)
      grads = jax.grad(lambda p: loss(outputs_fn(p, data), data))(params)
      updates, state = hf.update(grads, state, params, batch=data,
                                 curvature_batch=cbatch)
      params = optax.apply_updates(params, updates)
      return (params, state), error(params)

    (params, _), errors = jax.lax.scan(step, (params, hf.init(params)),
                                       jnp.arange(protocol.num_updates))
    return errors

  keys = jnp.stack([jax.random.key(s) for s in range(protocol.seeds)])
  tic = time.perf_counter()
  errors = np.asarray(jax.jit(jax.vmap(run))(keys))
  return errors[:, -1], errors, time.perf_counter() - tic


def hf_cell(problem: str, data: np.ndarray, protocol: HFProtocol, *,
            note: str = "", architecture: Optional[AutoencoderArchitecture]
            = None, log: Callable[[str], None] = print) -> _cells.Cell:
  """Our HF figure for a Table 1 row, in the paper's ``HF*`` cell."""
  architecture = architecture or paper.TABLE1_ARCHITECTURES[problem]
  log(f"Table 1, {problem}: {protocol.describe()}")
  final, _, seconds = train_hf(data, architecture, protocol)
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
