"""Table 5's HF row, ours (jaxmomentum.reproduce._hf_rnn): the release's
settings, structural damping on the Table 5 RNN, training, the cell, the
figure and checkpoint/resume."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
import numpy as np
import pytest

from _interrupt import stopped_after_save

from jaxmomentum import curvature
from jaxmomentum import problems
from jaxmomentum.models import RNN
from jaxmomentum.models import rnn_outputs_and_preactivations
from jaxmomentum.reproduce import _hf_rnn
from jaxmomentum.reproduce import _protocols
from jaxmomentum.reproduce import _rnn_tables
from jaxmomentum.reproduce import paper

# A short memorization row (T = 16) and a small RNN: seconds per run.
_TINY_ROW = dataclasses.replace(
    paper.TABLE5["mem20"], key="tiny", label="tiny memorization",
    problem=problems.memorization(4, 3, 16))
_RNN = _protocols.RNN_QUICK.replace(hidden_size=8, eval_batch_size=128)
_HF = _hf_rnn.HFRNNProtocol(
    "tiny", num_updates=6, gradient_batch=64, curvature_batch=32,
    linesearch_batch=32, cg_max_iters=15, cg_min_iters=1, seeds=2,
    eval_every=2)


def _quiet(_):
  pass


def test_release_settings_and_quick_reduction():
  paper_hf = _hf_rnn.HF_RNN_PAPER
  assert (paper_hf.gradient_batch, paper_hf.curvature_batch,
          paper_hf.linesearch_batch) == (10_000, 1000, 1000)
  assert (paper_hf.cg_max_iters, paper_hf.cg_min_iters) == (300, 299)
  assert (paper_hf.structural_damping, paper_hf.damping_per_output,
          paper_hf.l2_reg, paper_hf.seeds) == (0.03, 0.01, 2e-5, 4)
  # λ0 = 0.01 x the output units.
  assert paper_hf.initial_damping(paper.TABLE5["add"].problem) == 0.01
  assert paper_hf.initial_damping(
      paper.TABLE5["mem20"].problem) == pytest.approx(0.06)
  assert _hf_rnn.hf_protocol_for(_protocols.RNN_PAPER) is paper_hf
  assert _hf_rnn.hf_protocol_for(
      _protocols.RNN_PAPER.replace(seeds=1)) is paper_hf
  assert _hf_rnn.hf_protocol_for(
      _protocols.RNN_QUICK) is _hf_rnn.HF_RNN_QUICK
  quick = _hf_rnn.HF_RNN_QUICK
  assert quick.num_updates < paper_hf.num_updates
  assert quick.cg_max_iters < paper_hf.cg_max_iters
  # The release's μ and λ0 stay in the reduction.
  assert (quick.structural_damping, quick.damping_per_output,
          quick.l2_reg) == (0.03, 0.01, 2e-5)
  with pytest.raises(ValueError, match="gradient_batch"):
    dataclasses.replace(_HF, curvature_batch=40, linesearch_batch=40)
  with pytest.raises(ValueError, match="cg_min_iters"):
    dataclasses.replace(_HF, cg_min_iters=16)
  with pytest.raises(ValueError, match="eval_every"):
    dataclasses.replace(_HF, eval_every=4)


def test_step_cost_counts_passes_by_the_documented_convention():
  """Gradient on B_g; on B_c the linearization (½), CG's products, the
  initial residual and pᵀGp (1 each) and ρ's two losses (½ each); on B_l
  the losses before and after, backtracking's and the line search's new
  ones (½ each)."""
  from jaxmomentum import HessianFreeInfo  # pylint: disable=import-outside-toplevel
  info = HessianFreeInfo(
      rho=jnp.zeros([]), cg_iters=jnp.int32(10), chosen_iter=jnp.int32(9),
      backtracking_steps=jnp.int32(2), linesearch_steps=jnp.int32(3),
      step_size=jnp.ones([]), loss=jnp.zeros([]))
  want = 64 + 32 * (0.5 + 12 + 1.0) + 32 * 0.5 * (2 + 2 + 2)
  assert float(_hf_rnn.step_cost(info, _HF)) == want
  # A rejected step's 60 line-search tries count 59 new losses.
  info = info._replace(linesearch_steps=jnp.int32(60))
  assert float(_hf_rnn.step_cost(info, _HF)) == want + 32 * 0.5 * 57


@pytest.mark.parametrize("head", ["linear", "softmax"])
def test_forward_mode_rnn_matches_the_model(head):
  model = RNN(output_size=3, hidden_size=5, head=head,
              learn_initial_state=True)
  x = jax.random.normal(jax.random.key(0), (4, 7, 2))
  params = model.init(jax.random.key(1), x)
  params = jax.tree.map(lambda p: p + 0.1, params)  # a non-zero h0 too
  z, a = rnn_outputs_and_preactivations(model, params, x)
  want = model.apply(params, x)
  got = z if head == "linear" else jax.nn.log_softmax(z, axis=-1)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  _, mutated = model.apply(params, x, mutable=["intermediates"])
  hs = mutated["intermediates"]["hidden_states"][0]  # [time, batch, h]
  np.testing.assert_allclose(jnp.tanh(a), jnp.swapaxes(hs, 0, 1),
                             rtol=1e-5, atol=1e-6)
  jax.linearize(lambda p: rnn_outputs_and_preactivations(model, p, x),
                params)  # forward mode goes through (the custom_vjp does not)
  with pytest.raises(TypeError, match="model"):
    rnn_outputs_and_preactivations("rnn", params, x)


def test_structural_damping_on_the_table5_rnn_matches_dense():
  """G v on the Table 5 model with μλ = 0.03 λ: J_zᵀ H_L J_z + μλ J_aᵀ H_D
  J_a, against dense Jacobians; different from μ = 0; and the loss HF
  sees equals the momentum runs' loss."""
  rnn = _RNN.replace(hidden_size=3)
  problem, model = _rnn_tables.rnn_model(_TINY_ROW, rnn)
  task = _rnn_tables.rnn_task(_TINY_ROW, rnn)
  params = task.init_fn(jax.random.key(0))
  batch = task.sample_fn(jax.random.key(1), 5, None)
  loss = _hf_rnn.hf_loss(problem, rnn.loss_normalization)
  np.testing.assert_allclose(
      loss(rnn_outputs_and_preactivations(model, params, batch.inputs)[0],
           batch), task.loss_fn(params, batch), rtol=1e-5)

  def outputs_fn(p, b):
    return rnn_outputs_and_preactivations(model, p, b.inputs)

  weight = _hf_rnn.STRUCTURAL_DAMPING * 0.06  # μ λ0 for mem-20's 6 outputs
  flat, unravel = ravel_pytree(params)

  @jax.jit
  def dense(weight):
    matvec = curvature.gauss_newton_vp(outputs_fn, loss, params, batch,
                                       structural_weight=weight)
    eye = jnp.eye(flat.size, dtype=flat.dtype)
    return jax.vmap(lambda e: ravel_pytree(matvec(unravel(e)))[0])(eye).T

  @jax.jit
  def dense_reference():  # independent of linearize / linear_transpose
    z = outputs_fn(params, batch)[0]
    jac = jax.jacfwd(lambda f: outputs_fn(unravel(f), batch))(flat)
    h_l = jax.hessian(lambda zf: loss(zf.reshape(z.shape), batch))(z.ravel())
    return jac[0].reshape(-1, flat.size), jac[1].reshape(-1, flat.size), h_l

  with_sd, without = dense(weight), dense(0.0)
  jac_z, jac_a, h_l = dense_reference()
  a = outputs_fn(params, batch)[1]
  h_d = np.diag((1 - np.tanh(a) ** 2).ravel()) / a.shape[0]
  gn = np.asarray(jac_z.T @ h_l @ jac_z)
  scale = np.abs(gn).max()
  np.testing.assert_allclose(without, gn, atol=1e-4 * scale)
  np.testing.assert_allclose(
      with_sd, gn + weight * np.asarray(jac_a.T @ h_d @ jac_a),
      atol=1e-4 * scale)
  assert np.abs(with_sd - without).max() > 1e-3 * scale


@pytest.fixture(scope="module")
def hf_result():
  """The tiny HF runs, uninterrupted and without checkpoints."""
  return _hf_rnn.run_hf(_TINY_ROW, _RNN, _HF, None, progress=False,
                        log=_quiet)


def test_hf_lowers_the_loss_and_counts_its_cost(hf_result):
  task = _rnn_tables.rnn_task(_TINY_ROW, _RNN)
  eval_batch = task.sample_fn(jax.random.key(99), 512, None)
  initial = np.mean([float(task.loss_fn(task.init_fn(
      jax.random.split(jax.random.key(s), 3)[0]), eval_batch))
                     for s in range(_HF.seeds)])
  result = hf_result
  loss = result.metrics["loss"][:, 0]
  assert np.all(np.isfinite(loss))
  assert loss[:, -1].mean() < 0.8 * initial
  # Cost: each update costs at least its gradient (64 sequences = 0.64 of
  # a 100-sequence gradient) and its CG products (>= 1 on 32 sequences).
  evals = result.metrics["grad_evals"][:, 0]
  steps = np.diff(np.concatenate([np.zeros((_HF.seeds, 1)), evals], 1), 1)
  assert np.all(steps >= _HF.eval_every * (0.64 + 0.32 * 3))
  most = (64 + 32 * (0.5 + _HF.cg_max_iters + 3)
          + 32 * 0.5 * (2 + 16 + 59)) / 100
  assert np.all(steps <= _HF.eval_every * most)
  # λ starts at 0.01 x 6 outputs... and moves by the LM rule.
  damping = result.metrics["damping"][:, 0]
  ratios = damping / 0.06
  assert np.all(np.isclose(np.log(ratios) / np.log(1.5),
                           np.round(np.log(ratios) / np.log(1.5)),
                           atol=1e-3))
  cell = _hf_rnn.hf_cell(_TINY_ROW, result, _HF)
  assert cell.column == _hf_rnn.COLUMN
  assert "not in the paper" in cell.column and "ours" in cell.column
  assert cell.paper is None and cell.row == "tiny"
  assert np.isfinite(cell.ours.mean) and cell.ours.n == _HF.seeds
  np.testing.assert_allclose(
      cell.ours.mean, 100 * result.final("error").mean(), rtol=1e-6)


def test_interrupted_hf_runs_resume_to_the_same_numbers(
    hf_result, tmp_path):
  protocol, uninterrupted = _HF, hf_result
  with stopped_after_save(1):
    _hf_rnn.run_hf(_TINY_ROW, _RNN, protocol, tmp_path, progress=False,
                   checkpoint_every_s=0.0, log=_quiet)
  assert (tmp_path / "checkpoints" / "table5" / "tiny-hf").is_dir()
  resumed = _hf_rnn.run_hf(_TINY_ROW, _RNN, protocol, tmp_path,
                           progress=False, checkpoint_every_s=0.0, log=_quiet)
  # Of 3 chunks, the first came from the checkpoint.
  assert resumed.chunks_run == 2
  chex.assert_trees_all_equal(resumed.metrics, uninterrupted.metrics)


def test_table5_with_hf_writes_the_row_and_the_figure(hf_result, tmp_path,
                                                      monkeypatch):
  pytest.importorskip("matplotlib")
  rnn = _protocols.RNN_QUICK.replace(
      problems=("add",), hidden_size=4, num_steps=20, batch_size=16,
      eval_every=10, eval_batch_size=32, learning_rates=(1e-3,),
      mu0s=(0.0, 0.9), seeds=1)
  calls = []

  def run_hf(row, protocol, hf, out_dir, **kwargs):
    # The HF runs themselves are the tests above's (hf_result); here the
    # wiring: which row, protocols and checkpoint folder reproduce passes.
    calls.append((row, protocol, hf, out_dir))
    return hf_result

  monkeypatch.setattr(_hf_rnn, "run_hf", run_hf)
  table, paths = _rnn_tables.reproduce(rnn, tmp_path, progress=False,
                                       log=_quiet, hf=_HF)
  assert calls == [("add", rnn, _HF, tmp_path)]
  assert _hf_rnn.COLUMN in table
  row = next(line for line in table.splitlines()
             if line.startswith("| add |"))
  assert "not run" not in row.split("|")[-2]  # the HF cell has a number
  figure = tmp_path / "table5_add_hf_vs_nag.png"
  assert figure in paths and figure.stat().st_size > 0
  assert "2011 HF-RNN release" in (tmp_path / "table5.md").read_text()
  # Without hf (the momentum grid resumes from its checkpoint) the outputs
  # are as before: no HF column, no HF figure.
  plain, plain_paths = _rnn_tables.reproduce(rnn, tmp_path, progress=False,
                                             log=_quiet)
  assert _hf_rnn.COLUMN not in plain
  assert figure not in plain_paths
  assert "HF-RNN" not in (tmp_path / "table5.md").read_text()


@pytest.mark.parametrize("argv, want", [
    ([], None),
    (["--hf"], _hf_rnn.HF_RNN_QUICK),
    (["--hf", "--protocol", "paper"], _hf_rnn.HF_RNN_PAPER),
    (["--hf", "--seeds", "3"], dataclasses.replace(_hf_rnn.HF_RNN_QUICK,
                                                   seeds=3)),
])
def test_cli_hf_flag_reaches_table5(argv, want, tmp_path, monkeypatch):
  from jaxmomentum.reproduce import cli  # pylint: disable=import-outside-toplevel
  seen = {}

  def fake_reproduce(protocol, out, **kwargs):
    seen.update(kwargs, protocol=protocol)
    return "table", []

  monkeypatch.setattr(_rnn_tables, "reproduce", fake_reproduce)
  args = cli.build_parser().parse_args(
      ["reproduce", "table5", "--out", str(tmp_path)] + argv)
  cli._runners(args)["table5"](tmp_path)  # pylint: disable=protected-access
  assert seen["hf"] == want


def test_trainer_builds_hf_with_the_release_settings_and_hidden_preacts(
    monkeypatch):
  """What make_hf_trainer hands jaxmomentum.hessian_free: the protocol's
  μ, L2 and CG bounds, λ0 from the grid, tanh hidden units, and an
  outputs_fn returning (logits, hidden pre-activations), so the structural
  damping term is on."""
  seen = {}
  real = _hf_rnn.hessian_free

  def spy(outputs_fn, loss_fn, **kwargs):
    seen.update(kwargs, outputs_fn=outputs_fn)
    return real(outputs_fn, loss_fn, **kwargs)

  monkeypatch.setattr(_hf_rnn, "hessian_free", spy)
  trainer = _hf_rnn.make_hf_trainer(_TINY_ROW, _RNN, _HF)
  state = trainer.init(jax.random.key(0), {"initial_damping": 0.06})
  assert seen["structural_damping"] == 0.03
  assert seen["l2_reg"] == 2e-5
  assert (seen["cg_max_iters"], seen["cg_min_iters"]) == (15, 1)
  assert seen["hidden_activation"] == "tanh"
  assert float(seen["initial_damping"]) == pytest.approx(0.06)
  batch = _rnn_tables.rnn_task(_TINY_ROW, _RNN).sample_fn(
      jax.random.key(1), 3, None)
  out = seen["outputs_fn"](state.params, batch)
  assert isinstance(out, tuple) and len(out) == 2
  assert out[1].shape == (3, _TINY_ROW.problem.max_length, _RNN.hidden_size)
