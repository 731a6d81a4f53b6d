"""The appendix experiment: counts match a NumPy simulation; files written."""

import numpy as np
import pytest

from jaxmomentum.reproduce import cli
from jaxmomentum.reproduce import quadratic


def _numpy_steps(method, setup, mu):
  lam = np.asarray(setup.curvatures)
  x, v = np.asarray(setup.start, float), np.zeros(2)
  f0 = 0.5 * np.sum(lam * x ** 2)
  for t in range(setup.num_steps + 1):
    if 0.5 * np.sum(lam * x ** 2) <= setup.tolerance * f0:
      return t
    m = 0.0 if method == "sgd" else mu
    g = lam * (x + m * v) if method == "nag" else lam * x
    v = m * v - setup.learning_rate * g
    x = x + v
  return -1


def test_step_counts_match_numpy_simulation():
  setup = quadratic.QuadraticSetup(num_steps=1500)
  results = quadratic.run(setup, momenta=(0.9, 0.99))
  for mu, counts in results["steps_to_tolerance"].items():
    for method in quadratic.METHODS:
      expected = _numpy_steps(method, setup, float(mu))
      # float32 iterates may cross the tolerance one step apart.
      assert abs(counts[method] - expected) <= 1, (mu, method)
  # The paper's point on this problem: NAG needs fewer updates than CM.
  assert all(c["nag"] < c["cm"] < c["sgd"] or c["sgd"] == -1
             for c in results["steps_to_tolerance"].values())


def test_effective_momentum_is_theorem_2_1():
  np.testing.assert_allclose(
      quadratic.effective_momentum(0.9, 0.01, np.array([0.0, 50.0, 100.0])),
      [0.9, 0.45, 0.0])


def test_bad_setup_names_the_argument():
  with pytest.raises(ValueError, match="^momentum must be"):
    quadratic.QuadraticSetup(momentum=1.5)
  with pytest.raises(ValueError, match="^learning_rate must be"):
    quadratic.QuadraticSetup(learning_rate=0.0)


def test_cli_reproduce_quadratic_writes_table_and_figures(tmp_path, capsys):
  assert cli.main(["reproduce", "quadratic", "--out", str(tmp_path)]) == 0
  out = capsys.readouterr().out
  assert "| μ | SGD (μ = 0) | CM | NAG |" in out
  for name in ("quadratic.md", "quadratic.json", "quadratic_trajectories.png",
               "quadratic_effective_momentum.png"):
    assert (tmp_path / name).stat().st_size > 0, name
