"""Training-engine tests that need a fresh process (tests/_training_script.py).

* A grid run killed with SIGKILL (twice, at different chunks) and resumed
  from its orbax checkpoints ends with the same numbers, bit for bit, as an
  uninterrupted run.
* Sharded over 8 forced CPU devices equals one device (and its checkpoint
  restores on one device); with fewer runs than devices, each run's
  minibatch is split over several devices (equal up to float rounding).
* ``use_all_cpu_cores`` sets the CPU device count before the backend starts,
  and warns afterwards.
"""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

import _training_script as script
from jaxmomentum import training

# Fresh Python processes (each imports JAX and compiles): among the slowest.
pytestmark = pytest.mark.slow

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      "_training_script.py")
TIMEOUT_S = 240


def _env(**extra):
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)
  env.update(extra)
  return env


def _run_script(*args, **env):
  proc = subprocess.run([sys.executable, SCRIPT, *map(str, args)],
                        env=_env(**env), capture_output=True, text=True,
                        timeout=TIMEOUT_S, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc.stdout


def _latest_checkpoint(out_dir) -> int:
  folder = os.path.join(out_dir, "checkpoints")
  if not os.path.isdir(folder):
    return 0
  steps = [int(n) for n in os.listdir(folder) if n.isdigit()]
  return max(steps, default=0)


def _start_and_kill(out_dir, result_path, kill_after: int, delay_s: float):
  """Starts the grid run, SIGKILLs it once checkpoint ``kill_after`` exists."""
  proc = subprocess.Popen([sys.executable, SCRIPT, "grid", str(out_dir),
                           str(result_path)], env=_env(),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
  deadline = time.monotonic() + TIMEOUT_S
  try:
    while _latest_checkpoint(out_dir) < kill_after:
      if proc.poll() is not None:
        pytest.fail("the run ended before it could be killed: "
                    + proc.stderr.read().decode()[-2000:])
      if time.monotonic() > deadline:
        pytest.fail("no checkpoint appeared in time")
      time.sleep(0.005)
    time.sleep(delay_s)  # land somewhere inside a chunk or a save
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
  finally:
    proc.kill()
    proc.wait()
    proc.stderr.close()
  assert proc.returncode == -signal.SIGKILL


def test_killed_run_resumes_to_the_same_numbers(tmp_path):
  out_dir = tmp_path / "run"
  _start_and_kill(out_dir, tmp_path / "a.npz", kill_after=3, delay_s=0.0)
  first = _latest_checkpoint(out_dir)
  _start_and_kill(out_dir, tmp_path / "b.npz", kill_after=first + 8,
                  delay_s=0.013)
  killed_at = _latest_checkpoint(out_dir)
  assert 3 <= first < killed_at < 40
  _run_script("grid", out_dir, tmp_path / "resumed.npz")
  resumed = np.load(tmp_path / "resumed.npz")
  assert 0 < int(resumed["chunks_run"]) <= 40 - killed_at

  trainer, grid, seeds = script.make_grid_run()
  expected = training.run_grid(trainer, grid, seeds, progress=False,
                               keep_state=True)
  assert expected.diverged.any()  # the grid holds a diverging run
  np.testing.assert_array_equal(resumed["diverged_step"],
                                expected.diverged_step)
  for name, values in expected.metrics.items():
    np.testing.assert_array_equal(resumed[f"metric_{name}"], values)
  for i, leaf in enumerate(jax.tree.leaves(expected.final_state)):
    np.testing.assert_array_equal(resumed[f"state_{i}"], leaf)


def test_sharded_over_8_devices_equals_one_device():
  report = json.loads(_run_script(
      "shard", XLA_FLAGS="--xla_force_host_platform_device_count=8"
  ).splitlines()[-1])
  assert report["devices"] == 8
  assert report["probe_devices"] == 8  # the run axis spans all 8
  assert report["shape"] == [2, 5, 3]
  assert report["diverged"] == [[False, True, False, False, False]] * 2
  assert report["sharded_equals_single"]  # lax.map per device (CPU default)
  assert report["sharded_vmap_equals_single"]
  assert report["restored_equals_single"]
  assert report["restored_chunks_run"] == 0
  # Fewer runs than devices: each run's minibatch over several devices.
  batch = report["batch"]
  assert batch["one_seed_shards"] == 8 and batch["alone_shards"] == 1
  assert batch["two_runs_shards"] == 4
  assert batch["one_seed_close_to_one_device"]
  assert batch["vmap_shards"] == 8 and batch["vmap_close_to_one_device"]
  assert batch["resumed_chunks_run"] == 1  # the last chunk, on one device
  assert batch["resumed_close_to_one_device"]
  assert batch["two_runs_diverged"] == [[False, True]]
  assert batch["two_runs_diverged"] == batch["two_runs_diverged_alone"]
  assert batch["sum_loss_auto_shards"] == 1
  assert batch["sum_loss_auto_equals_one_device"]
  assert "needs loss_fn and eval_fn to be means" in batch[
      "sum_loss_explicit_error"]
  assert batch["replicas_equal"]


def test_use_all_cpu_cores_in_a_fresh_process():
  report = json.loads(_run_script("cores", 3).splitlines()[-1])
  assert report == {"returned": 3, "devices": 3, "late_returned": 3,
                    "late_warned": True}
  # An explicit XLA flag wins.
  report = json.loads(_run_script(
      "cores", 3, XLA_FLAGS="--xla_force_host_platform_device_count=2"
  ).splitlines()[-1])
  assert report["returned"] == 2 and report["devices"] == 2
