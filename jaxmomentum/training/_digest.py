"""The digest of a checkpoint, computed where its arrays are.

Four 32-bit sums per leaf of a hash of (position, word) over the leaf's
bits, on the devices holding it (sharded, possibly across processes), then
SHA-256 on the host over those few numbers and the leaves' paths, shapes and
dtypes: a changed, moved or missing word changes the digest, and nothing but
four numbers per leaf is copied to the host.
"""

from __future__ import annotations

import functools
import hashlib

import jax
import jax.numpy as jnp
import numpy as np

FORMAT = 2  # checkpoint format; the first one's metadata has no "format"


def raw_keys(x):
  """``x``, or its raw data if it is a typed PRNG key array."""
  if jax.dtypes.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key):
    return jax.random.key_data(x)
  return x


_LANES = np.array([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344],
                  np.uint32)  # four independent 32-bit sums: 128 bits


def _mix(h):
  """The murmur3 finalizer: a bijection of uint32 that mixes every bit."""
  h = h ^ (h >> 16)
  h = h * jnp.uint32(0x85EBCA6B)
  h = h ^ (h >> 13)
  h = h * jnp.uint32(0xC2B2AE35)
  return h ^ (h >> 16)


def _words(x) -> jax.Array:
  """The bits of ``x`` as a flat uint32 array (any real, int or bool dtype;
  complex as its real and imaginary parts)."""
  x = raw_keys(x)
  if jnp.issubdtype(x.dtype, jnp.complexfloating):
    x = jnp.stack([x.real, x.imag])
  if x.dtype == jnp.bool_:
    x = x.astype(jnp.uint8)
  size = x.dtype.itemsize
  if size >= 4:  # 8-byte types become two words each
    return jax.lax.bitcast_convert_type(x, jnp.uint32).reshape(-1)
  unsigned = {1: jnp.uint8, 2: jnp.uint16}[size]
  return jax.lax.bitcast_convert_type(x, unsigned).astype(
      jnp.uint32).reshape(-1)


@functools.partial(jax.jit, static_argnums=1)
def _lanes(leaves, num_rows: int):
  """Per leaf, four sums over its first ``num_rows`` rows of a hash of
  (position, word): any changed, moved or missing word changes them."""
  def leaf(x):
    words = _words(x[:num_rows])
    position = jnp.arange(words.size, dtype=jnp.uint32)
    seeds = jnp.asarray(_LANES)[:, None]
    return jnp.sum(_mix(words[None] ^ _mix(position[None] ^ seeds)), axis=1,
                   dtype=jnp.uint32)
  return [leaf(x) for x in leaves]


def tree_digest(tree, num_rows: int, chunks_done: int) -> str:
  """A digest of the first ``num_rows`` rows of every leaf of ``tree``, of
  the leaves' paths, per-row shapes and dtypes, and of ``chunks_done``.

  Device arrays (sharded, possibly across processes) are hashed where they
  are, host arrays on the default device: nothing is copied to the host but
  four numbers per leaf.
  """
  paths = jax.tree_util.tree_flatten_with_path(tree)[0]
  on_host = [isinstance(x, np.ndarray) for _, x in paths]
  lanes = {}
  for host in (False, True):  # one program each: never mix the two
    index = [i for i, h in enumerate(on_host) if h == host]
    if index:
      lanes.update(zip(index, _lanes([paths[i][1] for i in index], num_rows)))
  h = hashlib.sha256(f"format={FORMAT}|chunks_done={int(chunks_done)}".encode())
  for i, (path, x) in enumerate(paths):
    h.update(f"|{jax.tree_util.keystr(path)}|{x.dtype}|{x.shape[1:]}|".encode())
    h.update(np.asarray(lanes[i]).tobytes())
  return h.hexdigest()
