"""Fashion-MNIST as a labelled real-data row of Tables 1-2 (issue 12).

The loader is tested on small IDX files written here; the tests on the real
files run where Debian's ``dataset-fashion-mnist`` package is installed and
skip cleanly elsewhere.
"""

import gzip
import os

import numpy as np
import pytest

from jaxmomentum import problems as P
from jaxmomentum.reproduce import _autoencoder_tables
from jaxmomentum.reproduce import _cli_args
from jaxmomentum.reproduce import _datasets
from jaxmomentum.reproduce import _protocols
from jaxmomentum.reproduce import cli

needs_package = pytest.mark.skipif(
    not os.path.isdir(P.FASHION_MNIST_DIR),
    reason=f"dataset-fashion-mnist not installed ({P.FASHION_MNIST_DIR})")


def _write_idx(path, images):
  header = bytes([0, 0, 0x08, 3]) + np.asarray(images.shape, ">u4").tobytes()
  path.write_bytes(gzip.compress(header + images.tobytes()))


def test_loader_reads_idx_files_like_mnist(tmp_path):
  rng = np.random.default_rng(0)
  train = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
  test = rng.integers(0, 256, (2, 28, 28), dtype=np.uint8)
  _write_idx(tmp_path / "train-images-idx3-ubyte.gz", train)
  _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", test)
  data = P.load_fashion_mnist(tmp_path)
  np.testing.assert_array_equal(data.train,
                                train.reshape(5, 784).astype(np.float32) / 255)
  assert data.test.shape == (2, 784)


def test_missing_files_say_how_to_get_them(tmp_path):
  with pytest.raises(FileNotFoundError,
                     match="Fashion-MNIST: .*apt-get install "
                     "dataset-fashion-mnist"):
    P.load_fashion_mnist(tmp_path)


def test_row_is_labelled_fashion_mnist_and_skipped_without_data(
    tmp_path, monkeypatch):
  monkeypatch.setattr(P, "FASHION_MNIST_DIR", str(tmp_path / "none"))
  monkeypatch.setattr(P._autoencoder_data, "FASHION_MNIST_DIR",  # pylint: disable=protected-access
                      str(tmp_path / "none"))
  with pytest.raises(_datasets.DataUnavailable,
                     match="^fashion: Fashion-MNIST"):
    _datasets.load_dataset(
        "fashion", None, synthetic_curves=False,
        protocol=_protocols.AUTOENCODER_QUICK)
  args = cli.build_parser().parse_args(
      ["reproduce", "table1", "--problems", "fashion"])
  _, autoencoder, _, ae = _cli_args.protocols(args)  # pylint: disable=protected-access
  assert ae == ("fashion",) and autoencoder.problems == ("fashion",)
  # Not a paper row: the default protocols run the paper's three only.
  assert "fashion" not in _protocols.AUTOENCODER_QUICK.problems


@needs_package
def test_real_files_load():
  data = P.load_fashion_mnist()
  assert data.train.shape == (60000, 784) and data.test.shape == (10000, 784)
  assert 0.0 <= data.train.min() and data.train.max() <= 1.0
  # Not MNIST: Fashion-MNIST's mean pixel is ~0.286 (MNIST's ~0.131).
  assert abs(float(data.train.mean()) - 0.286) < 0.01


@needs_package
def test_table1_row_on_real_files(tmp_path):
  tiny = _protocols.AutoencoderProtocol(
      name="tiny", num_steps=10, batch_size=8, seeds=1,
      learning_rates=(0.01,), mu_maxes=(0.0, 0.9), stage_length=5,
      finetune_steps=5, eval_every=5, eval_batch_size=16, num_eval_batches=1,
      problems=("fashion",))
  table, _ = _autoencoder_tables.reproduce_table1(
      tiny, tmp_path, progress=False, checkpoint_every_s=0.0,
      log=lambda m: None)
  assert "| fashion |" in table
  assert "Fashion-MNIST" in (tmp_path / "table1.json").read_text()
