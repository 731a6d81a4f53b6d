"""Subprocess entry points for test_training_subprocess.py.

    python tests/_training_script.py grid OUT_DIR RESULT.npz
        the checkpointed toy grid of make_grid_run(); writes the result
    python tests/_training_script.py shard
        (with XLA_FLAGS=--xla_force_host_platform_device_count=8) sharded over
        8 devices vs one device; prints a JSON report
    python tests/_training_script.py cores N
        use_all_cpu_cores(N) in a fresh process; prints a JSON report
"""

import json
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def make_grid_run():
  """(trainer, grid, seeds) of the kill-and-resume test: 40 chunks."""
  import _training_toy as toy  # pylint: disable=g-import-not-at-top
  trainer = toy.make_trainer(num_steps=400, eval_every=10, chunk_size=10)
  grid = {"learning_rate": [0.05, 50.0, 0.01], "momentum": [0.9]}
  return trainer, grid, [0, 1]


def save_result(path, result):
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  arrays = {f"metric_{k}": v for k, v in result.metrics.items()}
  leaves = jax.tree.leaves(result.final_state)
  arrays.update({f"state_{i}": np.asarray(x) for i, x in enumerate(leaves)})
  np.savez(path, diverged_step=result.diverged_step,
           chunks_run=result.chunks_run, **arrays)


def grid(out_dir, result_path):
  from jaxmomentum import training  # pylint: disable=g-import-not-at-top
  trainer, grid_spec, seeds = make_grid_run()
  result = training.run_grid(trainer, grid_spec, seeds, out_dir=out_dir,
                             progress=False, keep_state=True)
  save_result(result_path, result)


def shard():
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tempfile  # pylint: disable=g-import-not-at-top
  import _training_toy as toy  # pylint: disable=g-import-not-at-top
  from jaxmomentum import training  # pylint: disable=g-import-not-at-top
  from jaxmomentum.training import _runner  # pylint: disable=g-import-not-at-top

  trainer = toy.make_trainer(num_steps=30, eval_every=10, chunk_size=10)
  # 2 seeds x 5 points = 10 runs, padded to 16 over 8 devices.
  spec = {"learning_rate": [0.05, 50.0, 0.01, 0.002, 0.02], "momentum": [0.9]}
  placement = _runner._Placement(trainer, None)  # pylint: disable=protected-access
  probe = placement.put(np.arange(16, dtype=np.int32))
  report = {"devices": jax.device_count(),
            "probe_devices": len(probe.sharding.device_set)}
  with tempfile.TemporaryDirectory() as out_dir:
    sharded = training.run_grid(trainer, spec, 2, progress=False,
                                keep_state=True, out_dir=out_dir)
    sharded_vmap = training.run_grid(trainer, spec, 2, progress=False,
                                     keep_state=True, batching="vmap")
    single = training.run_grid(trainer, spec, 2, progress=False,
                               keep_state=True, devices=jax.devices()[:1])
    # The checkpoint of the sharded run restores on one device.
    restored = training.run_grid(trainer, spec, 2, progress=False,
                                 keep_state=True, out_dir=out_dir,
                                 devices=jax.devices()[:1])

  def same(a, b):
    leaves = zip(jax.tree.leaves(a.metrics) + jax.tree.leaves(a.final_state),
                 jax.tree.leaves(b.metrics) + jax.tree.leaves(b.final_state))
    try:
      for x, y in leaves:
        np.testing.assert_array_equal(x, y)  # NaN equals NaN here
      np.testing.assert_array_equal(a.diverged_step, b.diverged_step)
    except AssertionError:
      return False
    return True

  report.update(batch_sharding(trainer, same))
  report.update(
      sharded_equals_single=same(sharded, single),
      sharded_vmap_equals_single=same(sharded_vmap, single),
      restored_equals_single=same(restored, single),
      restored_chunks_run=restored.chunks_run,
      diverged=sharded.diverged.tolist(),
      shape=list(sharded.metrics["loss"].shape))
  print(json.dumps(report))


def batch_sharding(trainer, same):
  """Fewer runs than the 8 devices: each run's minibatch split over several
  (run_grid's batch_shards="auto"), against one device per run."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import shutil  # pylint: disable=g-import-not-at-top
  import tempfile  # pylint: disable=g-import-not-at-top
  import _training_toy as toy  # pylint: disable=g-import-not-at-top
  from jaxmomentum import training  # pylint: disable=g-import-not-at-top
  from jaxmomentum.training import _runner  # pylint: disable=g-import-not-at-top
  from jaxmomentum.training._digest import raw_keys  # pylint: disable=g-import-not-at-top

  def close(a, b):
    try:
      for x, y in zip(jax.tree.leaves(a.metrics), jax.tree.leaves(b.metrics)):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6)
      for x, y in zip(jax.tree.leaves(a.final_state.params),
                      jax.tree.leaves(b.final_state.params)):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6)
    except AssertionError:
      return False
    return True

  one_point = {"learning_rate": [0.05], "momentum": [0.9]}
  two_points = {"learning_rate": [0.05, 50.0], "momentum": [0.9]}
  single = jax.devices()[:1]
  report = {}
  with tempfile.TemporaryDirectory() as out_dir:
    one_seed = training.run_grid(trainer, one_point, 1, progress=False,
                                 keep_state=True, out_dir=out_dir)
    # Resume mid-run on one device: drop the last chunk's checkpoint.
    folder = os.path.join(out_dir, "checkpoints")
    shutil.rmtree(os.path.join(folder, str(max(
        int(n) for n in os.listdir(folder) if n.isdigit()))))
    resumed = training.run_grid(trainer, one_point, 1, progress=False,
                                keep_state=True, out_dir=out_dir,
                                devices=single)
  alone = training.run_grid(trainer, one_point, 1, progress=False,
                            keep_state=True, devices=single)
  one_seed_vmap = training.run_grid(trainer, one_point, 1, progress=False,
                                    keep_state=True, batching="vmap")
  pair = training.run_grid(trainer, two_points, 1, progress=False,
                           keep_state=True)
  pair_alone = training.run_grid(trainer, two_points, 1, progress=False,
                                 keep_state=True, devices=single)
  # A loss that is a sum over the batch, not a mean: "auto" keeps one
  # device per run (the same numbers, bit for bit); asked for, it raises.
  summed = toy.make_trainer(num_steps=20, eval_every=10, chunk_size=10,
                            loss=lambda p, b: b[1].shape[0] * toy.loss(p, b))
  summed_auto = training.run_grid(summed, one_point, 1, progress=False,
                                  keep_state=True)
  summed_alone = training.run_grid(summed, one_point, 1, progress=False,
                                   keep_state=True, devices=single)
  try:
    training.run_grid(summed, one_point, 1, progress=False, batch_shards=2)
    summed_error = ""
  except ValueError as err:
    summed_error = str(err)
  # The copies of a run on its batch devices stay bit-identical.
  placement = _runner._Placement(trainer, None, "map", 8)  # pylint: disable=protected-access
  hparams = {k: placement.put(np.float32(v)) for k, v in one_point.items()}
  state = placement.init(placement.put(np.zeros(1, np.int32)), hparams)
  state = placement.run_chunk(state, hparams, None)[0]
  replicas_equal = all(
      np.array_equal(np.asarray(shard.data), np.asarray(
          x.addressable_shards[0].data))
      for x in jax.tree.leaves(jax.tree.map(raw_keys, state))
      for shard in x.addressable_shards)
  report["batch"] = {
      "one_seed_shards": one_seed.batch_shards,
      "one_seed_close_to_one_device": close(one_seed, alone),
      "vmap_shards": one_seed_vmap.batch_shards,
      "vmap_close_to_one_device": close(one_seed_vmap, alone),
      "resumed_chunks_run": resumed.chunks_run,
      "resumed_close_to_one_device": close(resumed, alone),
      "two_runs_shards": pair.batch_shards,
      "two_runs_diverged": pair.diverged.tolist(),
      "two_runs_diverged_alone": pair_alone.diverged.tolist(),
      "sum_loss_auto_shards": summed_auto.batch_shards,
      "sum_loss_auto_equals_one_device": same(summed_auto, summed_alone),
      "sum_loss_explicit_error": summed_error,
      "replicas_equal": replicas_equal,
      "alone_shards": alone.batch_shards,
  }
  return report


def cores(n):
  from jaxmomentum import training  # pylint: disable=g-import-not-at-top
  got = training.use_all_cpu_cores(n)
  import jax  # pylint: disable=g-import-not-at-top
  report = {"returned": got, "devices": len(jax.devices("cpu"))}
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    report["late_returned"] = training.use_all_cpu_cores(n + 1)
  report["late_warned"] = any("before any JAX computation" in str(w.message)
                              for w in caught)
  print(json.dumps(report))


if __name__ == "__main__":
  command = sys.argv[1]
  if command == "grid":
    grid(sys.argv[2], sys.argv[3])
  elif command == "shard":
    shard()
  elif command == "cores":
    cores(int(sys.argv[2]))
  else:
    raise SystemExit(f"unknown command {command!r}")
