"""One fidelity choice at a time, with the communication traces (issue 12).

Each setting is the paper's protocol (warm-up 1,000 at μ = 0.9, then μ0,
NAG) with one field of :class:`jaxmomentum.reproduce.RNNProtocol` changed,
run as one checkpointed grid over the given learning rates and seeds. At
every evaluation the loss, the zero-one error and the traces of
``jaxmomentum.reproduce._rnn_traces`` (spectral radius, saturation, the
gradient reaching the information steps, the answers' sensitivity to them)
are recorded:

  python experiments/table5_fidelity/run.py --problem mem20 --steps 5000 \\
      --seeds 2 --learning-rates 1e-5 --out runs/fidelity_mem20 \\
      baseline no_center=center:false bias_zero=output_bias:zero

A setting is ``name`` (the defaults) or ``name=field:value[,field:value]``.
Writes ``<out>/<name>/...`` checkpoints and ``<out>/traces.json`` (every
evaluation of every run), ``<out>/traces.md`` (first and last values) and
``<out>/traces.png``.
"""

from __future__ import annotations

import argparse
import json
import pathlib

import numpy as np

from jaxmomentum import training
from jaxmomentum._machine import machine_line
from jaxmomentum.reproduce import _rnn_tables
from jaxmomentum.reproduce import _rnn_traces
from jaxmomentum.reproduce._protocols import RNN_PAPER
from jaxmomentum.reproduce._protocols import RNN_PROBLEMS


def _value(text: str):
  for cast in (int, float):
    try:
      return cast(text)
    except ValueError:
      pass
  return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def parse_setting(text: str) -> tuple[str, dict]:
  name, _, rest = text.partition("=")
  overrides = {}
  for item in filter(None, rest.split(",")):
    field, _, value = item.partition(":")
    overrides[field] = _value(value)
  return name, overrides


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("settings", nargs="+")
  parser.add_argument("--problem", default="mem20", choices=list(RNN_PROBLEMS))
  parser.add_argument("--steps", type=int, default=5000)
  parser.add_argument("--seeds", type=int, default=2)
  parser.add_argument("--first-seed", type=int, default=0,
                      help="seeds first-seed, ..., first-seed + seeds - 1")
  parser.add_argument("--mu0", type=float, default=0.995)
  parser.add_argument("--method", default="nag", choices=["nag", "cm"])
  parser.add_argument("--learning-rates", default="1e-5")
  parser.add_argument("--eval-every", type=int, default=250)
  parser.add_argument("--out", type=pathlib.Path, required=True)
  args = parser.parse_args(argv)
  lrs = [float(v) for v in args.learning_rates.split(",")]
  rows = []
  for text in args.settings:
    name, overrides = parse_setting(text)
    # Settings change one choice against our generator's layout (the paper
    # protocol's default is now the release's): the commands in README.md
    # keep their meaning.
    protocol = RNN_PAPER.replace(
        memorization_channels="separate",
        num_steps=args.steps, seeds=args.seeds, problems=(args.problem,),
        learning_rates=tuple(lrs), mu0s=(args.mu0,),
        eval_every=args.eval_every).replace(**overrides)
    trainer = _rnn_tables.make_rnn_trainer(args.problem, protocol, args.method,
                                           traces=True)
    grid = training.Grid.product(mu0=[args.mu0], learning_rate=lrs)
    print(f"{name}: {overrides or 'defaults'}; warm-up "
          f"{protocol.warmup_steps}; {grid.size * args.seeds} runs")
    result = training.run_grid(
        trainer, grid, out_dir=args.out / name,
        seeds=list(range(args.first_seed, args.first_seed + args.seeds)),
        checkpoint_every_s=60,
        tag=json.dumps({"setting": text, "problem": args.problem,
                        "momentum": args.method}))
    for seed in range(len(result.seeds)):  # metrics: [seed, point, eval]
      for point in range(grid.size):
        rows.append({
            "setting": name, "overrides": overrides,
            "seed": int(result.seeds[seed]), "learning_rate": lrs[point],
            "steps": list(map(int, result.eval_steps)),
            "diverged_at": int(result.diverged_step[seed, point]),
            **{k: np.asarray(v[seed, point]).tolist()
               for k, v in result.metrics.items()}})
  args.out.mkdir(parents=True, exist_ok=True)
  (args.out / "traces.json").write_text(json.dumps(
      {"machine": machine_line(), "argv": argv, "problem": args.problem,
       "runs": rows}, indent=1))
  write_table(args.out / "traces.md", rows)
  plot(args.out / "traces.png", rows)


def write_table(path: pathlib.Path, rows):
  names = ("loss", "error") + _rnn_traces.TRACE_NAMES
  lines = ["| setting | ε | seed | " + " | ".join(
      f"{n} first → last" for n in names) + " |",
           "|---|---|---|" + "---|" * len(names)]
  for row in rows:
    cells = [f"{row[n][0]:.3g} → {row[n][-1]:.3g}" for n in names]
    lines.append(f"| {row['setting']} | {row['learning_rate']:g} | "
                 f"{row['seed']} | " + " | ".join(cells) + " |")
  path.write_text("\n".join(lines) + "\n")


def plot(path: pathlib.Path, rows):
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  names = ("loss", "error", "rho", "saturated", "grad_info", "sensitivity")
  fig, axes = plt.subplots(2, 3, figsize=(14, 7))
  # One color per (setting, ε); seeds share it.
  lines = sorted({(r["setting"], r["learning_rate"]) for r in rows})
  colors = dict(zip(lines, plt.cm.tab10.colors * 3))
  for ax, name in zip(axes.flat, names):
    for row in rows:
      line = (row["setting"], row["learning_rate"])
      ax.plot(row["steps"], row[name], color=colors[line], alpha=0.8,
              label=f"{line[0]} ε={line[1]:g}"
              if row["seed"] == rows[0]["seed"] else None)
    ax.set_title(name)
    ax.set_xlabel("updates")
    if name in ("grad_info", "sensitivity", "loss"):
      ax.set_yscale("log")
  axes.flat[0].legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=110)


if __name__ == "__main__":
  main()
