"""A grid split over 2 processes (jax.distributed) gives the 1-process result.

Two local CPU processes (tests/_distributed_script.py) join a coordinator on
a free localhost port through ``run_grid(distributed=...)``, each with 2 CPU
devices, so the run axis is sharded over 4 devices in 2 processes. They
resume a checkpoint one process wrote after the first of 3 chunks; every
process must return exactly (bit for bit) what one uninterrupted process
computes here, only process 0 shows a progress bar, and the orbax checkpoint
they write together restores in a single process without training again.
"""

import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

import _distributed_script as script
import jaxmomentum
from jaxmomentum import training
from jaxmomentum.training import _runner

# Fresh Python processes (each imports JAX and compiles): among the slowest.
pytestmark = pytest.mark.slow

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      "_distributed_script.py")
TIMEOUT_S = 180


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _env():
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)
  for name in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES",
               "JAX_PROCESS_ID"):
    env.pop(name, None)
  # The package under test, wherever it is imported from here.
  root = os.path.dirname(os.path.dirname(os.path.abspath(
      jaxmomentum.__file__)))
  env["PYTHONPATH"] = os.pathsep.join(
      p for p in (root, env.get("PYTHONPATH")) if p)
  env.update(JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=2")
  return env


def _run_two_processes(result_path, out_dir):
  address = f"localhost:{_free_port()}"
  procs = [subprocess.Popen(
      [sys.executable, SCRIPT, address, "2", str(i), str(result_path),
       str(out_dir)], env=_env(), stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, text=True) for i in range(2)]
  outputs = []
  try:
    for proc in procs:
      out, err = proc.communicate(timeout=TIMEOUT_S)
      assert proc.returncode == 0, err[-3000:]
      outputs.append((json.loads(out.splitlines()[-1]), err))
  finally:
    for proc in procs:
      proc.kill()
      proc.wait()
  return outputs


def _assert_same(saved, expected):
  for name, values in expected.metrics.items():
    np.testing.assert_array_equal(saved[f"metric_{name}"], values)
  np.testing.assert_array_equal(saved["diverged_step"], expected.diverged_step)
  leaves = jax.tree.leaves(expected.final_state)
  assert len(leaves) == sum(k.startswith("state_") for k in saved.files)
  for i, leaf in enumerate(leaves):
    np.testing.assert_array_equal(saved[f"state_{i}"], leaf)


def test_grid_over_two_processes_equals_one_process(tmp_path, monkeypatch):
  trainer, grid, seeds = script.grid_run()
  out_dir = tmp_path / "run"
  # One process saves the first of 3 chunks and is interrupted in the
  # second (the bar is updated before each chunk's checkpoint) ...
  update = _runner.Progress.update
  calls = []

  def interrupt_in_second_chunk(self, *args):
    calls.append(1)
    if len(calls) == 2:
      raise KeyboardInterrupt
    return update(self, *args)

  monkeypatch.setattr(_runner.Progress, "update", interrupt_in_second_chunk)
  with pytest.raises(KeyboardInterrupt):
    training.run_grid(trainer, grid, seeds, progress=False, out_dir=out_dir)
  monkeypatch.setattr(_runner.Progress, "update", update)

  # ... two processes resume its checkpoint and run the other two.
  reports = _run_two_processes(tmp_path / "result.npz", out_dir)
  for i, (report, _) in enumerate(reports):
    assert report == {"process_index": i, "process_count": 2, "devices": 4,
                      "local_devices": 2, "chunks_run": 2,
                      "shape": [2, 5, 3]}
  # Progress: process 0 only (tqdm or the log line both say "update").
  assert "update" in reports[0][1]
  assert "update" not in reports[1][1]

  expected = training.run_grid(trainer, grid, seeds, progress=False,
                               keep_state=True)
  assert expected.diverged.any() and not expected.diverged.all()
  for i in range(2):
    _assert_same(np.load(tmp_path / f"result.{i}.npz"), expected)

  # The checkpoint the two processes wrote together is complete: one
  # process restores it and trains nothing.
  restored = training.run_grid(trainer, grid, seeds, progress=False,
                               keep_state=True, out_dir=out_dir)
  assert restored.chunks_run == 0
  for name, values in expected.metrics.items():
    np.testing.assert_array_equal(restored.metrics[name], values)
