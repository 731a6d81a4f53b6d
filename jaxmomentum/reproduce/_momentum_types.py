"""The two momentum types the paper compares, as the tables run them."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from jaxmomentum import _alias
from jaxmomentum import _momentum
from jaxmomentum import training

MOMENTA = ("nag", "cm")


def check_momentum(momentum: str) -> str:
  if momentum not in MOMENTA:
    raise ValueError(f"momentum must be one of {MOMENTA}, got {momentum!r}")
  return momentum


def optimizer(momentum: str) -> Callable:
  """``jaxmomentum.nag`` or ``jaxmomentum.cm``."""
  return _alias.nag if check_momentum(momentum) == "nag" else _alias.cm


def params_for_eval(momentum: str) -> Optional[Callable]:
  """NAG is evaluated at θ (:func:`jaxmomentum.nag_eval_params`), CM as is."""
  return _momentum.nag_eval_params if check_momentum(momentum) == "nag" else None


def run_momentum_grids(
    title: str, make_trainer: Callable[[str], training.Trainer],
    mu_name: str, mu_values: Sequence[float], protocol: Any,
    out_dir: Callable[[str], Path], tag: Callable[[str], str], *,
    progress: bool, checkpoint_every_s: float, log: Callable[[str], None],
) -> dict[str, training.GridResult]:
  """Per momentum type, ``mu_name`` x ``protocol.learning_rates`` x seeds.

  μ = 0 is one column of the paper, run with NAG only (CM and NAG are the
  same method there). Each grid resumes from ``out_dir(momentum)``.
  """
  results = {}
  for momentum in MOMENTA:
    mus = [m for m in mu_values if m > 0 or momentum == "nag"]
    if not mus:
      continue
    grid = training.Grid.product(**{mu_name: mus},
                                 learning_rate=list(protocol.learning_rates))
    log(f"{title}, {momentum.upper()}: {len(mus)} {mu_name} x "
        f"{len(protocol.learning_rates)} learning rates x {protocol.seeds} "
        f"seeds, {protocol.num_steps:,} updates each")
    results[momentum] = training.run_grid(
        make_trainer(momentum), grid, seeds=protocol.seeds,
        out_dir=out_dir(momentum), checkpoint_every_s=checkpoint_every_s,
        progress=progress, tag=tag(momentum))
  return results
