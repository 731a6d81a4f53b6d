"""The two momentum methods the paper compares, as the tables run them.

``method`` is ``"nag"`` or ``"cm"`` (``momentum`` is μ everywhere else). A
table's grid over (μ, ε) runs NAG and CM as one program by default
(``method="nag+cm"``): the method is a per-run hyperparameter ``nesterov``
(1: NAG, 0: CM) of :func:`jaxmomentum.nag_or_cm`, so one
:func:`jaxmomentum.training.run_grid` call (one compilation, one ``vmap``
axis) holds every run of a problem, and its result is split back into one
:class:`GridResult` per method, each exactly what the separate grid gives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import jax
import numpy as np

from jaxmomentum import _alias
from jaxmomentum import _momentum
from jaxmomentum import training

METHODS = ("nag", "cm")
# Both methods in one grid, told apart by the "nesterov" hparam.
MERGED = "nag+cm"
SWITCH = "nesterov"


def check_method(method: str, *, merged: bool = True) -> str:
  allowed = METHODS + ((MERGED,) if merged else ())
  if method not in allowed:
    raise ValueError(f"method must be one of {allowed}, got {method!r}")
  return method


def optimizer(method: str) -> Callable:
  """``jaxmomentum.nag``, ``jaxmomentum.cm`` or (``"nag+cm"``)
  ``jaxmomentum.nag_or_cm``, whose third argument is the ``nesterov``
  switch."""
  return {"nag": _alias.nag, "cm": _alias.cm,
          MERGED: _alias.nag_or_cm}[check_method(method)]


def params_for_eval(method: str) -> Optional[Callable]:
  """NAG is evaluated at θ (:func:`jaxmomentum.nag_eval_params`), CM as is.

  For ``"nag+cm"`` it is ``nag_eval_params`` too: a CM run's state stores a
  look-ahead momentum of 0, so its params come back unchanged.
  """
  return (None if check_method(method) == "cm"
          else _momentum.nag_eval_params)


def columns(mu_values: Sequence[float]) -> dict[str, list[float]]:
  """Per method, its μ values: μ = 0 runs with NAG only."""
  out = {}
  for method in METHODS:
    mus = [float(m) for m in mu_values if m > 0 or method == "nag"]
    if mus:
      out[method] = mus
  return out


def merged_grid(mu_name: str, mu_values: Sequence[float],
                learning_rates: Sequence[float]) -> training.Grid:
  """The points of every method's (μ, ε) grid, NAG's first, each with its
  ``nesterov`` switch (1: NAG, 0: CM)."""
  points = [{SWITCH: int(method == "nag"), mu_name: mu,
             "learning_rate": float(lr)}
            for method, mus in columns(mu_values).items()
            for mu in mus for lr in learning_rates]
  return training.Grid.points(points)


def split_merged(result: training.GridResult, mu_name: str,
                 mu_values: Sequence[float], learning_rates: Sequence[float]
                 ) -> dict[str, training.GridResult]:
  """A :func:`merged_grid` result as one result per method, each over
  ``Grid.product(mu_name=mus, learning_rate=learning_rates)`` as a separate
  grid of that method would be (same point order, same numbers)."""
  results, start = {}, 0
  for method, mus in columns(mu_values).items():
    grid = training.Grid.product(**{mu_name: mus},
                                 learning_rate=list(learning_rates))
    sl = slice(start, start + grid.size)
    start += grid.size
    switch = result.grid.values[SWITCH][sl]
    if not np.all(switch == int(method == "nag")):
      raise ValueError(f"the merged grid's points {sl} are not all "
                       f"{method}")
    final_state = None
    if result.final_state is not None:
      final_state = jax.tree.map(lambda x, sl=sl: x[:, sl],
                                 result.final_state)
    results[method] = training.GridResult(
        metrics={k: v[:, sl] for k, v in result.metrics.items()},
        diverged_step=result.diverged_step[:, sl], seeds=result.seeds,
        grid=grid, eval_steps=result.eval_steps, wall_s=result.wall_s,
        chunks_run=result.chunks_run, chunk_s=result.chunk_s,
        final_state=final_state)
  if start != result.grid.size:
    raise ValueError(f"the merged grid has {result.grid.size} points, the "
                     f"methods {start}")
  return results


def run_method_grids(
    title: str, make_trainer: Callable[[str], training.Trainer],
    mu_name: str, mu_values: Sequence[float], protocol: Any,
    checkpoints: Path, tag: Callable[[str], str], *,
    progress: bool, checkpoint_every_s: float, log: Callable[[str], None],
    merged: bool = True, devices: Optional[Sequence[Any]] = None,
) -> dict[str, training.GridResult]:
  """Per method, ``mu_name`` x ``protocol.learning_rates`` x seeds.

  μ = 0 is one column of the paper, run with NAG only (CM and NAG are the
  same method there). With ``merged`` (default) every run is one grid of
  ``make_trainer("nag+cm")`` checkpointed in ``<checkpoints>-nag+cm`` and
  split per method; else (or when a per-method checkpoint ``<checkpoints>-nag``
  / ``<checkpoints>-cm`` of the earlier layout exists, which is then resumed)
  one grid per method, each in ``<checkpoints>-<method>``.
  ``devices``: the devices the grids run on (default all).
  """
  def out_dir(method: str) -> Path:  # checkpoints/table5/add -> ...add-nag
    return Path(f"{checkpoints}-{method}")

  lrs = list(protocol.learning_rates)
  cols = columns(mu_values)
  legacy = [out_dir(m) for m in cols if out_dir(m).exists()]
  if merged and legacy:
    log(f"{title}: resuming the per-method checkpoints in "
        f"{', '.join(map(str, legacy))} as separate NAG and CM grids")
  if merged and not legacy:
    grid = merged_grid(mu_name, mu_values, lrs)
    log(f"{title}, NAG and CM in one program: "
        + " + ".join(f"{len(mus)} {mu_name} ({m.upper()})"
                     for m, mus in cols.items())
        + f" x {len(lrs)} learning rates x {protocol.seeds} seeds = "
        f"{grid.size * protocol.seeds} runs, {protocol.num_steps:,} updates "
        "each")
    result = training.run_grid(
        make_trainer(MERGED), grid, seeds=protocol.seeds,
        out_dir=out_dir(MERGED), checkpoint_every_s=checkpoint_every_s,
        progress=progress, tag=tag(MERGED), devices=devices)
    return split_merged(result, mu_name, mu_values, lrs)
  results = {}
  for method, mus in cols.items():
    grid = training.Grid.product(**{mu_name: mus}, learning_rate=lrs)
    log(f"{title}, {method.upper()}: {len(mus)} {mu_name} x "
        f"{len(lrs)} learning rates x {protocol.seeds} seeds, "
        f"{protocol.num_steps:,} updates each")
    results[method] = training.run_grid(
        make_trainer(method), grid, seeds=protocol.seeds,
        out_dir=out_dir(method), checkpoint_every_s=checkpoint_every_s,
        progress=progress, tag=tag(method), devices=devices)
  return results
