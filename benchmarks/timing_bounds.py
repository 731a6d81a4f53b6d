"""The wall-time bounds that used to be assertions in tests/ (issue 16).

Timing depends on the machine and its load, so the test suite checks only
structure and values (no wall clock); this script measures the three bounds
those tests asserted and prints each against its target:

* ``initializers.sparse(15)`` draws a 2000 x 1000 kernel under ``jit`` in
  well under 2 s (~0.03 s on an idle 2-core CPU; a loop over the 1000 units
  would not be). The structural guard is
  ``tests/test_initializers.py::test_sparse_is_vectorised_no_loop_per_unit``.
* ``training.TrainConfig`` resolves its chunk size for int32-sized step
  counts (even a prime) in under 1 s: a sqrt(num_steps) divisor search.
* Sampling add T=80 (batch 100) inside ``jit`` costs under 10% of one
  100-unit RNN training step (``benchmarks/bench_problems.py``, few
  iterations; about 1% on CPU).

It exits non-zero if a bound is exceeded. Run (from the repository root; a
few seconds):

    .venv/bin/python benchmarks/timing_bounds.py
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys
import time

import jax

from jaxmomentum import _machine
from jaxmomentum import initializers
from jaxmomentum import training


def sparse_init_seconds() -> float:
  init = jax.jit(initializers.sparse(15), static_argnums=1)
  init(jax.random.key(0), (2000, 1000)).block_until_ready()  # compile
  start = time.perf_counter()
  init(jax.random.key(1), (2000, 1000)).block_until_ready()
  return time.perf_counter() - start


def chunk_search_seconds() -> float:
  worst = 0.0
  for num_steps in (2_147_483_647, 2_147_483_646, 1_000_000_007):
    start = time.perf_counter()
    training.TrainConfig(num_steps=num_steps, batch_size=1, eval_every=1)
    worst = max(worst, time.perf_counter() - start)
  return worst


def sample_over_step() -> float:
  path = pathlib.Path(__file__).resolve().parent / "bench_problems.py"
  spec = importlib.util.spec_from_file_location("bench_problems", path)
  bench = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(bench)
  times = bench.measure("add", batch_size=100, hidden=100, iters=4,
                        repeats=3, which=("sample", "step"))
  return times["sample"] / times["step"]


# name: (measure, bound, unit)
BOUNDS = {
    "sparse(15) 2000x1000 under jit": (sparse_init_seconds, 2.0, "s"),
    "TrainConfig chunk search, int32 steps": (chunk_search_seconds, 1.0, "s"),
    "sample add T=80 / RNN step": (sample_over_step, 0.10, ""),
}


def main() -> int:
  print(_machine.machine_line())
  exceeded = 0
  for name, (measure, bound, unit) in BOUNDS.items():
    value = measure()
    ok = value < bound
    exceeded += not ok
    print(f"{name:40s} {value:10.4g}{unit}  (bound {bound:g}{unit})  "
          f"{'ok' if ok else 'EXCEEDED'}")
  return 1 if exceeded else 0


if __name__ == "__main__":
  sys.exit(main())
