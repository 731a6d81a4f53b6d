"""HF vs NAG on a deep autoencoder at equal wall time; the cost of one G v.

Two measurements in one run, on the labelled synthetic CURVES stand-in
(``problems.synthetic_curves_standin``; not the CURVES data set) and a
logistic-output autoencoder (``--arch curves``: Table 1's
784-400-200-100-50-25-6 network; ``--arch small``: 784-200-50-6):

1. **G v against a gradient.** Seconds per jitted gradient
   (``jax.value_and_grad`` of the loss) on a batch, per Gauss-Newton product
   with the linearization reused (what each CG iteration costs), and per
   linearization plus one product (what each HF step pays once), all on the
   same batch; the ratios are the "gradient-equivalents" of one CG
   iteration.
2. **Equal wall time.** HF (``jaxmomentum.hessian_free``, Martens' defaults:
   λ₀ = 45, decay 0.95, backtracking, line search, weight cost 2e-5; the
   gradient, backtracking and line search on the whole training set, G and ρ
   on a cycled quarter of it) runs for ``--seconds`` of wall time after
   compilation; then NAG (``jaxmomentum.nag``, minibatches of 200, μ = 0.99,
   ``--lr``) runs for the same wall time. Both report the training error
   (squared error summed over pixels, mean over cases, on the whole training
   set) at the end, the number of updates, and gradient-equivalent
   evaluations on the training set's size (NAG: minibatch gradients x 200 /
   cases; HF: a lower bound, see ``run_hf``).

The CPU model, its AVX2/AVX-512 flags, the load average and the jax version
are printed with the results.

Run (from the repository root):

    .venv/bin/python benchmarks/bench_hessian_free.py --quick    # < 1 min
    .venv/bin/python benchmarks/bench_hessian_free.py --arch curves \\
        --cases 5000 --seconds 300
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxmomentum
from jaxmomentum import curvature
from jaxmomentum import problems
from jaxmomentum.models import AutoencoderArchitecture, DeepAutoencoder
from jaxmomentum.reproduce.paper import CURVES

SMALL = AutoencoderArchitecture("small", (784, 200, 50, 6), "logistic")


def machine() -> str:
  model, flags = platform.processor() or "unknown", set()
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name") and model in ("unknown", "x86_64",
                                                       ""):
          model = line.split(":", 1)[1].strip()
        if line.startswith("flags"):
          flags = set(line.split(":", 1)[1].split())
  except OSError:
    pass
  simd = [f for f in ("avx2", "avx512f", "avx512bw", "avx512vl") if f in flags]
  load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
  return (f"CPU: {model}; flags: {' '.join(simd) or 'no avx2/avx512'}; "
          f"{os.cpu_count()} cores; load average {load}; jax "
          f"{jax.__version__} ({jax.default_backend()})")


def median_seconds(fn, *args, repeats=5):
  jax.block_until_ready(fn(*args))  # compile
  times = []
  for _ in range(repeats):
    tic = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - tic)
  return statistics.median(times)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--arch", choices=("small", "curves"), default="curves")
  parser.add_argument("--cases", type=int, default=2000,
                      help="training cases of the stand-in")
  parser.add_argument("--seconds", type=float, default=60.0,
                      help="wall time per optimizer (after compilation)")
  parser.add_argument("--cg-max-iters", type=int, default=250)
  parser.add_argument("--lr", type=float, default=0.005,
                      help="NAG learning rate (summed-per-case loss)")
  parser.add_argument("--quick", action="store_true",
                      help="small net, 500 cases, 5 s each, 50 CG iters")
  args = parser.parse_args()
  if args.quick:
    args.arch, args.cases, args.seconds, args.cg_max_iters = (
        "small", 500, 5.0, 50)
  arch = SMALL if args.arch == "small" else CURVES

  print(machine())
  data = jnp.asarray(problems.synthetic_curves_standin(
      jax.random.key(20130617), args.cases), jnp.float32)
  model = DeepAutoencoder(arch)
  params0 = model.init(jax.random.key(0), data[:1])
  num_params = sum(x.size for x in jax.tree.leaves(params0))
  chunk = args.cases // 4
  print(f"{arch.name} autoencoder {'-'.join(map(str, arch.layer_sizes))}, "
        f"{num_params:,} params; synthetic curves stand-in (not CURVES), "
        f"{args.cases} cases; curvature chunk {chunk}")

  def outputs_fn(params, x):
    return model.apply(params, x, logits=True)

  problem = problems.reconstruction(arch.output)
  loss = problem.matching_loss()

  def loss_fn(params, x):
    return loss(outputs_fn(params, x), x)

  @jax.jit
  def error(params):
    return problem.error(outputs_fn(params, data), data)

  # -- 1. one G v against one gradient, same batch ----------------------------
  x = data[:chunk]
  grad_fn = jax.jit(jax.value_and_grad(loss_fn))
  v = jax.tree.map(jnp.ones_like, params0)

  def products(params, v, k):
    """Linearize once, then k chained products (as CG does)."""
    gv = curvature.gauss_newton_vp(outputs_fn, loss, params, x)
    def body(_, v):
      w = gv(v)
      return optax.tree.scale(1.0 / (optax.tree.norm(w) + 1e-30), w)
    return jax.lax.fori_loop(0, k, body, v)

  products = jax.jit(products, static_argnums=2)
  t_grad = median_seconds(grad_fn, params0, x)
  t_lin = median_seconds(products, params0, v, 1)
  t_gv = (median_seconds(products, params0, v, 11) - t_lin) / 10
  print(f"\n[G v vs gradient on {chunk} cases]  gradient {t_grad * 1e3:.2f} "
        f"ms; G v (linearization reused) {t_gv * 1e3:.2f} ms = "
        f"{t_gv / t_grad:.2f} gradients; linearize + G v "
        f"{t_lin * 1e3:.2f} ms = {t_lin / t_grad:.2f} gradients")

  # -- 2. HF vs NAG at equal wall time ---------------------------------------
  hf = jaxmomentum.hessian_free(outputs_fn, loss, l2_reg=2e-5,
                                cg_max_iters=args.cg_max_iters)

  @jax.jit
  def hf_step(params, state, k):
    cbatch = jax.lax.dynamic_slice_in_dim(data, (k % 4) * chunk, chunk)
    grads = jax.grad(loss_fn)(params, data)
    updates, state = hf.update(grads, state, params, batch=data,
                               curvature_batch=cbatch)
    return optax.apply_updates(params, updates), state

  gv_in_grads = t_gv / t_grad * chunk / args.cases  # one G v, in full grads

  def run_hf(seconds):
    params, state = params0, hf.init(params0)
    jax.block_until_ready(hf_step(params, state, 0))  # compile
    steps, evals, tic = 0, 0.0, time.perf_counter()
    while time.perf_counter() - tic < seconds:
      params, state = jax.block_until_ready(hf_step(params, state, steps))
      info = state.info
      # One gradient on the set; f(θ), f at the last CG iterate and the line
      # search's further tries, each a forward pass on the set (counted as
      # 1/3 gradient; the backtracking's other evaluations are not counted,
      # so this is a lower bound); CG iterations plus ρ's product, each one
      # G v on the chunk at its measured cost.
      forwards = 2 + max(int(info.linesearch_steps) - 1, 0)
      evals += 1 + forwards / 3 + (int(info.cg_iters) + 1) * gv_in_grads
      steps += 1
    wall = time.perf_counter() - tic
    return params, steps, evals, wall, state

  nag = jaxmomentum.nag(args.lr, 0.99)

  @jax.jit
  def nag_steps(params, state, key):
    def body(carry, k):
      params, state = carry
      xb = problems.sample_minibatch(k, 200, data)
      grads = jax.grad(loss_fn)(params, xb)
      updates, state = nag.update(grads, state, params)
      return (optax.apply_updates(params, updates), state), None
    (params, state), _ = jax.lax.scan(body, (params, state),
                                      jax.random.split(key, 50))
    return params, state

  def run_nag(seconds):
    params, state = params0, nag.init(params0)
    jax.block_until_ready(nag_steps(params, state, jax.random.key(1)))
    steps, tic = 0, time.perf_counter()
    while time.perf_counter() - tic < seconds:
      params, state = jax.block_until_ready(
          nag_steps(params, state, jax.random.key(steps)))
      steps += 50
    wall = time.perf_counter() - tic
    theta = jaxmomentum.nag_eval_params(state, params)
    return theta, steps, steps * 200 / args.cases, wall

  print(f"\n[equal wall time, {args.seconds:g} s each after compilation; "
        f"error at init {float(error(params0)):.3f}]")
  p_hf, n_hf, e_hf, w_hf, s_hf = run_hf(args.seconds)
  print(f"HF  (λ0=45, ≤{args.cg_max_iters} CG): {n_hf} updates in "
        f"{w_hf:.1f} s, {e_hf:.0f} gradient-equivalents; error "
        f"{float(error(p_hf)):.3f}; last step: {int(s_hf.info.cg_iters)} CG "
        f"iters, chose {int(s_hf.info.chosen_iter)}, rate "
        f"{float(s_hf.info.step_size):.3g}, λ {float(s_hf.damping):.3g}")
  p_nag, n_nag, e_nag, w_nag = run_nag(w_hf)
  print(f"NAG (ε={args.lr:g}, μ=0.99, batch 200): {n_nag} updates in "
        f"{w_nag:.1f} s, {e_nag:.0f} gradient-equivalents; error "
        f"{float(error(p_nag)):.3f}")


if __name__ == "__main__":
  main()
