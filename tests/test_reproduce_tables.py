"""`jaxmomentum reproduce`: every target end to end on tiny protocols."""

import csv
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import jaxmomentum
from jaxmomentum import problems as P
from jaxmomentum.reproduce import _autoencoder_tables
from jaxmomentum.reproduce import _cli_args
from jaxmomentum.reproduce import _cells
from jaxmomentum.reproduce import _protocols
from jaxmomentum.reproduce import _rnn_tables
from jaxmomentum.reproduce import cli
from jaxmomentum.reproduce import paper
from jaxmomentum.training import _runner

TINY_RNN = _protocols.RNNProtocol(
    name="tiny", num_steps=20, batch_size=8, seeds=2,
    learning_rates=(1e-3, 1e-4), mu0s=(0.0, 0.9), warmup_steps=5,
    eval_every=10, eval_batch_size=16, num_eval_batches=1,
    problems=("add", "mem20"), hidden_size=8)

TINY_AE = _protocols.AutoencoderProtocol(
    name="tiny", num_steps=20, batch_size=8, seeds=2,
    learning_rates=(0.01, 0.001), mu_maxes=(0.0, 0.9), stage_length=5,
    finetune_steps=10, eval_every=10, eval_batch_size=16, num_eval_batches=1,
    problems=("curves", "mnist"), si_scales=(0.5, 1.0),
    num_train_standin=64)

QUIET = {"progress": False, "checkpoint_every_s": 0.0, "log": lambda m: None}


def _csv(path):
  with open(path, newline="", encoding="utf-8") as f:
    return list(csv.DictReader(f))


def _assert_paper_values_present(path, table):
  """Every cell of the paper's table is in the CSV with the paper's value."""
  rows = {(r["row"], r["column"]): r for r in _csv(path)}
  for entry in paper.ALL:
    if entry.table != table:
      continue
    got = rows[(entry.row, entry.column)]["paper"]
    if entry.value is None:
      assert got == ""
    else:
      assert float(got) == entry.value, (entry, got)


@pytest.mark.slow
def test_table5_end_to_end(tmp_path):
  table, paths = _rnn_tables.reproduce(TINY_RNN, tmp_path, **QUIET)
  names = {p.name for p in paths}
  assert {"table5.md", "table5.csv", "table5.json",
          "table5_add_curves.png", "table5_mem20_curves.png"} <= names
  for p in paths:
    assert p.stat().st_size > 0, p
  _assert_paper_values_present(tmp_path / "table5.csv", "5")
  assert "| add |" in table and "0.00025" in table  # paper's 0.995N add
  rows = {(r["row"], r["column"]): r for r in _csv(tmp_path / "table5.csv")}
  # Run cells: ours and the selected learning rate; the biases column is
  # our generator's analytic baseline (mem-20: 10/80 = 12.5 percent).
  for col in ("0", "0.9N", "0.9M"):
    cell = rows[("add", col)]
    assert 0.0 <= float(cell["ours_mean"]) <= 1.0
    assert float(cell["learning_rate"]) in TINY_RNN.learning_rates
    assert int(cell["seeds"]) == 2
  assert float(rows[("mem20", "biases")]["ours_mean"]) == pytest.approx(12.5)
  assert rows[("add", "0.995N")]["ours_mean"] == ""  # not in the tiny grid
  raw = json.loads((tmp_path / "table5.json").read_text())
  assert len(raw["runs"]) == 4  # (add, mem20) x (NAG, CM)
  nag = next(r for r in raw["runs"] if r["method"] == "nag")
  assert nag["problem"] == "add T=80"
  assert np.asarray(nag["metrics"]["error"]).shape == (2, 4, 2)

  # With 2 devices the two problems can run side by side, one device each,
  # in two threads (asked for: on CPUs the default is one after another):
  # the same table.
  code = ("import sys, jax; sys.path.insert(0, sys.argv[1]); "
          "from test_reproduce_tables import TINY_RNN, QUIET; "
          "from jaxmomentum.reproduce import _rnn_tables; "
          "assert jax.device_count() == 2; "
          "assert _rnn_tables._placements(TINY_RNN.problems, None) is None; "
          "groups = _rnn_tables._placements(TINY_RNN.problems, True); "
          "assert [(len(d), p) for d, p in groups] == "
          "[(1, ('add',)), (1, ('mem20',))], groups; "
          "_rnn_tables.reproduce(TINY_RNN, sys.argv[2], concurrent=True, "
          "**QUIET)")
  root = os.path.dirname(os.path.dirname(os.path.abspath(
      jaxmomentum.__file__)))
  env = {**os.environ, "JAX_PLATFORMS": "cpu",
         "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
         "PYTHONPATH": os.pathsep.join(
             p for p in (root, os.environ.get("PYTHONPATH")) if p)}
  proc = subprocess.run(
      [sys.executable, "-c", code, os.path.dirname(__file__),
       str(tmp_path / "concurrent")], env=env, capture_output=True,
      text=True, timeout=600, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert ((tmp_path / "concurrent" / "table5.csv").read_text()
          == (tmp_path / "table5.csv").read_text())


def test_table5_selects_the_learning_rate_with_the_lowest_final_loss(
    tmp_path):
  results = _rnn_tables.run_grids(TINY_RNN, "add", tmp_path, progress=False,
                                  checkpoint_every_s=0.0, log=lambda m: None)
  cells, _ = _rnn_tables.cells_for("add", results)
  nag = results["nag"]
  loss = nag.metrics["loss"][..., -1].mean(axis=0)  # (points,)
  error = nag.metrics["error"][..., -1]
  for mu in (0.0, 0.9):
    points = np.flatnonzero(nag.grid.values["mu0"] == np.float32(mu))
    best = points[np.argmin(loss[points])]
    cell = next(c for c in cells
                if c.column == _cells.column_key(mu, "nag"))
    assert cell.learning_rate == pytest.approx(
        float(nag.grid.values["learning_rate"][best]))
    assert cell.ours.mean == pytest.approx(float(error[:, best].mean()))


def test_table5_nag_and_cm_in_one_program_equal_separate_grids(tmp_path):
  """One merged grid per problem, split per method, gives the
  separate grids' results; the per-method checkpoints of the earlier
  layout are resumed as they are; a checkpoint of another layout in the
  merged folder is refused, not misread."""
  protocol = TINY_RNN.replace(problems=("add",), learning_rates=(1e-3,),
                              seeds=1)
  logged = []
  quiet = {**QUIET, "log": logged.append}
  separate = _rnn_tables.run_grids(protocol, "add", tmp_path / "old",
                                   merged=False, **quiet)
  assert sorted(p.name for p in (tmp_path / "old/checkpoints/table5").iterdir()
                ) == ["add-cm", "add-nag"]
  # A merged run over the old layout resumes it: nothing is trained again.
  resumed = _rnn_tables.run_grids(protocol, "add", tmp_path / "old", **quiet)
  assert "resuming the per-method checkpoints" in logged[-3]
  assert all(r.chunks_run == 0 for r in resumed.values())

  merged = _rnn_tables.run_grids(protocol, "add", tmp_path / "new", **quiet)
  assert "NAG and CM in one program" in logged[-1]
  assert [p.name for p in (tmp_path / "new/checkpoints/table5").iterdir()
          ] == ["add-nag+cm"]
  assert list(merged) == list(separate) == ["nag", "cm"]
  for method, want in separate.items():
    got = merged[method]
    assert got.grid.shape == want.grid.shape
    for name, values in want.grid.values.items():
      np.testing.assert_array_equal(got.grid.values[name], values)
    np.testing.assert_array_equal(got.diverged_step, want.diverged_step)
    for name, values in want.metrics.items():
      assert got.metrics[name].shape == values.shape
      if method == "nag":  # the same float32 operations
        np.testing.assert_array_equal(got.metrics[name], values)
      else:  # XLA may round the CM branch differently (~1 ulp)
        np.testing.assert_allclose(got.metrics[name], values, rtol=1e-5)
  # μ0 = 0 is NAG only: 2 NAG columns and 1 CM column.
  assert merged["nag"].grid.size == 2 and merged["cm"].grid.size == 1

  # An old per-method checkpoint where the merged one belongs is refused.
  shutil.copytree(tmp_path / "old/checkpoints/table5/add-nag",
                  tmp_path / "moved/checkpoints/table5/add-nag+cm")
  with pytest.raises(ValueError, match="checkpoint of a different run"):
    _rnn_tables.run_grids(protocol, "add", tmp_path / "moved", **quiet)


def test_table5_problems_are_balanced_over_device_groups(monkeypatch):
  monkeypatch.setattr(_rnn_tables.training, "device_groups",
                      lambda n: [["d0"], ["d1"], ["d2", "d3"]][:n])
  placements = _rnn_tables._placements(("add", "mul", "mem5", "mem20"), True)
  # mem-5 (T = 200) alone; the T = 80 rows share the rest, the pair on the
  # group with two devices.
  assert placements == [(["d0"], ("mem5",)), (["d1"], ("add",)),
                        (["d2", "d3"], ("mul", "mem20"))]
  assert _rnn_tables._placements(("add",), None) is None


def test_rnn_trainer_rejects_unknown_method_and_row():
  with pytest.raises(ValueError, match="^method must be one of"):
    _rnn_tables.make_rnn_trainer("add", TINY_RNN, "adam")
  with pytest.raises(ValueError, match="^row must be a Table5Row or one of"):
    _rnn_tables.make_rnn_trainer("add80", TINY_RNN, "nag")


def test_table5_tag_is_the_one_existing_checkpoints_hold():
  """Checkpoints resume only under the same tag: the run tags (``problem``:
  the row's label, ``momentum``: the method) stay byte-identical to those
  stored in experiments/table5_paper_length/checkpoints."""
  tag = _rnn_tables._tag(_protocols.RNN_PAPER, "add", "nag")  # pylint: disable=protected-access
  assert tag == (
      '{"batch_size": 100, "eval_batch_size": 1000, "eval_every": 1000, '
      '"hidden_size": 100, "momentum": "nag", "num_eval_batches": 2, '
      '"num_steps": 50000, "problem": "add T=80", "table": "5", '
      '"version": "0.1.0", "warmup_momentum": 0.9, "warmup_steps": 1000}')


def test_missing_data_skips_every_row_with_a_message(tmp_path):
  logged = []
  table, _ = _autoencoder_tables.reproduce_table1(
      TINY_AE.replace(problems=("curves", "mnist", "faces")), tmp_path,
      data_dir=str(tmp_path), progress=False, log=logged.append)
  assert len(logged) == 3 and all(m.startswith("[skip]") for m in logged)
  assert "digs3pts_1.mat not found" in logged[0]
  assert "synthetic" not in table.split("###")[1].split("- protocol")[0]
  rows = _csv(tmp_path / "table1.csv")
  assert rows and all(r["ours_mean"] == "" for r in rows)
  assert {r["note"] for r in rows} == {"no data"}


@pytest.mark.slow
def test_interrupted_reproduce_resumes_to_the_same_table(tmp_path,
                                                         monkeypatch):
  protocol = TINY_RNN.replace(problems=("add",), mu0s=(0.9,),
                              learning_rates=(1e-3,))
  _rnn_tables.reproduce(protocol, tmp_path / "whole", **QUIET)

  calls = {"n": 0}
  update = _runner.Progress.update

  def interrupt_on_second_chunk(self, *args):
    calls["n"] += 1
    if calls["n"] == 2:
      raise KeyboardInterrupt
    return update(self, *args)

  monkeypatch.setattr(_runner.Progress, "update", interrupt_on_second_chunk)
  with pytest.raises(KeyboardInterrupt):
    _rnn_tables.reproduce(protocol, tmp_path / "cut", **QUIET)
  monkeypatch.setattr(_runner.Progress, "update", update)
  _rnn_tables.reproduce(protocol, tmp_path / "cut", **QUIET)

  runs = json.loads((tmp_path / "cut" / "table5.json").read_text())["runs"]
  nag = next(r for r in runs if r["method"] == "nag")
  assert nag["chunks_run"] == 1  # resumed after the first of two chunks
  assert ((tmp_path / "cut" / "table5.csv").read_text()
          == (tmp_path / "whole" / "table5.csv").read_text())


def test_protocols_paper_and_quick():
  paper, quick = _protocols.RNN_PAPER, _protocols.RNN_QUICK
  assert (paper.num_steps, paper.batch_size, paper.seeds) == (50_000, 100, 4)
  assert paper.learning_rates == (1e-3, 1e-4, 1e-5, 1e-6)
  assert paper.mu0s == (0.0, 0.9, 0.98, 0.995)
  assert paper.warmup_steps == 1000 and paper.differences() == []
  ae = _protocols.AUTOENCODER_PAPER
  assert (ae.num_steps, ae.batch_size, ae.stage_length,
          ae.finetune_steps) == (750_000, 200, 250, 1000)
  assert ae.learning_rates == (0.05, 0.01, 0.005, 0.001, 0.0005, 0.0001)
  assert ae.mu_maxes == (0.0, 0.9, 0.99, 0.995, 0.999)
  assert ae.differences() == []
  assert quick.differences() and any("updates per run" in d
                                     for d in quick.differences())
  # The paper's memorization rows use the 2011 release's layout; quick keeps
  # ours and says so; the demo is mem-20 in the release's layout.
  assert paper.memorization_channels == "overlapping"
  assert any(d.startswith("memorization go/blank channels: separate")
             for d in quick.differences())
  demo = _protocols.RNN_DEMO
  assert (demo.problems, demo.memorization_channels, demo.warmup_steps) == (
      ("mem20",), "overlapping", 1000)
  # Overrides rescale the time constants with the run length.
  short = paper.replace(num_steps=5000)
  assert short.warmup_steps == 1000 and 5000 % short.eval_every == 0
  assert paper.replace(num_steps=2000).warmup_steps == 400  # 1/5 if short
  ae_short = ae.replace(num_steps=3000)
  assert ae_short.finetune_steps % ae_short.eval_every == 0
  assert 3000 % ae_short.eval_every == 0


@pytest.mark.parametrize("kwargs, match", [
    ({"seeds": 0}, "^seeds must be an integer >= 1"),
    ({"learning_rates": (0.0,)}, "^learning_rates must be > 0"),
    ({"mu0s": (1.5,)}, r"^mu must be in \[0, 1\]"),
    ({"problems": ("xor",)}, "^problems must be a non-empty subset"),
    ({"eval_every": 7}, "^eval_every must divide num_steps"),
])
def test_bad_protocol_values_name_the_argument(kwargs, match):
  with pytest.raises((ValueError, TypeError), match=match):
    _protocols.RNN_QUICK.replace(**kwargs)


def test_cli_rejects_bad_knobs(capsys, tmp_path):
  out = str(tmp_path / "out")
  with pytest.raises(SystemExit, match="unknown: \\['xor'\\]"):
    cli.main(["reproduce", "table5", "--problems", "xor", "--out", out])
  with pytest.raises(SystemExit, match="mu must be in"):
    cli.main(["reproduce", "table5", "--mu", "2", "--out", out])
  assert not (tmp_path / "out").exists()  # rejected before writing anything
  with pytest.raises(SystemExit):
    cli.main(["reproduce", "table9"])
  assert "invalid choice" in capsys.readouterr().err


def test_cli_rejects_bad_speed_and_process_flags(tmp_path, monkeypatch):
  for name in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES",
               "JAX_PROCESS_ID"):
    monkeypatch.delenv(name, raising=False)
  out = str(tmp_path / "out")
  with pytest.raises(SystemExit, match="--unroll must be >= 1"):
    cli.main(["reproduce", "table5", "--unroll", "0", "--out", out])
  with pytest.raises(SystemExit, match="process_id must be"):
    cli.main(["reproduce", "table5", "--out", out, "--coordinator-address",
              "localhost:1234", "--num-processes", "2", "--process-id", "2"])
  monkeypatch.setenv("JAX_NUM_PROCESSES", "x")
  with pytest.raises(SystemExit, match="JAX_NUM_PROCESSES must be"):
    cli.main(["reproduce", "table5", "--out", out])
  with pytest.raises(SystemExit):
    cli.main(["reproduce", "table5", "--command-buffers", "graphs"])
  assert not (tmp_path / "out").exists()


@pytest.mark.slow
def _assert_autoencoder_tables_on_the_standin(out, table):
  """Tables 1-3 of TINY_AE on the synthetic stand-in, MNIST's file missing."""
  _assert_paper_values_present(out / "table1.csv", "1")
  _assert_paper_values_present(out / "table2.csv", "2")
  _assert_paper_values_present(out / "table3.csv", "3")
  # The stand-in is labelled wherever it appears; MNIST is skipped with the
  # reason (its file is missing), faces was not asked for.
  assert "synthetic curves stand-in (not CURVES)" in table
  assert "skipped: MNIST:" in table and "no-such-dir" in table
  t1 = {(r["row"], r["column"]): r for r in _csv(out / "table1.csv")}
  assert t1[("mnist", "0")]["note"] == "no data"
  assert t1[("faces", "0")]["note"] == "not run"
  assert "stand-in" in t1[("curves", "0.9N")]["note"]
  assert float(t1[("curves", "0.9N")]["ours_mean"]) > 0
  # Table 2 reads the NAG runs at the update where μ drops and at the end.
  t2 = {(r["row"], r["column"]): r for r in _csv(out / "table2.csv")}
  raw = json.loads((out / "table1.json").read_text())
  nag = next(r for r in raw["runs"] if r["method"] == "nag")
  error = np.asarray(nag["metrics"]["error"])
  assert nag["eval_steps"] == [10, 20]
  before, after = (float(t2[("curves", c)]["ours_mean"])
                   for c in ("before", "after"))
  point = [i for i, m in enumerate(nag["grid"]["mu_max"])
           if np.isclose(m, 0.9)][
      TINY_AE.learning_rates.index(float(t2[("curves", "after")][
          "learning_rate"]))]
  assert before == pytest.approx(error[:, point, 0].mean(), rel=1e-6)
  assert after == pytest.approx(error[:, point, 1].mean(), rel=1e-6)
  t3 = {(r["row"], r["column"]): r for r in _csv(out / "table3.csv")}
  assert t3[("curves", "0.25")]["ours_mean"] == ""  # not in the tiny grid
  assert float(t3[("curves", "1")]["ours_mean"]) > 0


@pytest.mark.slow
def test_cli_reproduce_all_writes_every_table(tmp_path, capsys, monkeypatch):
  """``reproduce all`` through the command line, on the tiny protocols (the
  quick ones' sizes are pinned elsewhere; here: every table, plot and the
  summary, and Tables 1-3's numbers on the curves stand-in)."""
  monkeypatch.setitem(_protocols.PROTOCOLS, "quick", (TINY_RNN, TINY_AE))
  assert cli.main([
      "reproduce", "all", "--out", str(tmp_path), "--seeds", "1",
      "--problems", "mem20,curves,mnist", "--synthetic-curves",
      "--data-dir", str(tmp_path / "no-such-dir"), "--no-progress"]) == 0
  out = capsys.readouterr().out
  for title in ("CM vs NAG on f(x)", "Table 5", "Table 1", "Table 2",
                "Table 3"):
    assert title in out, title
  for name in ("quadratic.md", "quadratic_trajectories.png", "table5.csv",
               "table5_mem20_curves.png", "table1.csv", "table1.md",
               "table1.json", "table2.md", "table2.json",
               "table1_curves_curves.png", "table2.csv",
               "table2_finetuning.png", "table3.csv", "table3.md",
               "table3.json", "table3_si_scale.png", "results.md"):
    assert (tmp_path / name).stat().st_size > 0, name
  rows = {(r["row"], r["column"]): r for r in _csv(tmp_path / "table5.csv")}
  assert rows[("mem20", "0.9N")]["ours_mean"] != ""
  assert rows[("add", "0.9N")]["note"] == "not run"
  assert "+" in rows[("mem20", "0.9N")]["protocol"]  # tiny+overrides
  summary = (tmp_path / "results.md").read_text()
  assert "reproduce all" in summary and "Table 3" in summary
  assert "machine: " in summary and "vector: " in summary  # issue 13
  tables = "\n".join((tmp_path / f"table{i}.md").read_text()
                     for i in (1, 2, 3))
  _assert_autoencoder_tables_on_the_standin(tmp_path, tables)


# -- Table 5's fidelity choices (issue 12): each an option, defaults kept -----

@pytest.mark.parametrize("field,value,match", [
    ("loss_normalization", "sum", "loss_normalization must be one of"),
    ("input_scale", 0.0, "input_scale"),
    ("input_scale", -1.0, "input_scale"),
    ("output_bias", "average", "output_bias must be one of"),
    ("center", "yes", "center must be True or False"),
    ("memorization_channels", "shared",
     "memorization_channels must be one of"),
])
def test_rnn_protocol_rejects_bad_fidelity_choices(field, value, match):
  with pytest.raises(ValueError, match=match):
    TINY_RNN.replace(**{field: value})


def _first_batch_and_params(protocol, row):
  import jax  # pylint: disable=import-outside-toplevel
  problem = paper.TABLE5[row].problem
  trainer = _rnn_tables.rnn_task(row, protocol)
  params = trainer.init_fn(jax.random.key(0))
  batch = trainer.sample_fn(jax.random.key(1), 4, None)
  return problem, trainer, params, batch


def test_fidelity_choices_reach_the_trainer():
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  problem, base, params, batch = _first_batch_and_params(TINY_RNN, "mem20")
  loss = float(base.loss_fn(params, batch))
  # sequence_sum: T times the step mean for memorization (every step counts).
  summed = TINY_RNN.replace(loss_normalization="sequence_sum")
  _, trainer, _, _ = _first_batch_and_params(summed, "mem20")
  assert float(trainer.loss_fn(params, batch)) == pytest.approx(
      problem.max_length * loss, rel=1e-5)
  # input_scale: the input kernel's std follows it.
  scaled = TINY_RNN.replace(input_scale=0.5)
  _, _, params_scaled, _ = _first_batch_and_params(scaled, "mem20")
  w_default = [l for p, l in jax_leaves_with_path(params) if "input" in p]
  w_scaled = [l for p, l in jax_leaves_with_path(params_scaled)
              if "input" in p]
  assert float(jnp.std(w_scaled[0])) == pytest.approx(
      5 * float(jnp.std(w_default[0])), rel=0.05)  # 0.5 vs Table 4's 0.1
  # center=False: raw one-hot inputs (entries 0/1); centered ones are not.
  _, _, _, raw = _first_batch_and_params(TINY_RNN.replace(center=False),
                                         "mem20")
  assert set(np.unique(np.asarray(raw.inputs))) <= {0.0, 1.0}
  assert not set(np.unique(np.asarray(batch.inputs))) <= {0.0, 1.0}


def test_memorization_channels_reach_the_trainer_and_the_tag():
  overlap = TINY_RNN.replace(memorization_channels="overlapping")
  _, task, params, batch = _first_batch_and_params(overlap, "mem20")
  # The release's layout: 5 input and 5 output channels (ours: 7 and 6).
  assert batch.inputs.shape[-1] == batch.targets.shape[-1] == 5
  assert float(task.loss_fn(params, batch)) > 0
  # Its bias-only baseline is Table 5's 8.0 wrong steps per sequence.
  cells, _ = _rnn_tables.cells_for("mem20", {}, overlap)
  assert cells[0].ours.mean == pytest.approx(100 * 8.0 / 80)
  # The default joins no tag (old checkpoints resume); the option does.
  tag = _rnn_tables._tag  # pylint: disable=protected-access
  assert tag(TINY_RNN.replace(memorization_channels="separate"), "mem20",
             "nag") == tag(TINY_RNN, "mem20", "nag")
  assert '"memorization_channels": "overlapping"' in tag(overlap, "mem20",
                                                         "nag")
  # add is untouched by it: its batches and its tag.
  _, _, _, add_batch = _first_batch_and_params(overlap, "add")
  assert add_batch.inputs.shape[-1] == 2
  assert tag(overlap, "add", "nag") == tag(TINY_RNN, "add", "nag")


@pytest.mark.parametrize("kind,centered,expected", [
    ("mean", True, 0.0), ("mean", False, 1.0), ("zero", False, 0.0)])
def test_output_bias_choices_for_addition(kind, centered, expected):
  problem = paper.TABLE5["add"].problem
  # add T=80, target A+B of two U[0,1] values: mean 1.
  np.testing.assert_allclose(
      paper.table4_output_bias(problem, kind, centered), [expected],
      atol=1e-6)


def jax_leaves_with_path(tree):
  import jax  # pylint: disable=import-outside-toplevel
  return [(jax.tree_util.keystr(p), l)
          for p, l in jax.tree_util.tree_leaves_with_path(tree)]


def test_cli_fidelity_flags_reach_the_protocol():
  args = cli.build_parser().parse_args(
      ["reproduce", "table5", "--loss-normalization", "sequence_sum",
       "--input-scale", "0.01", "--output-bias", "zero", "--no-center",
       "--memorization-channels", "overlapping",
       "--warmup-steps", "7", "--steps", "100"])
  rnn, _, _, _ = _cli_args.protocols(args)  # pylint: disable=protected-access
  assert (rnn.loss_normalization, rnn.input_scale, rnn.output_bias,
          rnn.center, rnn.memorization_channels, rnn.warmup_steps) == (
              "sequence_sum", 0.01, "zero", False, "overlapping", 7)
  assert any("loss normalization" in d for d in rnn.differences())
  default, _, _, _ = _cli_args.protocols(cli.build_parser().parse_args(  # pylint: disable=protected-access
      ["reproduce", "table5", "--steps", "100"]))
  assert default.warmup_steps == 20 and default.center  # 1/5 of the run


@pytest.mark.slow
@pytest.mark.parametrize("method", ["nag", "cm"])
def test_sequence_sum_is_step_mean_at_a_scaled_learning_rate(method):
  """Why the loss normalization only relabels the ε grid: with the learning
  rate inside the velocity, v ← μv − ε∇(c·f) is v ← μv − (cε)∇f, so
  "sequence_sum" at ε trains exactly as "step_mean" at c·ε (c = T for
  memorization, 1/2 for addition)."""
  import jax  # pylint: disable=import-outside-toplevel
  import optax  # pylint: disable=import-outside-toplevel
  import jaxmomentum  # pylint: disable=import-outside-toplevel
  opt = {"nag": jaxmomentum.nag, "cm": jaxmomentum.cm}[method]
  finals = []
  for normalization, eps in (("sequence_sum", 1e-4), ("step_mean", None)):
    protocol = TINY_RNN.replace(loss_normalization=normalization)
    problem, task, params, _ = _first_batch_and_params(protocol, "mem20")
    eps = eps if eps is not None else 1e-4 * problem.max_length
    optimizer = opt(eps, 0.9)
    state = optimizer.init(params)
    grad = jax.jit(jax.grad(task.loss_fn))
    for t in range(3):
      batch = task.sample_fn(jax.random.key(10 + t), 4, None)
      grads = grad(params, batch)
      updates, state = optimizer.update(grads, state, params)
      params = optax.apply_updates(params, updates)
    finals.append(params)
  for a, b in zip(jax.tree.leaves(finals[0]), jax.tree.leaves(finals[1])):
    np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-7)


def test_hour_protocol_is_the_paper_protocol_with_the_documented_knobs():
  # experiments/table5_hour ran these knobs on the paper protocol; the named
  # protocol must be the same runs (same checkpoint tag), so it resumes them.
  knobs = _protocols.RNN_PAPER.replace(
      num_steps=20_000, seeds=4, learning_rates=(1e-4,), mu0s=(0.0, 0.995),
      problems=("add", "mem20"))
  hour = _protocols.RNN_HOUR
  assert (hour.warmup_steps, hour.eval_every, hour.num_eval_batches) == (
      1000, 400, 2)
  # mem-20 in the release's layout (experiments/table5_hour's mem-20 half
  # ran with --memorization-channels overlapping); add's tag is unchanged by
  # the layout, so the add half's checkpoints still resume.
  separate = knobs.replace(memorization_channels="separate")
  tag = _rnn_tables._tag  # pylint: disable=protected-access
  for row in ("add", "mem20"):
    assert tag(hour, row, "nag+cm") == tag(knobs, row, "nag+cm")
  assert tag(hour, "add", "nag+cm") == tag(separate, "add", "nag+cm")
  assert tag(hour, "mem20", "nag+cm") != tag(separate, "mem20", "nag+cm")
  assert _protocols.PROTOCOLS["hour"][0] is hour


@pytest.mark.parametrize("channels, biases", [("separate", 12.5),
                                              ("overlapping", 10.0)])
def test_table5_curves_draw_the_biases_of_the_protocols_layout(
    channels, biases, tmp_path, monkeypatch):
  seen = {}

  def plot_curves(path, panels, ylabel, suptitle, **kwargs):
    seen.update(kwargs)
    return path

  monkeypatch.setattr(_rnn_tables._plots, "plot_curves", plot_curves)  # pylint: disable=protected-access
  protocol = TINY_RNN.replace(memorization_channels=channels)
  _rnn_tables.plot_problem(tmp_path / "c.png", "mem20", {}, {}, protocol)
  (label, value), = seen["references"]
  assert value == pytest.approx(biases) and label.startswith("biases")
