"""Devices: one CPU device per core, and the mesh the run axis is sharded on."""

from __future__ import annotations

import os
import re
import warnings
from typing import Optional, Sequence

import jax
import numpy as np

from jaxmomentum._validation import check_int

RUN_AXIS = "runs"
BATCH_AXIS = "batch"  # run_grid's second mesh axis: one minibatch split over it
_FORCE_FLAG = "--xla_force_host_platform_device_count"


def _set_cpu_device_count(n: int) -> bool:
  """Sets ``jax_num_cpu_devices``; False if JAX's backends already started
  with another value (JAX then refuses the change with a RuntimeError)."""
  try:
    jax.config.update("jax_num_cpu_devices", n)
  except RuntimeError:
    return False
  return True


def _backends_initialized() -> bool:
  """Whether JAX has started its backends, through public API only.

  JAX has no public query, but refuses to change ``jax_num_cpu_devices``
  once its backends are up: try a change and undo it.
  """
  current = jax.config.jax_num_cpu_devices
  if not _set_cpu_device_count(max(current, 0) + 1):
    return True
  _set_cpu_device_count(current)
  return False


def available_cpu_cores() -> int:
  """The CPU cores this process may run on (its affinity mask)."""
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:  # pragma: no cover - macOS, Windows
    return os.cpu_count() or 1


def _forced_count_from_flags() -> Optional[int]:
  match = re.search(_FORCE_FLAG + r"=(\d+)", os.environ.get("XLA_FLAGS", ""))
  return int(match.group(1)) if match else None


def use_all_cpu_cores(num_devices: Optional[int] = None, *,
                      strict: bool = False) -> int:
  """Makes JAX's CPU backend expose one device per core (a process flag).

  XLA's CPU backend runs one small-matmul program on one core, so the
  training runner gets its parallelism from sharding the run axis over
  several host devices. The host-device count is fixed when JAX initialises
  its backends, so an entry point (a script's ``main``, the CLI) must call
  this right after ``import jax`` and before any JAX computation; the library
  never calls it at import.

  It sets ``jax_num_cpu_devices``. An explicit
  ``--xla_force_host_platform_device_count`` in ``XLA_FLAGS`` wins and is left
  alone. On a GPU/TPU machine it only affects the CPU backend, which is then
  not the default.

  Args:
    num_devices: CPU devices to create, >= 1; ``None``: the cores this process
      may use.
    strict: raise ``RuntimeError`` instead of warning when JAX's backends are
      already initialised.

  Returns:
    The number of CPU devices JAX will have (the current count if it is too
    late to change it).

  Example:
    >>> import jax
    >>> from jaxmomentum import training
    >>> n = training.use_all_cpu_cores()  # first thing in main()  # doctest: +SKIP
  """
  if num_devices is None:
    num_devices = available_cpu_cores()
  num_devices = check_int("num_devices", num_devices, 1)
  forced = _forced_count_from_flags()
  if forced is not None:  # the backend has (or will have) that many
    return forced
  if _set_cpu_device_count(num_devices):
    return num_devices
  current = len(jax.devices("cpu"))  # the backends are up: too late
  if current != num_devices:
    msg = (f"use_all_cpu_cores({num_devices}) was called after JAX "
           f"initialised its backends; keeping {current} CPU device(s). Call "
           "it at the start of the entry point, before any JAX computation.")
    if strict:
      raise RuntimeError(msg)
    warnings.warn(msg, RuntimeWarning, stacklevel=2)
  return current


def run_mesh(devices: Optional[Sequence[jax.Device]] = None) -> jax.sharding.Mesh:
  """A 1-D mesh named ``"runs"`` over ``devices`` (default: all devices).

  With ``jax.distributed`` initialised, ``jax.devices()`` lists the devices of
  every host, so the same mesh spans them all.
  """
  devices = list(jax.devices() if devices is None else devices)
  if not devices:
    raise ValueError("devices must not be empty")
  return jax.sharding.Mesh(np.asarray(devices), (RUN_AXIS,))


def run_batch_mesh(devices: Optional[Sequence[jax.Device]],
                   batch_shards: int) -> jax.sharding.Mesh:
  """A 2-D mesh ``("runs", "batch")``: ``batch_shards`` consecutive devices
  share each run's minibatch (``batch_shards`` must divide the device count)."""
  devices = list(jax.devices() if devices is None else devices)
  if not devices:
    raise ValueError("devices must not be empty")
  if len(devices) % batch_shards:
    raise ValueError(f"batch_shards ({batch_shards}) must divide the number "
                     f"of devices ({len(devices)})")
  grid = np.asarray(devices).reshape(-1, batch_shards)
  return jax.sharding.Mesh(grid, (RUN_AXIS, BATCH_AXIS))


# The environment variables :func:`init_distributed` reads when an argument is
# not given (JAX itself reads only the first; the others are ours).
DISTRIBUTED_ENV = {"coordinator_address": "JAX_COORDINATOR_ADDRESS",
                   "num_processes": "JAX_NUM_PROCESSES",
                   "process_id": "JAX_PROCESS_ID"}


def _env_int(name: str) -> Optional[int]:
  text = os.environ.get(name)
  if text is None or not text.strip():
    return None
  try:
    return int(text)
  except ValueError as err:
    raise ValueError(f"{name} must be an integer, got {text!r}") from err


def init_distributed(coordinator_address: Optional[str] = None,
                     num_processes: Optional[int] = None,
                     process_id: Optional[int] = None) -> bool:
  """Joins JAX's multi-process runtime (``jax.distributed.initialize``).

  Every process of a multi-process grid calls this first, before any JAX
  computation, with the same ``coordinator_address`` (``host:port`` of
  process 0) and ``num_processes``, and its own ``process_id`` in
  ``[0, num_processes)``. Then ``jax.devices()`` lists every process's
  devices, :func:`run_grid` shards its runs over all of them, and only
  process 0 shows progress bars (the reproduce tables are written by process
  0 only).

  An argument left ``None`` is read from ``JAX_COORDINATOR_ADDRESS``,
  ``JAX_NUM_PROCESSES`` or ``JAX_PROCESS_ID``. With none of the three given,
  nothing happens unless the coordinator's variable is set, or a cluster JAX
  detects by itself (SLURM, Open MPI, ...) is asked for by setting
  ``JAX_NUM_PROCESSES``. A second call with the same settings is a no-op.

  Args:
    coordinator_address: ``"host:port"`` of process 0's coordinator service.
    num_processes: the number of processes, >= 1.
    process_id: this process's index, in ``[0, num_processes)``.

  Returns:
    True if JAX's multi-process runtime is initialised on return (by this call
    or before), False if there was nothing to initialise.

  Raises:
    ValueError: on a bad value, or settings that differ from an earlier call.
    RuntimeError: if JAX already started its backends in this process.

  Example:
    >>> from jaxmomentum import training
    >>> training.init_distributed(  # first thing in main()  # doctest: +SKIP
    ...     "10.0.0.1:1234", num_processes=2, process_id=0)
    True
  """
  if coordinator_address is None:
    coordinator_address = os.environ.get(DISTRIBUTED_ENV["coordinator_address"])
  if num_processes is None:
    num_processes = _env_int(DISTRIBUTED_ENV["num_processes"])
  if process_id is None:
    process_id = _env_int(DISTRIBUTED_ENV["process_id"])
  if coordinator_address is None and num_processes is None and process_id is None:
    return jax.distributed.is_initialized()
  if num_processes is not None:
    num_processes = check_int("num_processes", num_processes, 1)
  if process_id is not None:
    process_id = check_int("process_id", process_id, 0,
                           None if num_processes is None else num_processes - 1)
  if coordinator_address is not None and (
      not isinstance(coordinator_address, str)
      or not re.fullmatch(r".+:\d+", coordinator_address)):
    raise ValueError("coordinator_address must be 'host:port', got "
                     f"{coordinator_address!r}")
  if jax.distributed.is_initialized():
    wanted = (num_processes, process_id)
    have = (jax.process_count(), jax.process_index())
    if any(w is not None and w != h for w, h in zip(wanted, have)):
      raise ValueError(
          f"jax.distributed is already initialised as process {have[1]} of "
          f"{have[0]}; asked for process {process_id} of {num_processes}")
    return True
  if _backends_initialized():
    raise RuntimeError(
        "init_distributed must run before any JAX computation (JAX's backends "
        "are already initialised in this process); call it first in main()")
  jax.distributed.initialize(coordinator_address=coordinator_address,
                             num_processes=num_processes,
                             process_id=process_id)
  return True


def is_main_process() -> bool:
  """True in process 0 (the one that writes files and shows progress)."""
  return jax.process_index() == 0


def device_groups(num_groups: int,
                  devices: Optional[Sequence[jax.Device]] = None
                  ) -> list[list[jax.Device]]:
  """``devices`` (default all) in ``min(num_groups, len(devices))`` disjoint,
  contiguous groups of nearly equal size, for grids run side by side.

  Example:
    >>> import jax
    >>> from jaxmomentum import training
    >>> [len(g) for g in training.device_groups(2, jax.devices() * 5)]
    [3, 2]
  """
  num_groups = check_int("num_groups", num_groups, 1)
  devices = list(jax.devices() if devices is None else devices)
  if not devices:
    raise ValueError("devices must not be empty")
  k = min(num_groups, len(devices))
  return [list(g) for g in np.array_split(np.asarray(devices, object), k)]


# XLA_FLAGS of each command-buffer mode (CUDA graphs of a program's kernels):
# "while" also puts the on-device while loops (lax.scan's loops) and
# conditionals into the graph, down to single-kernel graphs.
COMMAND_BUFFERS = {
    "default": (),
    "off": ("--xla_gpu_enable_command_buffer=",),
    "while": ("--xla_gpu_enable_command_buffer=+WHILE,+CONDITIONAL",
              "--xla_gpu_graph_min_graph_size=1"),
}


def use_command_buffers(mode: str) -> str:
  """Sets how XLA:GPU records kernels into command buffers (a process flag).

  XLA:GPU replays a program's kernels as CUDA graphs ("command buffers").
  ``"while"`` also records the on-device while loops of ``lax.scan`` (the
  RNN's time loops, the training loop) so a whole loop is one graph launch;
  ``"off"`` records nothing; ``"default"`` leaves XLA's own default (and an
  explicit ``--xla_gpu_enable_command_buffer`` in ``XLA_FLAGS``) alone.
  ``benchmarks/bench_table5_gpu.py`` measures which is fastest. It appends
  to ``XLA_FLAGS``, read once when JAX starts its backends: call it first in
  an entry point. No effect on CPU or TPU.

  Args:
    mode: ``"default"``, ``"off"`` or ``"while"``.

  Returns:
    ``XLA_FLAGS`` as set.

  Raises:
    ValueError: for an unknown mode.
    RuntimeError: if JAX's backends are already initialised (and the mode is
      not ``"default"``).

  Example:
    >>> from jaxmomentum import training
    >>> training.use_command_buffers("while")  # first thing  # doctest: +SKIP
    '--xla_gpu_enable_command_buffer=+WHILE,+CONDITIONAL ...'
  """
  if mode not in COMMAND_BUFFERS:
    raise ValueError(f"mode must be one of {tuple(COMMAND_BUFFERS)}, got "
                     f"{mode!r}")
  flags = os.environ.get("XLA_FLAGS", "")
  if not COMMAND_BUFFERS[mode]:
    return flags
  if _backends_initialized():
    raise RuntimeError(
        "use_command_buffers must run before any JAX computation (XLA reads "
        "XLA_FLAGS when JAX starts its backends)")
  kept = [f for f in flags.split() if not f.startswith(
      ("--xla_gpu_enable_command_buffer=", "--xla_gpu_graph_min_graph_size="))]
  os.environ["XLA_FLAGS"] = " ".join(kept + list(COMMAND_BUFFERS[mode]))
  return os.environ["XLA_FLAGS"]
