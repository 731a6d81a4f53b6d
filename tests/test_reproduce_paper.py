"""The paper's facts (jaxmomentum.reproduce.paper): each is written once,
is what the paper says, and the old names that pointed at them still do."""

import dataclasses
import doctest
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmomentum import initializers
from jaxmomentum import models
from jaxmomentum import problems as P
from jaxmomentum.reproduce import _protocols
from jaxmomentum.reproduce import paper


def _radius(w):
  return np.abs(np.linalg.eigvals(np.asarray(w, np.float64))).max()


# ------------------------------------------------------------------ Table 4

def test_table4_rnn_init_values(getkey):
  bias = jnp.array([0.3, -0.1])
  recipe = paper.table4_rnn_init(paper.TABLE4_INPUT_SCALE_MEMORIZATION, bias)
  assert isinstance(recipe, models.RNNInit)
  # Dense Gaussians, 10^4 draws: the std within 3% (se ≈ 0.7%).
  w_ih = np.asarray(recipe.input_kernel(getkey(), (100, 100)))
  assert abs(w_ih.std() / 0.1 - 1) < 0.03 and np.all(w_ih != 0)
  w_ho = np.asarray(recipe.output_kernel(getkey(), (100, 100)))
  assert abs(w_ho.std() / 0.1 - 1) < 0.03
  w_hh = np.asarray(recipe.recurrent_kernel(getkey(), (100, 100)))
  np.testing.assert_array_equal((w_hh != 0).sum(axis=0), 15)
  assert abs(_radius(w_hh) / 1.1 - 1) <= 1e-4
  np.testing.assert_array_equal(recipe.hidden_bias(getkey(), (100,)), 0.0)
  np.testing.assert_array_equal(recipe.output_bias(getkey(), (2,)), bias)
  add = paper.table4_rnn_init()
  w_ih = np.asarray(add.input_kernel(getkey(), (100, 100)))
  assert abs(w_ih.std() / 0.001 - 1) < 0.03
  assert (paper.TABLE4_INPUT_SCALE_ADD_MUL,
          paper.TABLE4_INPUT_SCALE_MEMORIZATION) == (0.001, 0.1)


@pytest.mark.parametrize("make,name", [
    (lambda: paper.table4_rnn_init(input_scale=-0.1), "input_scale"),
    (lambda: paper.table4_rnn_init(output_bias=np.nan), "output_bias"),
    (lambda: paper.table4_output_bias(P.addition(80), "average"), "kind"),
    (lambda: paper.table5_row("add80"), "row"),
])
def test_bad_arguments_name_the_argument(make, name):
  with pytest.raises(ValueError, match=f"^{name}"):
    make()


def test_rnn_model_default_init_is_generic_not_table4(getkey):
  """Without a recipe the RNN knows no table: flax SimpleCell's defaults
  (an orthogonal recurrent matrix, not Table 4's echo state)."""
  w = np.asarray(models.RNNInit().recurrent_kernel(getkey(), (8, 8)))
  np.testing.assert_allclose(w @ w.T, np.eye(8), atol=1e-5)


# ------------------------------------------------------------------ Table 5

def test_table5_rows_are_the_papers_and_read_only():
  assert list(paper.TABLE5) == ["add", "mul", "mem5", "mem20"]
  assert _protocols.RNN_PROBLEMS == tuple(paper.TABLE5)
  expected = {
      "add": ("add T=80", P.addition(80), 0.001, 0.82, 1.0),
      "mul": ("mul T=80", P.multiplication(80), 0.001, 0.84, 1.0),
      "mem5": ("mem-5 T=200", P.memorization(5, 2, 200), 0.1, 0.025, 100.0),
      "mem20": ("mem-20 T=80", P.memorization(10, 5, 80), 0.1, 0.08, 100.0),
  }
  for key, row in paper.TABLE5.items():
    assert row.key == key and paper.table5_row(key) is row
    assert paper.table5_row(row) is row
    assert (row.label, row.problem, row.input_scale) == expected[key][:3]
    assert row.paper_biases == pytest.approx(expected[key][3])
    assert row.unit_factor == expected[key][4]
    assert paper.unit("5", key) == row.unit
  with pytest.raises(TypeError):
    paper.TABLE5["add"] = None  # type: ignore[index]
  with pytest.raises(dataclasses.FrozenInstanceError):
    paper.TABLE5["add"].input_scale = 0.1  # type: ignore[misc]


def _documented_baselines():
  """``{name: (row, mean, best, paper)}`` from the paper module's table."""
  lines = paper.__doc__.splitlines()
  start = next(i for i, line in enumerate(lines)
               if line.startswith("``problem.name``")) + 2
  rows = {}
  for line in lines[start:]:
    if line.startswith("="):  # the table's closing rule
      break
    name, rest = line[2:].split("``", 1)
    row, *numbers = rest.split()
    rows[name] = (row, *(float(x) for x in numbers))
  return rows


def test_documented_biases_table_matches_computed():
  """The docstring table is what the generators compute beside the paper's
  value for the row (the variants share their row's paper value)."""
  variants = [P.addition(80), P.addition(80, target="average"),
              P.addition(80, target="hochreiter"), P.multiplication(80),
              P.multiplication(80, values="symmetric"),
              P.memorization(5, 2, 200), P.memorization(10, 5, 80),
              P.memorization(5, 2, 200, channels="overlapping"),
              P.memorization(10, 5, 80, channels="overlapping")]
  documented = _documented_baselines()
  assert sorted(documented) == sorted(p.name for p in variants)
  for problem in variants:
    row, mean, best, theirs = documented[problem.name]
    got = problem.biases_baseline()
    assert (round(got.mean_predictor_error, 4),
            round(got.best_constant_error, 4)) == (mean, best), problem.name
    assert theirs == pytest.approx(paper.TABLE5[row].paper_biases)
  for row in paper.TABLE5.values():  # every row's default is in the table
    assert documented[row.problem.name][0] == row.key


# ---------------------------------------------------- Table 1 and reported

def test_table1_architectures_and_reported_rows_share_keys():
  assert list(paper.TABLE1_ARCHITECTURES) == ["curves", "mnist", "faces"]
  assert _protocols.AUTOENCODER_PROBLEMS == tuple(paper.TABLE1_ARCHITECTURES)
  assert [a.name for a in paper.TABLE1_ARCHITECTURES.values()] == list(
      paper.TABLE1_ARCHITECTURES)
  # Every reported row is a row of its table, under the same key.
  for entry in paper.ALL:
    keys = paper.TABLE5 if entry.table == "5" else paper.TABLE1_ARCHITECTURES
    assert entry.row in keys, entry
  assert paper.lookup("5", "mem20", "biases") == 8.0  # percent, as printed
  assert paper.lookup("1", "faces", "SGD_C") is None  # "NA" in the paper
  with pytest.raises(KeyError, match="no value in Table 5 at row 'add80'"):
    paper.lookup("5", "add80", "biases")


# ------------------------------------------------------- the old names

@pytest.mark.parametrize("module,name,new", [
    (initializers, "table4_rnn_init", lambda: paper.table4_rnn_init),
    (initializers, "TABLE4_INPUT_SCALE_MEMORIZATION",
     lambda: paper.TABLE4_INPUT_SCALE_MEMORIZATION),
    (initializers, "RNNInit", lambda: models.RNNInit),
    (models, "MNIST", lambda: paper.MNIST),
    (models, "AUTOENCODER_ARCHITECTURES",
     lambda: (paper.CURVES, paper.MNIST, paper.FACES)),
    (P, "TABLE5_PROBLEMS",
     lambda: {r.label: r.problem for r in paper.TABLE5.values()}),
    (P, "TABLE5_BIASES",
     lambda: {"add T=80": 0.82, "mul T=80": 0.84, "mem-5 T=200": 0.025,
              "mem-20 T=80": 0.08}),
])
def test_moved_names_still_resolve_with_a_warning(module, name, new):
  with pytest.warns(DeprecationWarning, match=f"{name} moved to "
                    "jaxmomentum"):
    old = getattr(module, name)
  assert old == pytest.approx(new()) if name == "TABLE5_BIASES" else (
      old == new())
  assert name not in module.__all__
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
      getattr(module, "nothing")


def test_docstring_examples_run():
  result = doctest.testmod(paper, optionflags=doctest.ELLIPSIS)
  assert result.attempted > 0 and result.failed == 0


def test_table4_recipe_builds_the_papers_rnn():
  model = models.RNN(output_size=1, hidden_size=8,
                     init_recipe=paper.table4_rnn_init(output_bias=0.5))
  params = model.init(jax.random.key(0), jnp.zeros((1, 3, 2)))["params"]
  np.testing.assert_array_equal(params["output_bias"], [0.5])
  np.testing.assert_array_equal((np.asarray(params["recurrent_kernel"]) != 0
                                 ).sum(axis=0), 8)  # min(15, hidden)
