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


def _nag(learning_rate, momentum):
  return jaxmomentum.nag(learning_rate, momentum)


@pytest.mark.parametrize("num_shards,optimizer,lr", [
    (2, toy.sgd, 0.05),
    (8, toy.sgd, 0.05),   # one sequence per device
    (4, _nag, 0.05),
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
  # The whole-batch update up to float32 rounding. (That the devices' copies
  # stay identical needs real devices: test_training_subprocess.py.)
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


def _counting_eval(params, batch):
  """An int metric: it cannot be averaged over slices as it is."""
  inputs, target = batch
  return {"misses": jnp.sum(jnp.abs(toy.predict(params, inputs) - target)
                            > 0.04)}


@pytest.mark.parametrize("loss,eval_fn,num_shards,low,high", [
    (toy.loss, None, 2, 0.0, 1e-5),            # a mean over examples
    (toy.loss, toy.evaluate, 4, 0.0, 1e-5),
    (_sum_loss, None, 2, 0.49, 0.51),          # mean of slice sums: half
    (_sum_loss, toy.evaluate, 2, 0.49, 0.51),  # its "loss" metric: a mean
    (_sum_loss, None, 4, 0.74, 0.76),
    (_masked_mean_loss, None, 2, 1e-3, 1.0),   # slices count other steps
    (toy.loss, _counting_eval, 2, np.inf, np.inf),
])
def test_batch_mean_gap(loss, eval_fn, num_shards, low, high):
  config = training.TrainConfig(num_steps=10, batch_size=8, eval_every=10)
  trainer = training.make_train(config, toy.init, loss, toy.sample, toy.sgd,
                                eval_fn=eval_fn)
  hparams = {LR: jnp.float32(0.1), MOM: jnp.float32(0.9)}
  state = trainer.init(jax.random.key(0), hparams)
  gap = float(trainer.batch_mean_gap(state, None, num_shards))
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
    trainer.batch_mean_gap(state, None, 2)


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


def test_auto_keeps_one_device_per_run_for_an_optimizer_that_takes_the_batch():
  """Hessian-free works on the whole minibatch itself (curvature products,
  CG, line search): on a batch axis every device would repeat it."""
  def hf(learning_rate, momentum):
    del learning_rate, momentum
    return jaxmomentum.hessian_free(toy.predict, lambda out, batch: 0.0)

  config = training.TrainConfig(num_steps=10, batch_size=8, eval_every=10)
  point = {LR: 0.1, MOM: 0.9}
  devices = [0, 1]
  for factory, want in ((toy.sgd, 2), (_nag, 2), (hf, 1)):
    trainer = training.make_train(config, toy.init, toy.loss, toy.sample,
                                  factory)
    assert _runner._auto_batch_shards(trainer, 1, devices, point) == want  # pylint: disable=protected-access


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


def test_devices_leave_a_chunk_with_the_first_devices_state():
  """Copies that differ (as a non-deterministic kernel could make them)
  are made equal to the first device's at the end of every chunk."""
  trainer = toy.make_trainer(num_steps=10, eval_every=10)
  hparams = {LR: jnp.float32(0.05), MOM: jnp.float32(0.9)}
  states = jax.vmap(trainer.init, in_axes=(0, None))(
      jax.random.split(jax.random.key(0), 2), hparams)  # two different copies
  chunk = trainer.run_chunk_over_batch("batch", 2)
  out, _ = jax.jit(jax.vmap(chunk, in_axes=(0, None, None),
                            axis_name="batch"))(states, hparams, None)
  for leaf in jax.tree.leaves((out.params, out.opt_state)):
    np.testing.assert_array_equal(leaf[1], leaf[0])
