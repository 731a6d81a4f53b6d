"""``run_grid``: seeds x hyperparameter grid as one compiled, chunked program.

The runs of a grid form one flat axis, run ``r = s * P + p`` for seed ``s``
and grid point ``p``, sharded over a 1-D mesh of all devices (padded to a
multiple of the device count; the padding is dropped from the results).
Within a device the runs are batched with ``jax.vmap`` (GPU/TPU) or run one
after another with ``lax.map`` (CPU, where XLA's batched small matmuls cost
about a third more CPU time per run than unbatched ones). With fewer runs
than devices, each run's minibatch is split over several devices (a second
mesh axis, ``"batch"``; data parallelism), so no device idles. The run
proceeds chunk by chunk with one compiled program, with a
progress bar, and, given ``out_dir``, an atomic checkpoint after each chunk
from which a killed run resumes bit-for-bit.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import time
from typing import Any, Mapping, Optional, Sequence, Union
import weakref

import jax
from jax import lax
from jax.sharding import PartitionSpec as P
from jax.experimental import multihost_utils
import numpy as np

from jaxmomentum._validation import check_int
from jaxmomentum._validation import check_range
from jaxmomentum.training import _checkpoint
from jaxmomentum.training._devices import init_distributed
from jaxmomentum.training._devices import is_main_process
from jaxmomentum.training._devices import BATCH_AXIS
from jaxmomentum.training._devices import RUN_AXIS
from jaxmomentum.training._devices import run_batch_mesh
from jaxmomentum.training._devices import run_mesh
from jaxmomentum.training._digest import raw_keys
from jaxmomentum.training._grid import as_grid
from jaxmomentum.training._grid import Grid
from jaxmomentum.training._grid import GridSpec
from jaxmomentum.training._progress import Progress
from jaxmomentum.training._train import Trainer
from jaxmomentum.training._train import TrainState

_MAX_SEED = 2**31 - 1
_BATCHING = ("auto", "vmap", "map")
# Largest relative gap between the whole minibatch's loss and metrics and the
# mean over its slices that batch sharding accepts (float32 rounding is
# ~1e-6; a sum instead of a mean gives 1 - 1/batch_shards).
_BATCH_MEAN_TOLERANCE = 1e-3


@dataclasses.dataclass(frozen=True)
class GridResult:
  """Metrics of a seeds x grid run, with named axes.

  Attributes:
    metrics: name -> array of shape ``(num_seeds, grid.size, num_evals)``
      (axes ``("seed", "point", "eval")``): ``train_loss`` and the
      ``eval_fn`` metrics after each evaluation period. A diverged run keeps
      the values of its frozen (last finite) state after ``diverged_step``.
    diverged_step: int array ``(num_seeds, grid.size)``: the update at which
      the run became non-finite, -1 if it never did.
    seeds: the seeds, ``(num_seeds,)``; run ``(s, p)`` is the standalone run
      ``trainer(jax.random.key(seeds[s]), grid.point(p))``.
    grid: the :class:`Grid` of hyperparameter points.
    eval_steps: ``(num_evals,)``, the update count at each evaluation.
    wall_s: seconds this call spent (compilation included).
    chunks_run: chunks computed by this call (fewer than ``num_chunks`` when
      resumed from a checkpoint; 0 when the checkpoint was complete).
    chunk_s: seconds of each chunk computed by this call, from its dispatch
      to its metrics on the host (the first includes compilation, none
      includes checkpointing): ``config.chunk_size * num_runs / chunk_s`` is
      the throughput in run-updates/s.
    final_state: with ``keep_state=True``, the final :class:`TrainState` as
      numpy arrays of shape ``(num_seeds, grid.size, ...)`` (PRNG keys as
      their raw data); else ``None``.
    batch_shards: devices that shared each run's minibatch (1: one device
      per run; see :func:`run_grid`'s ``batch_shards``).
  """

  metrics: Mapping[str, np.ndarray]
  diverged_step: np.ndarray
  seeds: np.ndarray
  grid: Grid
  eval_steps: np.ndarray
  wall_s: float = 0.0
  chunks_run: int = 0
  chunk_s: tuple[float, ...] = ()
  final_state: Optional[TrainState] = None
  batch_shards: int = 1

  axes = ("seed", "point", "eval")

  @property
  def diverged(self) -> np.ndarray:
    """Bool ``(num_seeds, grid.size)``: the run diverged."""
    return self.diverged_step >= 0

  def final(self, name: str) -> np.ndarray:
    """``metrics[name]`` at the last evaluation, ``(num_seeds, grid.size)``."""
    return self.metrics[name][..., -1]


def _to_host(x) -> np.ndarray:
  """A (sharded, possibly multi-process) array on the host; PRNG keys as
  their raw data."""
  x = raw_keys(x)
  if getattr(x, "is_fully_addressable", True):
    return np.asarray(jax.device_get(x))
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def _pad_rows(x: np.ndarray, rows: int) -> np.ndarray:
  """``x`` with its last row repeated up to ``rows`` rows."""
  return np.pad(x, [(0, rows - len(x))] + [(0, 0)] * (x.ndim - 1),
                mode="edge")


def _as_seeds(seeds: Union[int, Sequence[int]]) -> np.ndarray:
  if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
    check_int("seeds", seeds, 1, _MAX_SEED + 1)
    return np.arange(int(seeds), dtype=np.int64)
  try:
    values = list(seeds)
  except TypeError as err:
    raise TypeError(f"seeds must be a count or a sequence of seeds, got "
                    f"{seeds!r}") from err
  if not values:
    raise ValueError("seeds must hold at least one seed")
  for s in values:
    check_int("seed", s, 0, _MAX_SEED)
  return np.asarray(values, dtype=np.int64)


def _resolve_batching(batching: str, mesh) -> str:
  if batching not in _BATCHING:
    raise ValueError(f"batching must be one of {_BATCHING}, got {batching!r}")
  if batching == "auto":
    return "map" if mesh.devices.flat[0].platform == "cpu" else "vmap"
  return batching


# run_grid's compiled programs: trainer -> {(device ids, mesh shape,
# batching): (init, run_chunk)}. Weak keys: the programs go when the trainer
# goes (they hold its functions, never the trainer itself).
_PROGRAMS: "weakref.WeakKeyDictionary[Trainer, dict]" = (
    weakref.WeakKeyDictionary())


def _programs(trainer: Trainer, mesh, batching: str, sharding):
  """The jitted, vmapped ``init`` and ``run_chunk`` of ``trainer`` on
  ``mesh``, compiled once per trainer and placement."""
  cache = _PROGRAMS.setdefault(trainer, {})
  key = (tuple(d.id for d in mesh.devices.flat), mesh.devices.shape, batching)
  if key not in cache:
    init, chunk = trainer.init, trainer.run_chunk

    def init_from_seed(seed, hparams):
      return init(jax.random.key(seed), hparams)

    spec = sharding.spec
    batch_shards = dict(mesh.shape).get(BATCH_AXIS, 1)
    if batch_shards > 1:  # each run's minibatch split over the batch axis
      chunk = trainer.run_chunk_over_batch(BATCH_AXIS, batch_shards)
    batched = jax.vmap(chunk, in_axes=(0, 0, None))
    if batching == "vmap" and batch_shards == 1:
      run_chunk = jax.jit(batched, donate_argnums=0, out_shardings=sharding)
    else:
      def run_chunk(state, hparams, data):  # this device's runs
        if batching == "vmap":
          return batched(state, hparams, data)
        return lax.map(lambda args: chunk(*args, data), (state, hparams))

      run_chunk = jax.jit(jax.shard_map(
          run_chunk, mesh=mesh, in_specs=(spec, spec, P()), out_specs=spec,
          check_vma=False), donate_argnums=0)  # user code runs inside
    cache[key] = (jax.jit(jax.vmap(init_from_seed), out_shardings=sharding),
                  run_chunk)
  return cache[key]


def _uses_the_batch(trainer: Trainer, hparams) -> bool:
  """Whether the optimizer takes the minibatch itself (an ``update`` with a
  ``batch`` parameter, as :func:`jaxmomentum.hessian_free`'s): its own work
  on it would be repeated on every device of a batch axis, not split."""
  if trainer.optimizer is None:
    return False
  opt_hparams = {k: v for k, v in hparams.items()
                 if k not in trainer.init_hparams}
  try:
    update = trainer.optimizer(opt_hparams).update
    return "batch" in inspect.signature(update).parameters
  except Exception:  # pylint: disable=broad-except
    # No signature, or a factory that only works on traced hparams: not
    # knowable here; the factory's own errors surface when the run traces.
    return False


def _auto_batch_shards(trainer: Trainer, num_runs: int, devices,
                       hparams=None) -> int:
  """Devices per run when there are fewer runs than devices in one process:
  the largest divisor of the device count that fits the runs into the
  devices and divides the batch size; 1 otherwise, and for an optimizer that
  works on the whole minibatch itself (hparams: a grid point's)."""
  num_devices = len(jax.devices() if devices is None else devices)
  if jax.process_count() > 1 or num_runs >= num_devices:
    return 1
  if hparams is not None and _uses_the_batch(trainer, hparams):
    return 1
  per_run = num_devices // num_runs
  return max(d for d in range(1, per_run + 1)
             if num_devices % d == 0 and trainer.config.batch_size % d == 0)


def _check_batch_shards(trainer: Trainer, batch_shards, num_runs: int,
                        devices, hparams) -> tuple[int, bool]:
  """``(shards, explicit)`` from run_grid's ``batch_shards`` argument."""
  if isinstance(batch_shards, str) and batch_shards == "auto":
    return _auto_batch_shards(trainer, num_runs, devices, hparams), False
  if isinstance(batch_shards, bool) or not isinstance(batch_shards,
                                                      (int, np.integer)):
    raise TypeError('batch_shards must be "auto" or an integer >= 1, got '
                    f"{batch_shards!r}")
  shards = check_int("batch_shards", batch_shards, 1)
  num_devices = len(jax.devices() if devices is None else devices)
  if num_devices % shards or trainer.config.batch_size % shards:
    raise ValueError(
        f"batch_shards must divide the number of devices ({num_devices}) and "
        f"the batch size ({trainer.config.batch_size}), got {shards}")
  if shards > 1 and jax.process_count() > 1:
    raise ValueError("batch_shards > 1 runs in a single process only; got "
                     f"{shards} with {jax.process_count()} processes")
  return shards, True


@functools.partial(jax.jit, static_argnums=(0, 4))
def _first_minibatch_gap(trainer: Trainer, seed, hparams, data, shards: int):
  """:attr:`Trainer.batch_mean_gap` at the initial state of run ``(seed,
  hparams)`` (trainers hash by identity: compiled once per trainer)."""
  state = trainer.init(jax.random.key(seed), hparams)
  return trainer.batch_mean_gap(state, data, shards)


def _batch_shards(trainer: Trainer, batch_shards, num_runs: int, devices,
                  seed: int, hparams) -> int:
  """Devices per run: ``batch_shards`` checked, and above 1 only when the
  loss and metrics are means over the batch on run ``(seed, hparams)``'s
  first minibatch (else ``"auto"`` gives 1 and an explicit value raises)."""
  shards, explicit = _check_batch_shards(trainer, batch_shards, num_runs,
                                         devices, hparams)
  if shards == 1:
    return 1
  try:
    gap = float(_first_minibatch_gap(trainer, np.int32(seed), hparams,
                                     trainer.data, shards))
  except (ValueError, TypeError):
    if explicit:  # our message naming the leaf, or the user's code's
      raise
    return 1  # e.g. a batch leaf without the batch axis first
  if gap <= _BATCH_MEAN_TOLERANCE:
    return shards
  if explicit:
    raise ValueError(
        f"batch_shards={shards} splits each minibatch over {shards} "
        "devices, which needs loss_fn and eval_fn to be means over the "
        "batch's leading axis (floating-point); on the first minibatch the "
        f"loss or metrics differ from the mean over its slices by {gap:.3g} "
        "(relative). Use batch_shards=1.")
  return 1


class _Placement:
  """Where the run axis lives, and run_grid's programs for one trainer."""

  def __init__(self, trainer: Trainer, devices, batching: str = "auto",
               batch_shards: int = 1):
    self.mesh = (run_mesh(devices) if batch_shards == 1
                 else run_batch_mesh(devices, batch_shards))
    self.num_devices = self.mesh.devices.size
    self.batch_shards = batch_shards
    self.run_shards = self.num_devices // batch_shards  # the run axis's size
    self.batching = _resolve_batching(batching, self.mesh)
    self.sharding = jax.sharding.NamedSharding(self.mesh, P(RUN_AXIS))
    self.replicated = jax.sharding.NamedSharding(self.mesh, P())
    self.init, self.run_chunk = _programs(trainer, self.mesh, self.batching,
                                          self.sharding)

  def put_replicated(self, tree):
    """A pytree of arrays, replicated on every device of the mesh (across
    processes: from each process's host copy, the same in every process)."""
    if self.replicated.is_fully_addressable:
      return jax.device_put(tree, self.replicated)

    def put(x):
      x = np.asarray(x)
      return jax.make_array_from_callback(x.shape, self.replicated,
                                          lambda index: x[index])
    return jax.tree.map(put, tree)

  def put(self, x: np.ndarray) -> jax.Array:
    """A host array with the run axis first, sharded over the mesh."""
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, self.sharding,
                                        lambda index: x[index])


def _description(trainer, grid, seeds, state, metric_names, tag):
  """What identifies a run: a checkpoint resumes only the run it describes.

  The state's entries (per run: path, shape, dtype; PRNG keys as their raw
  data) are as in the first checkpoint format, so checkpoints written by it
  keep their fingerprint.
  """
  raw = jax.eval_shape(lambda s: jax.tree.map(raw_keys, s), state)
  per_run = [(jax.tree_util.keystr(path), list(x.shape)[1:], str(x.dtype))
             for path, x in jax.tree_util.tree_flatten_with_path(raw)[0]]
  return {
      "version": 1,
      "config": dataclasses.asdict(trainer.config),
      "init_hparams": list(trainer.init_hparams),
      "seeds": [int(s) for s in seeds],
      "grid": {k: [float(v) if np.issubdtype(vals.dtype, np.floating)
                   else v.item() for v in vals]
               for k, vals in grid.values.items()},
      "grid_shape": list(grid.shape),
      "state": per_run,
      "metrics": sorted(metric_names),
      "tag": tag,
  }


def run_grid(
    trainer: Trainer,
    grid: GridSpec,
    seeds: Union[int, Sequence[int]] = 4,
    *,
    out_dir: Optional[Any] = None,
    checkpoint_every_s: float = 0.0,
    progress: bool = True,
    devices: Optional[Sequence[jax.Device]] = None,
    tag: str = "",
    keep_state: bool = False,
    batching: str = "auto",
    batch_shards: Union[int, str] = "auto",
    distributed: Optional[Mapping[str, Any]] = None,
) -> GridResult:
  """Trains every seed at every grid point in one compiled program.

  Run ``(s, p)`` is the standalone ``trainer(jax.random.key(seeds[s]),
  grid.point(p))`` (exactly, with one device per run; up to float rounding
  when its minibatch is split over several, see ``batch_shards``): its own
  initialization and data stream come from its
  seed (shared by all grid points of that seed), its hyperparameters are
  traced scalars in a ``vmap``. With several devices the run axis is sharded
  over all of them; each chunk of ``trainer.config.chunk_size`` updates is
  one call of one compiled program whose state buffers are donated.

  With ``out_dir``, the whole state (the sharded pytree, as orbax writes it)
  and the metrics so far are saved atomically (orbax-checkpoint) after a
  chunk whenever ``checkpoint_every_s`` seconds have passed since the last
  save, and always after the last chunk. If ``out_dir`` already holds a
  checkpoint of the same run (same configuration, seeds, grid, per-run state
  shapes and ``tag``; written on any number of devices), the run resumes
  from it and ends with the same numbers as an uninterrupted run; a
  checkpoint of a different run raises :class:`CheckpointError` (a
  ``ValueError``). Every checkpoint carries a digest of its arrays, checked on
  restore: a damaged one (unreadable, or not matching its digest) is moved to
  ``out_dir/damaged_checkpoints`` with a :class:`CheckpointWarning` naming it,
  and the run resumes from the newest good one, or starts over if none is
  left. The two newest verified checkpoints are kept. The fingerprint cannot
  see the code of the model or optimizer: change ``tag`` (or ``out_dir``) when
  that changes.

  Args:
    trainer: from :func:`make_train`.
    grid: a :class:`Grid`, a mapping name -> 1-D values (cartesian product,
      first name slowest) or a sequence of points (mappings).
    seeds: a count ``n`` (seeds ``0..n-1``) or a sequence of seeds, each in
      ``[0, 2**31 - 1]``.
    out_dir: folder for checkpoints (needs orbax-checkpoint); ``None``: none.
    checkpoint_every_s: minimum seconds between checkpoints, >= 0 (0: after
      every chunk).
    progress: show a tqdm progress bar.
    devices: the devices to shard runs over; default all (``jax.devices()``).
      ``devices=jax.devices()[:1]`` runs everything on one device.
    tag: a string stored in the fingerprint (e.g. a code version).
    keep_state: also return the final states (host memory: every run's
      params and optimizer state).
    batching: how a device runs its share of the runs: ``"vmap"`` (one
      batched program; best on GPU/TPU), ``"map"`` (``lax.map``, one run after
      another, each as the standalone program; best on CPU, where batched
      small matmuls cost more CPU time per run), or ``"auto"`` (``"map"`` on
      CPU devices, else ``"vmap"``). The numbers are the same either way.
    batch_shards: devices that share each run's minibatch (data
      parallelism): each samples the whole minibatch, computes the loss and
      gradient of its ``1/batch_shards`` slice of the leading axis, and the
      slices' gradients are averaged (``lax.pmean``) before the update. A
      positive int dividing the device count and the batch size, or
      ``"auto"`` (default): with fewer runs than devices in one process, as
      many devices per run as the devices hold (e.g. one seed on a 2-core
      machine's two CPU devices), else 1; also 1 for an optimizer whose
      ``update`` takes the minibatch itself (:func:`jaxmomentum.hessian_free`:
      its curvature work would be repeated on every device, not split).
      Above 1, ``loss_fn`` and ``eval_fn`` must be floating-point means over
      the batch's leading axis (then the numbers equal ``batch_shards=1``'s
      up to float rounding); ``run_grid`` checks this on the first minibatch
      and raises ``ValueError`` when they are not (``"auto"`` falls back to 1
      instead). One process only. A checkpoint resumes under any value (the
      rounding then follows the new one).
    distributed: settings for :func:`jaxmomentum.training.init_distributed`
      (``coordinator_address``, ``num_processes``, ``process_id``), applied
      before anything else; every process then calls ``run_grid`` with the
      same arguments, the runs are sharded over all processes' devices, every
      process gets the whole result, and only process 0 shows the progress bar
      (orbax writes a checkpoint's metadata from process 0; ``out_dir`` must
      be a folder every process sees). ``None``: as the process is (already
      initialised by ``init_distributed``, or a single process).

  Returns:
    A :class:`GridResult` with metrics of shape ``(seeds, points, evals)``.

  Example:
    >>> result = run_grid(trainer, {"learning_rate": [1e-2, 1e-3],
    ...                             "momentum": [0.9, 0.99]}, seeds=4,
    ...                   out_dir="runs/sgd")  # doctest: +SKIP
    >>> result.metrics["loss"].shape  # doctest: +SKIP
    (4, 4, 10)
  """
  if not isinstance(trainer, Trainer):
    raise TypeError(f"trainer must come from make_train, got {trainer!r}")
  if distributed is not None:
    if not isinstance(distributed, Mapping):
      raise TypeError("distributed must be a mapping of init_distributed's "
                      f"arguments, got {type(distributed).__name__}")
    init_distributed(**distributed)
  check_range("checkpoint_every_s", checkpoint_every_s, 0.0)
  start_time = time.perf_counter()
  config = trainer.config
  grid = as_grid(grid)
  seeds = _as_seeds(seeds)
  num_seeds, num_points = len(seeds), grid.size
  num_runs = num_seeds * num_points
  if out_dir is not None:  # after the argument checks, before compiling
    _checkpoint.check_out_dir(out_dir)
  shards = _batch_shards(trainer, batch_shards, num_runs, devices, seeds[0],
                         grid.point(0))
  placement = _Placement(trainer, devices, batching, shards)
  rows = -(-num_runs // placement.run_shards) * placement.run_shards

  run_seeds = placement.put(_pad_rows(
      np.repeat(seeds, num_points).astype(np.int32), rows))
  hparams = {k: placement.put(_pad_rows(np.tile(v, num_seeds), rows))
             for k, v in grid.values.items()}

  data = placement.put_replicated(trainer.data)  # once, shared
  state = placement.init(run_seeds, hparams)
  metric_shapes = jax.eval_shape(placement.run_chunk, state, hparams, data)[1]
  metrics = {k: np.full((num_runs, config.num_evals), np.nan, v.dtype)
             for k, v in metric_shapes.items()}

  chunks_done = 0
  checkpointer = None
  if out_dir is not None:
    description = _description(trainer, grid, seeds, state, metrics, tag)
    checkpointer = _checkpoint.GridCheckpointer(
        out_dir, _checkpoint.fingerprint(description), description, num_runs)
    restored = checkpointer.restore({"state": state, "metrics": metrics})
    if restored is not None:
      tree, chunks_done = restored
      state, metrics = tree["state"], tree["metrics"]

  bar = Progress(total=config.num_steps,
                 initial=chunks_done * config.chunk_size, num_runs=num_runs,
                 enabled=progress and is_main_process())
  epc = config.evals_per_chunk
  last_save = time.perf_counter()
  chunks_run = 0
  chunk_s = []
  try:
    for chunk in range(chunks_done, config.num_chunks):
      tic = time.perf_counter()
      state, chunk_metrics = placement.run_chunk(state, hparams, data)
      for k, v in chunk_metrics.items():
        metrics[k][:, chunk * epc:(chunk + 1) * epc] = _to_host(v)[:num_runs]
      num_diverged = int(np.sum(_to_host(state.diverged_at)[:num_runs] >= 0))
      chunk_s.append(time.perf_counter() - tic)
      chunks_run += 1
      bar.update(config.chunk_size, num_diverged)
      if chunks_run == 1:  # rates from the second chunk: no compile time
        bar.restart_clock()
      last = chunk + 1 == config.num_chunks
      if checkpointer is not None and (
          last or time.perf_counter() - last_save >= checkpoint_every_s):
        checkpointer.save(chunk + 1, {"state": state, "metrics": metrics})
        last_save = time.perf_counter()
  finally:
    bar.close()
    if checkpointer is not None:
      checkpointer.close()

  shape = (num_seeds, num_points)
  diverged_step = _to_host(state.diverged_at)[:num_runs].reshape(shape)
  final_state = None
  if keep_state:
    def per_run(x):
      x = _to_host(x)[:num_runs]
      return x.reshape(shape + x.shape[1:])
    final_state = jax.tree.map(per_run, state)
  return GridResult(
      metrics={k: v.reshape(shape + v.shape[1:]) for k, v in metrics.items()},
      diverged_step=diverged_step.astype(np.int32),
      seeds=seeds,
      grid=grid,
      eval_steps=np.asarray(config.eval_steps, np.int64),
      wall_s=time.perf_counter() - start_time,
      chunks_run=chunks_run,
      chunk_s=tuple(chunk_s),
      final_state=final_state,
      batch_shards=placement.batch_shards)
