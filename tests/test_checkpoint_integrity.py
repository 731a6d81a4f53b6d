"""Damaged checkpoints are detected, named, set aside and recovered from.

A grid run is interrupted after chunk 3 of 4 (checkpoints 2 and 3 on disk);
each test damages a copy of its folder the way a disk, a careless user or a
half-finished copy would, resumes, and checks that the damaged checkpoint is
named in a :class:`CheckpointWarning`, moved aside, and that the run ends
with exactly the numbers of an uninterrupted run. The toy problem is the one
of tests/_training_toy.py; the grid has 8 points so that flipped bytes land
in array data (which orbax would otherwise decode into wrong numbers).
"""

import glob
import os
import shutil

import chex
import jax
import numpy as np
import pytest

from _interrupt import stopped_after_save
import _training_toy as toy
from jaxmomentum import training
from jaxmomentum.training import _checkpoint

_GRID = {"learning_rate": list(np.linspace(0.01, 0.05, 8)), "momentum": [0.9]}
_SEEDS = [0, 1]
_STOP_AFTER = 3  # of 4 chunks


@pytest.fixture(scope="module")
def trainer():
  return toy.make_trainer(num_steps=40, eval_every=10, chunk_size=10)


@pytest.fixture(scope="module")
def uninterrupted(trainer):
  return training.run_grid(trainer, _GRID, _SEEDS, progress=False,
                           keep_state=True)


@pytest.fixture(scope="module")
def interrupted_dir(trainer, tmp_path_factory):
  """An out_dir holding the checkpoints of a run stopped after chunk 3."""
  out = tmp_path_factory.mktemp("interrupted")
  with stopped_after_save(_STOP_AFTER):
    training.run_grid(trainer, _GRID, _SEEDS, out_dir=out, progress=False)
  return out


@pytest.fixture
def out_dir(interrupted_dir, tmp_path):
  out = tmp_path / "run"
  shutil.copytree(interrupted_dir, out)
  return out


def _step(out, step):
  return os.path.join(out, "checkpoints", str(step))


def _data_files(step_dir):
  """The files holding the arrays (OCDBT data files under state/)."""
  files = glob.glob(os.path.join(step_dir, "state", "**", "d", "*"),
                    recursive=True)
  assert files, step_dir
  return files


def _flip(step_dir):
  for f in _data_files(step_dir):
    data = bytearray(open(f, "rb").read())
    mid = len(data) // 2
    for i in range(max(0, mid - 32), min(len(data), mid + 32)):
      data[i] ^= 0xFF
    open(f, "wb").write(bytes(data))


def _truncate(step_dir):
  for f in _data_files(step_dir):
    os.truncate(f, os.path.getsize(f) // 2)


def _zero(step_dir):
  for f in _data_files(step_dir):
    open(f, "wb").write(bytes(os.path.getsize(f)))


def _delete_data(step_dir):
  for d in glob.glob(os.path.join(step_dir, "state", "**", "d"),
                     recursive=True):
    shutil.rmtree(d)


def _empty_manifest(step_dir):
  for f in glob.glob(os.path.join(step_dir, "state", "**", "manifest.ocdbt"),
                     recursive=True):
    open(f, "wb").close()


def _garbage_metadata(step_dir):
  with open(os.path.join(step_dir, "meta", "metadata"), "w") as f:
    f.write("{not json")


def _metadata_without_fingerprint(step_dir):
  with open(os.path.join(step_dir, "meta", "metadata"), "w") as f:
    f.write('{"chunks_done": 3}')


def _wrong_step_in_metadata(step_dir):
  path = os.path.join(step_dir, "meta", "metadata")
  text = open(path).read().replace('"chunks_done": 3', '"chunks_done": 1')
  open(path, "w").write(text)


def _state_of_another_step(step_dir):
  """Valid, readable arrays that are not the ones saved at this step."""
  other = os.path.join(os.path.dirname(step_dir), "2", "state")
  shutil.rmtree(os.path.join(step_dir, "state"))
  shutil.copytree(other, os.path.join(step_dir, "state"))


_DAMAGE = [_flip, _truncate, _zero, _delete_data, _empty_manifest,
           _garbage_metadata, _metadata_without_fingerprint,
           _wrong_step_in_metadata, _state_of_another_step]


def _resume(trainer, out):
  with pytest.warns(_checkpoint.CheckpointWarning) as record:
    result = training.run_grid(trainer, _GRID, _SEEDS, out_dir=out,
                               progress=False, keep_state=True)
  return result, [str(w.message) for w in record
                  if issubclass(w.category, _checkpoint.CheckpointWarning)]


def _outcome(result):
  return result.metrics, result.diverged_step, result.final_state


@pytest.mark.parametrize("damage", _DAMAGE, ids=lambda f: f.__name__[1:])
def test_damaged_newest_checkpoint_falls_back_to_the_previous_one(
    trainer, uninterrupted, out_dir, damage):
  damage(_step(out_dir, 3))
  result, messages = _resume(trainer, out_dir)
  assert len(messages) == 1, messages
  assert _step(out_dir, 3) in messages[0]
  assert "older checkpoint 2" in messages[0]
  assert result.chunks_run == 2  # resumed after chunk 2, not 3
  assert os.path.isdir(os.path.join(out_dir, "damaged_checkpoints", "3"))
  chex.assert_trees_all_equal(_outcome(result), _outcome(uninterrupted))


def test_stray_empty_step_folder_is_set_aside(trainer, uninterrupted,
                                              out_dir):
  os.makedirs(_step(out_dir, 9))
  result, messages = _resume(trainer, out_dir)
  assert len(messages) == 1 and _step(out_dir, 9) in messages[0]
  assert result.chunks_run == 4 - _STOP_AFTER
  chex.assert_trees_all_equal(_outcome(result), _outcome(uninterrupted))


def test_every_checkpoint_damaged_starts_over_and_says_so(
    trainer, uninterrupted, out_dir):
  _flip(_step(out_dir, 3))
  _garbage_metadata(_step(out_dir, 2))
  result, messages = _resume(trainer, out_dir)
  assert len(messages) == 2
  assert "starts over" in messages[1] and _step(out_dir, 2) in messages[1]
  assert result.chunks_run == 4
  chex.assert_trees_all_equal(_outcome(result), _outcome(uninterrupted))


def test_the_two_newest_good_checkpoints_are_kept(trainer, out_dir):
  training.run_grid(trainer, _GRID, _SEEDS, out_dir=out_dir, progress=False)
  assert sorted(os.listdir(os.path.join(out_dir, "checkpoints"))) == ["3", "4"]


def test_a_checkpoint_failing_verification_after_saving_keeps_the_older(
    trainer, uninterrupted, out_dir, monkeypatch):
  real_read = _checkpoint.GridCheckpointer._read

  def read_back_damaged(self, step, template):
    if step == 4:  # the read-back right after saving the last chunk
      raise _checkpoint._Damaged("simulated bit rot")
    return real_read(self, step, template)

  monkeypatch.setattr(_checkpoint.GridCheckpointer, "_read",
                      read_back_damaged)
  result, messages = _resume(trainer, out_dir)
  assert len(messages) == 1 and "failed verification" in messages[0]
  assert sorted(os.listdir(os.path.join(out_dir, "checkpoints"))) == ["2", "3"]
  # The numbers in memory are good.
  chex.assert_trees_all_equal(_outcome(result), _outcome(uninterrupted))


def test_undamaged_resume_warns_nothing(trainer, uninterrupted, out_dir):
  import warnings  # pylint: disable=g-import-not-at-top
  with warnings.catch_warnings():
    warnings.simplefilter("error", _checkpoint.CheckpointWarning)
    result = training.run_grid(trainer, _GRID, _SEEDS, out_dir=out_dir,
                               progress=False, keep_state=True)
  assert result.chunks_run == 1
  chex.assert_trees_all_equal(_outcome(result), _outcome(uninterrupted))


def test_another_runs_checkpoint_is_a_checkpoint_error(trainer, out_dir):
  with pytest.raises(training.CheckpointError, match="different run"):
    training.run_grid(trainer, _GRID, [0, 2], out_dir=out_dir,
                      progress=False)


@pytest.mark.parametrize("where", ["file", "file_below"])
def test_out_dir_that_is_a_file_is_a_checkpoint_error(trainer, tmp_path,
                                                      where):
  path = tmp_path / "results.txt"
  path.write_text("not a folder")
  out = path if where == "file" else path / "sub"
  with pytest.raises(training.CheckpointError, match="out_dir"):
    training.run_grid(trainer, _GRID, _SEEDS, out_dir=out, progress=False)


def test_unwritable_out_dir_is_a_checkpoint_error(trainer, tmp_path):
  locked = tmp_path / "locked"
  locked.mkdir()
  locked.chmod(0o500)
  # root writes anywhere but in /proc
  out = "/proc/jaxmomentum_test/run" if os.geteuid() == 0 else locked / "run"
  try:
    with pytest.raises(training.CheckpointError, match="out_dir"):
      training.run_grid(trainer, _GRID, _SEEDS, out_dir=out, progress=False)
  finally:
    locked.chmod(0o700)


def _rewrite_as_first_format(out_dir, trainer, step):
  """Rewrites checkpoint ``step`` of ``out_dir`` in the first format (host
  arrays named by position, a SHA-256 digest, no "format" entry), as
  jaxmomentum wrote checkpoints before format 2, and drops the others."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  from jaxmomentum.training import _checkpoint_v1  # pylint: disable=g-import-not-at-top
  from jaxmomentum.training import _runner  # pylint: disable=g-import-not-at-top
  placement = _runner._Placement(trainer, None)
  num_runs = len(_SEEDS) * len(_GRID["learning_rate"])
  rows = -(-num_runs // placement.num_devices) * placement.num_devices
  seeds = placement.put(np.resize(np.int32(_SEEDS), rows))
  hparams = {k: placement.put(np.resize(np.float32(v), rows))
             for k, v in _GRID.items()}
  like = placement.init(seeds, hparams)  # layout only
  steps_dir = os.path.join(out_dir, "checkpoints")
  manager = ocp.CheckpointManager(steps_dir)
  meta = manager.restore(step, args=ocp.args.Composite(
      meta=ocp.args.JsonRestore())).meta
  checkpointer = _checkpoint.GridCheckpointer(
      out_dir, meta["fingerprint"], meta["description"], num_runs)
  metrics = {k: np.zeros((num_runs, 4), np.float32)
             for k in ("error", "loss", "train_loss")}
  tree, _ = checkpointer._read(step, {"state": like, "metrics": metrics})
  checkpointer.close()
  host = {"state": jax.tree.map(lambda x: _runner._to_host(x)[:num_runs],
                                tree["state"]),
          "metrics": tree["metrics"]}
  flat = _checkpoint_v1.flatten(host)
  del meta["format"], meta["rows"]
  meta["digest"] = _checkpoint_v1.digest(flat, step)
  for s in manager.all_steps():
    manager.delete(s)
  manager.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave(flat), meta=ocp.args.JsonSave(meta)))
  manager.wait_until_finished()
  manager.close()


def test_a_first_format_checkpoint_resumes_to_the_same_numbers(
    trainer, uninterrupted, out_dir):
  _rewrite_as_first_format(out_dir, trainer, _STOP_AFTER)
  with open(os.path.join(_step(out_dir, _STOP_AFTER), "state", "_METADATA")) as f:
    assert "leaf_00000" in f.read()
  result = training.run_grid(trainer, _GRID, _SEEDS, out_dir=out_dir,
                             progress=False, keep_state=True)
  assert result.chunks_run == 4 - _STOP_AFTER
  chex.assert_trees_all_equal(_outcome(result), _outcome(uninterrupted))
  # ... and its damage is caught as before.
  _rewrite_as_first_format(out_dir, trainer, 4)
  _flip(_step(out_dir, 4))
  result, messages = _resume(trainer, out_dir)
  assert len(messages) == 1 and "starts over" in messages[0]
  chex.assert_trees_all_equal(_outcome(result), _outcome(uninterrupted))
