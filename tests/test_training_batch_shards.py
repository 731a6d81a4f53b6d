"""run_grid's batch sharding: one run's minibatch split over several devices.

In this process there is one CPU device, so the devices of a batch axis are
stood in for by a named ``jax.vmap`` axis (``lax.axis_index`` and
``lax.pmean`` mean the same over it as over a ``shard_map`` mesh axis).
Real devices (8 forced CPU devices, ``run_grid``'s automatic choice, a
checkpoint restored on one device) are in test_training_subprocess.py.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import _optax_promotion as optax_promotion
import _training_toy as toy
import jaxmomentum
from jaxmomentum import training
from jaxmomentum.training import _runner

LR, MOM = "learning_rate", "momentum"


def _over_batch_axis(trainer, num_shards, state, hparams):
  """``run_chunk_over_batch`` on ``num_shards`` stand-in devices: a vmapped
  named axis, every argument shared. Returns every replica's output."""
  chunk = trainer.run_chunk_over_batch("batch", num_shards)
  return jax.jit(jax.vmap(chunk, in_axes=None, axis_size=num_shards,
                          axis_name="batch"))(state, hparams, None)


def _adam(learning_rate, momentum):
  del momentum
  return jaxmomentum.adam(learning_rate)


@pytest.mark.parametrize("num_shards,optimizer,lr", [
    (2, toy.sgd, 0.05),
    (4, toy.sgd, 0.05),
    (8, toy.sgd, 0.05),   # one sequence per device
    pytest.param(2, _adam, 0.01, marks=optax_promotion.ADAM),
    # Diverges: frozen at the same update (its last finite params are
    # ~1e20, where rounding differences are amplified: not compared).
    (2, toy.sgd, 50.0),
])
def test_chunk_over_batch_equals_the_whole_batch(num_shards, optimizer, lr):
  config = training.TrainConfig(num_steps=20, batch_size=8, eval_every=10,
                                eval_batch_size=8)
  trainer = training.make_train(config, toy.init, toy.loss, toy.sample,
                                optimizer, eval_fn=toy.evaluate)
  hparams = {LR: jnp.float32(lr), MOM: jnp.float32(0.9)}
  state = trainer.init(jax.random.key(3), hparams)
  want_state, want = jax.jit(trainer.run_chunk)(state, hparams, None)
  got_state, got = _over_batch_axis(trainer, num_shards, state, hparams)
  # Every device did the same update: the replicas are bit-identical.
  for leaf in jax.tree.leaves((got_state, got)):
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
      leaf = jax.random.key_data(leaf)
    for replica in range(1, num_shards):
      np.testing.assert_array_equal(leaf[replica], leaf[0])
  # ... and it is the whole-batch update up to float32 rounding.
  assert int(got_state.diverged_at[0]) == int(want_state.diverged_at)
  if int(want_state.diverged_at) >= 0:
    return
  for name in want:
    np.testing.assert_allclose(got[name][0], want[name], rtol=2e-5,
                               atol=1e-7, err_msg=name)
  for g, w in zip(jax.tree.leaves(got_state.params),
                  jax.tree.leaves(want_state.params)):
    np.testing.assert_allclose(g[0], w, rtol=2e-5, atol=1e-6)


def _sum_loss(params, batch):
  inputs, target = batch
  return jnp.sum((toy.predict(params, inputs) - target) ** 2)


def _masked_mean_loss(params, batch):
  """A mean over the batch's *positive targets*: not a mean over examples."""
  inputs, target = batch
  mask = (target > 1.0).astype(jnp.float32)
  err = (toy.predict(params, inputs) - target) ** 2
  return jnp.sum(err * mask) / jnp.maximum(jnp.sum(mask), 1.0)


@pytest.mark.parametrize("loss,num_shards,low,high", [
    (toy.loss, 2, 0.0, 1e-5),            # a mean over examples
    (toy.loss, 4, 0.0, 1e-5),
    (_sum_loss, 2, 0.49, 0.51),          # mean of slice sums: half the sum
    (_sum_loss, 4, 0.74, 0.76),
    (_masked_mean_loss, 2, 1e-3, 1.0),   # slices count different steps
])
def test_batch_mean_gap(loss, num_shards, low, high):
  config = training.TrainConfig(num_steps=10, batch_size=8, eval_every=10)
  trainer = training.make_train(config, toy.init, loss, toy.sample, toy.sgd)
  hparams = {LR: jnp.float32(0.1), MOM: jnp.float32(0.9)}
  state = trainer.init(jax.random.key(0), hparams)
  gap = float(trainer.batch_mean_gap(state, hparams, None, num_shards))
  assert low <= gap <= high


def test_a_leaf_without_the_batch_axis_first_is_named():
  def time_major(key, batch_size, data):
    inputs, target = toy.sample(key, batch_size, data)
    return jnp.swapaxes(inputs, 0, 1), target  # [time, batch, 2]

  def loss(params, batch):
    return toy.loss(params, (jnp.swapaxes(batch[0], 0, 1), batch[1]))

  config = training.TrainConfig(num_steps=10, batch_size=8, eval_every=10)
  trainer = training.make_train(config, toy.init, loss, time_major, toy.sgd)
  hparams = {LR: jnp.float32(0.1), MOM: jnp.float32(0.9)}
  state = trainer.init(jax.random.key(0), hparams)
  message = (r"batch size \(8\) as its leading axis; "
             r"\[0\] has shape \(6, 8, 2\)")
  with pytest.raises(ValueError, match=message):
    _over_batch_axis(trainer, 2, state, hparams)
  with pytest.raises(ValueError, match=message):
    trainer.batch_mean_gap(state, hparams, None, 2)


@pytest.mark.parametrize("num_devices,num_runs,batch_size,want", [
    (2, 1, 100, 2),   # one seed on a 2-core machine: both cores
    (2, 2, 100, 1),   # a run per device already
    (2, 5, 100, 1),
    (8, 3, 8, 2),     # 3 runs x 2 devices, 2 devices left for padding
    (8, 1, 6, 2),     # the largest divisor of 8 that divides the batch
    (4, 1, 100, 4),
    (3, 1, 8, 1),     # 3 does not divide the batch of 8
    (1, 1, 100, 1),
])
def test_auto_batch_shards(num_devices, num_runs, batch_size, want):
  trainer = toy.make_trainer(num_steps=10, batch_size=batch_size)
  devices = list(range(num_devices))  # only their number counts
  assert _runner._auto_batch_shards(trainer, num_runs, devices) == want  # pylint: disable=protected-access


@pytest.mark.parametrize("batch_shards,error,match", [
    (2, ValueError, r"batch_shards must divide the number of devices \(1\)"),
    (0, ValueError, "batch_shards must be"),
    (True, TypeError, "batch_shards"),
    ("two", TypeError, "batch_shards"),
])
def test_run_grid_rejects_bad_batch_shards(batch_shards, error, match):
  trainer = toy.make_trainer(num_steps=10)
  with pytest.raises(error, match=match):
    training.run_grid(trainer, {LR: [0.1], MOM: [0.9]}, 1, progress=False,
                      batch_shards=batch_shards)


def test_one_device_keeps_one_device_per_run():
  trainer = toy.make_trainer(num_steps=10)
  result = training.run_grid(trainer, {LR: [0.1], MOM: [0.9]}, 1,
                             progress=False)
  assert result.batch_shards == 1
