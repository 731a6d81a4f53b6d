"""benchmarks/bench_table5_gpu.py --smoke: every part runs on a CPU.

The script is meant for a GPU machine; ``--smoke`` runs it on tiny sizes
(the real Table 5 program with 8 hidden units, batches of 4, 3 runs) so that
it stays runnable: machine line, numerics check, scaling, unroll, merged vs
separate, a command-buffer mode in a fresh process, and the extrapolation.
"""

import json
import os
import subprocess
import sys

import pytest

import jaxmomentum

# Fresh Python processes (each imports JAX and compiles): among the slowest.
pytestmark = pytest.mark.slow

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), "benchmarks", "bench_table5_gpu.py")


def test_smoke_run_covers_every_part(tmp_path):
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)
  root = os.path.dirname(os.path.dirname(os.path.abspath(
      jaxmomentum.__file__)))
  env["PYTHONPATH"] = os.pathsep.join(
      p for p in (root, env.get("PYTHONPATH")) if p)
  env["JAX_PLATFORMS"] = "cpu"
  out = tmp_path / "smoke.json"
  # One unroll value (one program fewer); unroll itself: tests/test_models.py.
  proc = subprocess.run([sys.executable, BENCH, "--smoke", "--unrolls", "1",
                         "--json", str(out)],
                        env=env, capture_output=True, text=True, timeout=600,
                        check=False)
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
  text = proc.stdout
  for part in ("machine:", "[numerics]", "[scaling]", "[unroll]", "[merged]",
               "[cmdbuf]", "[extrapolation]"):
    assert part in text, part
  report = json.loads(out.read_text())
  machine = report["machine"]
  assert machine["jax"] and machine["cpu_model"] and "avx2" in machine
  assert isinstance(machine["avx512"], list)
  assert all(r["ok"] for r in report["numerics"])
  assert [r["runs"] for r in report["scaling"]] == [3]
  assert [r["unroll"] for r in report["unroll"]] == [1]
  merged = report["merged"][0]
  assert [p["method"] for p in merged["separate"]] == ["nag", "cm"]
  assert [p["runs"] for p in merged["separate"]] == [2, 1]
  assert merged["merged"]["runs"] == 3 and merged["speedup"] > 0
  (cmdbuf,) = report["cmdbuf"]
  assert "error" not in cmdbuf, cmdbuf.get("error")
  assert "+WHILE" in cmdbuf["xla_flags"]  # the fresh process got the flags
  assert cmdbuf["rows"][0]["runs"] == 3
  extrapolation = report["extrapolation"]
  assert extrapolation["total_s"] > 0
  assert set(extrapolation["matmul_limited_s"]) == {"default", "highest"}
