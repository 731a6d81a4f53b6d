"""A tiny tanh RNN on an addition-like task, for the training-engine tests.

Self-contained (jax + optax only) so the engine is tested without the
package's models, problems or optimizers. Imported by tests/test_training*.py
and by the subprocess scripts in tests/.
"""

import math

import jax
import jax.numpy as jnp
import optax

from jaxmomentum import training

HIDDEN = 6
LENGTH = 6


def uniform(key, shape):
  """U[0, 1) floats from a key by an integer hash (murmur3 finalizer).

  A stand-in for ``jax.random.uniform``: XLA:CPU takes ~1.5 s to compile each
  threefry call site (``jax_threefry_partitionable=True``), which would
  dominate these tests. Pure in the key, as a sampler must be.
  """
  if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
    key = jax.random.key_data(key)
  k0, k1 = key[0], key[1]
  x = jnp.arange(math.prod(shape), dtype=jnp.uint32)
  for k in (k0, k1):
    x = (x ^ k) * jnp.uint32(0x9E3779B1)
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x85EBCA6B)
    x = x ^ (x >> 13)
    x = x * jnp.uint32(0xC2B2AE35)
    x = x ^ (x >> 16)
  return ((x >> 8).astype(jnp.float32) / (1 << 24)).reshape(shape)


def sample(key, batch_size, data=None):
  """Inputs (B, T, 2): noise and a marker on two steps; target their sum.

  ``data``: make_train's sample_fn argument, unused (generated from the key).
  """
  del data
  u = uniform(key, (batch_size, LENGTH + 1))
  values = u[:, :LENGTH]
  first = (u[:, LENGTH] * (LENGTH // 2)).astype(jnp.int32)
  second = first + LENGTH // 2
  steps = jnp.arange(LENGTH)
  marker = ((steps == first[:, None]) | (steps == second[:, None]))
  inputs = jnp.stack([values, marker.astype(jnp.float32)], axis=-1)
  target = jnp.sum(values * marker.astype(values.dtype), axis=1)
  return inputs, target


def init(key, scale=1.0):
  w = scale * (uniform(key, (HIDDEN + 3, HIDDEN)) - 0.5) * 1.5
  return {
      "w_ih": w[:2],
      "w_hh": w[2:HIDDEN + 2],
      "b_h": jnp.zeros(HIDDEN),
      "w_ho": w[HIDDEN + 2],
      "b_o": jnp.array(1.0),
  }


def predict(params, inputs):
  def step(h, x):
    return jnp.tanh(x @ params["w_ih"] + h @ params["w_hh"] + params["b_h"]), None
  h0 = jnp.zeros((inputs.shape[0], HIDDEN))
  h, _ = jax.lax.scan(step, h0, jnp.swapaxes(inputs, 0, 1))
  return h @ params["w_ho"] + params["b_o"]


def loss(params, batch):
  inputs, target = batch
  return jnp.mean((predict(params, inputs) - target) ** 2)


def evaluate(params, batch):
  inputs, target = batch
  out = predict(params, inputs)
  return {"loss": jnp.mean((out - target) ** 2),
          "error": jnp.mean((jnp.abs(out - target) > 0.04).astype(jnp.float32))}


def sgd(learning_rate, momentum):
  return optax.sgd(learning_rate, momentum)


def make_trainer(num_steps=40, eval_every=10, chunk_size=None, batch_size=8,
                 loss=loss, **config_kw):
  config = training.TrainConfig(num_steps=num_steps, batch_size=batch_size,
                                eval_every=eval_every, chunk_size=chunk_size,
                                **config_kw)
  return training.make_train(config, init, loss, sample, sgd,
                             eval_fn=evaluate)
