"""The first checkpoint format, read only: host arrays by position.

Checkpoints written before format 2 (metadata without a ``"format"`` entry)
hold the host copy of the state (its ``num_runs`` rows, PRNG keys as their
raw data) and the metrics, flattened by position into arrays named
``leaf_00000, leaf_00001, ...`` (zero-size leaves left out), and a SHA-256
digest of those arrays. :class:`~._checkpoint.GridCheckpointer` still
resumes them.
"""

from __future__ import annotations

import hashlib

import jax
import numpy as np


class Damaged(Exception):
  """Internal: this step cannot be trusted; the message says why."""


def digest(flat: dict[str, np.ndarray], chunks_done: int) -> str:
  """SHA-256 of named arrays (names, dtypes, shapes and bytes) and a count."""
  h = hashlib.sha256(f"chunks_done={int(chunks_done)}".encode())
  for name in sorted(flat):
    x = np.asarray(flat[name])
    h.update(f"|{name}|{x.dtype.str}|{x.shape}|".encode())
    h.update(x.tobytes())
  return h.hexdigest()


def flatten(tree) -> dict[str, np.ndarray]:
  """Leaves by position; zero-size leaves (orbax refuses them) are dropped."""
  leaves = jax.tree.leaves(tree)
  return {f"leaf_{i:05d}": np.asarray(x) for i, x in enumerate(leaves)
          if np.size(x)}


def unflatten(template, flat: dict[str, np.ndarray]):
  """The tree of ``template`` from :func:`flatten`'s arrays, checked."""
  leaves, treedef = jax.tree.flatten(template)
  out = []
  for i, x in enumerate(leaves):
    name = f"leaf_{i:05d}"
    if not np.size(x):
      out.append(np.asarray(x))
      continue
    if name not in flat:
      raise Damaged(f"array {name} is missing")
    value = np.asarray(flat[name])
    if value.shape != np.shape(x) or value.dtype != np.asarray(x).dtype:
      raise Damaged(
          f"array {name} has shape {value.shape} and dtype {value.dtype}, "
          f"the run expects {np.shape(x)} {np.asarray(x).dtype}")
    out.append(value)
  return jax.tree.unflatten(treedef, out)
