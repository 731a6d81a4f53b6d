"""``make_train``: one pure training function built from ``lax.scan``.

In the purejaxrl style: sampling, the loss, its gradient and the optax update
all run inside ``lax.scan``, so a whole run (or a chunk of it) is one program
that ``jax.jit`` compiles once and ``jax.vmap`` batches over seeds and
hyperparameters.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
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


def _check_batch_axis(batch, batch_size: int) -> None:
  """Every leaf of ``batch`` but 0-d ones has ``batch_size`` rows first."""
  for path, x in jax.tree_util.tree_leaves_with_path(batch):
    if jnp.ndim(x) and jnp.shape(x)[0] != batch_size:
      raise ValueError(
          "batch_shards > 1 needs every leaf of sample_fn's batch to have the "
          f"batch size ({batch_size}) as its leading axis; "
          f"{jax.tree_util.keystr(path) or 'the batch'} has shape "
          f"{jnp.shape(x)}. Run with batch_shards=1.")


def _batch_slice(batch, start, size: int):
  """Rows ``start .. start + size`` of every leaf; 0-d leaves are shared."""
  return jax.tree.map(lambda x: x if jnp.ndim(x) == 0
                      else lax.dynamic_slice_in_dim(x, start, size, 0), batch)


def _shard_of_batch(batch, batch_size: int, shard):
  """Shard ``lax.axis_index(axis)`` of ``num_shards`` equal slices of every
  leaf's leading (batch) axis; 0-d leaves are shared."""
  axis, num_shards = shard
  _check_batch_axis(batch, batch_size)
  size = batch_size // num_shards
  return _batch_slice(batch, lax.axis_index(axis) * size, size)


def _first_replica(tree, axis):
  """Every numeric leaf as the first device of mesh axis ``axis`` has it."""
  def first(x):
    if not (jnp.issubdtype(x.dtype, jnp.number) or x.dtype == jnp.bool_):
      return x  # PRNG keys and the like: never changed by an update
    return lax.all_gather(x, axis)[0]
  return jax.tree.map(first, tree)


def _identity_eval_params(opt_state, params):
  del opt_state
  return params


@dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity
class Trainer:
  """The pure functions of one training run, built by :func:`make_train`.

  In the purejaxrl style every function is pure and traceable: wrap it in
  ``jax.jit`` (donate the state: ``donate_argnums=0``) and ``jax.vmap`` it
  over keys and hyperparameters yourself, or hand the trainer to
  :func:`run_grid`, which does both. ``hparams`` is a mapping from names to
  scalars (floats or traced arrays), passed to the optimizer factory (or to
  ``init_fn`` for names listed in ``init_hparams``). ``data`` is what
  ``sample_fn`` gets as its third argument: pass it as an argument of the
  jitted call, so that it is not a constant compiled into the program.

  Attributes:
    config: the :class:`TrainConfig`.
    init: ``init(key, hparams) -> state``, the :class:`TrainState` at step 0.
    run_chunk: ``run_chunk(state, hparams, data) -> (state, metrics)``:
      ``config.chunk_size`` updates, metrics of shape
      ``(config.evals_per_chunk,)``. ``init`` then ``num_chunks`` calls of
      ``run_chunk`` give exactly ``train``.
    train: ``train(key, hparams, data) -> (state, metrics)``: the whole run,
      one ``lax.scan``; ``metrics[name]`` has shape ``(config.num_evals,)``.
    evaluate: ``evaluate(state, data) -> metrics``: ``eval_fn`` at
      ``params_for_eval(opt_state, params)``, averaged over
      ``config.num_eval_batches`` fresh batches of the evaluation stream at
      ``state.step``.
    data: the ``data`` given to :func:`make_train` (``None`` if none).
    init_hparams: the names of the hparams that go to ``init_fn``.
    run_chunk_over_batch: ``run_chunk_over_batch(axis_name, num_shards)`` is
      ``run_chunk`` with each minibatch split over the ``num_shards`` devices
      of mesh axis ``axis_name`` (call it inside ``jax.shard_map``): every
      device samples the whole minibatch, takes its slice of the leading
      axis, and the loss, its gradient and the evaluation metrics are
      averaged over the axis (``lax.pmean``) before the optimizer update,
      which every device does alike. It equals ``run_chunk`` up to float
      rounding when ``loss_fn`` and ``eval_fn`` are means over the batch's
      leading axis; :func:`run_grid` checks that before using it.
    batch_mean_gap: ``batch_mean_gap(state, data, num_shards)``: the
      largest relative difference between the loss (and, when the evaluation
      batch is split too, the metrics of ``eval_fn``) on the whole minibatch
      of ``state.step`` and the mean of those on its ``num_shards`` slices,
      relative to the largest of them in magnitude: 0 up to float rounding
      for means over the batch, inf for a non-float metric.
    optimizer: ``optimizer(hparams) -> optax.GradientTransformation``, the
      factory applied to the optimizer's hparams.

  ``trainer(key, hparams)`` is ``trainer.train(key, hparams, trainer.data)``.

  The metrics are ``train_loss`` (the mean minibatch loss over the evaluation
  period, at the params the optimizer holds) and whatever ``eval_fn``
  returns.
  """

  config: TrainConfig
  init: Callable[[jax.Array, Hparams], TrainState]
  run_chunk: Callable[[TrainState, Hparams, Any],
                      tuple[TrainState, Metrics]]
  train: Callable[[jax.Array, Hparams, Any], tuple[TrainState, Metrics]]
  evaluate: Callable[[TrainState, Any], Metrics]
  data: Any = None
  init_hparams: tuple[str, ...] = ()
  run_chunk_over_batch: Optional[Callable[[str, int], Callable[
      [TrainState, Hparams, Any], tuple[TrainState, Metrics]]]] = None
  batch_mean_gap: Optional[Callable[[TrainState, Any, int], jax.Array]] = None
  optimizer: Optional[Callable[[Hparams], optax.GradientTransformation]] = None

  def __repr__(self):
    return f"Trainer({self.config!r})"

  def __call__(self, key: jax.Array, hparams: Hparams
               ) -> tuple[TrainState, Metrics]:
    """The whole run on the trainer's own data: see :attr:`train`."""
    return self.train(key, hparams, self.data)


def _check_eval_metrics(metrics) -> Metrics:
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


def _check_sample_fn(sample_fn) -> None:
  """``sample_fn`` must take ``(key, batch_size, data)``."""
  try:
    signature = inspect.signature(sample_fn)
  except (TypeError, ValueError):  # a builtin without a signature: trust it
    return
  try:
    signature.bind(None, None, None)
  except TypeError as err:
    raise TypeError(
        "sample_fn must take (key, batch_size, data) (data is None when "
        f"make_train gets no data), got a function with signature "
        f"{signature}") from err


def make_train(
    config: TrainConfig,
    init_fn: Callable[..., Params],
    loss_fn: Callable[[Params, Batch], jax.Array],
    sample_fn: Callable[[jax.Array, int, Any], Batch],
    optimizer_factory: Callable[..., optax.GradientTransformation],
    *,
    eval_fn: Optional[Callable[[Params, Batch], Mapping[str, jax.Array]]] = None,
    params_for_eval: Optional[Callable[[optax.OptState, Params], Params]] = None,
    init_hparams: Sequence[str] = (),
    data: Any = None,
) -> Trainer:
  """Builds the pure training functions of one run (see :class:`Trainer`).

  Each update ``t`` samples a fresh minibatch
  ``sample_fn(fold_in(data_key, t), config.batch_size, data)``, computes
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
    sample_fn: ``sample_fn(key, batch_size, data) -> batch`` (any pytree),
      with ``data`` as given here (``None`` if none; e.g.
      :func:`jaxmomentum.problems.sample_minibatch`); it must be pure: the
      same key gives the same batch.
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
    A :class:`Trainer` of pure functions (``init``, ``run_chunk``, ``train``,
    ``evaluate``); ``trainer(key, hparams)`` runs the whole training.

  Example:
    >>> import jax, jax.numpy as jnp, optax
    >>> from jaxmomentum.training import TrainConfig, make_train
    >>> def sample(key, n, data):  # data: None here
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
    >>> # 8 seeds x 3 learning rates in one program, from the pure train:
    >>> keys = jax.random.split(jax.random.key(1), 8)
    >>> grid = {"learning_rate": jnp.array([0.01, 0.03, 0.1]),
    ...         "momentum": jnp.full(3, 0.9)}
    >>> over_lr = jax.vmap(trainer.train, in_axes=(None, 0, None))
    >>> over_seeds = jax.vmap(over_lr, in_axes=(0, None, None))
    >>> _, m = jax.jit(over_seeds)(keys, grid, None)
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
  _check_sample_fn(sample_fn)
  if isinstance(init_hparams, str):
    raise TypeError("init_hparams must be a sequence of names, not a string")
  init_hparams = tuple(init_hparams)
  if eval_fn is None:
    def eval_fn(params, batch):
      return {"loss": loss_fn(params, batch)}
  if params_for_eval is None:
    params_for_eval = _identity_eval_params

  def split(hparams: Hparams):
    init_kw = {k: v for k, v in hparams.items() if k in init_hparams}
    opt_kw = {k: v for k, v in hparams.items() if k not in init_hparams}
    return init_kw, opt_kw

  def optimizer(hparams: Hparams) -> optax.GradientTransformation:
    return optimizer_factory(**split(hparams)[1])

  def init(key, hparams):
    init_key, data_key, eval_key = jax.random.split(key, 3)
    params = _strong(init_fn(init_key, **split(hparams)[0]))
    opt_state = _strong(optimizer(hparams).init(params))
    return TrainState(
        params=params, opt_state=opt_state,
        step=jnp.zeros([], jnp.int32),
        diverged_at=jnp.full([], -1, jnp.int32),
        data_key=data_key, eval_key=eval_key)

  def update(state: TrainState, hparams, data, shard=None):
    """One update on the minibatch of step ``state.step``; with ``shard =
    (axis_name, num_shards)`` its gradient is the mean over the axis of the
    gradients of the minibatch's slices."""
    batch = sample_fn(jax.random.fold_in(state.data_key, state.step),
                      config.batch_size, data)
    if shard is None:
      loss, grads = jax.value_and_grad(loss_fn)(state.params, batch)
    else:
      loss, grads = jax.value_and_grad(loss_fn)(
          state.params, _shard_of_batch(batch, config.batch_size, shard))
      loss, grads = lax.pmean((loss, grads), shard[0])
    opt = optimizer(hparams)
    if isinstance(opt, optax.GradientTransformationExtraArgs):
      # Optimizers that take extra arguments (jaxmomentum.hessian_free, an
      # optax.chain) get the whole minibatch and its loss; a chain's plain
      # links ignore them.
      updates, opt_state = opt.update(grads, state.opt_state, state.params,
                                      batch=batch, value=loss)
    else:
      updates, opt_state = opt.update(grads, state.opt_state, state.params)
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

  def evaluate(state, data, shard=None):
    params = params_for_eval(state.opt_state, state.params)
    key = jax.random.fold_in(state.eval_key, state.step)
    if shard is not None and config.eval_batch_size % shard[1]:
      shard = None  # the whole evaluation batch on every device

    def one(k):
      batch = sample_fn(k, config.eval_batch_size, data)
      if shard is None:
        return _check_eval_metrics(eval_fn(params, batch))
      return lax.pmean(_check_eval_metrics(eval_fn(
          params, _shard_of_batch(batch, config.eval_batch_size, shard))),
                       shard[0])

    if config.num_eval_batches == 1:
      return one(key)
    keys = jax.random.split(key, config.num_eval_batches)
    return jax.tree.map(lambda x: jnp.mean(x, axis=0), lax.map(one, keys))

  def period(state, hparams, data, shard=None):
    """``eval_every`` updates, then one evaluation."""
    state, losses = lax.scan(lambda s, _: update(s, hparams, data, shard),
                             state, None, length=config.eval_every)
    return state, {TRAIN_LOSS: jnp.mean(losses),
                   **evaluate(state, data, shard)}

  def periods(state, hparams, data, length, shard=None):
    return lax.scan(lambda s, _: period(s, hparams, data, shard), state, None,
                    length=length)

  def run_chunk(state, hparams, data):
    return periods(state, hparams, data, config.evals_per_chunk)

  def train(key, hparams, data):
    return periods(init(key, hparams), hparams, data, config.num_evals)

  def run_chunk_over_batch(axis_name: str, num_shards: int):
    if config.batch_size % num_shards:
      raise ValueError(
          f"batch_shards ({num_shards}) must divide the batch size "
          f"({config.batch_size})")

    def chunk(state, hparams, data):
      state, metrics = periods(state, hparams, data, config.evals_per_chunk,
                               (axis_name, num_shards))
      # Every device did the same updates from the same averaged gradients;
      # all take the first device's state, so that the copies cannot drift
      # apart (a non-deterministic kernel on a GPU could make them).
      first = functools.partial(_first_replica, axis=axis_name)
      return state._replace(params=first(state.params),
                            opt_state=first(state.opt_state),
                            diverged_at=first(state.diverged_at)), metrics
    return chunk

  def batch_mean_gap(state, data, num_shards):
    """Whole minibatch vs the mean over its slices (see :class:`Trainer`)."""
    batch = sample_fn(jax.random.fold_in(state.data_key, state.step),
                      config.batch_size, data)
    _check_batch_axis(batch, config.batch_size)
    size = config.batch_size // num_shards
    parts = [_batch_slice(batch, i * size, size) for i in range(num_shards)]
    eval_sharded = config.eval_batch_size % num_shards == 0

    def stats(b):  # values only: a loss whose value is a mean over the
      # batch's examples at any params has their mean gradient too
      out = {("loss_fn",): loss_fn(state.params, b)}
      if eval_sharded:
        params = params_for_eval(state.opt_state, state.params)
        metrics = _check_eval_metrics(eval_fn(params, b))
        out.update({("eval_fn", k): v for k, v in metrics.items()})
      return out

    whole, sliced = stats(batch), [stats(b) for b in parts]

    def gap(name):
      """|whole - mean of slices| over the largest magnitude among them (a
      mean near 0 of terms that are not, e.g. a signed residual, is
      compared at the terms' scale); inf for a non-float metric."""
      if not jnp.issubdtype(jnp.result_type(whole[name]), jnp.inexact):
        return jnp.asarray(jnp.inf, jnp.float32)
      x = jnp.asarray(whole[name], jnp.float32)
      ys = jnp.stack([jnp.asarray(s[name], jnp.float32) for s in sliced])
      scale = jnp.maximum(jnp.abs(x), jnp.max(jnp.abs(ys)))
      diff = jnp.abs(x - jnp.mean(ys))
      return jnp.where(diff > 0, diff / jnp.maximum(scale, 1e-30), 0.0)
    return jnp.max(jnp.stack([gap(name) for name in whole]))

  return Trainer(config=config, init=init, run_chunk=run_chunk, train=train,
                 evaluate=lambda state, data: evaluate(state, data),
                 data=data, init_hparams=init_hparams,
                 run_chunk_over_batch=run_chunk_over_batch,
                 batch_mean_gap=batch_mean_gap, optimizer=optimizer)
