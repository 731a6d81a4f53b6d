"""One optimizer update on N float32 parameters: jaxmomentum vs optax vs torch.

Times a jitted step ``(params, state, grads) -> (params, state)`` (the update
and ``optax.apply_updates`` in one program, and ``jaxmomentum.FusedUpdate``,
the opt-in one-pass C++ kernel on XLA's thread pool, in the "[FusedUpdate]"
rows) for ``jaxmomentum.cm``, ``nag`` and
``adam`` against ``optax.sgd(momentum, nesterov)`` and ``optax.adam``, with and
without buffer donation, and against ``torch.optim.SGD`` / ``Adam`` with the
foreach and fused kernels, all in one run. Prints ms per update, the GB/s each
achieves (bytes it must read and write per update / time), the machine's
measured memory bandwidth (a donated ``a + b`` on two 400 MB arrays), and the
ratios, under a line naming the machine (CPU model, vector extensions, jax
version; ``jaxmomentum/_machine.py``): the kernel is built with
``-march=native``, so its figures hold for that machine only.

Run (from the repository root, after ``make test`` has built .venv):

    .venv/bin/python benchmarks/bench_update.py            # 10M params
    .venv/bin/python benchmarks/bench_update.py --size 1e6 --repeats 3

Callers must donate params and optimizer state in their jitted step
(``jax.jit(step, donate_argnums=(0, 1))``): without donation XLA must allocate
and write fresh buffers every update (see the "no donation" rows).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import jax
import jax.numpy as jnp
import optax

import jaxmomentum as jm
from jaxmomentum import _machine

F32 = 4  # bytes


def _interleaved(loops: dict, iters: int, repeats: int) -> dict:
  """Median seconds per call for each ``loop(k)``, timed in interleaved rounds.

  Round-robin timing exposes every case to the same machine load, so the
  ratios stay meaningful on a shared or noisy machine.
  """
  for loop in loops.values():
    loop(max(2, iters // 5))  # warm-up and compilation
  samples = {name: [] for name in loops}
  for _ in range(repeats):
    for name, loop in loops.items():
      start = time.perf_counter()
      loop(iters)
      samples[name].append((time.perf_counter() - start) / iters)
  return {name: statistics.median(s) for name, s in samples.items()}


def bandwidth_loop(n: int = 100_000_000):
  """A donated ``a + b`` on two 400 MB float32 arrays (read 2, write 1)."""
  a = jnp.ones(n, jnp.float32)
  b = jnp.ones(n, jnp.float32)
  add = jax.jit(lambda a, b: a + b, donate_argnums=0)

  def loop(k):
    nonlocal a
    for _ in range(k):
      a = add(a, b)
    a.block_until_ready()

  return loop, 3 * n * F32


def optax_loop(opt, n: int, donate: bool):
  """``opt`` an optax optimizer (two calls) or a ``jm.FusedUpdate``."""
  params = jnp.zeros(n, jnp.float32)
  grads = jnp.full(n, 1e-3, jnp.float32)
  state = opt.init(params)

  def step(params, state, grads):
    return jm.update_and_apply(opt, grads, state, params)

  step = jax.jit(step, donate_argnums=(0, 1) if donate else ())

  def loop(k):
    nonlocal params, state
    for _ in range(k):
      params, state = step(params, state, grads)
    jax.block_until_ready(params)
    assert step._cache_size() == 1, "recompiled between calls"

  return loop


def torch_loop(make_opt, n: int):
  import torch  # pylint: disable=import-outside-toplevel
  p = torch.zeros(n, dtype=torch.float32, requires_grad=True)
  p.grad = torch.full((n,), 1e-3, dtype=torch.float32)
  opt = make_opt([p])

  def loop(k):
    for _ in range(k):
      opt.step()

  return loop


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--size", type=float, default=1e7,
                      help="number of float32 parameters (default 1e7)")
  parser.add_argument("--iters", type=int, default=50)
  parser.add_argument("--repeats", type=int, default=5)
  args = parser.parse_args()
  n = int(args.size)
  iters, repeats = args.iters, args.repeats

  print(f"# {_machine.machine_line()}")
  print(f"# {n:,} float32 params; jax on {jax.devices()[0].platform}; "
        f"optax {optax.__version__}")
  print(f"# {iters} updates per sample, median of {repeats} interleaved "
        f"rounds; load average {os.getloadavg()[0]:.1f} at start")

  sgd_bytes = 5 * n * F32   # read p, g, v; write p, v
  adam_bytes = 7 * n * F32  # read p, g, m, v; write p, m, v
  cases = {}  # name: (loop, bytes that must move per update)
  jax_cases = [
      ("jaxmomentum.cm", lambda: jm.cm(1e-3, 0.9), sgd_bytes),
      ("jaxmomentum.nag", lambda: jm.nag(1e-3, 0.9), sgd_bytes),
      ("optax.sgd(momentum)", lambda: optax.sgd(1e-3, 0.9), sgd_bytes),
      ("optax.sgd(nesterov)",
       lambda: optax.sgd(1e-3, 0.9, nesterov=True), sgd_bytes),
      ("jaxmomentum.adam", lambda: jm.adam(1e-3), adam_bytes),
      ("optax.adam", lambda: optax.adam(1e-3), adam_bytes),
  ]
  for name, make, nbytes in jax_cases:
    cases[name] = (optax_loop(make(), n, True), nbytes)
  fused_cases = [
      ("jaxmomentum.cm", lambda: jm.FusedUpdate.cm(1e-3, 0.9), sgd_bytes),
      ("jaxmomentum.nag", lambda: jm.FusedUpdate.nag(1e-3, 0.9), sgd_bytes),
      ("jaxmomentum.adam", lambda: jm.FusedUpdate.adam(1e-3), adam_bytes),
  ]
  for name, make, nbytes in fused_cases:
    cases[name + " [FusedUpdate]"] = (optax_loop(make(), n, True), nbytes)
  for name, make, nbytes in (jax_cases[1], jax_cases[3]):
    cases[name + " [no donation]"] = (optax_loop(make(), n, False), nbytes)
  try:
    import torch  # pylint: disable=import-outside-toplevel
    torch.set_num_threads(os.cpu_count() or 1)
    for impl in ("foreach", "fused"):
      kw = {impl: True}
      cases[f"torch SGD nesterov ({impl})"] = (torch_loop(
          lambda p, kw=kw: torch.optim.SGD(p, lr=1e-3, momentum=0.9,
                                           nesterov=True, **kw), n),
                                               sgd_bytes)
      cases[f"torch Adam ({impl})"] = (torch_loop(
          lambda p, kw=kw: torch.optim.Adam(p, lr=1e-3, **kw), n),
                                       adam_bytes)
  except ImportError:
    print("torch not installed: torch rows skipped (pip install torch==2.13.0)")
  cases["donated a + b (bandwidth)"] = bandwidth_loop()

  seconds = _interleaved({k: v[0] for k, v in cases.items()}, iters, repeats)
  peak_name = "donated a + b (bandwidth)"
  peak = cases[peak_name][1] / seconds[peak_name] / 1e9
  print(f"measured bandwidth (donated a + b, 2 x 400 MB): {peak:.1f} GB/s")
  print(f"FusedUpdate CPU kernels: "
        f"{'on' if jm._fused.kernels_available() else 'off'}"  # pylint: disable=protected-access
        f" ({jm._fused.fused_kernel_error() or 'compiled'})")
  print(f"# load average at end {os.getloadavg()[0]:.2f}\n")
  rows = [(k, seconds[k], v[1]) for k, v in cases.items() if k != peak_name]
  by_name = {name: s for name, s, _ in rows}
  print(f"{'optimizer':34s} {'ms/update':>10s} {'GB/s':>7s} {'% peak':>7s}")
  for name, seconds, nbytes in rows:
    gbs = nbytes / seconds / 1e9
    print(f"{name:34s} {seconds * 1e3:10.2f} {gbs:7.1f} {100 * gbs / peak:6.0f}%")

  print("\nratios (time of ours / time of theirs; < 1 means ours is faster):")
  pairs = [
      ("jaxmomentum.nag [FusedUpdate]", "torch SGD nesterov (fused)"),
      ("jaxmomentum.cm [FusedUpdate]", "torch SGD nesterov (fused)"),
      ("jaxmomentum.adam [FusedUpdate]", "torch Adam (fused)"),
      ("jaxmomentum.nag [FusedUpdate]", "optax.sgd(nesterov)"),
      ("jaxmomentum.adam [FusedUpdate]", "optax.adam"),
      ("jaxmomentum.nag", "optax.sgd(nesterov)"),
      ("jaxmomentum.cm", "optax.sgd(momentum)"),
      ("jaxmomentum.adam", "optax.adam"),
      ("jaxmomentum.nag", "torch SGD nesterov (fused)"),
      ("jaxmomentum.nag", "torch SGD nesterov (foreach)"),
      ("jaxmomentum.adam", "torch Adam (fused)"),
      ("jaxmomentum.nag", "jaxmomentum.nag [no donation]"),
      ("jaxmomentum.nag [FusedUpdate]", "jaxmomentum.nag"),
      ("jaxmomentum.cm [FusedUpdate]", "jaxmomentum.cm"),
      ("jaxmomentum.adam [FusedUpdate]", "jaxmomentum.adam"),
  ]
  for ours, theirs in pairs:
    if ours in by_name and theirs in by_name:
      print(f"  {ours} / {theirs}: {by_name[ours] / by_name[theirs]:.2f}x")


if __name__ == "__main__":
  main()
