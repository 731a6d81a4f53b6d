"""Sampling add T=80 (batch 100) inside jit costs < 10% of an RNN step.

Uses the measurement of ``benchmarks/bench_problems.py`` (loaded from the
repository by path) with few iterations; the full figures come from running
that script. On CPU the ratio is about 1%, so the 10% bound holds with a wide
margin even on a loaded machine.
"""

import importlib.util
import pathlib

import pytest

_BENCH = (pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
          / "bench_problems.py")


def _load_benchmark():
  if not _BENCH.is_file():
    pytest.skip(f"{_BENCH} not present")
  spec = importlib.util.spec_from_file_location("bench_problems", _BENCH)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_sampling_is_under_ten_percent_of_a_training_step():
  times = _load_benchmark().measure("add", batch_size=100, hidden=100,
                                    iters=4, repeats=3,
                                    which=("sample", "step"))
  ratio = times["sample"] / times["step"]
  print(f"\nsample {1e3 * times['sample']:.3f} ms, step "
        f"{1e3 * times['step']:.3f} ms, ratio {100 * ratio:.2f}%")
  assert ratio < 0.10, times
