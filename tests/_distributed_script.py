"""One process of the 2-process grid test (tests/test_training_distributed.py).

    python tests/_distributed_script.py ADDRESS NUM_PROCESSES PROCESS_ID \
        RESULT.npz [OUT_DIR]

joins ``jax.distributed`` through ``run_grid(distributed=...)``, runs the toy
grid of :func:`grid_run` sharded over every process's CPU devices
(checkpointed to OUT_DIR when given) and, in every process, saves the result
to RESULT.npz with the process index appended to the name; the report line
on stdout says which devices the run axis spanned.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def grid_run():
  """(trainer, grid, seeds): 2 seeds x 5 points, 3 chunks, one diverging.

  The sampler draws from a data argument (a NumPy array: nothing may start
  JAX's backends before ``jax.distributed``), which ``run_grid`` places on
  every process's devices.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  import _training_toy as toy  # pylint: disable=g-import-not-at-top
  from jaxmomentum import training  # pylint: disable=g-import-not-at-top

  def sample(key, batch_size, data):
    inputs, target = toy.sample(key, batch_size)
    return inputs * data[0], target * data[1]

  config = training.TrainConfig(num_steps=30, batch_size=8, eval_every=10,
                                chunk_size=10)
  trainer = training.make_train(config, toy.init, toy.loss, sample, toy.sgd,
                                eval_fn=toy.evaluate,
                                data=np.array([1.0, 1.0], np.float32))
  grid = {"learning_rate": [0.05, 50.0, 0.01, 0.002, 0.02], "momentum": [0.9]}
  return trainer, grid, [0, 1]


def main(address, num_processes, process_id, result_path, out_dir=None):
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from jaxmomentum import training  # pylint: disable=g-import-not-at-top
  import _training_script  # pylint: disable=g-import-not-at-top

  trainer, grid, seeds = grid_run()
  distributed = {"coordinator_address": address,
                 "num_processes": int(num_processes),
                 "process_id": int(process_id)}
  result = training.run_grid(trainer, grid, seeds, progress=True,
                             keep_state=True, out_dir=out_dir,
                             distributed=distributed)
  root, ext = os.path.splitext(result_path)
  _training_script.save_result(f"{root}.{jax.process_index()}{ext}", result)
  print(json.dumps({
      "process_index": jax.process_index(),
      "process_count": jax.process_count(),
      "devices": jax.device_count(),
      "local_devices": jax.local_device_count(),
      "chunks_run": result.chunks_run,
      "shape": list(np.shape(result.metrics["loss"]))}))
  jax.distributed.shutdown()


if __name__ == "__main__":
  main(*sys.argv[1:])
