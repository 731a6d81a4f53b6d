"""The paper's appendix experiment: CM vs NAG on a 2-D oblong quadratic.

Both methods use the same μ and ε on :math:`f(x) = \\tfrac12 \\sum_i
\\lambda_i x_i^2` with one low- and one high-curvature direction. CM
oscillates along the high-curvature direction; NAG, whose effective momentum
there is :math:`\\mu (1 - \\lambda \\varepsilon)` (Theorem 2.1), does not. Plain
SGD (μ = 0) is the baseline.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmomentum import _alias
from jaxmomentum import _momentum
from jaxmomentum._validation import check_int, check_range

METHODS = ("sgd", "cm", "nag")


@dataclasses.dataclass(frozen=True)
class QuadraticSetup:
  """The oblong quadratic and the shared hyperparameters.

  Attributes:
    curvatures: the eigenvalues :math:`\\lambda_i > 0` (low, high).
    learning_rate: :math:`\\varepsilon > 0`, the same for every method.
    momentum: :math:`\\mu \\in [0, 1]`, the same for CM and NAG.
    start: the initial point.
    tolerance: a run has converged once :math:`f(\\theta_t) \\le
      \\text{tolerance} \\cdot f(\\theta_0)`.
    num_steps: the most updates run.
  """

  curvatures: tuple[float, float] = (1.0, 100.0)
  learning_rate: float = 0.005
  momentum: float = 0.95
  start: tuple[float, float] = (-10.0, 1.0)
  tolerance: float = 1e-6
  num_steps: int = 3000

  def __post_init__(self):
    check_range("curvatures", self.curvatures, 0.0, low_open=True)
    check_range("learning_rate", self.learning_rate, 0.0, low_open=True)
    check_range("momentum", self.momentum, 0.0, 1.0)
    check_range("tolerance", self.tolerance, 0.0, 1.0, low_open=True)
    check_int("num_steps", self.num_steps, 1)


def _optimizer(method: str, setup: QuadraticSetup, momentum):
  if method == "sgd":
    return optax.sgd(setup.learning_rate)
  factory = _alias.cm if method == "cm" else _alias.nag
  return factory(setup.learning_rate, momentum)


def _trajectory(method: str, setup: QuadraticSetup, momentum):
  """θ_0..θ_N of one method (for NAG the θ iterates, not the look-ahead)."""
  lam = jnp.asarray(setup.curvatures, jnp.float32)
  loss = lambda x: 0.5 * jnp.sum(lam * x ** 2)  # noqa: E731
  opt = _optimizer(method, setup, momentum)
  x0 = jnp.asarray(setup.start, jnp.float32)
  state = opt.init(x0)
  theta = ((lambda s, p: _momentum.nag_eval_params(s, p)) if method == "nag"
           else (lambda s, p: p))

  def step(carry, _):
    params, state = carry
    updates, state = opt.update(jax.grad(loss)(params), state, params)
    params = optax.apply_updates(params, updates)
    return (params, state), theta(state, params)

  _, thetas = jax.lax.scan(step, (x0, state), length=setup.num_steps)
  return jnp.concatenate([x0[None], thetas])


def steps_to_tolerance(thetas: np.ndarray, setup: QuadraticSetup) -> int:
  """The first t with f(θ_t) <= tolerance · f(θ_0), or -1 if never."""
  lam = np.asarray(setup.curvatures)
  f = 0.5 * np.sum(lam * np.asarray(thetas, np.float64) ** 2, axis=-1)
  below = np.nonzero(np.isfinite(f) & (f <= setup.tolerance * f[0]))[0]
  return int(below[0]) if below.size else -1


def run(setup: QuadraticSetup = QuadraticSetup(),
        momenta: Sequence[float] = (0.9, 0.95, 0.99)) -> dict:
  """Trajectories at ``setup.momentum`` and step counts over ``momenta``."""
  grid = jnp.asarray(sorted(set(momenta) | {setup.momentum}), jnp.float32)
  results = {"setup": dataclasses.asdict(setup), "trajectories": {},
             "steps_to_tolerance": {}}
  for method in METHODS:
    # One compiled program per method, vmapped over the momentum grid.
    trajs = np.asarray(jax.jit(jax.vmap(
        lambda mu, m=method: _trajectory(m, setup, mu)))(grid))
    for mu, traj in zip(np.asarray(grid).tolist(), trajs):
      key = f"{mu:g}"
      results["steps_to_tolerance"].setdefault(key, {})[method] = (
          steps_to_tolerance(traj, setup))
      if np.isclose(mu, setup.momentum):
        results["trajectories"][method] = traj
  return results


def effective_momentum(momentum: float, learning_rate: float,
                       curvatures: np.ndarray) -> np.ndarray:
  """Theorem 2.1: NAG acts as CM with μ(1 - λε) along curvature λ."""
  return momentum * (1.0 - np.asarray(curvatures) * learning_rate)


def markdown_table(results: dict) -> str:
  setup = results["setup"]
  lines = [
      f"CM vs NAG on f(x) = ½(λ₁x₁² + λ₂x₂²), λ = "
      f"({', '.join(f'{x:g}' for x in setup['curvatures'])}),"
      f" ε = {setup['learning_rate']:g}, start "
      f"({', '.join(f'{x:g}' for x in setup['start'])}): "
      f"updates until f ≤ {setup['tolerance']:g}·f(θ₀) "
      f"(−1: not within {setup['num_steps']} updates)",
      "",
      "| μ | SGD (μ = 0) | CM | NAG |",
      "|---|---|---|---|",
  ]
  for mu, counts in results["steps_to_tolerance"].items():
    lines.append(f"| {mu} | {counts['sgd']} | {counts['cm']} | "
                 f"{counts['nag']} |")
  return "\n".join(lines)


def plot(results: dict, out_dir: Path) -> list[Path]:
  """Writes the trajectory and the effective-momentum figures (PNG)."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

  setup = results["setup"]
  lam = np.asarray(setup["curvatures"])
  lam_txt = "(" + ", ".join(f"{x:g}" for x in lam) + ")"
  paths = []

  fig, ax = plt.subplots(figsize=(7, 4))
  x0 = np.asarray(setup["start"])
  xs = np.linspace(-1.1 * abs(x0[0]), 1.1 * abs(x0[0]), 200)
  ys = np.linspace(-1.6 * abs(x0[1]), 1.6 * abs(x0[1]), 200)
  grid_x, grid_y = np.meshgrid(xs, ys)
  ax.contour(grid_x, grid_y, 0.5 * (lam[0] * grid_x ** 2 + lam[1] * grid_y ** 2),
             levels=12, colors="0.8", linewidths=0.7)
  shown = 150
  for method, style in (("cm", "C3-"), ("nag", "C0-")):
    traj = results["trajectories"][method][:shown]
    ax.plot(traj[:, 0], traj[:, 1], style, marker=".", markersize=3,
            linewidth=0.8, label=method.upper())
  ax.set_xlim(xs[0], xs[-1])
  ax.set_ylim(ys[0], ys[-1])
  ax.set_title(f"First {shown} updates, μ = {setup['momentum']:g}, "
               f"ε = {setup['learning_rate']:g}, λ = {lam_txt}")
  ax.set_xlabel("low-curvature direction")
  ax.set_ylabel("high-curvature direction")
  ax.legend()
  fig.tight_layout()
  paths.append(out_dir / "quadratic_trajectories.png")
  fig.savefig(paths[-1], dpi=120)
  plt.close(fig)

  fig, ax = plt.subplots(figsize=(6, 3.6))
  eps = setup["learning_rate"]
  curv = np.linspace(0, 2.0 / eps, 200)
  for i, mu in enumerate((0.9, 0.99)):
    ax.plot(curv, effective_momentum(mu, eps, curv), f"C{i}-",
            label=f"NAG, μ = {mu}")
    ax.plot(curv, np.full_like(curv, mu), f"C{i}--", linewidth=0.8,
            label=f"CM, μ = {mu}")
  ax.axhline(0, color="0.6", linewidth=0.7)
  for value in lam:
    ax.axvline(value, color="0.6", linestyle=":", linewidth=0.8)
  ax.set_xlabel("curvature λ")
  ax.set_ylabel("effective momentum μ(1 − λε)")
  ax.set_title(f"Theorem 2.1 (ε = {eps:g}); dotted: λ = {lam_txt}")
  ax.legend()
  fig.tight_layout()
  paths.append(out_dir / "quadratic_effective_momentum.png")
  fig.savefig(paths[-1], dpi=120)
  plt.close(fig)
  return paths


def reproduce(out_dir: Path, setup: QuadraticSetup = QuadraticSetup()
              ) -> tuple[str, list[Path]]:
  """Runs the experiment and writes Markdown, JSON and PNG files."""
  out_dir = Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  results = run(setup)
  table = markdown_table(results)
  (out_dir / "quadratic.md").write_text(table + "\n")
  raw = {"setup": results["setup"],
         "steps_to_tolerance": results["steps_to_tolerance"],
         "trajectories": {k: v.tolist() for k, v in
                          results["trajectories"].items()}}
  (out_dir / "quadratic.json").write_text(json.dumps(raw))
  paths = [out_dir / "quadratic.md", out_dir / "quadratic.json"]
  try:
    paths += plot(results, out_dir)
  except ImportError:
    table += ("\n(matplotlib is not installed: figures skipped; "
              "pip install 'jaxmomentum[plot]')")
  return table, paths
