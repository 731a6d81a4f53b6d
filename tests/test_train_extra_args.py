"""The training engine hands the minibatch to optimizers with extra args.

``make_train`` calls an ``optax.GradientTransformationExtraArgs`` as
``update(grads, state, params, batch=batch, value=loss)``, so
``jaxmomentum.hessian_free`` trains through ``run_grid`` exactly as NAG does.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxmomentum
from jaxmomentum import curvature
from jaxmomentum import training

_W = jnp.array([[1.0], [-2.0], [0.5]])
_LOSS = curvature.squared_error(targets=lambda batch: batch[1])


def _sample(key, n, data):
  del data
  x = jax.random.normal(key, (n, 3))
  return x, x @ _W


def _outputs(w, batch):
  return batch[0] @ w


def _loss(w, batch):
  return _LOSS(_outputs(w, batch), batch)


def _trainer(factory, num_steps=4):
  return training.make_train(
      training.TrainConfig(num_steps=num_steps, batch_size=16, eval_every=2),
      init_fn=lambda key: jnp.zeros((3, 1)), loss_fn=_loss,
      sample_fn=_sample, optimizer_factory=factory)


def test_engine_passes_batch_and_value():
  seen = {}

  def factory():
    def init(params):
      return optax.EmptyState()

    def update(grads, state, params=None, *, batch=None, value=None,
               **extra):
      seen["batch"], seen["value"] = batch, value
      return jax.tree.map(jnp.zeros_like, grads), state

    return optax.GradientTransformationExtraArgs(init, update)

  trainer = _trainer(factory, num_steps=2)
  jax.jit(trainer)(jax.random.key(0), {})
  x, y = seen["batch"]
  assert x.shape == (16, 3) and y.shape == (16, 1)
  assert seen["value"].shape == ()


def test_run_grid_trains_hessian_free_over_seeds_and_damping():
  def factory(initial_damping):
    return jaxmomentum.hessian_free(_outputs, _LOSS,
                                    initial_damping=initial_damping,
                                    cg_max_iters=10)

  trainer = _trainer(factory)
  result = training.run_grid(trainer, {"initial_damping": [1e-3, 10.0]},
                             seeds=2, progress=False)
  loss = np.asarray(result.metrics["loss"])
  assert loss.shape == (2, 2, 2)
  # Noise-free least squares: small damping solves it in one or two steps;
  # large damping takes shorter steps.
  assert (loss[:, 0, -1] < 1e-6).all()
  assert (loss[:, 1, -1] > loss[:, 0, -1]).all()
  assert (np.asarray(result.diverged_step) == -1).all()

  # Run (seed 0, damping 1e-3) equals the standalone trainer.
  _, metrics = jax.jit(trainer)(jax.random.key(0),
                                {"initial_damping": jnp.float32(1e-3)})
  np.testing.assert_allclose(metrics["loss"], loss[0, 0], rtol=1e-4,
                             atol=1e-7)


def test_plain_transformations_are_called_as_before():
  trainer = _trainer(lambda: jaxmomentum.nag(0.05, 0.9), num_steps=4)
  _, metrics = jax.jit(trainer)(jax.random.key(0), {})
  assert metrics["loss"][-1] < metrics["loss"][0]
  plain = optax.GradientTransformation(*optax.sgd(0.05)[:2])
  trainer = _trainer(lambda: plain, num_steps=4)
  _, metrics = jax.jit(trainer)(jax.random.key(0), {})
  assert metrics["loss"][-1] < metrics["loss"][0]
