"""Command line: ``jaxmomentum demo`` and ``jaxmomentum reproduce TARGET``.

``jaxmomentum reproduce {quadratic,table5,table1,table2,table3,all}``
regenerates the paper's tables and figures with our number beside the
paper's in every cell (Markdown, CSV, JSON, PNG under ``--out``).
``--protocol paper`` is the paper's protocol, ``--protocol quick`` (the
default) a documented reduction; ``--steps``, ``--seeds``, ``--problems``,
``--learning-rates`` and ``--mu`` override single knobs of either. Runs
checkpoint under ``--out`` and resume when re-run with the same ``--out``.

Several processes (machines) share one reproduction through JAX's
multi-process runtime: start the same command in each with
``--coordinator-address HOST:PORT --num-processes N --process-id I`` (or
``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``) and a
``--out`` every process sees; the grids are sharded over all processes'
devices and process 0 alone writes tables, figures and progress.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

from jaxmomentum.reproduce import _cli_args

TARGETS = ("quadratic", "table5", "table1", "table2", "table3", "all")


def _log(msg: str) -> None:
  if _is_main():  # in a multi-process run, process 0 speaks for all
    print(msg, file=sys.stderr, flush=True)


def _is_main() -> bool:
  from jaxmomentum import training  # pylint: disable=import-outside-toplevel
  return training.is_main_process()


def _report(name: str, table: str, paths: Sequence[Path], start: float
            ) -> None:
  if not _is_main():
    return
  print(table)
  print(f"{name}: wrote ({time.perf_counter() - start:.1f} s):")
  for path in paths:
    print(f"  {path}")
  print()


def _timed(name: str, fn: Callable[[Path], tuple[str, Any]]
           ) -> Callable[[Path], str]:
  """``fn(out) -> (table, paths)`` that reports its table, paths and time."""
  def run(out):
    start = time.perf_counter()
    table, paths = fn(out)
    _report(name, table, paths, start)
    return table
  return run


def _run_quadratic(out: Path) -> str:
  from jaxmomentum.reproduce import _quadratic  # pylint: disable=import-outside-toplevel
  if not _is_main():  # seconds of one device's work: process 0 alone
    return ""
  return _timed("quadratic", _quadratic.reproduce)(out)


def _runners(args) -> dict[str, Callable[[Path], str]]:
  from jaxmomentum.reproduce import _autoencoder_tables  # pylint: disable=import-outside-toplevel
  from jaxmomentum.reproduce import _rnn_tables  # pylint: disable=import-outside-toplevel
  rnn, autoencoder, rnn_problems, ae_problems = _cli_args.protocols(args)
  common = {"progress": not args.no_progress,
            "checkpoint_every_s": args.checkpoint_every, "log": _log}
  data = {"data_dir": args.data_dir,
          "synthetic_curves": args.synthetic_curves}

  hf = None
  if args.hf:
    from jaxmomentum.reproduce import _hf_rnn  # pylint: disable=import-outside-toplevel
    hf = _hf_rnn.hf_protocol_for(rnn)
    if args.seeds is not None:
      hf = dataclasses.replace(hf, seeds=args.seeds)

  def table5(out):
    if rnn_problems == ():
      return _skip("table5", "--problems names no Table 5 row")
    return _timed("table5", lambda o: _rnn_tables.reproduce(
        rnn, o, concurrent=args.concurrent_problems, hf=hf, **common))(out)

  def autoencoder_target(name, fn):
    def run(out):
      if ae_problems == ():
        return _skip(name, "--problems names no Table 1 row")
      return _timed(name, lambda o: fn(autoencoder, o, **data, **common))(out)
    return run

  return {
      "quadratic": _run_quadratic,
      "table5": table5,
      "table1": autoencoder_target(
          "table1", _autoencoder_tables.reproduce_table1),
      "table2": autoencoder_target(
          "table2", _autoencoder_tables.reproduce_table2),
      "table3": autoencoder_target(
          "table3", _autoencoder_tables.reproduce_table3),
  }


def _skip(name: str, why: str) -> str:
  print(f"{name}: skipped ({why})\n")
  return ""


def _reproduce(args) -> None:
  runners = _runners(args)  # validates the arguments before anything is written
  out = _cli_args.out_dir("reproduce", args.out)
  start = time.perf_counter()
  if args.target == "all":
    # table2 comes from table1's runs, so "all" runs them once.
    tables = [runners["quadratic"](out), runners["table5"](out),
              runners["table2"](out), runners["table3"](out)]
    elapsed = time.perf_counter() - start
    if not _is_main():
      return
    from jaxmomentum import _machine  # pylint: disable=g-import-not-at-top
    summary = out / "results.md"
    summary.write_text(
        f"# jaxmomentum reproduce all --protocol {args.protocol}\n\n"
        f"Command: `jaxmomentum {' '.join(args.argv)}`; "
        f"{elapsed / 60:.1f} minutes.\n\n{_machine.machine_line()}\n\n"
        + "\n".join(t for t in tables if t),
        encoding="utf-8")
    print(f"all: {elapsed / 60:.1f} minutes; summary in {summary}")
  else:
    runners[args.target](out)


def _demo(args) -> None:
  """The appendix quadratic and the smallest meaningful slice of Table 5."""
  from jaxmomentum.reproduce import _protocols  # pylint: disable=import-outside-toplevel
  from jaxmomentum.reproduce import _rnn_tables  # pylint: disable=import-outside-toplevel
  from jaxmomentum.reproduce import paper  # pylint: disable=import-outside-toplevel
  start = time.perf_counter()
  print("== jaxmomentum demo (1/2): the paper's appendix experiment, CM vs "
        "NAG on an oblong quadratic\n")
  out = _cli_args.out_dir("demo", args.out)
  _run_quadratic(out)
  protocol = _protocols.RNN_DEMO
  print("== jaxmomentum demo (2/2): a slice of Table 5 "
        f"({', '.join(paper.TABLE5[p].label for p in protocol.problems)}"
        f", μ0 in {{{', '.join(f'{m:g}' for m in protocol.mu0s)}}}, "
        f"{protocol.num_steps:,} updates, {protocol.seeds} seeds)\n")
  t5 = time.perf_counter()
  table, paths = _rnn_tables.reproduce(
      protocol, out, progress=not args.no_progress, log=_log)
  _report("table5 slice", table, paths, t5)
  print(f"demo: {time.perf_counter() - start:.0f} s. The full command line: "
        "jaxmomentum reproduce --help")


def _start_runtime(args) -> None:
  """Command buffers and jax.distributed: both before JAX starts."""
  from jaxmomentum import training  # pylint: disable=import-outside-toplevel
  if args.unroll is not None and args.unroll < 1:
    raise SystemExit(f"error: --unroll must be >= 1, got {args.unroll}")
  try:
    training.use_command_buffers(args.command_buffers)
    training.init_distributed(args.coordinator_address, args.num_processes,
                              args.process_id)
  except (TypeError, ValueError, RuntimeError) as err:
    raise SystemExit(f"error: {err}") from err


def build_parser() -> argparse.ArgumentParser:
  from jaxmomentum.reproduce import _protocols  # pylint: disable=import-outside-toplevel
  from jaxmomentum.reproduce import paper  # pylint: disable=import-outside-toplevel
  scales = ", ".join(f"{row.key} {row.input_scale:g}"
                     for row in paper.TABLE5.values())
  parser = argparse.ArgumentParser(
      prog="jaxmomentum",
      description="Reproduce Sutskever et al. (2013) with jaxmomentum.")
  sub = parser.add_subparsers(dest="command", required=True)
  demo = sub.add_parser("demo", help="the main job on its built-in default")
  demo.add_argument("--out", default="demo_out",
                    help="directory for tables and figures (default demo_out)")
  demo.add_argument("--no-progress", action="store_true",
                    help="no progress bars")
  demo.set_defaults(func=_demo)
  rep = sub.add_parser(
      "reproduce", help="regenerate a table or figure",
      description="Regenerate the paper's tables and figures. Results (ours "
      "beside the paper's) go to --out as Markdown, CSV, JSON and PNG; runs "
      "checkpoint there and resume when re-run with the same --out.")
  rep.add_argument("target", choices=TARGETS)
  rep.add_argument("--protocol", choices=("quick", "hour", "paper"),
                   default="quick",
                   help="'paper': the paper's updates, grids and seeds "
                   "(days on a CPU); 'quick' (default): the documented "
                   "reduction, all targets in under 30 minutes on 2 cores; "
                   "'hour': Table 5's add and mem-20 rows, 20,000 updates, "
                   "4 seeds, ε = 1e-4, μ0 in {0, 0.995}, mem-20 in the 2011 "
                   "release's layout: about an hour on 2 cores (autoencoders "
                   "as in 'quick')")
  rep.add_argument("--out", default="results",
                   help="directory for results and checkpoints "
                   "(default results)")
  rep.add_argument("--steps", type=_cli_args.positive_int,
                   help="updates per run (the warm-up, Eq. 5's stages, "
                   "finetuning and evaluations scale with it)")
  rep.add_argument("--seeds", type=_cli_args.positive_int,
                   help="seeds per grid point")
  rep.add_argument("--problems", type=_cli_args.names,
                   help=f"comma-separated rows: {','.join(paper.TABLE5)} "
                   f"(Table 5), {','.join(paper.TABLE1_ARCHITECTURES)} "
                   "(Tables 1-3), fashion (Fashion-MNIST "
                   "on the MNIST architecture: a real-data row of ours, "
                   "from --data-dir/fashion-mnist or Debian's "
                   "dataset-fashion-mnist package)")
  rep.add_argument("--learning-rates", type=_cli_args.floats,
                   help="comma-separated learning-rate grid")
  rep.add_argument("--mu", type=_cli_args.floats,
                   help="comma-separated μ0 (Table 5) or μ_max (Table 1) "
                   "values")
  rnn = rep.add_argument_group(
      "Table 5 fidelity choices", "the paper's silent points, one at a time "
      "(defaults: our reading of the paper; see RNNProtocol)")
  rnn.add_argument("--warmup-steps", type=int,
                   help="updates at μ = 0.9 before μ0 (default: the paper's "
                   "1,000; 1/5 of runs shorter than 5,000 updates)")
  rnn.add_argument("--loss-normalization",
                   choices=_protocols.LOSS_NORMALIZATIONS,
                   help="'step_mean' (default): mean over counted steps (the "
                   "2011 HF-RNN release's, up to 1/2 for squared error); "
                   "'sequence_sum': per-sequence sum (1/2 squared error), "
                   "mean over sequences")
  rnn.add_argument("--input-scale", type=float,
                   help=f"input-to-hidden std (default: Table 4's, "
                   f"{scales})")
  rnn.add_argument("--output-bias", choices=_protocols.OUTPUT_BIASES,
                   help="output bias at init: 'mean' (default, Table 4: the "
                   "average target) or 'zero'")
  rnn.add_argument("--no-center", action="store_true",
                   help="do not subtract the known input/target means")
  rnn.add_argument("--memorization-channels",
                   choices=_protocols.MEMORIZATION_CHANNELS,
                   help="memorization layout: 'overlapping' (the 2011 "
                   "release: go and blank on the last two symbols' channels; "
                   "gives Table 5's biases 2.5 and 8.0; the default of "
                   "--protocol paper and hour) or 'separate' (on channels of "
                   "their own; the default of --protocol quick)")
  rep.add_argument("--hf", action="store_true",
                   help="Table 5: also run an HF row of our own (not in the "
                   "paper): jaxmomentum.hessian_free with the 2011 HF-RNN "
                   "release's settings (structural damping 0.03, λ0 = 0.01 "
                   "× outputs, L2 2e-5; --protocol quick: 40 updates of ≤30 "
                   "CG iterations on 500 sequences), as a separate "
                   "column, and a figure of error vs gradient-equivalent "
                   "evaluations and vs wall time, HF and NAG")
  rep.add_argument("--data-dir", help="directory with the MNIST IDX files "
                   "or mnist.npz, digs3pts_1.mat (CURVES) and "
                   "newfaces_rot_single.mat (FACES); rows whose file is "
                   "missing are skipped with a message")
  rep.add_argument("--synthetic-curves", action="store_true",
                   help="run the curves row on the synthetic curves "
                   "stand-in (labelled as such; not the CURVES data set)")
  rep.add_argument("--checkpoint-every", type=_cli_args.seconds,
                   default=30.0,
                   help="seconds between checkpoints (default 30)")
  rep.add_argument("--no-progress", action="store_true",
                   help="no progress bars")
  speed = rep.add_argument_group(
      "speed", "how the runs are laid out; the numbers do not change")
  speed.add_argument("--unroll", type=int,
                     help="time steps per iteration of the RNN's loops "
                     "(Table 5; default 1)")
  speed.add_argument("--command-buffers", choices=("default", "off", "while"),
                     default="default",
                     help="XLA:GPU command buffers (CUDA graphs): 'while' "
                     "also records the on-device while loops; 'default' "
                     "leaves XLA's choice (no effect on CPU)")
  speed.add_argument("--concurrent-problems", default=None,
                     action=argparse.BooleanOptionalAction,
                     help="run Table 5's problems side by side on disjoint "
                     "device groups (default: with several GPUs/TPUs and "
                     "problems, in one process; on CPUs one after another)")
  dist = rep.add_argument_group(
      "multi-process (jax.distributed)",
      "start the same command in every process; unset flags are read from "
      "JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID")
  dist.add_argument("--coordinator-address",
                    help="HOST:PORT of process 0's coordinator")
  dist.add_argument("--num-processes", type=int, help="number of processes")
  dist.add_argument("--process-id", type=int,
                    help="this process's index, 0 .. num-processes - 1")
  rep.set_defaults(func=_reproduce)
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  args = build_parser().parse_args(argv)
  args.argv = argv
  # One CPU device per core, so grids use every core. A process flag: it is
  # set here, before JAX starts, never at library import.
  from jaxmomentum import training  # pylint: disable=import-outside-toplevel
  with warnings.catch_warnings():  # too late when called in a JAX process
    warnings.simplefilter("ignore", RuntimeWarning)
    training.use_all_cpu_cores()
  if args.command == "reproduce":
    _start_runtime(args)
  args.func(args)
  return 0


if __name__ == "__main__":
  sys.exit(main())
