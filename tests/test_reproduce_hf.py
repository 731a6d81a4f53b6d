"""Table 1's HF* cell, ours (jaxmomentum.reproduce._hf_tables)."""

import numpy as np
import pytest

from _interrupt import stopped_after_save

from jaxmomentum import problems
from jaxmomentum.models import AutoencoderArchitecture
from jaxmomentum.models import DeepAutoencoder
from jaxmomentum.reproduce import _hf_tables
from jaxmomentum.reproduce import _protocols

import jax
import jax.numpy as jnp


def test_hf_protocol_follows_the_table1_protocol():
  assert _hf_tables.hf_protocol_for(
      _protocols.AUTOENCODER_PAPER) is _hf_tables.HF_PAPER
  quick = _protocols.AUTOENCODER_QUICK.replace(num_steps=400)
  assert _hf_tables.hf_protocol_for(quick) is _hf_tables.HF_QUICK
  assert _hf_tables.hf_protocol_for(
      _protocols.AUTOENCODER_QUICK.replace(name="tiny")) is None
  paper = _hf_tables.HF_PAPER
  assert (paper.num_updates, paper.cg_max_iters, paper.initial_damping,
          paper.num_chunks, paper.l2_reg) == (500, 250, 45.0, 4, 2e-5)
  with pytest.raises(ValueError, match="num_chunks"):
    _hf_tables.HFProtocol("x", 1, 1, 1.0, 0, 0.0, 1)


def test_hf_cell_trains_and_fills_the_hf_star_cell():
  data = np.asarray(problems.synthetic_curves_standin(jax.random.key(0), 40))
  tiny = AutoencoderArchitecture("curves", (784, 16, 4), "logistic")
  protocol = _hf_tables.HFProtocol("quick", num_updates=4, cg_max_iters=10,
                                   initial_damping=45.0, num_chunks=4,
                                   l2_reg=2e-5, seeds=2)
  model = DeepAutoencoder(tiny)
  x = jnp.asarray(data)
  init_error = np.mean([
      float(jnp.mean(jnp.sum((jax.nn.sigmoid(model.apply(
          model.init(jax.random.key(s), x[:1]), x, logits=True)) - x) ** 2,
                             -1))) for s in (0, 1)])
  logged = []
  cell = _hf_tables.hf_cell("curves", data, protocol, architecture=tiny,
                            note="data: stand-in", log=logged.append)
  assert (cell.table, cell.row, cell.column) == ("1", "curves", "HF*")
  assert cell.paper == 0.11
  assert cell.ours.mean < 0.9 * init_error
  assert "ours" in cell.note and "stand-in" in cell.note
  assert logged and "HF" in logged[0]


def test_hf_cell_runs_checkpoint_and_resume_to_the_same_numbers(
    tmp_path):
  """Table 1's HF runs go through run_grid: interrupted after a chunk, they
  resume from out_dir/checkpoints/table1/<row>-hf to the numbers of an
  uninterrupted run."""
  data = np.asarray(problems.synthetic_curves_standin(jax.random.key(0), 24))
  tiny = AutoencoderArchitecture("curves", (784, 8, 3), "logistic")
  protocol = _hf_tables.HFProtocol("quick", num_updates=4, cg_max_iters=5,
                                   initial_damping=45.0, num_chunks=4,
                                   l2_reg=2e-5, seeds=1)
  final, errors, _ = _hf_tables.train_hf(data, tiny, protocol)
  assert errors.shape == (1, 4) and np.all(np.isfinite(errors))
  assert errors[0, -1] < errors[0, 0]
  def cell():
    return _hf_tables.hf_cell("curves", data, protocol, architecture=tiny,
                              log=lambda _: None, out_dir=tmp_path,
                              checkpoint_every_s=0.0)

  with stopped_after_save(1):
    cell()
  assert (tmp_path / "checkpoints" / "table1" / "curves-hf").is_dir()
  assert cell().ours.mean == float(final[0])
