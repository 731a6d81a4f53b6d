"""A tiny tanh MLP and a dense-matrix helper shared by the curvature and
Hessian-free tests."""

import jax
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp
import numpy as np


def mlp_params(key, sizes=(3, 4, 2), bias=0.0):
  keys = jax.random.split(key, len(sizes))
  return [{"w": jax.random.normal(k, (a, b)) * 0.7, "b": jnp.full((b,), bias)}
          for k, a, b in zip(keys, sizes[:-1], sizes[1:])]


def mlp_outputs(params, batch):
  h = batch["x"]
  for layer in params[:-1]:
    h = jnp.tanh(h @ layer["w"] + layer["b"])
  return h @ params[-1]["w"] + params[-1]["b"]


def dense(matvec, params):
  """The matrix of ``matvec`` in the flat basis of ``params``."""
  flat, unravel = ravel_pytree(params)
  column = lambda e: ravel_pytree(matvec(unravel(e)))[0]  # noqa: E731
  return np.asarray(jax.jit(jax.vmap(column))(jnp.eye(flat.size,
                                                      dtype=flat.dtype))).T
