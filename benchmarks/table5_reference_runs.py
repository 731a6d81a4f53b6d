"""One Table 5 configuration in both stacks: ours (JAX) and the PyTorch reference.

Runs the same problem, learning rate ε, μ0, momentum type (NAG or CM),
warm-up, number of updates and seed through

  ours       ``jaxmomentum.reproduce._rnn_tables.make_rnn_trainer`` (the
             trainer ``jaxmomentum reproduce`` uses: the problem's sampler and
             centering, ``models.RNN`` with the Table 4 init, the problem's
             loss, ``nag``/``cm`` with ``rnn_warmup_schedule``), one compiled
             ``Trainer.run_chunk`` per evaluation period;
  reference  ``reference/torch_table5.py`` (written from the paper and the
             notes on the 2011 release only; imports nothing of ours),

and writes one JSON with both learning curves (minibatch loss of the period,
loss and zero-one error on fresh sequences at θ) and both stacks' traces of
what "establishing communication" (Table 5's caption) depends on: the
gradient norm reaching W_ih and the share of it from the marked steps,
|dL/dh| and |dL/dx| at the marked steps vs the end, the spectral radius of
W_hh, the sensitivity |dh_target/dx_mark| and d o_target / d x_mark (1 for a
solved add problem). Traces of both stacks are computed by the reference's
``traces`` on the same fixed batch (ours' θ copied into it; the two forward
passes agree to float rounding, ``tests/test_torch_reference.py``). Also a
PNG comparing the two, and the CPU model, its AVX2/AVX-512 flags and the
jax/jaxlib/torch versions.

The RNGs differ, so the two runs agree statistically, not step by step;
``--same-init`` starts the reference from our initial params to remove the
init's share of the difference. The reference's fidelity options
(``--norm sum``, ``--no-center``, ``--input-scale``, ``--ref-out-bias``)
change only the reference run, to test one decision at a time against ours.

Run (from the repository root; keep it short on a shared machine)::

  .venv/bin/python benchmarks/table5_reference_runs.py --problem add \\
      --steps 300 --warmup 20 --every 50 --lr 1e-5 --mu0 0.995 \\
      --method nag --seed 0 --out runs/add_ref

writes ``runs/add_ref.json`` and ``runs/add_ref.png``.
"""

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

# One thread per stack: the comparison, not the speed, is the point, and the
# machines this runs on are shared.
os.environ.setdefault(
    "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
    "intra_op_parallelism_threads=1")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import jaxmomentum as jm  # noqa: E402
from jaxmomentum.reproduce import _protocols  # noqa: E402
from jaxmomentum.reproduce import _rnn_tables  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NAMES = {"input_kernel": "W_ih", "recurrent_kernel": "W_hh",
         "hidden_bias": "b_h", "output_kernel": "W_ho", "output_bias": "b_o"}
# Table 5's rows both stacks have (keys of jaxmomentum.reproduce.paper.TABLE5).
PROBLEMS = ("add", "mem20", "mem5")


def load_reference():
  spec = importlib.util.spec_from_file_location(
      "torch_table5", ROOT / "reference" / "torch_table5.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def to_reference_params(params, dtype):
  """Our params tree (h @ W) -> the reference's dict (W h)."""
  out = {}
  for ours, theirs in NAMES.items():
    a = np.asarray(params["params"][ours], np.float64)
    out[theirs] = torch.tensor(a.T.copy() if a.ndim == 2 else a, dtype=dtype)
  return out


def run_ours(args, ref, trace_batch, ref_problem, log=print):
  """Our trainer, one ``run_chunk`` per evaluation period."""
  protocol = _protocols.PROTOCOLS["paper"][0].replace(
      num_steps=args.steps, batch_size=args.batch, warmup_steps=args.warmup,
      eval_every=args.every, eval_batch_size=args.eval_batch,
      num_eval_batches=1, hidden_size=args.hidden,
      memorization_channels="separate")  # the reference's layout
  trainer = _rnn_tables.make_rnn_trainer(args.problem, protocol, args.method)
  if trainer.config.evals_per_chunk != 1:
    raise SystemExit("use --every >= steps / 50 (one evaluation per chunk)")
  hparams = {"learning_rate": jnp.float32(args.lr),
             "mu0": jnp.float32(args.mu0)}
  t0 = time.perf_counter()
  state = trainer.init(jax.random.key(args.seed), hparams)
  init_params = state.params
  chunk = jax.jit(trainer.run_chunk)
  evaluate = jax.jit(trainer.evaluate)
  curve, traces = [], []

  def theta(state):
    if args.method == "nag":
      return jm.nag_eval_params(state.opt_state, state.params)
    return state.params

  def record(step, state, metrics):
    row = dict(step=step, train_loss=metrics.get("train_loss"),
               eval_loss=float(metrics["loss"]),
               eval_error=float(metrics["error"]),
               seconds=time.perf_counter() - t0)
    curve.append(row)
    params = theta(state)
    if not all(np.all(np.isfinite(np.asarray(a)))
               for a in jax.tree.leaves(params)):
      return
    tr = ref.traces(to_reference_params(params, torch.float64), ref_problem,
                    trace_batch)
    tr["step"] = step
    traces.append(tr)
    log(f"[ours] step {step:6d}  eval loss {row['eval_loss']:.5g}  error "
        f"{row['eval_error']:.4f}  |g W_ih| {tr['grad_norm/W_ih']:.3g}  rho "
        f"{tr['spectral_radius']:.3f}  dout/dx {tr.get('dout_dx_mark0', 0):.3g}")

  record(0, state, {k: v for k, v in evaluate(state, None).items()})
  for _ in range(trainer.config.num_chunks):
    state, metrics = chunk(state, hparams, None)
    step = int(state.step)
    record(step, state, {k: float(np.asarray(v)[-1])
                         for k, v in metrics.items()})
  diverged_at = int(state.diverged_at)
  return dict(curve=curve, traces=traces, diverged=diverged_at >= 0,
              diverged_at=diverged_at, seconds=time.perf_counter() - t0,
              init_params=init_params)


def environment(ref):
  env = ref.environment()
  import jaxlib  # pylint: disable=import-outside-toplevel
  env.update(jax=jax.__version__, jaxlib=jaxlib.__version__,
             numpy=np.__version__, jax_backend=jax.default_backend(),
             xla_flags=os.environ.get("XLA_FLAGS", ""),
             torch_threads=torch.get_num_threads())
  return env


def plot(path, result):
  """Learning curves and traces, ours vs the reference."""
  try:
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  except ImportError:
    return None
  runs = {"ours (JAX)": result["ours"], "reference (PyTorch)":
          result["reference"]}
  panels = [("eval_loss", "loss (fresh sequences, at θ)", "curve", True),
            ("eval_error", "zero-one error", "curve", False),
            ("grad_norm/W_ih", "|∂L/∂W_ih|", "traces", True),
            ("w_ih_grad_from_marks", "|∂L/∂W_ih| from the marked steps",
             "traces", True),
            ("spectral_radius", "spectral radius of W_hh", "traces", False),
            ("dout_dx_mark0", "∂o_target/∂x at mark 0", "traces", False)]
  fig, axes = plt.subplots(2, 3, figsize=(14, 7))
  for ax, (key, title, where, logy) in zip(axes.ravel(), panels):
    for label, run in runs.items():
      rows = [r for r in run[where] if r.get(key) is not None]
      ax.plot([r["step"] for r in rows], [r[key] for r in rows], label=label)
    ax.set_title(title)
    ax.set_xlabel("updates")
    if logy:
      ax.set_yscale("log")
  axes[0, 0].legend()
  c = result["config"]
  fig.suptitle(f"{c['problem']}: {c['method'].upper()} ε={c['lr']:g} "
               f"μ0={c['mu0']:g}, warm-up {c['warmup']}, seed {c['seed']}")
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)
  return path


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("--problem", default="add", choices=sorted(PROBLEMS))
  ap.add_argument("--steps", type=int, default=300)
  ap.add_argument("--lr", type=float, default=1e-5)
  ap.add_argument("--mu0", type=float, default=0.995)
  ap.add_argument("--method", default="nag", choices=["nag", "cm"])
  ap.add_argument("--warmup", type=int, default=1000,
                  help="updates at μ = 0.9 (the paper: 1,000)")
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--batch", type=int, default=100)
  ap.add_argument("--hidden", type=int, default=100)
  ap.add_argument("--every", type=int, default=None,
                  help="updates between evaluations (default steps / 20)")
  ap.add_argument("--eval-batch", type=int, default=300)
  ap.add_argument("--trace-batch", type=int, default=100)
  ap.add_argument("--same-init", action="store_true",
                  help="start the reference from our initial params")
  ap.add_argument("--norm", default="mean", choices=["mean", "sum"],
                  help="reference only: loss normalization")
  ap.add_argument("--no-center", action="store_true",
                  help="reference only: no centering")
  ap.add_argument("--input-scale", type=float, default=None,
                  help="reference only: W_ih scale (Table 4 by default)")
  ap.add_argument("--ref-out-bias", default="log_mean",
                  choices=["mean", "log_mean", "zero"],
                  help="reference only: softmax output bias (log_mean = ours)")
  ap.add_argument("--skip-ours", action="store_true")
  ap.add_argument("--skip-reference", action="store_true")
  ap.add_argument("--out", required=True, help="path prefix for .json/.png")
  a = ap.parse_args(argv)
  a.every = a.every or max(1, a.steps // 20)
  if a.warmup > a.steps:
    ap.error("--warmup must be <= --steps")
  torch.set_num_threads(1)
  ref = load_reference()
  ref_problem = ref.make_problem(a.problem)
  out = Path(a.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  trace_batch = ref_problem.sample(a.trace_batch,
                                   torch.Generator().manual_seed(10_000 + a.seed),
                                   torch.float64)
  result = dict(config=vars(a), environment=environment(ref))
  init = None
  if not a.skip_ours:
    ours = run_ours(a, ref, trace_batch, ref_problem)
    init = to_reference_params(ours.pop("init_params"), torch.float64)
    result["ours"] = ours
  if not a.skip_reference:
    def log(msg):
      print("[ref] " + msg.lstrip())
    result["reference"] = ref.train(
        ref_problem, a.steps, a.lr, a.mu0, a.method, a.seed, a.warmup, a.batch,
        a.hidden, a.every, a.eval_batch, a.trace_batch, dtype=torch.float32,
        norm=a.norm, centered=not a.no_center, input_scale=a.input_scale,
        out_bias=a.ref_out_bias, init=init if a.same_init else None,
        trace_data=trace_batch, log=log)
  json_path = out.with_suffix(".json")
  json_path.write_text(json.dumps(result, indent=1, default=float))
  print(f"wrote {json_path}")
  if "ours" in result and "reference" in result:
    png = plot(out.with_suffix(".png"), result)
    if png:
      print(f"wrote {png}")
  return result


if __name__ == "__main__":
  sys.exit(main() and 0)
