"""Atomic checkpoints of a grid run with orbax-checkpoint (optional extra).

A checkpoint holds the host copy of the whole vmapped :class:`TrainState`
(PRNG keys stored as their raw data), the metrics recorded so far, the number
of chunks done, and a fingerprint of the run's configuration. orbax writes
each checkpoint into a temporary directory and renames it when complete, so a
process killed at any moment leaves the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Optional

import jax
import numpy as np

_INSTALL_HINT = (
    "checkpointing needs orbax-checkpoint: pip install 'jaxmomentum[checkpoint]'"
    " (or pip install orbax-checkpoint), or pass out_dir=None")


def _orbax():
  try:
    import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  except ImportError as err:
    raise ImportError(_INSTALL_HINT) from err
  return ocp


def is_key(x) -> bool:
  """True for a typed PRNG key array."""
  return jax.dtypes.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key)


def fingerprint(description: Any) -> str:
  """A stable hash of a JSON-serializable description of a run."""
  text = json.dumps(description, sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()


def _flatten(tree) -> dict[str, np.ndarray]:
  """Leaves by position; zero-size leaves (orbax refuses them) are dropped."""
  leaves = jax.tree.leaves(tree)
  return {f"leaf_{i:05d}": np.asarray(x) for i, x in enumerate(leaves)
          if np.size(x)}


def _unflatten(template, flat: dict[str, np.ndarray]):
  leaves, treedef = jax.tree.flatten(template)
  out = []
  for i, x in enumerate(leaves):
    name = f"leaf_{i:05d}"
    if not np.size(x):
      out.append(np.asarray(x))
      continue
    value = np.asarray(flat[name])
    if value.shape != np.shape(x) or value.dtype != np.asarray(x).dtype:
      raise ValueError(
          f"checkpoint leaf {name} has shape {value.shape} and dtype "
          f"{value.dtype}, the run expects {np.shape(x)} {np.asarray(x).dtype}")
    out.append(value)
  return jax.tree.unflatten(treedef, out)


class GridCheckpointer:
  """Saves and restores ``(tree of numpy arrays, chunks done)`` in a folder.

  Args:
    directory: the output folder (created if absent).
    run_fingerprint: identifies the run; restoring a checkpoint written with a
      different fingerprint raises ``ValueError``.
    description: JSON-serializable description stored beside the fingerprint,
      shown in the error message of a mismatch.
  """

  def __init__(self, directory, run_fingerprint: str, description: Any):
    ocp = _orbax()
    self._ocp = ocp
    self.directory = os.path.abspath(os.fspath(directory))
    self.fingerprint = run_fingerprint
    self.description = description
    options = ocp.CheckpointManagerOptions(
        max_to_keep=1, enable_async_checkpointing=False, create=True)
    self._manager = ocp.CheckpointManager(
        os.path.join(self.directory, "checkpoints"), options=options)

  def restore(self, template) -> Optional[tuple[Any, int]]:
    """``(tree, chunks_done)`` from the latest checkpoint, or ``None``.

    Args:
      template: a tree of numpy arrays with the structure, shapes and dtypes
        to restore.
    """
    ocp = self._ocp
    step = self._manager.latest_step()
    if step is None:
      return None
    meta = self._manager.restore(
        step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
    if meta.get("fingerprint") != self.fingerprint:
      raise ValueError(
          f"{self.directory} holds a checkpoint of a different run (another "
          "configuration, grid, seeds, state shapes or tag); use another "
          f"out_dir or delete it.\n  saved:     "
          f"{json.dumps(meta.get('description'), sort_keys=True, default=str)}"
          f"\n  this run:  "
          f"{json.dumps(self.description, sort_keys=True, default=str)}")
    abstract = _flatten(template)
    restored = self._manager.restore(
        step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract))).state
    return _unflatten(template, restored), int(meta["chunks_done"])

  def save(self, chunks_done: int, tree) -> None:
    """Saves ``tree`` (numpy arrays) as the checkpoint after ``chunks_done``."""
    ocp = self._ocp
    meta = {"fingerprint": self.fingerprint, "chunks_done": int(chunks_done),
            "description": self.description}
    self._manager.save(
        int(chunks_done),
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(_flatten(tree)),
            meta=ocp.args.JsonSave(json.loads(json.dumps(meta, default=str)))),
        force=True)
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()
