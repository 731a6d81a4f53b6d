"""The two momentum types the paper compares, as the tables run them."""

from __future__ import annotations

from typing import Callable, Optional

from jaxmomentum import _alias
from jaxmomentum import _momentum

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
