"""Our Table 5 stack against the independent PyTorch reference.

``reference/torch_table5.py`` is written from the paper (Sections 2 and 4,
Table 4) and the notes on the 2011 release only, and imports nothing from
``jaxmomentum``. Here, on tiny shapes (T = 20 addition, 3-of-3 memorization
with T = 12, 8 hidden units, batches of 5), the pieces
``reproduce._rnn_tables.make_rnn_trainer`` puts together (the problem's
sampler and centering, ``models.RNN`` with the Table 4 init, the problem's
loss and zero-one error, ``nag``/``cm`` with ``rnn_warmup_schedule``, the
training engine's update) are fed the same params and batches as the
reference, and must agree:

* loss, zero-one error and every parameter gradient, in float64 (to the
  float32 rounding of the loss's normalization, see
  ``test_float64_loss_is_float64``) and in float32 (our default CPU path, the
  C++ recurrence kernel) against the float64 reference;
* params after a few NAG / CM updates of the training engine with the
  warm-up switching μ mid-way (the reference is also shown to be sensitive to
  the switch step and the method, so the agreement is not vacuous);
* the generators' and the initialization's statistics (the RNGs differ, so
  distributions are compared).

Skips where torch is not installed (``make test`` installs torch==2.13.0).
"""

import dataclasses
import functools
import importlib.util
from pathlib import Path
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="torch==2.13.0 not installed: `make test` installs it")

import jaxmomentum as jm  # noqa: E402
from jaxmomentum import problems  # noqa: E402
from jaxmomentum import training  # noqa: E402
from jaxmomentum.reproduce import _protocols  # noqa: E402
from jaxmomentum.reproduce import _rnn_tables  # noqa: E402
from jaxmomentum.reproduce import paper  # noqa: E402

_REF_PATH = Path(__file__).resolve().parents[1] / "reference" / "torch_table5.py"


def _load_reference():
  spec = importlib.util.spec_from_file_location("torch_table5", _REF_PATH)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


ref = _load_reference()

HIDDEN, BATCH, WARMUP = 8, 5, 2
# Our param name (flax, h @ W layout) -> the reference's (W h layout).
NAMES = {"input_kernel": "W_ih", "recurrent_kernel": "W_hh",
         "hidden_bias": "b_h", "output_kernel": "W_ho", "output_bias": "b_o"}


def _tiny(name):
  """(our problem, the reference's twin) on tiny shapes."""
  if name == "add":
    return problems.addition(20), ref.AddProblem(T=20)
  return problems.memorization(3, 3, 12), ref.MemProblem(3, 3, T=12)


def _tiny_protocol(num_steps=4):
  # eval_every=1: each of the trainer's chunks is exactly one update.
  # The reference writes our own memorization layout (go and blank on
  # channels of their own), not the release's that the paper protocol uses.
  return _protocols.PROTOCOLS["paper"][0].replace(
      num_steps=num_steps, hidden_size=HIDDEN, warmup_steps=WARMUP,
      eval_every=1, batch_size=BATCH, eval_batch_size=BATCH,
      num_eval_batches=1, memorization_channels="separate")


def _row(name):
  """The Table 5 row of the problem's kind, with the tiny problem in it."""
  return dataclasses.replace(paper.TABLE5["add" if name == "add" else "mem20"],
                             problem=_tiny(name)[0])


@functools.cache
def _task(name):
  """Our model, data, loss and metrics (``_rnn_tables.rnn_task``)."""
  return _rnn_tables.rnn_task(_row(name), _tiny_protocol())


@functools.cache
def _jitted(name, method="nag"):
  """Our pieces, jitted once per problem (compiling is most of the cost)."""
  task = _task(name)
  trainer = _rnn_tables.make_rnn_trainer(_row(name), _tiny_protocol(), method)
  assert trainer.config.chunk_size == 1
  return types.SimpleNamespace(
      trainer=trainer,
      sample=jax.jit(lambda key, n: task.sample_fn(key, n, None),
                     static_argnums=1),
      value_and_grad=jax.jit(jax.value_and_grad(task.loss_fn)),
      eval=jax.jit(task.eval_fn),
      update=jax.jit(trainer.run_chunk))


def _cast(tree, dtype):
  return jax.tree.map(
      lambda a: jnp.asarray(a, dtype)
      if jnp.issubdtype(jnp.asarray(a).dtype, jnp.floating) else a, tree)


def _params(name, dtype, seed=0, perturb=0.3):
  """Params in our trainer's tree (structure from ``jax.eval_shape`` of its
  init, values from the reference's Table 4 init, cheaper to build than our
  init's compile), moved off the init by ``perturb`` * N(0, 1) so that the
  biases are nonzero and every gradient term is exercised."""
  _, theirs = _tiny(name)
  shapes = jax.eval_shape(_task(name).init_fn, jax.random.key(0))
  gen = torch.Generator().manual_seed(seed)
  t = ref.init_params(theirs, HIDDEN, gen, torch.float64, out_bias="log_mean")
  rng = np.random.default_rng(seed)
  tree = {}
  for ours, their_name in NAMES.items():
    a = t[their_name].numpy()
    a = a.T if a.ndim == 2 else a
    a = a + perturb * rng.normal(size=a.shape)
    assert a.shape == shapes["params"][ours].shape
    tree[ours] = a
  return _cast({"params": tree}, dtype)


def _to_torch(params):
  """Our params -> the reference's, float64, transposed to W h."""
  out = {}
  for ours, theirs in NAMES.items():
    a = np.asarray(params["params"][ours], np.float64)
    out[theirs] = torch.tensor(a.T.copy() if a.ndim == 2 else a)
  return out


def _batch_to_torch(batch):
  return tuple(torch.tensor(np.asarray(a, np.float64)) for a in batch)


def _rel(ours, theirs):
  ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
  return float(np.linalg.norm(ours - theirs) /
               max(np.linalg.norm(theirs), 1e-300))


def _as_ref(tree):
  """Our params/grads tree -> numpy arrays under the reference's names."""
  out = {}
  for ours, theirs in NAMES.items():
    a = np.asarray(tree["params"][ours], np.float64)
    out[theirs] = a.T if a.ndim == 2 else a
  return out


def _loss_grads_both(name, x64):
  _, theirs = _tiny(name)
  f = _jitted(name)
  dtype = jnp.float64 if x64 else jnp.float32
  params = _params(name, dtype)
  batch = _cast(f.sample(jax.random.key(3), BATCH), dtype)
  loss, grads = f.value_and_grad(params, batch)
  metrics = f.eval(params, batch)
  x, y, mask = _batch_to_torch(batch)
  t_loss, t_err, t_grads = ref.loss_and_grads(_to_torch(params), theirs, x, y,
                                              mask, norm="mean")
  return (float(loss), float(metrics["error"]), _as_ref(grads),
          float(t_loss), float(t_err),
          {k: v.numpy() for k, v in t_grads.items()})


# float64: the model runs in float64, but ``problems._metrics.masked_mean``
# casts the per-step losses and the mask to float32, so the loss value and
# the common factor 1/(counted steps) of every gradient carry a float32
# rounding (measured: 1.5e-8 for add, 5.2e-8 for mem). float32: our default
# CPU path (C++ recurrence kernel), ~1e-6 measured.
_TOL = {True: 3e-7, False: 2e-5}


@pytest.mark.parametrize("x64", [True, False], ids=["float64", "float32"])
@pytest.mark.parametrize("name", ["add", "mem"])
def test_loss_error_and_gradients_match(name, x64):
  with jax.enable_x64(x64):
    loss, err, grads, t_loss, t_err, t_grads = _loss_grads_both(name, x64)
  tol = _TOL[x64]
  assert abs(loss - t_loss) <= tol * abs(t_loss)
  assert err == pytest.approx(t_err, abs=1e-7)
  for k in ref.PARAM_NAMES:
    assert np.linalg.norm(t_grads[k]) > 1e-3, k
    assert _rel(grads[k], t_grads[k]) <= tol, (k, _rel(grads[k], t_grads[k]))


def test_float64_loss_is_float64():
  """masked_mean used to cast losses and mask to float32 (~1e-8 relative
  rounding of a float64 run's loss and gradients); it keeps float64 now."""
  with jax.enable_x64(True):
    loss, _, grads, t_loss, _, t_grads = _loss_grads_both("mem", True)
  assert abs(loss - t_loss) <= 1e-12 * abs(t_loss)
  for k in ref.PARAM_NAMES:
    assert _rel(grads[k], t_grads[k]) <= 1e-12


@pytest.mark.parametrize("name", ["add", "mem"])
def test_zero_one_error_matches(name):
  """The two zero-one errors on outputs placed near the decision boundary:
  add, |o - y| spread around the 0.04 tolerance; mem, random logits whose
  argmax is right about half the time. Counted steps only."""
  ours, theirs = _tiny(name)
  rng = np.random.default_rng(0)
  batch = ours.centered(_jitted(name).sample(jax.random.key(5), 200))
  y = np.asarray(batch.targets)
  if name == "add":
    out = y + rng.uniform(-0.08, 0.08, y.shape)
  else:
    out = y + rng.normal(size=y.shape)
  out = out.astype(np.float32)
  e_ours = float(jax.jit(ours.zero_one)(jnp.asarray(out), batch))
  _, e_ref = ref.loss_and_error(theirs, torch.tensor(out, dtype=torch.float64),
                                torch.tensor(y, dtype=torch.float64),
                                torch.tensor(np.asarray(batch.mask),
                                             dtype=torch.float64))
  assert 0.2 < e_ours < 0.8
  assert e_ours == pytest.approx(float(e_ref), abs=1e-6)


def _engine_steps(name, method, lr, mu0, num_steps=4):
  """``num_steps`` updates of our training engine (``Trainer.run_chunk``,
  what ``run_grid`` runs, one update per chunk here) in float64; returns θ,
  the batches it drew and the starting params."""
  f = _jitted(name, method)
  trainer = f.trainer
  hparams = {"learning_rate": jnp.float64(lr), "mu0": jnp.float64(mu0)}
  params = _params(name, jnp.float64, seed=1, perturb=0.1)
  data_key, eval_key = jax.random.split(jax.random.key(11))
  # The engine's own initial state (zero velocity), moved to our params.
  state = trainer.init(jax.random.key(0), hparams)
  state = state._replace(params=params,
                         opt_state=_cast(state.opt_state, jnp.float64),
                         data_key=data_key, eval_key=eval_key)
  batches = []
  for _ in range(num_steps):
    batches.append(f.sample(jax.random.fold_in(state.data_key, state.step),
                            BATCH))
    state, _ = f.update(state, hparams, None)
    assert int(state.step) == len(batches)
  assert int(state.diverged_at) == -1
  theta = (jm.nag_eval_params(state.opt_state, state.params)
           if method == "nag" else state.params)
  return theta, batches, params


def _ref_steps(name, method, lr, mu0, start, batches, warmup=WARMUP):
  _, theirs = _tiny(name)
  params = _to_torch(start)
  velocity = {k: torch.zeros_like(v) for k, v in params.items()}
  for step, batch in enumerate(batches):
    x, y, mask = _batch_to_torch(batch)
    mu = ref.momentum_at(step, mu0, warmup)
    params, velocity, _, _ = ref.momentum_step(
        params, velocity,
        lambda p, x=x, y=y, mask=mask: ref.loss_and_grads(p, theirs, x, y,
                                                          mask),
        lr, mu, method)
  return {k: v.numpy() for k, v in params.items()}


@pytest.mark.standard_promotion(
    reason="the engine's float32 sampler feeds float64 params here (the "
    "comparison runs in float64): the RNN promotes its inputs")
@pytest.mark.parametrize("name, method",
                         [("add", "nag"), ("mem", "nag"), ("add", "cm")])
def test_momentum_steps_match(name, method):
  """4 updates, μ = 0.9 for the first 2 (warm-up) then μ0 = 0.3: the params
  agree with the reference's Eqs. 1-4, and would not if the switch came one
  step later or the other method were used."""
  lr, mu0 = 0.2, 0.3
  with jax.enable_x64(True):
    theta, batches, start = _engine_steps(name, method, lr, mu0)
    theta, start_ref = _as_ref(theta), _as_ref(start)
  got = _ref_steps(name, method, lr, mu0, start, batches)
  late = _ref_steps(name, method, lr, mu0, start, batches, WARMUP + 1)
  other = _ref_steps(name, "cm" if method == "nag" else "nag", lr, mu0,
                     start, batches)
  for k in ref.PARAM_NAMES:
    moved = np.linalg.norm(got[k] - start_ref[k])
    assert moved > 1e-4, k
    err = np.linalg.norm(theta[k] - got[k])
    assert err <= 1e-6 * moved, (k, err, moved)
  # The comparison resolves the schedule and the method.
  gap_late = sum(np.linalg.norm(late[k] - got[k]) for k in ref.PARAM_NAMES)
  gap_other = sum(np.linalg.norm(other[k] - got[k]) for k in ref.PARAM_NAMES)
  err_all = sum(np.linalg.norm(theta[k] - got[k]) for k in ref.PARAM_NAMES)
  assert gap_late > 100 * err_all and gap_other > 100 * err_all


# ------------------------------------------------------------- statistics

def test_centering_constants_match():
  """Known input/target means, derived independently on each side."""
  for ours, theirs in [(problems.addition(80), ref.AddProblem(80)),
                       (problems.addition(20), ref.AddProblem(20)),
                       (problems.addition(200), ref.AddProblem(200)),
                       (problems.memorization(10, 5, 80),
                        ref.MemProblem(10, 5, 80)),
                       (problems.memorization(5, 2, 200),
                        ref.MemProblem(5, 2, 200))]:
    np.testing.assert_allclose(ours.input_mean, theirs.input_mean, rtol=1e-6)
    np.testing.assert_allclose(ours.target_mean, theirs.target_mean, rtol=1e-6)


def _add_layout_ours(n):
  b = jax.jit(problems.addition(80).sample, static_argnums=1)(
      jax.random.key(7), n)
  x, y, m = (np.asarray(a, np.float64) for a in b)
  return x, y[..., 0], m


def _add_layout_ref(n):
  b = ref.AddProblem(80).sample(n, torch.Generator().manual_seed(7))
  return b.x.numpy(), b.y[..., 0].numpy(), b.mask.numpy()


def _add_summary(x, y, m):
  """Positions and moments of one big add T=80 batch."""
  n = x.shape[0]
  tau = m.argmax(1)
  plus = x[..., 1] == 1
  first = plus.argmax(1)
  second = x.shape[1] - 1 - plus[:, ::-1].argmax(1)
  target = y[np.arange(n), tau]
  return dict(
      shape=x.shape, masks_per_seq=set(m.sum(1).tolist()),
      plus_per_seq=set(plus.sum(1).tolist()),
      tau=np.bincount(tau, minlength=88), first=np.bincount(first, minlength=88),
      second=np.bincount(second, minlength=88),
      cue_ok=bool(np.all(x[np.arange(n), tau - 3, 1] == -1)),
      step0=float(np.mean(x[:, 0, 1])),
      minus_per_seq=np.bincount((x[..., 1] == -1).sum(1), minlength=3),
      target_is_sum=bool(np.allclose(
          target, x[np.arange(n), first, 0] + x[np.arange(n), second, 0],
          atol=1e-6)),
      target_mean=float(target.mean()), target_var=float(target.var()),
      noise_mean=float(x[..., 0].mean()), noise_var=float(x[..., 0].var()),
      marker_mean=float(x[..., 1].mean()))


def test_addition_generator_statistics():
  n = 20_000
  a, b = _add_summary(*_add_layout_ours(n)), _add_summary(*_add_layout_ref(n))
  for s in (a, b):
    assert s["shape"] == (n, 88, 2)
    assert s["masks_per_seq"] == {1.0} and s["plus_per_seq"] == {2}
    assert s["cue_ok"] and s["target_is_sum"]
  for key in ("tau", "first", "second"):
    support_a, support_b = np.flatnonzero(a[key]), np.flatnonzero(b[key])
    np.testing.assert_array_equal(support_a, support_b, err_msg=key)
    # Uniform on the support: every frequency within 5 binomial sigma.
    p = 1 / len(support_a)
    sigma = np.sqrt(p * (1 - p) / n)
    for s in (a, b):
      assert np.all(np.abs(s[key][support_a] / n - p) < 5 * sigma), key
  assert list(np.flatnonzero(a["tau"])) == list(range(80, 88))
  assert list(np.flatnonzero(a["first"])) == list(range(0, 8))
  assert list(np.flatnonzero(a["second"])) == list(range(8, 40))
  # -1 at step 0 unless I = 0 puts +1 there (P = 1/8): mean -3/4.
  assert a["step0"] == pytest.approx(b["step0"], abs=0.03)
  assert a["step0"] == pytest.approx(-3 / 4, abs=0.025)
  np.testing.assert_allclose(a["minus_per_seq"] / n, b["minus_per_seq"] / n,
                             atol=0.015)
  # A + B of two U[0,1]: mean 1, variance 1/6.
  for s in (a, b):
    assert s["target_mean"] == pytest.approx(1.0, abs=0.015)
    assert s["target_var"] == pytest.approx(1 / 6, abs=0.006)
    assert s["noise_mean"] == pytest.approx(0.5, abs=0.002)
    assert s["noise_var"] == pytest.approx(1 / 12, abs=0.001)
  assert a["marker_mean"] == pytest.approx(b["marker_mean"], abs=2e-4)
  assert a["marker_mean"] == pytest.approx(
      float(problems.addition(80).input_mean[1]), abs=2e-4)


def test_memorization_generator_statistics():
  n = 5_000
  ours = jax.jit(problems.memorization(10, 5, 80).sample,
                 static_argnums=1)(jax.random.key(9), n)
  theirs = ref.MemProblem(10, 5, 80).sample(n, torch.Generator().manual_seed(9))
  xo, yo, mo = (np.asarray(a) for a in ours)
  xr, yr, mr = theirs.x.numpy(), theirs.y.numpy(), theirs.mask.numpy()
  assert xo.shape == xr.shape == (n, 80, 7)
  assert yo.shape == yr.shape == (n, 80, 6)
  assert mo.min() == mr.min() == 1.0
  # Structure: everything but the symbols' identities is deterministic.
  for x, y in ((xo, yo), (xr, yr)):
    in_cls, out_cls = x.argmax(-1), y.argmax(-1)
    assert np.all(x.sum(-1) == 1) and np.all(y.sum(-1) == 1)
    assert np.all(in_cls[:, :10] < 5)
    assert np.all(in_cls[:, 69] == 5)                        # go at T-n-1
    assert np.all(np.delete(in_cls[:, 10:], 59, axis=1) == 6)  # blank
    assert np.all(out_cls[:, :70] == 5)                      # blank target
    np.testing.assert_array_equal(out_cls[:, 70:], in_cls[:, :10])
  # Symbols uniform over 5 on both sides.
  fo = np.bincount(xo[:, :10].argmax(-1).ravel(), minlength=5) / (10 * n)
  fr = np.bincount(xr[:, :10].argmax(-1).ravel(), minlength=5) / (10 * n)
  np.testing.assert_allclose(fo, 0.2, atol=0.009)   # 5 sigma at n = 5,000
  np.testing.assert_allclose(fr, 0.2, atol=0.009)


@pytest.mark.parametrize("name", ["add", "mem20"])
def test_table4_init_statistics(name):
  """Our Table 4 init vs the reference's, 100 hidden units as in the paper:
  scales, 15 incoming recurrent weights per unit, spectral radius 1.1, the
  output bias."""
  theirs_p = (ref.AddProblem(80) if name == "add"
              else ref.MemProblem(10, 5, 80))
  protocol = _protocols.PROTOCOLS["paper"][0].replace(
      memorization_channels="separate")  # the reference's layout
  task = _rnn_tables.rnn_task(name, protocol)
  ours = _as_ref(jax.jit(task.init_fn)(jax.random.key(0)))
  # Table 4 literal "average of outputs" for softmax is the mean one-hot; ours
  # is log of it (initial softmax = class frequencies): compare like for like.
  theirs = {k: v.numpy() for k, v in ref.init_params(
      theirs_p, 100, torch.Generator().manual_seed(0),
      out_bias="log_mean").items()}
  scale = 0.001 if name == "add" else 0.1
  for p in (ours, theirs):
    assert p["W_ih"].shape == (100, theirs_p.n_in)
    assert np.std(p["W_ih"]) == pytest.approx(scale, rel=0.2)
    assert np.all((p["W_hh"] != 0).sum(1) == 15)   # incoming, per unit
    rho = np.abs(np.linalg.eigvals(p["W_hh"].astype(np.float64))).max()
    assert rho == pytest.approx(1.1, rel=1e-4)
    assert p["W_ho"].shape == (theirs_p.n_out, 100)
    assert np.std(p["W_ho"]) == pytest.approx(0.1, rel=0.25)
    assert not np.any(p["b_h"])
  np.testing.assert_allclose(ours["b_o"], theirs["b_o"], rtol=1e-6)
  # Same law for the recurrent weights: one rescaled N(0,1) per matrix, so
  # the nonzeros' spread is comparable (loose: one draw each).
  nz_o = ours["W_hh"][ours["W_hh"] != 0]
  nz_r = theirs["W_hh"][theirs["W_hh"] != 0]
  assert np.std(nz_o) == pytest.approx(np.std(nz_r), rel=0.2)


# ------------------------------------------------- the reference's own parts

def test_reference_loss_normalizations():
  """``norm="sum"`` (2011 release: per sequence the sum over time of 1/2
  squared error or of cross-entropy, mean over sequences) is ``norm="mean"``
  times (counted steps per sequence) x (1/2 for squared error)."""
  gen = torch.Generator().manual_seed(0)
  for theirs, factor in [(ref.AddProblem(20), 0.5),
                         (ref.MemProblem(3, 3, T=12), 12.0)]:
    params = ref.init_params(theirs, HIDDEN, gen, torch.float64,
                             input_scale=0.3)
    batch = theirs.sample(BATCH, gen)
    x, y = ref.center(theirs, batch)
    lm, _, gm = ref.loss_and_grads(params, theirs, x, y, batch.mask, "mean")
    ls, _, gs = ref.loss_and_grads(params, theirs, x, y, batch.mask, "sum")
    assert float(ls) == pytest.approx(factor * float(lm), rel=1e-12)
    for k in ref.PARAM_NAMES:
      np.testing.assert_allclose(gs[k].numpy(), factor * gm[k].numpy(),
                                 rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", ["add", "mem"])
def test_reference_sensitivity_traces_are_derivatives(name):
  """``traces``' forward-tangent sensitivities equal autograd's
  d o_target / d x_mark (add: value channel; mem: Frobenius over channels)."""
  _, theirs = _tiny(name)
  gen = torch.Generator().manual_seed(1)
  params = ref.init_params(theirs, HIDDEN, gen, torch.float64, input_scale=0.5)
  batch = theirs.sample(BATCH, gen)
  tr = ref.traces(params, theirs, batch)
  x, _ = ref.center(theirs, batch)
  ar = torch.arange(BATCH)
  for k in (0, batch.marks.shape[1] - 1):
    m, t = batch.marks[:, k], batch.mark_targets[:, k]
    if name == "add":
      xr = x.clone().requires_grad_(True)
      _, out = ref.rnn_forward(params, xr)
      (g,) = torch.autograd.grad(out[ar, t, 0].sum(), xr)
      expect = float(g[ar, m, 0].mean())
      assert tr[f"dout_dx_mark{k}"] == pytest.approx(expect, rel=1e-10)
    else:
      jac = []
      for o in range(theirs.n_out):
        xr = x.clone().requires_grad_(True)
        _, out = ref.rnn_forward(params, xr)
        (g,) = torch.autograd.grad(out[ar, t, o].sum(), xr)
        jac.append(g[ar, m])                           # (B, C)
      expect = float(torch.stack(jac, 1).flatten(1).norm(dim=1).mean())
      assert tr[f"dout_dx_mark{k}"] == pytest.approx(expect, rel=1e-10)
