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
_FORCE_FLAG = "--xla_force_host_platform_device_count"


def _backends_initialized() -> bool:
  # JAX has no public query; this private one exists since jax 0.4.2x.
  from jax._src import xla_bridge  # pylint: disable=g-import-not-at-top
  probe = getattr(xla_bridge, "backends_are_initialized", None)
  if probe is not None:
    return bool(probe())
  return bool(getattr(xla_bridge, "_backends", {}))  # pragma: no cover


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
  if _backends_initialized():
    current = len(jax.devices("cpu"))
    if current != num_devices and forced is None:
      msg = (f"use_all_cpu_cores({num_devices}) was called after JAX "
             f"initialised its backends; keeping {current} CPU device(s). Call "
             "it at the start of the entry point, before any JAX computation.")
      if strict:
        raise RuntimeError(msg)
      warnings.warn(msg, RuntimeWarning, stacklevel=2)
    return current
  if forced is not None:
    return forced
  jax.config.update("jax_num_cpu_devices", num_devices)
  return num_devices


def run_mesh(devices: Optional[Sequence[jax.Device]] = None) -> jax.sharding.Mesh:
  """A 1-D mesh named ``"runs"`` over ``devices`` (default: all devices).

  With ``jax.distributed`` initialised, ``jax.devices()`` lists the devices of
  every host, so the same mesh spans them all.
  """
  devices = list(jax.devices() if devices is None else devices)
  if not devices:
    raise ValueError("devices must not be empty")
  return jax.sharding.Mesh(np.asarray(devices), (RUN_AXIS,))
