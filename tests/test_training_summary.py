"""Best-learning-rate selection and seed aggregation on hand-made arrays."""

import math

import numpy as np
import pytest

from jaxmomentum import training

INF = math.inf
NAN = math.nan


# (objective (seeds, points), diverged or None, column_ids, expected best)
_SELECT_CASES = [
    # Lowest mean over seeds per column, not the lowest single run.
    ([[1.0, 0.5], [1.0, 2.0]], None, [0, 0], [0]),
    ([[3., 1., 2., 5.], [3., 2., 1., 4.]], None, [0, 0, 1, 1], [1, 2]),
    # A diverged seed makes its point +inf, however good the other seeds.
    ([[0.1, 0.5], [0.1, 0.6]], [[False, False], [True, False]], [0, 0], [1]),
    # A non-finite objective counts as diverged.
    ([[NAN, 0.5], [0.1, 0.6]], None, [0, 0], [1]),
    ([[INF, 0.5], [0.1, 0.6]], None, [0, 0], [1]),
    # Every point has a diverged seed: fewest diverged, then finite mean.
    ([[0.1, 0.5, 0.2], [NAN, NAN, 0.3]],
     [[False, False, True], [True, True, True]], [0, 0, 0], [0]),
    ([[0.4, 0.5], [NAN, 0.6]], [[False, True], [True, False]], [0, 0], [0]),
    # Ties go to the first point.
    ([[1.0, 1.0]], None, [0, 0], [0]),
    # Columns need not be contiguous.
    ([[5., 1., 4., 2.]], None, [0, 1, 0, 1], [2, 1]),
]


@pytest.mark.parametrize("objective,diverged,column_ids,best", _SELECT_CASES)
def test_select_best(objective, diverged, column_ids, best):
  got = training.select_best(objective, column_ids, diverged)
  np.testing.assert_array_equal(got, best)


def test_select_best_rejects_bad_shapes():
  with pytest.raises(ValueError, match="num_points"):
    training.select_best([[1.0, 2.0]], [0, 0, 0])
  with pytest.raises(ValueError, match="column 0"):
    training.select_best([[1.0, 2.0]], [1, 1])


@pytest.mark.parametrize("objective,diverged,expected", [
    ([[1.0, 2.0], [3.0, 4.0]], None, [2.0, 3.0]),
    ([[1.0, 2.0], [3.0, NAN]], None, [2.0, INF]),
    ([[1.0, 2.0], [3.0, 4.0]], [[True, False], [False, False]], [INF, 3.0]),
])
def test_mean_objective(objective, diverged, expected):
  np.testing.assert_array_equal(training.mean_objective(objective, diverged),
                                expected)


@pytest.mark.parametrize("values,diverged,expected", [
    ([0.1, 0.3], None, (0.2, math.sqrt(0.02), 0.1, 0.3, 2, 0)),
    ([0.1, 0.3, 9.0], [False, False, True],
     (0.2, math.sqrt(0.02), 0.1, 0.3, 2, 1)),
    ([0.5, NAN], None, (0.5, 0.0, 0.5, 0.5, 1, 1)),
    ([0.25], None, (0.25, 0.0, 0.25, 0.25, 1, 0)),
    ([1.0, 2.0, 3.0, 4.0], None, (2.5, np.std([1, 2, 3, 4], ddof=1), 1.0,
                                  4.0, 4, 0)),
])
def test_aggregate_over_seeds(values, diverged, expected):
  stats = training.aggregate_over_seeds(values, diverged)
  got = (stats.mean, stats.std, stats.min, stats.max, stats.n,
         stats.n_diverged)
  np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_aggregate_with_every_seed_diverged_is_nan_not_an_average():
  stats = training.aggregate_over_seeds([1.0, 2.0], [True, True])
  assert math.isnan(stats.mean) and stats.n == 0 and stats.n_diverged == 2


def _hand_made_result():
  """2 momentum types x 3 learning rates, 3 seeds, 2 evaluations.

  Column momentum=0.9: lr 1e-3 is best on average (0.2) although lr 1e-2
  has the best single run; column 0.99: lr 1e-2 diverged for seed 2, so lr
  1e-4 wins.
  """
  grid = training.Grid.product(momentum=[0.9, 0.99],
                               learning_rate=[1e-2, 1e-3, 1e-4])
  final_loss = np.array([
      # m=0.9: 1e-2, 1e-3, 1e-4 | m=0.99: 1e-2, 1e-3, 1e-4
      [0.05, 0.2, 0.9, 0.01, 0.8, 0.3],
      [0.60, 0.1, 0.9, 0.01, 0.8, 0.3],
      [0.60, 0.3, 0.9, 0.01, 0.8, 0.3],
  ])
  final_error = final_loss / 10
  diverged_step = np.full((3, 6), -1)
  diverged_step[2, 3] = 1234
  loss = np.stack([np.full_like(final_loss, 7.0), final_loss], axis=-1)
  error = np.stack([np.full_like(final_error, 7.0), final_error], axis=-1)
  return training.GridResult(
      metrics={"loss": loss, "error": error}, diverged_step=diverged_step,
      seeds=np.array([10, 11, 12]), grid=grid, eval_steps=np.array([5, 10]))


def test_summarize_selects_per_column_and_reports_divergence():
  summary = training.summarize(_hand_made_result(), objective="loss",
                               select="learning_rate", report=("error",))
  assert [row.column for row in summary.rows] == [{"momentum": 0.9},
                                                  {"momentum": 0.99}]
  first, second = summary.rows
  assert first.best["learning_rate"] == pytest.approx(1e-3)
  assert first.point == 1
  np.testing.assert_allclose(
      [first.report["error"].mean, first.report["error"].std,
       first.report["error"].min, first.report["error"].max],
      [0.02, np.std([0.02, 0.01, 0.03], ddof=1), 0.01, 0.03], rtol=1e-6)
  assert first.objective.mean == pytest.approx(0.2)
  assert second.best["learning_rate"] == pytest.approx(1e-4)
  assert second.report["error"].mean == pytest.approx(0.03)
  lr_diverged = 1e-2
  assert second.candidates[lr_diverged] == (INF, 1)
  assert [(d.seed, d.step) for d in summary.diverged_runs] == [(12, 1234)]
  assert summary.diverged_runs[0].hparams["momentum"] == pytest.approx(0.99)
  text = summary.format()
  assert "momentum=0.99" in text and "1 diverged run(s)" in text
  assert "at update 1234" in text and "nan" not in text.lower()


def test_summarize_without_selection_reports_every_point():
  summary = training.summarize(_hand_made_result(), objective="loss",
                               select=None, report=("loss", "error"))
  assert len(summary.rows) == 6
  assert summary.rows[3].report["loss"].n_diverged == 1
  assert summary.rows[3].report["loss"].mean == pytest.approx(0.01)


@pytest.mark.parametrize("kwargs,match", [
    (dict(objective="accuracy"), "accuracy"),
    (dict(report=("bleu",)), "bleu"),
    (dict(select="mu0"), "mu0"),
])
def test_summarize_rejects_unknown_names(kwargs, match):
  with pytest.raises(ValueError, match=match):
    training.summarize(_hand_made_result(), **kwargs)
