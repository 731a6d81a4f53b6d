"""Training engine: one compiled program for seeds x hyperparameter grids.

Generic: it takes an init function, a loss, a batch sampler and an optimizer
factory (any optax transform), and names no model, problem or optimizer.

* :func:`make_train` builds the pure training functions of one run
  (``lax.scan`` of updates with evaluations every N updates, divergence
  masking) in the purejaxrl style; :class:`TrainConfig` configures it.
* :func:`run_grid` vmaps them over seeds x a hyperparameter :class:`Grid`,
  shards the runs over all devices, runs chunk by chunk with a progress bar,
  and checkpoints/resumes with orbax-checkpoint.
* :func:`summarize` selects the best learning rate per column and aggregates
  over seeds, as in the paper.
* :func:`use_all_cpu_cores` (for entry points, before JAX starts) gives the
  CPU backend one device per core, so the runner uses every core.
* :func:`init_distributed` (for entry points, before JAX starts) joins JAX's
  multi-process runtime: :func:`run_grid` then shards over every process's
  devices and only process 0 (:func:`is_main_process`) shows progress.
* :func:`device_groups` splits the devices into disjoint groups, so that
  several grids can run at once (``run_grid(..., devices=group)``).

Example:
  >>> import jax, jax.numpy as jnp, optax
  >>> from jaxmomentum import training
  >>> def sample(key, n, data):  # data: make_train's data, None here
  ...   x = jax.random.normal(key, (n, 3))
  ...   return x, x @ jnp.array([1.0, -2.0, 0.5])
  >>> def loss(w, batch):
  ...   x, y = batch
  ...   return jnp.mean((x @ w - y) ** 2)
  >>> trainer = training.make_train(
  ...     training.TrainConfig(num_steps=200, batch_size=32, eval_every=50),
  ...     init_fn=lambda key: jnp.zeros(3), loss_fn=loss, sample_fn=sample,
  ...     optimizer_factory=lambda learning_rate, momentum: optax.sgd(
  ...         learning_rate, momentum))
  >>> result = training.run_grid(
  ...     trainer, {"learning_rate": [0.01, 0.1], "momentum": [0.0, 0.9]},
  ...     seeds=2, progress=False)
  >>> result.metrics["loss"].shape  # (seed, grid point, evaluation)
  (2, 4, 4)
  >>> summary = training.summarize(result, objective="loss",
  ...                              select="learning_rate", report=("loss",))
  >>> len(summary.rows)  # one per momentum value
  2
"""

from jaxmomentum.training._checkpoint import CheckpointError as CheckpointError
from jaxmomentum.training._checkpoint import CheckpointWarning as CheckpointWarning
from jaxmomentum.training._config import TrainConfig as TrainConfig
from jaxmomentum.training._devices import available_cpu_cores as available_cpu_cores
from jaxmomentum.training._devices import device_groups as device_groups
from jaxmomentum.training._devices import init_distributed as init_distributed
from jaxmomentum.training._devices import is_main_process as is_main_process
from jaxmomentum.training._devices import run_mesh as run_mesh
from jaxmomentum.training._devices import use_all_cpu_cores as use_all_cpu_cores
from jaxmomentum.training._devices import use_command_buffers as use_command_buffers
from jaxmomentum.training._grid import Grid as Grid
from jaxmomentum.training._runner import GridResult as GridResult
from jaxmomentum.training._runner import run_grid as run_grid
from jaxmomentum.training._summary import aggregate_over_seeds as aggregate_over_seeds
from jaxmomentum.training._summary import ColumnSummary as ColumnSummary
from jaxmomentum.training._summary import DivergedRun as DivergedRun
from jaxmomentum.training._summary import mean_objective as mean_objective
from jaxmomentum.training._summary import SeedStats as SeedStats
from jaxmomentum.training._summary import select_best as select_best
from jaxmomentum.training._summary import summarize as summarize
from jaxmomentum.training._summary import Summary as Summary
from jaxmomentum.training._train import make_train as make_train
from jaxmomentum.training._train import Trainer as Trainer
from jaxmomentum.training._train import TrainState as TrainState

__all__ = [
    "CheckpointError",
    "CheckpointWarning",
    "ColumnSummary",
    "DivergedRun",
    "Grid",
    "GridResult",
    "SeedStats",
    "Summary",
    "TrainConfig",
    "TrainState",
    "Trainer",
    "aggregate_over_seeds",
    "available_cpu_cores",
    "device_groups",
    "init_distributed",
    "is_main_process",
    "make_train",
    "mean_objective",
    "run_grid",
    "run_mesh",
    "select_best",
    "summarize",
    "use_all_cpu_cores",
    "use_command_buffers",
]
