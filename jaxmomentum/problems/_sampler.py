"""Minibatches drawn on device from a dataset held in device memory.

Both samplers take ``(key, batch_size, data, ...)``, the signature of
``make_train``'s ``sample_fn``: ``sample_minibatch`` is one as it is.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxmomentum._validation import check_int

__all__ = ["sample_minibatch", "epoch_minibatch"]

PyTree = Any


def _num_cases(data: PyTree) -> int:
  leaves = jax.tree.leaves(data)
  if not leaves:
    raise ValueError("data must hold at least one array")
  sizes = {leaf.shape[0] if leaf.ndim else None for leaf in leaves}
  if len(sizes) != 1 or None in sizes:
    raise ValueError(
        "every array in data must have the same leading (case) dimension; "
        f"got leading sizes {sorted(map(str, sizes))}")
  (n,) = sizes
  if n == 0:
    raise ValueError("data holds no cases (leading dimension 0)")
  return n


def sample_minibatch(key: jax.Array, batch_size: int, data: PyTree) -> PyTree:
  r"""``batch_size`` cases drawn uniformly with replacement.

  .. math::

    i_1, \dots, i_B \overset{iid}{\sim} U\{0, \dots, n - 1\}, \qquad
    \text{batch} = (x_{i_1}, \dots, x_{i_B})

  Pure and shape-static: call it inside a jitted ``lax.scan`` with the
  dataset passed in as an argument (only the gathered rows are read). A
  dataset closed over by a jitted function becomes a constant compiled into
  the program; ``training.make_train(..., sample_fn=sample_minibatch,
  data=dataset)`` passes it as an argument for you.

  Args:
    key: a PRNG key.
    batch_size: ``B >= 1``, a static Python int.
    data: an array ``[n, ...]`` or a pytree of arrays sharing the leading
      dimension ``n >= 1`` (e.g. inputs and targets).

  Returns:
    The pytree of ``data`` with leading dimension ``batch_size``.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from jaxmomentum.problems import sample_minibatch
    >>> data = jnp.arange(60.).reshape(20, 3)
    >>> def body(carry, key):
    ...   return carry + sample_minibatch(key, 4, data).sum(), None
    >>> keys = jax.random.split(jax.random.key(0), 10)
    >>> total, _ = jax.jit(lambda ks: jax.lax.scan(body, 0.0, ks))(keys)
  """
  batch_size = check_int("batch_size", batch_size, 1)
  n = _num_cases(data)
  index = jax.random.randint(key, (batch_size,), 0, n)
  return jax.tree.map(lambda x: jnp.take(x, index, axis=0), data)


def epoch_minibatch(key: jax.Array, batch_size: int, data: PyTree,
                    step: jax.Array) -> PyTree:
  r"""The ``step``-th minibatch of a fresh permutation per epoch.

  With :math:`m = \lfloor n / B \rfloor` batches per epoch (the last
  :math:`n - mB` cases of each permutation are dropped), step :math:`s`
  takes cases :math:`\pi_e[bB : (b+1)B]` with :math:`e = \lfloor s/m
  \rfloor`, :math:`b = s \bmod m` and :math:`\pi_e` the permutation drawn
  from ``fold_in(key, e)``: every case is seen once per epoch (sampling
  without replacement). Keep ``key`` fixed across steps and pass the step
  count (it may be traced). The permutation is recomputed each call, an
  :math:`O(n \log n)` sort; for large ``n`` prefer :func:`sample_minibatch`
  or hoist the permutation out of the step.

  Args:
    key: a PRNG key, the same for every step of a run.
    batch_size: ``B >= 1``, a static Python int, at most ``n``.
    data: an array or pytree of arrays with leading dimension ``n >= B``.
    step: the step count, an integer >= 0 (Python int or traced array).

  Returns:
    The pytree of ``data`` with leading dimension ``batch_size``.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from jaxmomentum.problems import epoch_minibatch
    >>> data = jnp.arange(10)
    >>> key = jax.random.key(0)
    >>> seen = jnp.concatenate([epoch_minibatch(key, 5, data, s)
    ...                         for s in range(2)])
    >>> sorted(seen.tolist()) == list(range(10))
    True
  """
  batch_size = check_int("batch_size", batch_size, 1)
  n = _num_cases(data)
  if batch_size > n:
    raise ValueError(
        f"batch_size must be an integer <= the number of cases ({n}), "
        f"got {batch_size}")
  per_epoch = n // batch_size
  step = jnp.asarray(step, jnp.int32)
  epoch, position = jnp.divmod(step, per_epoch)
  order = jax.random.permutation(jax.random.fold_in(key, epoch), n)
  index = jax.lax.dynamic_slice_in_dim(order, position * batch_size,
                                       batch_size)
  return jax.tree.map(lambda x: jnp.take(x, index, axis=0), data)
