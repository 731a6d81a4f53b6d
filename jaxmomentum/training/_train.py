"""``make_train``: one pure training function built from ``lax.scan``.

In the purejaxrl style: sampling, the loss, its gradient and the optax update
all run inside ``lax.scan``, so a whole run (or a chunk of it) is one program
that ``jax.jit`` compiles once and ``jax.vmap`` batches over seeds and
hyperparameters.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
from jax import lax
import optax

from jaxmomentum.training._config import TrainConfig

Params = Any
Batch = Any
Hparams = Mapping[str, Any]
Metrics = dict[str, jax.Array]

TRAIN_LOSS = "train_loss"


class TrainState(NamedTuple):
  """The carry of one run: everything needed to continue it.

  Attributes:
    params: the parameters the optimizer holds (for NAG in the optax
      convention, the look-ahead point).
    opt_state: the optimizer state.
    step: int32 scalar, the number of updates done (also the index of the next
      minibatch in the data stream).
    diverged_at: int32 scalar, the update at which the loss, parameters or
      optimizer state first became NaN/inf (the state is frozen just before
      it); -1 while the run is finite.
    data_key: key of the training stream; update ``t`` samples its minibatch
      with ``jax.random.fold_in(data_key, t)``.
    eval_key: key of the evaluation stream; the evaluation after update ``t``
      uses ``jax.random.fold_in(eval_key, t)``.
  """

  params: Params
  opt_state: optax.OptState
  step: jax.Array
  diverged_at: jax.Array
  data_key: jax.Array
  eval_key: jax.Array


def _all_finite(tree) -> jax.Array:
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
            if jnp.issubdtype(jnp.result_type(x), jnp.inexact)]
  return jnp.stack(leaves).all() if leaves else jnp.array(True)


def _strong(tree):
  """``tree`` without weak types, so the state's type is the same at step 0
  as after an update (a weak-typed leaf, e.g. from ``jnp.array(1.0)``, would
  make the second chunk recompile)."""
  def strong(x):
    x = jnp.asarray(x)
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
      return x
    return jnp.asarray(x, dtype=x.dtype)
  return jax.tree.map(strong, tree)


def _identity_eval_params(opt_state, params):
  del opt_state
  return params


class Trainer:
  """The pure functions of one training run, built by :func:`make_train`.

  * ``trainer(key, hparams) -> (state, metrics)``: the whole run, one
    ``lax.scan`` (alias ``trainer.train``). ``metrics[name]`` has one entry per
    evaluation, shape ``(config.num_evals,)``.
  * ``trainer.init(key, hparams) -> state``: the :class:`TrainState` at step 0.
  * ``trainer.run_chunk(state, hparams) -> (state, metrics)``:
    ``config.chunk_size`` updates; metrics of shape
    ``(config.evals_per_chunk,)``. Chaining ``init`` and ``num_chunks`` calls of
    ``run_chunk`` gives exactly ``train``.

  All three are pure and traceable: wrap them in ``jax.jit`` (donate the state:
  ``donate_argnums=0``) and ``jax.vmap`` over keys and hyperparameters.
  ``hparams`` is a mapping from names to scalars (floats or traced arrays),
  passed to the optimizer factory (or to ``init_fn`` for names listed in
  ``init_hparams``).

  The metrics are ``train_loss`` (the mean minibatch loss over the evaluation
  period, at the params the optimizer holds) and whatever ``eval_fn`` returns,
  averaged over ``num_eval_batches`` fresh batches.
  """

  def __init__(self, config, init_fn, loss_fn, sample_fn, optimizer_factory,
               eval_fn, params_for_eval, init_hparams, data=None):
    self.config = config
    self.data = data
    self._init_fn = init_fn
    self._loss_fn = loss_fn
    self._sample_fn = sample_fn
    self._optimizer_factory = optimizer_factory
    self._eval_fn = eval_fn
    self._params_for_eval = params_for_eval
    self.init_hparams = tuple(init_hparams)
    # Jitted and vmapped versions kept by the runner, keyed by placement, so
    # repeated grid runs with one trainer compile once.
    self._compiled: dict[Any, Any] = {}

  def __repr__(self):
    return f"Trainer({self.config!r})"

  # -- pieces ---------------------------------------------------------------

  def _split_hparams(self, hparams: Hparams):
    init_kw = {k: v for k, v in hparams.items() if k in self.init_hparams}
    opt_kw = {k: v for k, v in hparams.items() if k not in self.init_hparams}
    return init_kw, opt_kw

  def _optimizer(self, hparams: Hparams) -> optax.GradientTransformation:
    return self._optimizer_factory(**self._split_hparams(hparams)[1])

  def init(self, key: jax.Array, hparams: Hparams) -> TrainState:
    """The state at step 0: params from ``init_fn``, a fresh optimizer state.

    Args:
      key: the run's PRNG key (typed or raw); it is split into the
        initialization key and the keys of the training and evaluation
        streams.
      hparams: name -> scalar.
    """
    init_key, data_key, eval_key = jax.random.split(key, 3)
    init_kw, _ = self._split_hparams(hparams)
    params = _strong(self._init_fn(init_key, **init_kw))
    opt_state = _strong(self._optimizer(hparams).init(params))
    return TrainState(
        params=params, opt_state=opt_state,
        step=jnp.zeros([], jnp.int32),
        diverged_at=jnp.full([], -1, jnp.int32),
        data_key=data_key, eval_key=eval_key)

  def _sample(self, key, batch_size, data):
    if data is None:
      return self._sample_fn(key, batch_size)
    return self._sample_fn(key, batch_size, data)

  def _update(self, state: TrainState, hparams: Hparams, data):
    """One update on the minibatch of step ``state.step``."""
    config = self.config
    batch = self._sample(jax.random.fold_in(state.data_key, state.step),
                         config.batch_size, data)
    loss, grads = jax.value_and_grad(self._loss_fn)(state.params, batch)
    optimizer = self._optimizer(hparams)
    if isinstance(optimizer, optax.GradientTransformationExtraArgs):
      # Optimizers that take extra arguments (jaxmomentum.hessian_free, an
      # optax.chain) get the minibatch and its loss; a chain's plain links
      # ignore them.
      updates, opt_state = optimizer.update(
          grads, state.opt_state, state.params, batch=batch, value=loss)
    else:
      updates, opt_state = optimizer.update(grads, state.opt_state,
                                            state.params)
    params = optax.apply_updates(state.params, updates)
    diverged_at = state.diverged_at
    if config.detect_divergence:
      finite = (jnp.isfinite(loss) & _all_finite(params)
                & _all_finite(opt_state))
      running = state.diverged_at < 0
      keep = finite & running
      params = optax.tree.where(keep, params, state.params)
      opt_state = optax.tree.where(keep, opt_state, state.opt_state)
      diverged_at = jnp.where(running & ~finite, state.step, diverged_at)
    state = state._replace(params=params, opt_state=opt_state,
                           step=state.step + 1, diverged_at=diverged_at)
    return state, loss

  def evaluate(self, state: TrainState, data: Any = None) -> Metrics:
    """``eval_fn`` at ``params_for_eval(opt_state, params)``, fresh batches.

    The batches come from the evaluation stream at ``state.step``; the result
    is the mean over ``config.num_eval_batches`` batches. ``data``: as for
    :meth:`run_chunk`.
    """
    config = self.config
    data = self.data if data is None else data
    params = self._params_for_eval(state.opt_state, state.params)
    key = jax.random.fold_in(state.eval_key, state.step)

    def one(k):
      metrics = self._eval_fn(params,
                              self._sample(k, config.eval_batch_size, data))
      metrics = dict(metrics)
      for name, value in metrics.items():
        if jnp.ndim(value) != 0:
          raise ValueError(
              f"eval_fn must return a mapping of scalars; {name!r} has shape "
              f"{jnp.shape(value)}")
      if TRAIN_LOSS in metrics:
        raise ValueError(f"eval_fn must not return the reserved name "
                         f"{TRAIN_LOSS!r}")
      return metrics

    if config.num_eval_batches == 1:
      return one(key)
    keys = jax.random.split(key, config.num_eval_batches)
    return jax.tree.map(lambda x: jnp.mean(x, axis=0), lax.map(one, keys))

  def _period(self, state: TrainState, hparams: Hparams, data):
    """``eval_every`` updates, then one evaluation."""
    state, losses = lax.scan(lambda s, _: self._update(s, hparams, data),
                             state, None, length=self.config.eval_every)
    metrics = {TRAIN_LOSS: jnp.mean(losses), **self.evaluate(state, data)}
    return state, metrics

  # -- public entry points --------------------------------------------------

  def run_chunk(self, state: TrainState, hparams: Hparams, data: Any = None
                ) -> tuple[TrainState, Metrics]:
    """``config.chunk_size`` updates from ``state``; metrics per evaluation.

    ``data`` (default: the trainer's ``data``) is what ``sample_fn`` gets as
    its third argument. Pass it explicitly to a jitted call so that it is an
    argument of the compiled program rather than a constant baked into it
    (:func:`run_grid` does).
    """
    data = self.data if data is None else data
    return lax.scan(lambda s, _: self._period(s, hparams, data), state, None,
                    length=self.config.evals_per_chunk)

  def train(self, key: jax.Array, hparams: Hparams, data: Any = None
            ) -> tuple[TrainState, Metrics]:
    """The whole run from ``key``: ``(final state, metrics per evaluation)``.

    ``data``: as for :meth:`run_chunk`.
    """
    data = self.data if data is None else data
    state = self.init(key, hparams)
    return lax.scan(lambda s, _: self._period(s, hparams, data), state, None,
                    length=self.config.num_evals)

  __call__ = train


def make_train(
    config: TrainConfig,
    init_fn: Callable[..., Params],
    loss_fn: Callable[[Params, Batch], jax.Array],
    sample_fn: Callable[[jax.Array, int], Batch],
    optimizer_factory: Callable[..., optax.GradientTransformation],
    *,
    eval_fn: Optional[Callable[[Params, Batch], Mapping[str, jax.Array]]] = None,
    params_for_eval: Optional[Callable[[optax.OptState, Params], Params]] = None,
    init_hparams: Sequence[str] = (),
    data: Any = None,
) -> Trainer:
  """Builds the pure training functions of one run (see :class:`Trainer`).

  Each update ``t`` samples a fresh minibatch
  ``sample_fn(fold_in(data_key, t), config.batch_size)``, computes
  ``jax.value_and_grad(loss_fn)(params, batch)`` and applies
  ``optimizer_factory(**hparams)``; an optimizer that takes extra arguments
  (an ``optax.GradientTransformationExtraArgs``, e.g.
  :func:`jaxmomentum.hessian_free`) is called as
  ``update(grads, opt_state, params, batch=batch, value=loss)``, so HF trains
  exactly as NAG does. The optimizer is built inside the traced
  function, so hyperparameters arrive as traced scalars: a grid over them is a
  ``vmap`` axis of one compiled program, not a recompilation per value.

  Every ``config.eval_every`` updates, ``eval_fn`` is applied to
  ``params_for_eval(opt_state, params)`` on fresh evaluation batches. Pass
  ``params_for_eval=jaxmomentum.nag_eval_params`` to evaluate NAG at
  :math:`\\theta_t` rather than at the look-ahead point the optimizer holds.

  If ``config.detect_divergence``, an update that makes the loss, the params
  or the optimizer state non-finite is not applied: the run stays frozen at
  its last finite state from then on and ``state.diverged_at`` records the
  update index (per run, with ``jnp.where``, so under ``vmap`` the other runs
  are unaffected).

  Args:
    config: a :class:`TrainConfig`.
    init_fn: ``init_fn(key, **init_hparams) -> params`` (any pytree).
    loss_fn: ``loss_fn(params, batch) -> scalar`` to minimize.
    sample_fn: ``sample_fn(key, batch_size) -> batch`` (any pytree), or
      ``sample_fn(key, batch_size, data)`` when ``data`` is given; it must be
      pure: the same key gives the same batch.
    optimizer_factory: ``optimizer_factory(**hparams) -> optax
      GradientTransformation``; receives every hparam not in
      ``init_hparams``, as a traced scalar.
    eval_fn: ``eval_fn(params, batch) -> {name: scalar}``; default
      ``{"loss": loss_fn(params, batch)}``. ``"train_loss"`` is reserved.
    params_for_eval: ``params_for_eval(opt_state, params) -> params`` at which
      to evaluate; default: ``params``.
    init_hparams: names of hparams passed to ``init_fn`` instead of the
      optimizer factory (e.g. an initialization scale to grid over).
    data: a pytree of arrays that ``sample_fn`` draws from (a training set).
      :func:`run_grid` places it on the devices once, replicated, and passes
      it to the compiled chunk as an argument shared by every run: a data set
      closed over by ``sample_fn`` instead would be compiled into the program
      as a constant (hundreds of MB of program for MNIST, lowered again for
      every compile).

  Returns:
    A :class:`Trainer`; ``trainer(key, hparams)`` runs the whole training.

  Example:
    >>> import jax, jax.numpy as jnp, optax
    >>> from jaxmomentum.training import TrainConfig, make_train
    >>> def sample(key, n):
    ...   x = jax.random.normal(key, (n, 3))
    ...   return x, x @ jnp.array([1.0, -2.0, 0.5])
    >>> def loss(w, batch):
    ...   x, y = batch
    ...   return jnp.mean((x @ w - y) ** 2)
    >>> trainer = make_train(
    ...     TrainConfig(num_steps=200, batch_size=32, eval_every=50),
    ...     init_fn=lambda key: jnp.zeros(3), loss_fn=loss, sample_fn=sample,
    ...     optimizer_factory=lambda learning_rate, momentum: optax.sgd(
    ...         learning_rate, momentum))
    >>> hparams = {"learning_rate": 0.05, "momentum": 0.9}
    >>> state, metrics = jax.jit(trainer)(jax.random.key(0), hparams)
    >>> metrics["loss"].shape
    (4,)
    >>> # 8 seeds x 3 learning rates in one program:
    >>> keys = jax.random.split(jax.random.key(1), 8)
    >>> grid = {"learning_rate": jnp.array([0.01, 0.03, 0.1]),
    ...         "momentum": jnp.full(3, 0.9)}
    >>> over_lr = jax.vmap(trainer, in_axes=(None, 0))
    >>> _, m = jax.jit(jax.vmap(over_lr, in_axes=(0, None)))(keys, grid)
    >>> m["loss"].shape
    (8, 3, 4)
  """
  if not isinstance(config, TrainConfig):
    raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
  for name, fn in (("init_fn", init_fn), ("loss_fn", loss_fn),
                   ("sample_fn", sample_fn),
                   ("optimizer_factory", optimizer_factory)):
    if not callable(fn):
      raise TypeError(f"{name} must be callable, got {fn!r}")
  if isinstance(init_hparams, str):
    raise TypeError("init_hparams must be a sequence of names, not a string")
  if eval_fn is None:
    def eval_fn(params, batch):
      return {"loss": loss_fn(params, batch)}
  if params_for_eval is None:
    params_for_eval = _identity_eval_params
  return Trainer(config, init_fn, loss_fn, sample_fn, optimizer_factory,
                 eval_fn, params_for_eval, init_hparams, data)
