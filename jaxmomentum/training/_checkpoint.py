"""Verified, atomic checkpoints of a grid run with orbax-checkpoint.

A checkpoint holds the run's state pytree as it lives on the devices
(orbax writes and reads the sharded arrays, PRNG keys included, itself), the
metrics recorded so far, the number of chunks done, a fingerprint of the
run's configuration, and a digest of every number it holds. orbax writes
each checkpoint into a temporary directory and renames it when complete, so
a process killed at any moment leaves the previous checkpoint intact.

The digest is computed on the devices (:func:`._digest.tree_digest`, no
copy to the host) over the real runs' rows, so a checkpoint written on one
number of devices (its run axis padded to a multiple of them) resumes on
another.

Damage after the write (flipped, truncated or zeroed bytes, deleted files,
garbage metadata, stray step folders) is caught on restore: a checkpoint
that cannot be read, or whose arrays no longer match their digest, is moved
to ``<out_dir>/damaged_checkpoints/`` with a :class:`CheckpointWarning`
naming it, and the run resumes from the newest good one (or starts over).
Each new checkpoint is read back and verified before older ones are deleted,
so the two newest good checkpoints are always kept. Checkpoints of the first
format (host arrays under positional names, :mod:`._checkpoint_v1`) are
still read.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxmomentum.training import _checkpoint_v1
from jaxmomentum.training._checkpoint_v1 import Damaged as _Damaged
from jaxmomentum.training._digest import FORMAT
from jaxmomentum.training._digest import raw_keys
from jaxmomentum.training._digest import tree_digest

_INSTALL_HINT = (
    "checkpointing needs orbax-checkpoint: pip install 'jaxmomentum[checkpoint]'"
    " (or pip install orbax-checkpoint), or pass out_dir=None")
_KEEP = 2  # good checkpoints kept
_DAMAGED = "damaged_checkpoints"


class CheckpointError(ValueError):
  """A checkpoint folder cannot be used (another run's, not writable, ...)."""


class CheckpointWarning(UserWarning):
  """A damaged checkpoint was set aside; the run resumed from an older one."""


def _orbax():
  try:
    import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  except ImportError as err:
    raise ImportError(_INSTALL_HINT) from err
  return ocp


def _is_key(x) -> bool:
  return jax.dtypes.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key)


def fingerprint(description: Any) -> str:
  """A stable hash of a JSON-serializable description of a run."""
  text = json.dumps(description, sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()


# -- what orbax stores ------------------------------------------------------

def _drop_empty(tree):
  """Zero-size leaves (orbax refuses them) as ``None``."""
  return jax.tree.map(lambda x: None if np.size(x) == 0 else x, tree)


def _abstract(like, rows: Optional[int] = None, sharding=None):
  """The restore target of a leaf: its dtype and sharding, ``rows`` rows."""
  if np.size(like) == 0:
    return None
  shape = like.shape if rows is None else (rows,) + like.shape[1:]
  if isinstance(like, np.ndarray):
    return np.broadcast_to(np.zeros((), like.dtype), shape)  # no memory
  return jax.ShapeDtypeStruct(shape, like.dtype,
                              sharding=sharding or like.sharding)


def _fill_empty(template, restored):
  """``restored`` with the zero-size leaves of ``template`` put back."""
  return jax.tree.map(lambda t, r: t if r is None else r, template, restored)


def place_rows(tree, like):
  """``tree`` laid out as ``like``: its sharding, its number of rows (extra
  rows cut, missing ones copies of the last) and its PRNG keys (raw key
  data wrapped). Rows past the real runs are padding, so this moves a state
  between device counts."""
  rows = jax.tree.leaves(like)[0].shape[0]

  def relayout(tree):
    def leaf(x, template):
      if _is_key(template) and not _is_key(x):
        x = jax.random.wrap_key_data(x, impl=jax.random.key_impl(template))
      if x.shape[0] >= rows:
        return x[:rows]
      return jnp.concatenate([x, jnp.repeat(x[-1:], rows - x.shape[0], 0)])
    return jax.tree.map(leaf, tree, like)

  shardings = jax.tree.map(lambda x: x.sharding, like)
  return jax.jit(relayout, out_shardings=shardings)(tree)


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
  """Saves and restores ``({"state": ..., "metrics": ...}, chunks done)``.

  ``state`` is the run's state pytree of arrays sharded over the run axis
  (its first ``num_runs`` rows are the runs, the rest padding); ``metrics``
  a dict of host arrays with ``num_runs`` rows.

  Args:
    directory: the output folder (created if absent).
    run_fingerprint: identifies the run; restoring a checkpoint written with a
      different fingerprint raises :class:`CheckpointError`.
    description: JSON-serializable description stored beside the fingerprint,
      shown in the error message of a mismatch.
    num_runs: the rows that hold runs.

  Raises:
    CheckpointError: ``directory`` is a file or cannot be written.
  """

  def __init__(self, directory, run_fingerprint: str, description: Any,
               num_runs: int):
    ocp = _orbax()
    self._ocp = ocp
    self.directory = check_out_dir(directory)
    self.fingerprint = run_fingerprint
    self.description = description
    self.num_runs = num_runs
    steps_dir = os.path.join(self.directory, "checkpoints")
    options = ocp.CheckpointManagerOptions(
        max_to_keep=None, enable_async_checkpointing=False, create=True)
    self._manager = ocp.CheckpointManager(steps_dir, options=options)

  def _step_path(self, step: int) -> str:
    return os.path.join(self.directory, "checkpoints", str(step))

  def _restore(self, step: int, **items):
    """orbax's restore of ``items``; any failure is damage."""
    ocp = self._ocp
    try:
      return self._manager.restore(step, args=ocp.args.Composite(**items))
    except Exception as err:  # pylint: disable=broad-except
      what = "metadata" if "meta" in items else "arrays"
      raise _Damaged(f"its {what} are unreadable ({_first_line(err)})"
                     ) from err

  def _meta(self, step: int) -> dict[str, Any]:
    """The step's checked metadata; raises ``_Damaged`` or, for another
    run's checkpoint, :class:`CheckpointError`."""
    meta = self._restore(step, meta=self._ocp.args.JsonRestore()).meta
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
    if meta.get("format", 1) not in (1, FORMAT):
      raise _Damaged(f"its format {meta.get('format')!r} is unknown (this "
                     f"jaxmomentum reads formats 1 and {FORMAT})")
    if meta.get("format") == FORMAT and (
        expected is None or not isinstance(meta.get("rows"), int)
        or meta["rows"] < self.num_runs):
      raise _Damaged(f"its metadata lacks the digest or row count "
                     f"(rows={meta.get('rows')!r})")
    return meta

  def _read(self, step: int, template) -> tuple[Any, int]:
    """The verified ``(tree, chunks_done)`` of ``step``; raises ``_Damaged``.

    ``template``: ``{"state": the fresh state on the devices, "metrics":
    host arrays}``, whose structure, dtypes and layout the result has.
    """
    meta = self._meta(step)
    if meta.get("format", 1) == 1:
      tree = self._read_v1(step, meta, template)
    else:
      tree = self._read_v2(step, meta, template)
    tree["metrics"] = {k: np.array(v) for k, v in tree["metrics"].items()}
    return tree, step

  def _read_v2(self, step: int, meta, template):
    """A checkpoint of this format: the state pytree as on the devices."""
    state, metrics = template["state"], template["metrics"]
    rows = meta["rows"]
    same_rows = rows == jax.tree.leaves(state)[0].shape[0]
    # Saved on another number of devices: read replicated, then re-laid.
    sharding = None if same_rows else jax.sharding.NamedSharding(
        jax.tree.leaves(state)[0].sharding.mesh, jax.sharding.PartitionSpec())
    target = {"state": jax.tree.map(
                  lambda x: _abstract(x, rows, sharding), state),
              "metrics": jax.tree.map(_abstract, metrics)}
    tree = self._restore(step, state=self._ocp.args.StandardRestore(
        target)).state
    tree = _fill_empty(template, tree)
    if tree_digest(tree, self.num_runs, step) != meta["digest"]:
      raise _Damaged("its arrays do not match the digest recorded when it "
                     "was saved")
    if not same_rows:
      tree["state"] = place_rows(tree["state"], state)
    return tree

  def _read_v1(self, step: int, meta, template):
    """A first-format checkpoint: host arrays by position, SHA-256 digest."""
    def host(x):  # the host copy format 1 saved: num_runs rows, raw keys
      x = jax.eval_shape(raw_keys, x)
      return np.broadcast_to(np.zeros((), x.dtype),
                             (self.num_runs,) + x.shape[1:])
    host_tree = {"state": jax.tree.map(host, template["state"]),
                 "metrics": template["metrics"]}
    flat = self._restore(step, state=self._ocp.args.StandardRestore(
        _checkpoint_v1.flatten(host_tree))).state
    tree = _checkpoint_v1.unflatten(host_tree, flat)
    if meta.get("digest") is None:
      warnings.warn(
          f"checkpoint {self._step_path(step)} was written without a digest "
          "(by an older jaxmomentum) and cannot be verified; resuming from "
          "it", CheckpointWarning, stacklevel=5)
    elif _checkpoint_v1.digest(_checkpoint_v1.flatten(tree),
                               step) != meta["digest"]:
      raise _Damaged("its arrays do not match the digest recorded when it "
                     "was saved")
    mesh = jax.tree.leaves(template["state"])[0].sharding.mesh
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    state = jax.tree.map(lambda h: jax.make_array_from_callback(
        h.shape, replicated, lambda index: h[index]), tree["state"])
    tree["state"] = place_rows(state, template["state"])
    return tree

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
      template: ``{"state": ..., "metrics": ...}`` as the run holds them
        at step 0: the structure, dtypes and layout to restore.

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
    """Saves ``tree`` as the checkpoint after ``chunks_done`` chunks.

    The new checkpoint is read back and verified; only then are checkpoints
    older than the newest two deleted. One that fails verification is set
    aside with a :class:`CheckpointWarning` and the older ones are kept.
    """
    ocp = self._ocp
    chunks_done = int(chunks_done)
    meta = {"format": FORMAT, "fingerprint": self.fingerprint,
            "chunks_done": chunks_done,
            "rows": jax.tree.leaves(tree["state"])[0].shape[0],
            "digest": tree_digest(tree, self.num_runs, chunks_done),
            "description": self.description}
    self._manager.save(
        chunks_done,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(_drop_empty(tree)),
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
