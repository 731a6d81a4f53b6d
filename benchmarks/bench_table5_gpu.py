"""Table 5 at GPU speed: the real program, every design choice, extrapolated.

Times the program ``jaxmomentum reproduce table5 --protocol paper`` runs
(``_rnn_tables.make_rnn_trainer`` through ``training.run_grid``: sampling,
the RNN, its hand-written backward, the optimizer, divergence masking and
the evaluations, ``vmap``-ed over runs on one device) and prints, per Table 5
problem:

  numerics   loss and gradients of the same params and batch on the
             accelerator vs on the CPU (default matmul precision, and
             ``"highest"``), as relative errors, with a pass/fail tolerance;
  scaling    run-updates/s at 1, 64, 112 (one problem's grid) and 448 runs
             (the whole table's run count) with NAG and CM in one program;
  unroll     the RNN's time loops unrolled 1, 2, 4, 8, 16 steps per loop
             iteration (``models.RNN(unroll=...)``), at 112 runs;
  merged     NAG and CM in one program (112 runs) vs one program each (64
             NAG runs, then 48 CM runs), per update of all 112 runs;
  cmdbuf     XLA's command buffers (CUDA graphs) ``default``, ``off`` and
             ``while`` (the on-device while loops recorded too;
             ``training.use_command_buffers``), each in a fresh process
             because XLA reads its flags once, at 112 runs with the best
             unroll (this process runs ``default``);

then extrapolates the full grid (4 problems x 112 runs x 50,000 updates, one
problem after another on one device, with the fastest design per problem)
and prints it beside the matmul-limited time (analytic FLOPs / the device's
measured matmul rate). The machine line gives the accelerator, the jax
version, the CPU model and its vector extensions (avx2, avx512*).

A chunk here is ``--steps`` updates with one evaluation of
``2 x steps`` fresh sequences, the paper's evaluation cost per update
(2 x 1,000 sequences every 1,000 updates); the first chunk (compilation) is
not timed, the rate is the best of the next two.

Run on a GPU machine with jax installed (no network needed), from the
repository root:

    python benchmarks/bench_table5_gpu.py                 # all problems
    python benchmarks/bench_table5_gpu.py --quick         # add and mem5
    python benchmarks/bench_table5_gpu.py --problems mem5 --unrolls 1,8
    python benchmarks/bench_table5_gpu.py --json out.json # also raw numbers
    python benchmarks/bench_table5_gpu.py --smoke         # tiny, any machine

``--smoke`` runs every part on tiny sizes (8 hidden units, batches of 4, 1-4
runs) so the script is tested on a CPU (tests/test_bench_table5_gpu.py); its
figures mean nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # run from a checkout without installing
  sys.path.insert(0, ROOT)

PAPER_RUNS_PER_PROBLEM = 112   # (16 NAG + 12 CM points) x 4 seeds
PAPER_UPDATES = 50_000
GOAL_S = 300.0                 # the goal: the full grid in 5 minutes
CMDBUF_MODES = ("default", "off", "while")


def _parse_ints(text: str) -> tuple[int, ...]:
  try:
    values = tuple(int(v) for v in text.split(",") if v.strip())
  except ValueError as err:
    raise argparse.ArgumentTypeError(
        f"expected comma-separated integers, got {text!r}") from err
  if not values or min(values) < 1:
    raise argparse.ArgumentTypeError(f"expected integers >= 1, got {text!r}")
  return values


def _parse_names(text: str) -> tuple[str, ...]:
  return tuple(v.strip() for v in text.split(",") if v.strip())


# -- the machine -------------------------------------------------------------

def cpu_info() -> dict:
  """CPU model and vector extensions, from /proc/cpuinfo where there is one."""
  model, flags = platform.processor() or platform.machine(), set()
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and value.strip():
          model = value.strip()
        elif key in ("flags", "Features") and not flags:
          flags = set(value.split())
  except OSError:
    pass
  return {"cpu_model": model, "cpu_cores": os.cpu_count(),
          "avx2": "avx2" in flags, "fma": "fma" in flags,
          "avx512": sorted(f for f in flags if f.startswith("avx512"))}


def machine_info() -> dict:
  import jax  # pylint: disable=import-outside-toplevel
  import jaxlib  # pylint: disable=import-outside-toplevel
  devices = jax.devices()
  return {"backend": jax.default_backend(),
          "device_kind": devices[0].device_kind,
          "device_count": len(devices),
          "jax": jax.__version__,
          "jaxlib": getattr(jaxlib, "__version__", "?"),
          "python": platform.python_version(),
          "xla_flags": os.environ.get("XLA_FLAGS", ""),
          **cpu_info()}


def machine_line(info: dict) -> str:
  avx512 = ",".join(info["avx512"]) or "no"
  return (f"machine: {info['device_kind']} x{info['device_count']} "
          f"(backend {info['backend']}); jax {info['jax']}, jaxlib "
          f"{info['jaxlib']}, python {info['python']}; CPU "
          f"{info['cpu_model']} ({info['cpu_cores']} cores, avx2 "
          f"{'yes' if info['avx2'] else 'no'}, fma "
          f"{'yes' if info['fma'] else 'no'}, avx512 {avx512})")


# -- the program -------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Sizes:
  """What one benchmark invocation runs."""

  problems: tuple[str, ...]
  runs: tuple[int, ...]
  unrolls: tuple[int, ...]
  steps: int
  cmdbuf_modes: tuple[str, ...]
  hidden_size: int = 100
  batch_size: int = 100
  smoke: bool = False


def protocol_for(sizes: Sizes, unroll: int = 1):
  """The paper's RNN protocol, ``sizes.steps`` updates a chunk, 3 chunks."""
  from jaxmomentum.reproduce import _protocols  # pylint: disable=import-outside-toplevel
  paper = _protocols.RNN_PAPER
  steps = sizes.steps
  # The paper's evaluation cost per update: 2 x 1,000 sequences / 1,000.
  eval_batch = max(1, round(paper.eval_batch_size * steps / paper.eval_every))
  smoke = {}
  if sizes.smoke:  # a 3-run grid: NAG at μ0 = 0 and 0.9, CM at 0.9
    eval_batch = min(eval_batch, 4)
    smoke = {"seeds": 1, "learning_rates": (1e-3,), "mu0s": (0.0, 0.9)}
  return dataclasses.replace(
      paper, name="bench", num_steps=3 * steps, eval_every=steps,
      warmup_steps=min(paper.warmup_steps, steps),
      batch_size=sizes.batch_size, hidden_size=sizes.hidden_size,
      eval_batch_size=eval_batch, num_eval_batches=paper.num_eval_batches,
      unroll=unroll, **smoke)


def design_runs(sizes: Sizes) -> int:
  """One problem's runs: its NAG and CM grid points x seeds (paper: 112)."""
  protocol = protocol_for(sizes)
  return _grid("nag+cm", protocol)[0].size * protocol.seeds


def problem_of(short_name: str):
  from jaxmomentum.reproduce import paper  # pylint: disable=import-outside-toplevel
  return paper.TABLE5[short_name].problem


def flops_per_update(problem, sizes: Sizes) -> float:
  """Matmul FLOPs of one update: forward 2 T B H (H + I + O), backward 2x."""
  h = sizes.hidden_size
  return 3.0 * 2 * problem.max_length * sizes.batch_size * h * (
      h + problem.in_dim + problem.out_dim)


def _grid(method: str, protocol, num_runs=None):
  """(grid, seeds): ``num_runs`` runs cycling through the merged Table 5
  points (seed 0), or a method's own grid x the protocol's seeds."""
  from jaxmomentum import training  # pylint: disable=import-outside-toplevel
  from jaxmomentum.reproduce import _methods  # pylint: disable=import-outside-toplevel
  lrs = list(protocol.learning_rates)
  if method == _methods.MERGED:
    grid = _methods.merged_grid("mu0", protocol.mu0s, lrs)
    if num_runs is None:
      return grid, protocol.seeds
    return training.Grid.points(
        [grid.point(i % grid.size) for i in range(num_runs)]), [0]
  mus = _methods.columns(protocol.mu0s)[method]
  return training.Grid.product(mu0=mus, learning_rate=lrs), protocol.seeds


_TRAINERS: dict = {}


def trainer_for(short_name: str, sizes: Sizes, method: str, unroll: int):
  """The Table 5 trainer, one per design (it keeps its compiled programs)."""
  from jaxmomentum.reproduce import _rnn_tables  # pylint: disable=import-outside-toplevel
  key = (short_name, sizes, method, unroll)
  if key not in _TRAINERS:
    _TRAINERS[key] = _rnn_tables.make_rnn_trainer(
        short_name, protocol_for(sizes, unroll), method)
  return _TRAINERS[key]


def time_program(short_name: str, sizes: Sizes, *, method: str = "nag+cm",
                 num_runs=None, unroll: int = 1) -> dict:
  """Three chunks of the real Table 5 program on one device: the rate.

  ``num_runs``: that many runs cycling through the problem's merged grid
  points (seed 0); ``None``: the grid of ``method`` x the protocol's seeds.
  """
  import jax  # pylint: disable=import-outside-toplevel
  from jaxmomentum import training  # pylint: disable=import-outside-toplevel
  protocol = protocol_for(sizes, unroll)
  trainer = trainer_for(short_name, sizes, method, unroll)
  grid, seeds = _grid(method, protocol, num_runs)
  result = training.run_grid(trainer, grid, seeds, progress=False,
                             devices=jax.devices()[:1])
  runs = result.metrics["loss"].shape[0] * result.metrics["loss"].shape[1]
  chunk_s = min(result.chunk_s[1:])
  return {"problem": short_name, "method": method, "runs": runs,
          "unroll": unroll, "steps": sizes.steps, "chunk_s": chunk_s,
          "compile_s": result.chunk_s[0] - chunk_s,
          "run_updates_per_s": runs * sizes.steps / chunk_s,
          "s_per_update": chunk_s / sizes.steps,
          "diverged": int(result.diverged.sum())}


# -- numerics: accelerator vs CPU --------------------------------------------

def check_numerics(short_name: str, sizes: Sizes) -> dict:
  """Loss and gradients of one run's params on one batch, device vs CPU."""
  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  from jaxmomentum.reproduce import _rnn_tables  # pylint: disable=import-outside-toplevel
  protocol = protocol_for(sizes)
  # The pieces make_rnn_trainer builds its trainer from: what the program
  # computes.
  init_fn, sample_fn, loss_fn, _ = _rnn_tables.rnn_task(short_name, protocol)
  try:
    cpu = jax.devices("cpu")[0]
  except RuntimeError as err:  # e.g. JAX_PLATFORMS=cuda
    return {"problem": short_name, "ok": False,
            "error": f"no CPU backend to compare with: {err}"}
  with jax.default_device(cpu):
    key = jax.random.key(0)
    params = jax.jit(init_fn)(jax.random.fold_in(key, 1))
    batch = jax.jit(sample_fn, static_argnums=1)(jax.random.fold_in(key, 2),
                                                 sizes.batch_size, None)
    params, batch = jax.device_get((params, batch))
  value_and_grad = jax.jit(jax.value_and_grad(loss_fn))
  out = {"problem": short_name,
         "device": jax.devices()[0].device_kind,
         "on_cpu_only": jax.default_backend() == "cpu"}
  for precision in ("default", "highest"):
    with jax.default_matmul_precision(precision):
      ref = jax.device_get(value_and_grad(jax.device_put(params, cpu),
                                         jax.device_put(batch, cpu)))
      dev = jax.devices()[0]
      got = jax.device_get(value_and_grad(jax.device_put(params, dev),
                                          jax.device_put(batch, dev)))
    loss_err = abs(float(got[0]) - float(ref[0])) / max(abs(float(ref[0])),
                                                       1e-30)
    grad_err = max(
        float(np.linalg.norm(np.ravel(g - r)) /
              max(np.linalg.norm(np.ravel(r)), 1e-30))
        for g, r in zip(jax.tree.leaves(got[1]), jax.tree.leaves(ref[1])))
    out[precision] = {"loss": float(ref[0]), "loss_rel_err": loss_err,
                      "grad_rel_err": grad_err}
  # TF32 (an accelerator's default for float32 matmuls) rounds to ~1e-3;
  # at "highest" only summation order differs.
  out["tolerance"] = {"default": 2e-2, "highest": 1e-4}
  out["ok"] = all(out[p]["loss_rel_err"] <= out["tolerance"][p]
                  and out[p]["grad_rel_err"] <= out["tolerance"][p]
                  for p in ("default", "highest"))
  return out


def matmul_rates(smoke: bool) -> dict:
  """The device's float32 matmul rate (GFLOP/s) at default and highest
  precision: the denominator of the matmul-limited time."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  n, iters = (256, 4) if smoke else (8192, 20)
  x = jax.random.normal(jax.random.key(0), (n, n), jnp.float32) / n ** 0.5
  out = {}
  for precision in ("default", "highest"):
    @jax.jit
    def chain(x, precision=precision):
      def body(y, _):
        return jnp.dot(y, x, precision=precision), None
      return jax.lax.scan(body, x, None, length=iters)[0]

    chain(x).block_until_ready()
    best = float("inf")
    for _ in range(3):
      tic = time.perf_counter()
      chain(x).block_until_ready()
      best = min(best, time.perf_counter() - tic)
    out[precision] = 2.0 * n ** 3 * iters / best / 1e9
  return out


# -- command buffers: one fresh process per mode ------------------------------

def _worker(spec: dict) -> None:
  """In a fresh process: set the command-buffer mode, then time."""
  from jaxmomentum import training  # pylint: disable=import-outside-toplevel
  training.use_command_buffers(spec["mode"])
  sizes = Sizes(**{k: tuple(v) if isinstance(v, list) else v
                   for k, v in spec["sizes"].items()})
  rows = []
  for job in spec["jobs"]:
    row = time_program(job["problem"], sizes, unroll=job["unroll"])
    row["mode"] = spec["mode"]
    rows.append(row)
  print("RESULT " + json.dumps(
      {"rows": rows, "xla_flags": os.environ.get("XLA_FLAGS", "")}))


def time_command_buffers(mode: str, jobs: list[dict], sizes: Sizes) -> dict:
  spec = {"mode": mode, "jobs": jobs, "sizes": dataclasses.asdict(sizes)}
  env = dict(os.environ)
  env["PYTHONPATH"] = os.pathsep.join(
      p for p in (ROOT, env.get("PYTHONPATH")) if p)
  proc = subprocess.run(
      [sys.executable, os.path.abspath(__file__), "--worker",
       json.dumps(spec)], env=env, capture_output=True, text=True,
      check=False)
  lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
  if proc.returncode != 0 or not lines:
    return {"mode": mode, "error": proc.stderr[-2000:]}
  return {"mode": mode, **json.loads(lines[-1][len("RESULT "):])}


# -- the report ---------------------------------------------------------------

def _row(row: dict, label: str) -> str:
  return (f"  {row['problem']:6s} {label:28s} {row['runs']:4d} runs  "
          f"{row['run_updates_per_s']:11.1f} run-updates/s  "
          f"{row['s_per_update'] * 1e3:8.3f} ms/update  compile "
          f"{row['compile_s']:6.1f} s")


def run(sizes: Sizes, log=print) -> dict:
  """Every part; returns the raw numbers (and prints them as it goes)."""
  info = machine_info()
  log(machine_line(info))
  report = {"machine": info, "sizes": dataclasses.asdict(sizes)}
  if info["backend"] == "cpu":
    log("NOTE: no accelerator: everything runs on the CPU (and the numerics "
        "check compares the CPU with itself)")
  rates = matmul_rates(sizes.smoke)
  report["matmul_gflops"] = rates
  log(f"matmul rate (float32, {'256' if sizes.smoke else '8192'}^2): "
      f"default precision {rates['default']:.0f} GFLOP/s, highest "
      f"{rates['highest']:.0f} GFLOP/s")

  log("\n[numerics] loss and gradients, device vs CPU, same params and batch")
  report["numerics"] = []
  for name in sizes.problems:
    r = check_numerics(name, sizes)
    report["numerics"].append(r)
    if "error" in r:
      log(f"  {name:6s} FAIL: {r['error']}")
      continue
    log(f"  {name:6s} default: loss {r['default']['loss_rel_err']:.1e}, "
        f"grads {r['default']['grad_rel_err']:.1e}; highest: loss "
        f"{r['highest']['loss_rel_err']:.1e}, grads "
        f"{r['highest']['grad_rel_err']:.1e}  "
        f"{'ok' if r['ok'] else 'FAIL'}")

  log("\n[scaling] NAG and CM in one program, unroll 1")
  report["scaling"] = []
  for name in sizes.problems:
    for n in sizes.runs:
      row = time_program(name, sizes, num_runs=n)
      report["scaling"].append(row)
      log(_row(row, "merged, unroll 1"))

  log(f"\n[unroll] one problem's grid ({design_runs(sizes)} runs), merged")
  report["unroll"] = []
  best_unroll = {}
  for name in sizes.problems:
    rows = [time_program(name, sizes, unroll=u) for u in sizes.unrolls]
    for row in rows:
      log(_row(row, f"unroll {row['unroll']}"))
    report["unroll"] += rows
    best_unroll[name] = max(rows, key=lambda r: r["run_updates_per_s"])
  report["best_unroll"] = {k: v["unroll"] for k, v in best_unroll.items()}

  log("\n[merged] NAG + CM in one program vs one program each "
      "(best unroll)")
  report["merged"] = []
  for name in sizes.problems:
    u = best_unroll[name]["unroll"]
    merged = best_unroll[name]
    parts = [time_program(name, sizes, method=m, unroll=u)
             for m in ("nag", "cm")]
    separate_s = sum(p["s_per_update"] for p in parts)
    runs = sum(p["runs"] for p in parts)
    for p in parts:
      log(_row(p, f"{p['method']} alone, unroll {u}"))
    log(_row(merged, f"merged, unroll {u}"))
    speedup = separate_s / (merged["s_per_update"] * runs / merged["runs"])
    log(f"  {name:6s} merged / separate: {speedup:.2f}x faster per update "
        f"of {runs} runs (compile {merged['compile_s']:.1f} s vs "
        f"{sum(p['compile_s'] for p in parts):.1f} s)")
    report["merged"].append({"problem": name, "separate": parts,
                             "merged": merged, "speedup": speedup})

  log("\n[cmdbuf] XLA command buffers, fresh process each, best unroll")
  jobs = [{"problem": n, "unroll": best_unroll[n]["unroll"]}
          for n in sizes.problems]
  report["cmdbuf"] = []
  best = {n: dict(best_unroll[n], mode="default (this process)")
          for n in sizes.problems}
  for mode in sizes.cmdbuf_modes:
    res = time_command_buffers(mode, jobs, sizes)
    report["cmdbuf"].append(res)
    if "error" in res:
      log(f"  {mode}: FAILED\n{res['error']}")
      continue
    for row in res["rows"]:
      log(_row(row, f"cmdbuf {mode}, unroll {row['unroll']}"))
      if row["run_updates_per_s"] > best[row["problem"]]["run_updates_per_s"]:
        best[row["problem"]] = row

  log(f"\n[extrapolation] {PAPER_RUNS_PER_PROBLEM} runs x "
      f"{PAPER_UPDATES:,} updates per problem, one problem after another, "
      "fastest design each")
  total = flops = 0.0
  extrapolation = []
  for name in sizes.problems:
    row = best[name]
    per_run = row["runs"] / PAPER_RUNS_PER_PROBLEM
    seconds = PAPER_UPDATES * row["s_per_update"] / per_run
    f = (flops_per_update(problem_of(name), sizes) * PAPER_UPDATES
         * PAPER_RUNS_PER_PROBLEM)
    total += seconds
    flops += f
    extrapolation.append({"problem": name, "seconds": seconds,
                          "design": {k: row.get(k) for k in (
                              "unroll", "mode", "runs")},
                          "matmul_flops": f})
    log(f"  {name:6s} {seconds / 60:7.2f} min  (unroll {row['unroll']}, "
        f"command buffers {row.get('mode', 'default')}; "
        f"{f / seconds / 1e9:.0f} GFLOP/s of matmul work)")
  at_most = [r for r in report["scaling"] if r["runs"] == max(sizes.runs)]
  if at_most and max(sizes.runs) > PAPER_RUNS_PER_PROBLEM:
    bigger = sum(PAPER_UPDATES * PAPER_RUNS_PER_PROBLEM / r["run_updates_per_s"]
                 for r in at_most)
    log(f"  (at each problem's {max(sizes.runs)}-run throughput, unroll 1 - "
        "what running several problems' grids in one batch could reach: "
        f"{bigger / 60:.2f} min)")
    report["at_largest_batch_s"] = bigger
  limits = {p: flops / (rates[p] * 1e9) for p in rates}
  log(f"  total  {total / 60:7.2f} min for {', '.join(sizes.problems)} "
      f"(goal for all four: {GOAL_S / 60:.0f} min); matmul-limited: "
      f"{limits['highest'] / 60:.2f} min at highest precision, "
      f"{limits['default'] / 60:.2f} min at default precision")
  if sizes.smoke:
    log("  (--smoke: tiny sizes, these figures mean nothing)")
  report["extrapolation"] = {"problems": extrapolation, "total_s": total,
                             "matmul_limited_s": limits, "goal_s": GOAL_S}
  return report


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--smoke", action="store_true",
                      help="tiny sizes, any machine (tests the script)")
  parser.add_argument("--quick", action="store_true",
                      help="fewer cases: add and mem5, 1/112/448 runs, "
                      "unroll 1 and 8, command buffers off and while")
  parser.add_argument("--problems", type=_parse_names,
                      help="Table 5 rows (default add,mul,mem5,mem20; "
                      "smoke: add)")
  parser.add_argument("--runs", type=_parse_ints,
                      help="run counts of the scaling part "
                      "(default 1,64,112,448)")
  parser.add_argument("--unrolls", type=_parse_ints,
                      help="unroll values (default 1,2,4,8,16)")
  parser.add_argument("--steps", type=int,
                      help="updates per timed chunk (default 200)")
  parser.add_argument("--command-buffers", type=_parse_names,
                      help=f"modes to time in fresh processes (default "
                      f"{','.join(CMDBUF_MODES)}; none: '')")
  parser.add_argument("--json", help="also write the raw numbers here")
  parser.add_argument("--worker", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.worker:
    _worker(json.loads(args.worker))
    return 0
  from jaxmomentum.reproduce._protocols import RNN_PROBLEMS  # pylint: disable=import-outside-toplevel
  if args.smoke:
    sizes = Sizes(problems=args.problems or ("add",),
                  runs=args.runs or (3,), unrolls=args.unrolls or (1, 2),
                  steps=args.steps or 2,
                  cmdbuf_modes=("while",) if args.command_buffers is None
                  else args.command_buffers,
                  hidden_size=8, batch_size=4, smoke=True)
  elif args.quick:
    sizes = Sizes(problems=args.problems or ("add", "mem5"),
                  runs=args.runs or (1, 112, 448),
                  unrolls=args.unrolls or (1, 8),
                  steps=args.steps or 200,
                  cmdbuf_modes=("off", "while") if args.command_buffers is None
                  else args.command_buffers)
  else:
    sizes = Sizes(problems=args.problems or tuple(RNN_PROBLEMS),
                  runs=args.runs or (1, 64, 112, 448),
                  unrolls=args.unrolls or (1, 2, 4, 8, 16),
                  steps=args.steps or 200,
                  cmdbuf_modes=CMDBUF_MODES if args.command_buffers is None
                  else args.command_buffers)
  unknown = [p for p in sizes.problems if p not in RNN_PROBLEMS]
  if unknown:
    parser.error(f"--problems must be among {list(RNN_PROBLEMS)}; unknown: "
                 f"{unknown}")
  bad = [m for m in sizes.cmdbuf_modes if m not in CMDBUF_MODES]
  if bad:
    parser.error(f"--command-buffers must be among {list(CMDBUF_MODES)}; "
                 f"unknown: {bad}")
  if sizes.steps < 1:
    parser.error("--steps must be >= 1")
  start = time.perf_counter()
  report = run(sizes)
  report["wall_s"] = time.perf_counter() - start
  print(f"\nbenchmark wall time: {report['wall_s'] / 60:.1f} min")
  if args.json:
    with open(args.json, "w", encoding="utf-8") as f:
      json.dump(report, f, indent=1)
  return 0 if all(r["ok"] for r in report["numerics"]) else 1


if __name__ == "__main__":
  sys.exit(main())
