"""Tests of jaxmomentum.training: the engine, the grid runner, checkpoints.

The model, problem and optimizer are the tiny ones of tests/_training_toy.py
(a tanh RNN, an addition-like task, ``optax.sgd``), so the engine is tested
on its own. Equalities are bitwise (``assert_array_equal``): on CPU a run
inside a vmapped, chunked grid reproduces the standalone run exactly.
Subprocess tests (8 forced devices, SIGKILL and resume) are in
test_training_subprocess.py; selection and aggregation in
test_training_summary.py.
"""

import logging
import re
import sys
import warnings

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from _interrupt import stopped_after_save
import _training_toy as toy
from jaxmomentum import training
from jaxmomentum.training import _checkpoint
from jaxmomentum.training import _runner

LR, MOM = "learning_rate", "momentum"
DIVERGING_LR = 50.0


def _hp(lr, mom=0.9):
  return {LR: np.float32(lr), MOM: np.float32(mom)}


def _host_state(state):
  return jax.tree.map(_runner._to_host, state)


@pytest.fixture(scope="module")
def trainer():
  """40 updates, an evaluation every 10, chunks of 10 (4 chunks)."""
  return toy.make_trainer(num_steps=40, eval_every=10, chunk_size=10)


@pytest.fixture(scope="module")
def standalone(trainer):
  """Standalone runs, jitted once: (seed, lr, momentum) -> (state, metrics)."""
  train = jax.jit(trainer)
  cache = {}

  def run(seed, lr, mom=0.9):
    if (seed, lr, mom) not in cache:
      cache[seed, lr, mom] = train(jax.random.key(seed), _hp(lr, mom))
    return cache[seed, lr, mom]

  return run


@jax.jit
def _reference_step(params, opt_state, data_key, t, lr, mom):
  batch = toy.sample(jax.random.fold_in(data_key, t), 8)
  loss, grads = jax.value_and_grad(toy.loss)(params, batch)
  updates, opt_state = optax.sgd(lr, mom).update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state, loss


def _reference_run(seed, lr, mom, num_steps):
  """A hand-written optax loop over the documented data stream.

  Returns the final params, the first update whose loss or params are not
  finite (-1 if none) and the per-update losses.
  """
  init_key, data_key, _ = jax.random.split(jax.random.key(seed), 3)
  params = toy.init(init_key)
  opt_state = optax.sgd(lr, mom).init(params)
  first_bad, losses = -1, []
  for t in range(num_steps):
    params, opt_state, loss = _reference_step(
        params, opt_state, data_key, jnp.int32(t), np.float32(lr),
        np.float32(mom))
    losses.append(float(loss))
    finite = np.isfinite(float(loss)) and all(
        np.all(np.isfinite(x)) for x in jax.tree.leaves(params))
    if not finite and first_bad < 0:
      first_bad = t
  return params, first_bad, losses


# -- configuration ----------------------------------------------------------

_BAD_CONFIGS = [
    (dict(num_steps=0, batch_size=8, eval_every=1), ValueError, "num_steps"),
    (dict(num_steps=1.5, batch_size=8, eval_every=1), TypeError, "num_steps"),
    (dict(num_steps=10, batch_size=0, eval_every=5), ValueError, "batch_size"),
    (dict(num_steps=10, batch_size=8, eval_every=0), ValueError, "eval_every"),
    (dict(num_steps=10, batch_size=8, eval_every=20), ValueError, "eval_every"),
    (dict(num_steps=10, batch_size=8, eval_every=3), ValueError, "eval_every"),
    (dict(num_steps=10, batch_size=8, eval_every=5, eval_batch_size=0),
     ValueError, "eval_batch_size"),
    (dict(num_steps=10, batch_size=8, eval_every=5, num_eval_batches=0),
     ValueError, "num_eval_batches"),
    (dict(num_steps=20, batch_size=8, eval_every=5, chunk_size=8),
     ValueError, "chunk_size"),
    (dict(num_steps=20, batch_size=8, eval_every=5, chunk_size=15),
     ValueError, "chunk_size"),
    (dict(num_steps=20, batch_size=8, eval_every=5, chunk_size=40),
     ValueError, "chunk_size"),
    (dict(num_steps=20, batch_size=8, eval_every=5, detect_divergence=1),
     TypeError, "detect_divergence"),
]


@pytest.mark.parametrize("kwargs,error,name", _BAD_CONFIGS)
def test_config_rejects_bad_arguments(kwargs, error, name):
  with pytest.raises(error, match=name):
    training.TrainConfig(**kwargs)


@pytest.mark.parametrize("num_steps,eval_every,chunk_size,num_chunks", [
    (50_000, 1_000, 1_000, 50),   # 50 evaluations: one per chunk
    (750_000, 1_000, 15_000, 50),
    (100, 1, 2, 50),
    (10, 10, 10, 1),
    (70, 10, 10, 7),
])
def test_config_auto_chunk(num_steps, eval_every, chunk_size, num_chunks):
  config = training.TrainConfig(num_steps=num_steps, batch_size=1,
                                eval_every=eval_every)
  assert (config.chunk_size, config.num_chunks) == (chunk_size, num_chunks)
  assert config.eval_steps[-1] == num_steps
  assert len(config.eval_steps) == config.num_evals
  assert config.eval_batch_size == 1


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(config={"num_steps": 10}), TypeError, "config"),
    (dict(loss_fn=None), TypeError, "loss_fn"),
    (dict(sample_fn=3), TypeError, "sample_fn"),
    (dict(sample_fn=lambda key, n: None), TypeError,
     r"sample_fn must take \(key, batch_size, data\)"),
    (dict(init_hparams="scale"), TypeError, "init_hparams"),
])
def test_make_train_rejects_bad_arguments(kwargs, error, match):
  args = dict(config=training.TrainConfig(num_steps=10, batch_size=2,
                                          eval_every=5),
              init_fn=toy.init, loss_fn=toy.loss, sample_fn=toy.sample,
              optimizer_factory=toy.sgd)
  args.update(kwargs)
  with pytest.raises(error, match=match):
    training.make_train(**args)


def test_make_train_returns_pure_functions(trainer):
  """A frozen bundle of functions: nothing in it changes as it is used."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  with pytest.raises(dataclasses.FrozenInstanceError):
    trainer.config = None
  before = dict(vars(trainer))
  training.run_grid(trainer, _GRID, _SEEDS, progress=False)  # cached shapes
  assert vars(trainer) == before  # run_grid keeps its programs itself
  assert trainer in _runner._PROGRAMS


# -- the engine -------------------------------------------------------------

def test_train_equals_hand_written_optax_loop(trainer, standalone):
  state, metrics = standalone(3, 0.05, 0.9)
  params, first_bad, losses = _reference_run(3, 0.05, 0.9, 40)
  assert first_bad == -1
  chex.assert_trees_all_equal(state.params, params)
  assert int(state.step) == 40 and int(state.diverged_at) == -1
  np.testing.assert_allclose(
      metrics["train_loss"], np.mean(np.reshape(losses, (4, 10)), axis=1),
      rtol=1e-6)
  # The last evaluation: fresh batch from the evaluation stream at step 40.
  eval_key = jax.random.split(jax.random.key(3), 3)[2]
  expected = jax.jit(lambda p, k: toy.evaluate(p, toy.sample(k, 8)))(
      params, jax.random.fold_in(eval_key, 40))
  for name in ("loss", "error"):
    np.testing.assert_allclose(metrics[name][-1], expected[name], rtol=1e-6)


def test_chunks_equal_whole_run_without_recompiling(trainer, standalone):
  hparams = _hp(0.05)
  init = jax.jit(trainer.init)
  run_chunk = jax.jit(chex.assert_max_traces(trainer.run_chunk, n=1),
                      donate_argnums=0)  # one program for every chunk
  state = init(jax.random.key(3), hparams)
  chunks = []
  for _ in range(trainer.config.num_chunks):
    state, metrics = run_chunk(state, hparams, None)
    chunks.append(jax.device_get(metrics))
  whole_state, whole_metrics = standalone(3, 0.05, 0.9)
  chex.assert_trees_all_equal(_host_state(state), _host_state(whole_state))
  for name, values in whole_metrics.items():
    np.testing.assert_array_equal(
        np.concatenate([c[name] for c in chunks]), values)


def _assert_run_equals_standalone(result, s, p, standalone):
  point = result.grid.point(p)
  state, metrics = standalone(int(result.seeds[s]), point[LR], point[MOM])
  for name in ("train_loss", "loss", "error"):
    np.testing.assert_array_equal(result.metrics[name][s, p], metrics[name])
  run_state = jax.tree.map(lambda x: x[s, p], result.final_state)
  chex.assert_trees_all_equal(run_state, _host_state(state))


# Every run_grid call on the shared trainer has 6 runs, so the vmapped
# programs are compiled once for the whole module.
_SEEDS = [0, 1]
_GRID = {LR: [0.05, DIVERGING_LR, 0.01], MOM: [0.9]}


@pytest.fixture(scope="module")
def grid_result(trainer):
  """2 seeds x 3 learning rates, one of which diverges."""
  return training.run_grid(trainer, _GRID, _SEEDS, progress=False,
                           keep_state=True)


@pytest.mark.parametrize("batching", ["vmap", "map"])
def test_grid_runs_equal_standalone_runs(trainer, standalone, batching):
  grid = {LR: [0.05, 0.01, 0.002], MOM: [0.0, 0.9]}
  result = training.run_grid(trainer, grid, seeds=[5], progress=False,
                             keep_state=True, batching=batching)
  assert result.metrics["loss"].shape == (1, 6, 4)
  assert result.axes == ("seed", "point", "eval")
  np.testing.assert_array_equal(result.eval_steps, [10, 20, 30, 40])
  np.testing.assert_array_equal(
      result.grid.values[LR], np.float32([0.05] * 2 + [0.01] * 2 + [0.002] * 2))
  assert not result.diverged.any()
  for p in range(result.grid.size):
    _assert_run_equals_standalone(result, 0, p, standalone)


def test_diverging_run_is_flagged_and_neighbours_are_bit_identical(
    trainer, standalone, grid_result):
  result = grid_result
  benign = training.run_grid(trainer, {LR: [0.05, 0.02, 0.01], MOM: [0.9]},
                             _SEEDS, progress=False)
  assert not benign.diverged.any()
  np.testing.assert_array_equal(result.diverged, [[False, True, False]] * 2)
  for s, seed in enumerate(_SEEDS):
    _, first_bad, _ = _reference_run(seed, DIVERGING_LR, 0.9, 40)
    assert 0 <= first_bad < 40
    assert result.diverged_step[s, 1] == first_bad
    for p in (0, 2):  # each seed's own init and data, as standalone
      _assert_run_equals_standalone(result, s, p, standalone)
  assert not np.array_equal(result.metrics["loss"][0, 0],
                            result.metrics["loss"][1, 0])
  for name in result.metrics:
    np.testing.assert_array_equal(result.metrics[name][:, [0, 2]],
                                  benign.metrics[name][:, [0, 2]])
  # Frozen at the last finite state: finite params, every step counted.
  frozen = jax.tree.map(lambda x: x[:, 1], result.final_state)
  chex.assert_tree_all_finite(frozen.params)
  np.testing.assert_array_equal(frozen.step, [40, 40])
  summary = training.summarize(result, report=("error",))
  assert summary.rows[0].best[LR] != np.float32(DIVERGING_LR)
  assert {d.step for d in summary.diverged_runs} == set(
      result.diverged_step[:, 1].tolist())


def test_without_divergence_detection_nan_propagates():
  trainer = toy.make_trainer(num_steps=20, eval_every=10,
                             detect_divergence=False)
  state, metrics = jax.jit(trainer)(jax.random.key(0), _hp(DIVERGING_LR))
  assert int(state.diverged_at) == -1
  assert not np.all(np.isfinite(metrics["loss"]))
  assert not np.all(np.isfinite(state.params["w_hh"]))


def test_eval_batches_params_for_eval_and_init_hparams():
  num_eval_batches, eval_batch_size = 3, 5
  config = training.TrainConfig(num_steps=10, batch_size=8, eval_every=5,
                                eval_batch_size=eval_batch_size,
                                num_eval_batches=num_eval_batches)
  zero = jax.tree.map(jnp.zeros_like, toy.init(jax.random.key(0)))
  trainer = training.make_train(
      config, toy.init, toy.loss, toy.sample, toy.sgd, eval_fn=toy.evaluate,
      params_for_eval=lambda opt_state, params: zero,
      init_hparams=("scale",))
  hparams = {**_hp(0.05), "scale": np.float32(2.0)}
  state0 = jax.jit(trainer.init)(jax.random.key(4), hparams)
  init_key, _, eval_key = jax.random.split(jax.random.key(4), 3)
  chex.assert_trees_all_equal(state0.params, toy.init(init_key, 2.0))
  _, metrics = jax.jit(trainer)(jax.random.key(4), hparams)
  # Evaluated at params_for_eval (zeros), mean over 3 fresh batches.
  for i, step in enumerate(config.eval_steps):
    keys = jax.random.split(jax.random.fold_in(eval_key, step),
                            num_eval_batches)
    loss_at = jax.jit(lambda k: toy.loss(zero, toy.sample(k, eval_batch_size)))
    expected = np.mean([loss_at(k) for k in keys])
    np.testing.assert_allclose(metrics["loss"][i], expected, rtol=1e-6)


def test_eval_fn_must_return_scalars():
  trainer = training.make_train(
      training.TrainConfig(num_steps=2, batch_size=2, eval_every=1),
      toy.init, toy.loss, toy.sample, toy.sgd,
      eval_fn=lambda params, batch: {"out": toy.predict(params, batch[0])})
  with pytest.raises(ValueError, match="scalars"):
    jax.eval_shape(trainer, jax.random.key(0), _hp(0.1))


# -- grids ------------------------------------------------------------------

@pytest.mark.parametrize("spec,shape,first,last", [
    ({LR: [1e-3, 1e-4], MOM: [0.0, 0.9, 0.99]}, (2, 3),
     {LR: 1e-3, MOM: 0.0}, {LR: 1e-4, MOM: 0.99}),
    ([{LR: 0.1, MOM: 0.5}, {LR: 0.2, MOM: 0.0}], (2,),
     {LR: 0.1, MOM: 0.5}, {LR: 0.2, MOM: 0.0}),
    (training.Grid.product(steps=[1, 2]), (2,), {"steps": 1}, {"steps": 2}),
    ({LR: 0.5}, (1,), {LR: 0.5}, {LR: 0.5}),
])
def test_grid_specs(spec, shape, first, last):
  grid = _runner.as_grid(spec)
  assert grid.shape == shape and grid.size == int(np.prod(shape))
  for got, want in ((grid.point(0), first), (grid.point(grid.size - 1), last)):
    assert got.keys() == want.keys()
    np.testing.assert_allclose(list(got.values()), list(want.values()),
                               rtol=1e-6)


@pytest.mark.parametrize("spec,error", [
    ({LR: [[0.1, 0.2]]}, ValueError),
    ({LR: []}, ValueError),
    ({LR: ["a"]}, TypeError),
    ([{LR: 0.1}, {MOM: 0.2}], ValueError),
    ([], ValueError),
    ("learning_rate", TypeError),
])
def test_grid_rejects_bad_specs(spec, error):
  with pytest.raises(error):
    _runner.as_grid(spec)


def test_run_grid_rejects_unknown_batching(trainer):
  with pytest.raises(ValueError, match="batching"):
    training.run_grid(trainer, {LR: [0.1], MOM: [0.9]}, 1, progress=False,
                      batching="pmap")


@pytest.mark.parametrize("seeds,error", [
    (0, ValueError), ([], ValueError), ([-1], ValueError),
    ([2**31], ValueError), ([0.5], TypeError)])
def test_run_grid_rejects_bad_seeds(trainer, seeds, error):
  with pytest.raises(error, match="seed"):
    training.run_grid(trainer, {LR: [0.1], MOM: [0.9]}, seeds, progress=False)


# -- compilation ------------------------------------------------------------

class _CompileLog(logging.Handler):
  """Counts ``jax.log_compiles`` messages about each program."""

  def __init__(self):
    super().__init__()
    self.messages = []

  def emit(self, record):
    self.messages.append(record.getMessage())

  def count(self, name):
    # "Compiling jit(name) ..." (jax >= 0.7) or "Compiling name ..." (0.6).
    pattern = re.compile(rf"Compiling (jit\({name}\)|{name}) ")
    return sum(bool(pattern.match(m)) for m in self.messages)


def test_run_grid_compiles_the_chunk_program_once():
  trainer = toy.make_trainer(num_steps=60, eval_every=10, chunk_size=10)
  log = _CompileLog()
  logger = logging.getLogger("jax")
  logger.addHandler(log)
  try:
    with jax.log_compiles():
      training.run_grid(trainer, {LR: [0.05, 0.01], MOM: [0.9]}, seeds=2,
                        progress=False)
      assert log.count("run_chunk") == 1  # 6 chunks, one compilation
      assert log.count("init_from_seed") == 1
      # The same trainer again, another grid of the same size: no compile.
      training.run_grid(trainer, {LR: [0.03, 0.02], MOM: [0.5]}, seeds=[7, 8],
                        progress=False)
      assert log.count("run_chunk") == 1
  finally:
    logger.removeHandler(log)


# -- checkpoints ------------------------------------------------------------

def test_interrupted_run_resumes_to_the_same_numbers(
    trainer, grid_result, tmp_path):
  uninterrupted = grid_result
  with stopped_after_save(2):
    training.run_grid(trainer, _GRID, _SEEDS, out_dir=tmp_path,
                      progress=False)
  run_chunk = _runner._Placement(trainer, None).run_chunk  # the cached one
  compiled = run_chunk._cache_size()
  resumed = training.run_grid(trainer, _GRID, _SEEDS, out_dir=tmp_path,
                              progress=False, keep_state=True)
  assert resumed.chunks_run == trainer.config.num_chunks - 2
  chex.assert_trees_all_equal(resumed.metrics, uninterrupted.metrics)
  np.testing.assert_array_equal(resumed.diverged_step,
                                uninterrupted.diverged_step)
  chex.assert_trees_all_equal(resumed.final_state, uninterrupted.final_state)
  # A finished run is restored, not recomputed.
  again = training.run_grid(trainer, _GRID, _SEEDS, out_dir=tmp_path,
                            progress=False)
  assert again.chunks_run == 0
  chex.assert_trees_all_equal(again.metrics, uninterrupted.metrics)
  # The restored state needs no new compilation of the chunk program.
  assert run_chunk._cache_size() == compiled


@pytest.mark.parametrize("change", [
    dict(grid={LR: [0.05, 0.04, 0.01], MOM: [0.9]}),
    dict(seeds=[0, 2]),
    dict(tag="v2"),
    dict(trainer="longer"),
])
def test_checkpoint_of_another_run_is_refused(trainer, tmp_path, change):
  base = dict(grid=_GRID, seeds=_SEEDS, tag="")
  training.run_grid(trainer, out_dir=tmp_path, progress=False, **base)
  other = {**base, **change}
  other_trainer = other.pop("trainer", trainer)
  if other_trainer == "longer":
    other_trainer = toy.make_trainer(num_steps=50, eval_every=10,
                                     chunk_size=10)
  with pytest.raises(ValueError, match="different run"):
    training.run_grid(other_trainer, out_dir=tmp_path, progress=False, **other)


def test_checkpoint_without_orbax_names_the_extra(trainer, tmp_path,
                                                  monkeypatch):
  monkeypatch.setitem(sys.modules, "orbax.checkpoint", None)
  with pytest.raises(ImportError, match=r"jaxmomentum\[checkpoint\]"):
    training.run_grid(trainer, _GRID, _SEEDS, out_dir=tmp_path,
                      progress=False)


# -- progress and devices ---------------------------------------------------

def test_progress_bar(trainer, capsys):
  result = training.run_grid(trainer, _GRID, _SEEDS, progress=True)
  err = capsys.readouterr().err
  assert "40/40" in err, err
  # tqdm's "[elapsed<ETA, rate update/s, ...]" and our postfix.
  assert "update/s" in err and "runs=6" in err and "diverged=2" in err, err
  assert re.search(r"run_updates_per_s=[\d.e+]+", err), err
  assert re.search(r"\[\d+:\d+<\d+:\d+", err), err
  assert result.metrics["loss"].shape == (2, 3, 4)
  training.run_grid(trainer, _GRID, _SEEDS, progress=False)
  assert capsys.readouterr().err == ""


def test_use_all_cpu_cores_after_backend_start_warns_or_raises():
  jax.devices()  # the backend is up in this process
  other = len(jax.devices("cpu")) + 1
  with pytest.warns(RuntimeWarning, match="before any JAX computation"):
    assert training.use_all_cpu_cores(other) == len(jax.devices("cpu"))
  with pytest.raises(RuntimeError, match="before any JAX computation"):
    training.use_all_cpu_cores(other, strict=True)
  with warnings.catch_warnings():
    warnings.simplefilter("error")  # asking for the current count is fine
    training.use_all_cpu_cores(len(jax.devices("cpu")))
  with pytest.raises(ValueError, match="num_devices"):
    training.use_all_cpu_cores(0)


# -- a data set the sampler draws from: an argument, never a constant ---------

def _data_trainers():
  """The same least-squares task with its data passed in or closed over."""
  from jaxmomentum import problems  # pylint: disable=g-import-not-at-top
  data = jnp.asarray(np.random.default_rng(0).standard_normal((20_000, 3)),
                     jnp.float32)
  w_true = jnp.array([1.0, -2.0, 0.5])

  def loss(w, x):
    return jnp.mean((x @ w - x @ w_true) ** 2)

  config = training.TrainConfig(num_steps=8, batch_size=4, eval_every=4)
  common = dict(init_fn=lambda key: jnp.zeros(3), loss_fn=loss,
                optimizer_factory=lambda learning_rate: optax.sgd(
                    learning_rate))
  passed = training.make_train(
      config, sample_fn=problems.sample_minibatch, data=data, **common)
  closed = training.make_train(
      config, sample_fn=lambda k, n, _: problems.sample_minibatch(k, n, data),
      **common)
  return passed, closed, data


@pytest.mark.parametrize("batching", ["map", "vmap"])
def test_data_passed_in_equals_data_closed_over(batching):
  passed, closed, _ = _data_trainers()
  grid = {"learning_rate": [0.1, 0.01]}
  got = training.run_grid(passed, grid, 2, progress=False, keep_state=True,
                          batching=batching)
  want = training.run_grid(closed, grid, 2, progress=False, keep_state=True,
                           batching=batching)
  chex.assert_trees_all_equal(got.metrics, want.metrics)
  chex.assert_trees_all_equal(got.final_state.params, want.final_state.params)
  # Outside the runner, the trainer's own data is the default.
  key, hparams = jax.random.key(3), {"learning_rate": 0.1}
  chex.assert_trees_all_equal(jax.jit(passed)(key, hparams)[1],
                      jax.jit(closed)(key, hparams)[1])


def test_run_grid_compiles_the_data_as_an_argument_not_a_constant():
  passed, closed, data = _data_trainers()

  def program_chars(trainer, chunk_data):
    placement = _runner._Placement(trainer, None)
    hparams = {"learning_rate": placement.put(np.full(
        placement.num_devices, 0.1, np.float32))}
    state = placement.init(placement.put(np.arange(
        placement.num_devices, dtype=np.int32)), hparams)
    return len(placement.run_chunk.lower(state, hparams,
                                         chunk_data).as_text())

  # 60,000 numbers as a constant take far more than 100k characters.
  assert program_chars(closed, None) > 200_000
  assert program_chars(passed, data) < 100_000


# -- multi-process settings, device groups, command buffers -------------------

@pytest.fixture
def no_distributed_env(monkeypatch):
  for name in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES",
               "JAX_PROCESS_ID"):
    monkeypatch.delenv(name, raising=False)
  return monkeypatch


def test_init_distributed_checks_its_settings(no_distributed_env):
  jax.devices()  # the backend is up in this process: too late to join
  assert training.init_distributed() is False  # nothing asked for
  assert training.is_main_process()
  with pytest.raises(ValueError, match="^coordinator_address must be"):
    training.init_distributed("localhost", 2, 0)
  with pytest.raises(ValueError, match="^process_id must be"):
    training.init_distributed("localhost:1234", 2, 2)
  with pytest.raises(ValueError, match="^num_processes must be"):
    training.init_distributed("localhost:1234", 0, 0)
  with pytest.raises(RuntimeError, match="before any JAX computation"):
    training.init_distributed("localhost:1234", 2, 0)
  # Unset arguments come from the standard environment variables.
  no_distributed_env.setenv("JAX_NUM_PROCESSES", "two")
  with pytest.raises(ValueError, match="^JAX_NUM_PROCESSES must be"):
    training.init_distributed("localhost:1234")
  no_distributed_env.setenv("JAX_NUM_PROCESSES", "2")
  no_distributed_env.setenv("JAX_PROCESS_ID", "3")
  with pytest.raises(ValueError, match="^process_id must be"):
    training.init_distributed("localhost:1234")


def test_run_grid_rejects_bad_distributed_settings(trainer,
                                                   no_distributed_env):
  with pytest.raises(TypeError, match="^distributed must be a mapping"):
    training.run_grid(trainer, {"learning_rate": [0.1], "momentum": [0.9]},
                      1, progress=False, distributed="localhost:1234")
  with pytest.raises(ValueError, match="^process_id must be"):
    training.run_grid(trainer, {"learning_rate": [0.1], "momentum": [0.9]},
                      1, progress=False,
                      distributed={"coordinator_address": "localhost:1",
                                   "num_processes": 2, "process_id": 7})


def test_device_groups_are_disjoint_and_cover_the_devices():
  devices = list(range(7))  # anything with an identity will do
  groups = training.device_groups(3, devices)
  assert [len(g) for g in groups] == [3, 2, 2]
  assert sum(groups, []) == devices
  assert training.device_groups(10, devices[:2]) == [[0], [1]]
  assert sum(training.device_groups(2), []) == jax.devices()
  with pytest.raises(ValueError, match="^num_groups must be"):
    training.device_groups(0)


def test_use_command_buffers(monkeypatch):
  jax.devices()
  monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=false")
  assert training.use_command_buffers("default") == (
      "--xla_cpu_enable_fast_math=false")  # XLA's default: untouched
  with pytest.raises(ValueError, match="^mode must be one of"):
    training.use_command_buffers("graphs")
  with pytest.raises(RuntimeError, match="before any JAX computation"):
    training.use_command_buffers("while")
  monkeypatch.setattr(training._devices, "_backends_initialized",  # pylint: disable=protected-access
                      lambda: False)
  flags = training.use_command_buffers("while")
  assert flags.split() == ["--xla_cpu_enable_fast_math=false",
                           "--xla_gpu_enable_command_buffer=+WHILE,+CONDITIONAL",
                           "--xla_gpu_graph_min_graph_size=1"]
  # Switching modes replaces the earlier mode's flags.
  assert training.use_command_buffers("off").split() == [
      "--xla_cpu_enable_fast_math=false", "--xla_gpu_enable_command_buffer="]
