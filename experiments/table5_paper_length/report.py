"""Learning curves of Table 5 grids read from their checkpoints, mid-run.

``jaxmomentum reproduce table5`` writes its tables only when every grid has
finished; a paper-length grid runs for hours, over several sessions. This
script reads what the checkpoints hold so far (the metrics recorded at every
evaluation, the grid, the divergence flags) without touching the run, and
writes ``curves.json``, ``curves.md`` and ``curves.png``:

  python experiments/table5_paper_length/report.py RUN_OUT_DIR [--out DIR]

``RUN_OUT_DIR`` is the ``--out`` of the reproduce command (it holds
``checkpoints/table5/<problem>-<nag|cm|nag+cm>``). A run "leaves its biases plateau"
at the first evaluation whose zero-one error is at most half the biases
(constant-predictor) error of the generator it ran on (read from the run's
tag: the memorization layout changes it); the loss column shows where
the loss first falls to half its first evaluated value. For the
memorization rows the table also gives where the loss first falls below the
best *timing-only* loss, (n/T) ln K: a model that knows when to answer but
not which symbol cannot do better, so a loss below it means the data
symbols reach the answers (mem-20 T=80: 10/80 ln 5 = 0.201).
"""

from __future__ import annotations

import argparse
import json
import pathlib

import jax
import numpy as np


def _problem(key: str, tag: dict):
  """The generator a grid ran on: Table 5's row, in the tag's layout."""
  import dataclasses  # pylint: disable=import-outside-toplevel
  from jaxmomentum.reproduce import paper  # pylint: disable=import-outside-toplevel
  problem = paper.TABLE5[key].problem
  channels = tag.get("memorization_channels")
  if channels is not None and hasattr(problem, "channels"):
    problem = dataclasses.replace(problem, channels=channels)
  return problem


def biases_error(problem) -> float:
  """The constant predictor's zero-one error (Table 5's "biases")."""
  return float(problem.biases_baseline().mean_predictor_error)


def timing_only_loss(problem):
  """``problem.timing_only_loss()`` for memorization (None otherwise)."""
  return getattr(problem, "timing_only_loss", lambda: None)()


def read_grid(directory: pathlib.Path) -> dict:
  """Metrics ``{name: [runs, evals]}``, params ``{name: [runs, ...]}``,
  grid, steps done, diverged_at; from either checkpoint format."""
  import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel
  manager = ocp.CheckpointManager(directory.resolve() / "checkpoints")
  step = manager.latest_step()
  if step is None:
    return None  # the grid has started but not saved yet
  meta = manager.restore(step, args=ocp.args.Composite(
      meta=ocp.args.JsonRestore())).meta
  description = meta["description"]
  names = description["metrics"]
  if meta.get("format", 1) == 1:  # host arrays by position, leaf_00000...
    leaves = manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore())).state
    metrics = {n: np.asarray(leaves[f"leaf_{i:05d}"]) for i, n in
               enumerate(names)}  # sorted: the first leaves of the tree
    paths = [p for p, _, _ in description["state"]]
    diverged_index = len(names) + next(i for i, p in enumerate(paths)
                                       if "diverged_at" in p)
    diverged_at = np.asarray(leaves[f"leaf_{diverged_index:05d}"])
    params = {p.split("['")[2].rstrip("']"):
              np.asarray(leaves[f"leaf_{len(names) + i:05d}"])
              for i, p in enumerate(paths) if p.startswith(".params['params']")}
  else:  # format 2: the {"state", "metrics"} pytree itself (rows padded)
    # As host arrays, whatever devices saved it (a grid split over several
    # host devices cannot be restored without a sharding otherwise).
    path = directory.resolve() / "checkpoints" / str(step) / "state"
    checkpointer = ocp.PyTreeCheckpointer()
    layout = checkpointer.metadata(path)
    layout = getattr(getattr(layout, "item_metadata", layout), "tree", layout)
    tree = checkpointer.restore(path, restore_args=jax.tree.map(
        lambda _: ocp.RestoreArgs(restore_type=np.ndarray), layout))
    rows = len(description["seeds"]) * len(description["grid"]["mu0"])
    metrics = {n: np.asarray(tree["metrics"][n])[:rows] for n in names}
    diverged_at = np.asarray(tree["state"]["diverged_at"])[:rows]
    params = {k: np.asarray(v)[:rows]
              for k, v in tree["state"]["params"]["params"].items()}
  config = description["config"]
  return {"metrics": metrics, "grid": description["grid"],
          "steps_done": meta["chunks_done"] * config["chunk_size"],
          "eval_every": config["eval_every"],
          "num_steps": config["num_steps"],
          "diverged_at": diverged_at, "params": params,
          "seeds": description["seeds"],
          "tag": json.loads(description["tag"])}


def _first(values, threshold):
  below = np.nonzero(values <= threshold)[0]
  return int(below[0]) if below.size else None


def summarize(run_dir: pathlib.Path) -> list[dict]:
  rows = []
  for directory in sorted((run_dir / "checkpoints" / "table5").iterdir()):
    problem, momentum = directory.name.rsplit("-", 1)
    grid = read_grid(directory)
    if grid is None:
      continue
    generator = _problem(problem, grid["tag"])
    biases, timing = biases_error(generator), timing_only_loss(generator)
    evals = grid["steps_done"] // grid["eval_every"]
    steps = grid["eval_every"] * np.arange(1, evals + 1)
    points = len(grid["grid"]["learning_rate"])
    for r in range(grid["metrics"]["error"].shape[0]):  # seed-major rows
      seed, point = grid["seeds"][r // points], r % points
      error = grid["metrics"]["error"][r, :evals]
      loss = grid["metrics"]["loss"][r, :evals]
      exit_error = _first(error, 0.5 * biases)
      exit_loss = _first(loss, 0.5 * loss[0]) if evals else None
      below_timing = (_first(loss, np.nextafter(timing, 0.0))
                      if timing is not None else None)
      mu0 = grid["grid"]["mu0"][point]
      if "nesterov" in grid["grid"]:  # a merged NAG+CM grid
        momentum = "nag" if grid["grid"]["nesterov"][point] else "cm"
      rows.append({
          "problem": problem, "momentum": momentum if mu0 else "sgd",
          "seed": int(seed),
          "mu0": round(mu0, 6), "learning_rate": grid["grid"]["learning_rate"][point],
          "steps_done": int(grid["steps_done"]),
          "num_steps": int(grid["num_steps"]),
          "diverged_at": int(grid["diverged_at"][r]),
          "generator": generator.name, "biases": biases,
          "timing_only_loss": timing,
          "steps": steps.tolist(), "error": error.tolist(),
          "loss": loss.tolist(),
          "below_timing_loss_at": None if below_timing is None
                                  else int(steps[below_timing]),
          "leaves_plateau_at": None if exit_error is None
                               else int(steps[exit_error]),
          "loss_halved_at": None if exit_loss is None
                            else int(steps[exit_loss])})
  return rows


def markdown(rows: list[dict]) -> str:
  timing = any(r["timing_only_loss"] is not None for r in rows)
  head = ("| problem | method | μ0 | ε | seed | updates done | loss first → last | "
          "zero-one error last (min) | error ≤ ½ biases at | loss halved at "
          + ("| loss < timing-only at " if timing else "") + "| diverged at |")
  lines = [head, "|---" * head.count(" | ") + "|---|"]
  for r in rows:
    if not r["steps"]:
      continue
    pct = 100.0 if r["problem"].startswith("mem") else 1.0
    unit = "%" if pct != 1.0 else ""
    below = ""
    if timing:
      below = ("- | " if r["timing_only_loss"] is None else
               f"{r['below_timing_loss_at'] or 'not yet'} | ")
    lines.append(
        f"| {r['problem']} | {r['momentum']} | {r['mu0']:g} | "
        f"{r['learning_rate']:.0e} | {r['seed']} | {r['steps_done']:,} / {r['num_steps']:,}"
        f" | {r['loss'][0]:.4g} → {r['loss'][-1]:.4g} | "
        f"{pct * r['error'][-1]:.4g}{unit} ({pct * min(r['error']):.4g}{unit})"
        f" | {r['leaves_plateau_at'] or 'not yet'} | "
        f"{r['loss_halved_at'] or 'not yet'} | {below}"
        f"{r['diverged_at'] if r['diverged_at'] >= 0 else '-'} |")
  generators = sorted({(r["generator"], r["biases"], r["timing_only_loss"])
                       for r in rows}, key=str)
  notes = [f"- {name}: biases error {biases:.4g}" +
           ("" if t is None else f", timing-only loss {t:.4g}")
           for name, biases, t in generators]
  return "\n".join(lines + [""] + notes) + "\n"


def plot(rows: list[dict], path: pathlib.Path) -> None:
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  problems = sorted({r["problem"] for r in rows})
  fig, axes = plt.subplots(2, len(problems), figsize=(5.5 * len(problems), 7),
                           squeeze=False)
  for j, problem in enumerate(problems):
    for r in (r for r in rows if r["problem"] == problem and r["steps"]):
      style = {"sgd": ":", "nag": "-", "cm": "--"}[r["momentum"]]
      label = (f"{r['momentum']} μ0={r['mu0']:g} ε={r['learning_rate']:.0e}"
               f" s{r['seed']}")
      for i, key in enumerate(("loss", "error")):
        axes[i, j].plot(r["steps"], r[key], style, label=label)
    biases = next(r["biases"] for r in rows if r["problem"] == problem)
    axes[1, j].axhline(biases, color="k", lw=0.8, label="biases")
    axes[0, j].set_title(f"{problem}: loss (log)")
    axes[0, j].set_yscale("log")
    axes[1, j].set_title(f"{problem}: zero-one error")
    axes[1, j].set_xlabel("updates")
    axes[1, j].legend(fontsize=6)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("run_dir", type=pathlib.Path)
  parser.add_argument("--out", type=pathlib.Path,
                      default=pathlib.Path(__file__).parent)
  args = parser.parse_args()
  rows = summarize(args.run_dir)
  args.out.mkdir(parents=True, exist_ok=True)
  (args.out / "curves.json").write_text(json.dumps(rows, indent=1))
  table = markdown(rows)
  (args.out / "curves.md").write_text(table)
  plot(rows, args.out / "curves.png")
  print(table)


if __name__ == "__main__":
  main()
