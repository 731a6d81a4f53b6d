"""Verified, atomic checkpoints of a grid run with orbax-checkpoint.

A checkpoint holds the host copy of the whole vmapped :class:`TrainState`
(PRNG keys stored as their raw data), the metrics recorded so far, the number
of chunks done, a fingerprint of the run's configuration, and a SHA-256
digest of every array it holds. orbax writes each checkpoint into a temporary
directory and renames it when complete, so a process killed at any moment
leaves the previous checkpoint intact.

Damage after the write (flipped, truncated or zeroed bytes, deleted files,
garbage metadata, stray step folders) is caught on restore: a checkpoint
that cannot be read, or whose arrays no longer match their digest, is moved
to ``<out_dir>/damaged_checkpoints/`` with a :class:`CheckpointWarning`
naming it, and the run resumes from the newest good one (or starts over).
Each new checkpoint is read back and verified before older ones are deleted,
so the two newest good checkpoints are always kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from typing import Any, Optional

import jax
import numpy as np

_INSTALL_HINT = (
    "checkpointing needs orbax-checkpoint: pip install 'jaxmomentum[checkpoint]'"
    " (or pip install orbax-checkpoint), or pass out_dir=None")
_KEEP = 2  # good checkpoints kept
_DAMAGED = "damaged_checkpoints"


class CheckpointError(ValueError):
  """A checkpoint folder cannot be used (another run's, not writable, ...)."""


class CheckpointWarning(UserWarning):
  """A damaged checkpoint was set aside; the run resumed from an older one."""


class _Damaged(Exception):
  """Internal: this step cannot be trusted; the message says why."""


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


def digest(flat: dict[str, np.ndarray], chunks_done: int) -> str:
  """SHA-256 of named arrays (names, dtypes, shapes and bytes) and a count."""
  h = hashlib.sha256(f"chunks_done={int(chunks_done)}".encode())
  for name in sorted(flat):
    x = np.asarray(flat[name])
    h.update(f"|{name}|{x.dtype.str}|{x.shape}|".encode())
    h.update(x.tobytes())
  return h.hexdigest()


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
    if name not in flat:
      raise _Damaged(f"array {name} is missing")
    value = np.asarray(flat[name])
    if value.shape != np.shape(x) or value.dtype != np.asarray(x).dtype:
      raise _Damaged(
          f"array {name} has shape {value.shape} and dtype {value.dtype}, "
          f"the run expects {np.shape(x)} {np.asarray(x).dtype}")
    out.append(value)
  return jax.tree.unflatten(treedef, out)


def _first_line(err: BaseException) -> str:
  text = str(err).strip().splitlines()
  return f"{type(err).__name__}: {text[0][:200] if text else ''}"


def _is_fingerprint(value: Any) -> bool:
  return (isinstance(value, str) and len(value) == 64
          and all(c in "0123456789abcdef" for c in value))


def check_out_dir(directory) -> str:
  """The absolute folder, created; :class:`CheckpointError` if it is a file
  (or lies below one) or cannot be written; ``ImportError`` naming the
  extra without orbax-checkpoint."""
  _orbax()
  directory = os.path.abspath(os.fspath(directory))
  steps_dir = os.path.join(directory, "checkpoints")
  for path in (directory, steps_dir):
    if os.path.exists(path) and not os.path.isdir(path):
      raise CheckpointError(
          f"out_dir: {path} is a file, not a folder; pass a folder "
          "(it is created if absent)")
  try:
    os.makedirs(steps_dir, exist_ok=True)
  except OSError as err:
    raise CheckpointError(
        f"out_dir: cannot create {steps_dir} ({_first_line(err)}); pass a "
        "folder you can write to") from err
  if not os.access(steps_dir, os.W_OK | os.X_OK):
    raise CheckpointError(
        f"out_dir: {steps_dir} is not writable; pass a folder you can "
        "write to")
  return directory


class GridCheckpointer:
  """Saves and restores ``(tree of numpy arrays, chunks done)`` in a folder.

  Args:
    directory: the output folder (created if absent).
    run_fingerprint: identifies the run; restoring a checkpoint written with a
      different fingerprint raises :class:`CheckpointError`.
    description: JSON-serializable description stored beside the fingerprint,
      shown in the error message of a mismatch.

  Raises:
    CheckpointError: ``directory`` is a file or cannot be written.
  """

  def __init__(self, directory, run_fingerprint: str, description: Any):
    ocp = _orbax()
    self._ocp = ocp
    self.directory = check_out_dir(directory)
    self.fingerprint = run_fingerprint
    self.description = description
    steps_dir = os.path.join(self.directory, "checkpoints")
    options = ocp.CheckpointManagerOptions(
        max_to_keep=None, enable_async_checkpointing=False, create=True)
    self._manager = ocp.CheckpointManager(steps_dir, options=options)

  def _step_path(self, step: int) -> str:
    return os.path.join(self.directory, "checkpoints", str(step))

  def _read(self, step: int, template) -> tuple[Any, int]:
    """The verified ``(tree, chunks_done)`` of ``step``; raises ``_Damaged``."""
    ocp = self._ocp
    try:
      meta = self._manager.restore(
          step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
    except Exception as err:  # pylint: disable=broad-except
      raise _Damaged(f"its metadata is unreadable ({_first_line(err)})"
                     ) from err
    if not isinstance(meta, dict) or not _is_fingerprint(
        meta.get("fingerprint")):
      raise _Damaged("its metadata holds no run fingerprint")
    if meta["fingerprint"] != self.fingerprint:
      raise CheckpointError(
          f"{self.directory} holds a checkpoint of a different run (another "
          "configuration, grid, seeds, state shapes or tag); use another "
          f"out_dir or delete it.\n  saved:     "
          f"{json.dumps(meta.get('description'), sort_keys=True, default=str)}"
          f"\n  this run:  "
          f"{json.dumps(self.description, sort_keys=True, default=str)}")
    chunks_done = meta.get("chunks_done")
    if (isinstance(chunks_done, bool) or not isinstance(chunks_done, int)
        or chunks_done != step):
      raise _Damaged(f"its metadata says chunks_done={chunks_done!r} in the "
                     f"folder of step {step}")
    expected = meta.get("digest")
    if expected is not None and not (
        isinstance(expected, str) and len(expected) == 64):
      raise _Damaged(f"its recorded digest {expected!r} is malformed")
    abstract = _flatten(template)
    try:
      restored = self._manager.restore(
          step, args=ocp.args.Composite(
              state=ocp.args.StandardRestore(abstract))).state
      restored = {k: np.asarray(v) for k, v in restored.items()}
    except Exception as err:  # pylint: disable=broad-except
      raise _Damaged(f"its arrays are unreadable ({_first_line(err)})"
                     ) from err
    tree = _unflatten(template, restored)
    if expected is None:
      warnings.warn(
          f"checkpoint {self._step_path(step)} was written without a digest "
          "(by an older jaxmomentum) and cannot be verified; resuming from "
          "it", CheckpointWarning, stacklevel=4)
    elif digest(_flatten(tree), chunks_done) != expected:
      raise _Damaged("its arrays do not match the digest recorded when it "
                     "was saved")
    return tree, chunks_done

  def _set_aside(self, step: int, reason: str, then: str) -> None:
    """Moves a damaged step folder out of the way and warns naming it."""
    source = self._step_path(step)
    target = os.path.join(self.directory, _DAMAGED, str(step))
    if jax.process_index() == 0 and os.path.exists(source):
      n = 0
      while os.path.exists(target):
        n += 1
        target = os.path.join(self.directory, _DAMAGED, f"{step}-{n}")
      os.makedirs(os.path.dirname(target), exist_ok=True)
      shutil.move(source, target)
    self._manager.reload()
    warnings.warn(
        f"checkpoint {source} is damaged: {reason}. It was moved to {target} "
        f"(delete it when done looking); {then}", CheckpointWarning,
        stacklevel=4)

  def restore(self, template) -> Optional[tuple[Any, int]]:
    """``(tree, chunks_done)`` from the newest good checkpoint, or ``None``.

    Damaged checkpoints are set aside with a :class:`CheckpointWarning`.

    Args:
      template: a tree of numpy arrays with the structure, shapes and dtypes
        to restore.

    Raises:
      CheckpointError: the folder holds a checkpoint of a different run.
    """
    self._manager.reload()
    steps = sorted(self._manager.all_steps(), reverse=True)
    for i, step in enumerate(steps):
      try:
        return self._read(step, template)
      except _Damaged as damaged:
        older = steps[i + 1:]
        then = (f"trying the older checkpoint {older[0]}" if older else
                f"no good checkpoint is left in {self.directory}, so the run "
                "starts over from step 0")
        self._set_aside(step, str(damaged), then)
    return None

  def save(self, chunks_done: int, tree) -> None:
    """Saves ``tree`` (numpy arrays) as the checkpoint after ``chunks_done``.

    The new checkpoint is read back and verified; only then are checkpoints
    older than the newest two deleted. One that fails verification is set
    aside with a :class:`CheckpointWarning` and the older ones are kept.
    """
    ocp = self._ocp
    chunks_done = int(chunks_done)
    flat = _flatten(tree)
    meta = {"fingerprint": self.fingerprint, "chunks_done": chunks_done,
            "digest": digest(flat, chunks_done),
            "description": self.description}
    self._manager.save(
        chunks_done,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(flat),
            meta=ocp.args.JsonSave(json.loads(json.dumps(meta, default=str)))),
        force=True)
    self._manager.wait_until_finished()
    try:
      self._read(chunks_done, tree)
    except _Damaged as damaged:
      self._set_aside(chunks_done, f"it failed verification right after "
                      f"saving ({damaged})", "the older checkpoints are kept")
      return
    for step in sorted(self._manager.all_steps())[:-_KEEP]:
      self._manager.delete(step)

  def close(self) -> None:
    self._manager.close()
