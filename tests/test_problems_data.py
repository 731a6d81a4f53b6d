"""Autoencoder data: loaders round-trip on small files written here, error
messages for missing and corrupt files, the synthetic stand-in, the samplers.
"""

import gzip

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmomentum import problems as P

scipy_io = pytest.importorskip("scipy.io")
h5py = pytest.importorskip("h5py")


def _idx_bytes(array, code=0x08):
  header = bytes([0, 0, code, array.ndim])
  header += np.asarray(array.shape, ">u4").tobytes()
  dtype = {0x08: "u1", 0x0B: ">i2", 0x0D: ">f4"}[code]
  return header + np.ascontiguousarray(array, dtype).tobytes()


def _write(path, data, compress=False):
  if compress:
    data = gzip.compress(data)
  path.write_bytes(data)
  return path


@pytest.fixture
def mnist_arrays():
  rng = np.random.default_rng(0)
  return (rng.integers(0, 256, (7, 28, 28), dtype=np.uint8),
          rng.integers(0, 256, (3, 28, 28), dtype=np.uint8))


def _expected(images):
  return images.reshape(len(images), 784).astype(np.float32) / 255


# (train file name, test file name, gzip?)
_IDX_LAYOUTS = [
    ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz", True),
    ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte", False),
    ("train-images.idx3-ubyte", "t10k-images.idx3-ubyte", False),
    ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte", True),
]


@pytest.mark.parametrize("train_name,test_name,compress", _IDX_LAYOUTS)
def test_mnist_idx_round_trip(tmp_path, mnist_arrays, train_name, test_name,
                              compress):
  train, test = mnist_arrays
  _write(tmp_path / train_name, _idx_bytes(train), compress)
  _write(tmp_path / test_name, _idx_bytes(test), test_name.endswith(".gz"))
  data = P.load_mnist(tmp_path)
  for got, want in zip(data, (train, test)):
    assert got.dtype == np.float32 and got.shape == (len(want), 784)
    np.testing.assert_array_equal(got, _expected(want))
  assert data.train.min() >= 0 and data.train.max() <= 1


@pytest.mark.parametrize("as_directory", [True, False])
@pytest.mark.parametrize("flat", [False, True])
def test_mnist_npz_round_trip(tmp_path, mnist_arrays, as_directory, flat):
  train, test = mnist_arrays
  shape = (lambda a: a.reshape(len(a), -1)) if flat else (lambda a: a)
  np.savez(tmp_path / "mnist.npz", x_train=shape(train), x_test=shape(test),
           y_train=np.zeros(7, np.uint8), y_test=np.zeros(3, np.uint8))
  data = P.load_mnist(tmp_path if as_directory else tmp_path / "mnist.npz")
  np.testing.assert_array_equal(data.train, _expected(train))
  np.testing.assert_array_equal(data.test, _expected(test))


@pytest.mark.parametrize("array,code", [
    (np.arange(24, dtype=np.uint8).reshape(2, 3, 4), 0x08),
    (np.array([-300, 0, 12345], np.int16), 0x0B),
    (np.linspace(-1, 1, 6, dtype=np.float32).reshape(3, 2), 0x0D),
])
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trip(tmp_path, array, code, compress):
  path = _write(tmp_path / "x.idx", _idx_bytes(array, code), compress)
  got = P.read_idx(path)
  assert got.dtype.isnative
  np.testing.assert_array_equal(got, array)


def test_mnist_missing_files_message(tmp_path, mnist_arrays):
  with pytest.raises(FileNotFoundError) as err:
    P.load_mnist(tmp_path)
  msg = str(err.value)
  for part in (str(tmp_path), "train-images-idx3-ubyte.gz",
               "t10k-images-idx3-ubyte", "mnist.npz", "http"):
    assert part in msg
  # Only the training file present: the message names the test file only.
  _write(tmp_path / "train-images-idx3-ubyte", _idx_bytes(mnist_arrays[0]))
  with pytest.raises(FileNotFoundError, match="no test images") as err:
    P.load_mnist(tmp_path)
  assert "train-images-idx3-ubyte," not in str(err.value)
  with pytest.raises(FileNotFoundError, match="neither a directory"):
    P.load_mnist(tmp_path / "nowhere")
  with pytest.raises(ValueError, match="pass the directory"):
    P.load_mnist(tmp_path / "train-images-idx3-ubyte")


def _good_idx(n=2):
  return _idx_bytes(np.zeros((n, 28, 28), np.uint8))


# (bytes of the training file, gzip it?, phrase the message must contain)
_CORRUPT_IDX = [
    (_good_idx()[:-10], False, "truncated"),
    (_good_idx() + b"\x00", False, "data bytes"),
    (b"\x01\x02" + _good_idx()[2:], False, "not an IDX file"),
    (b"\x00\x00\x07\x03" + _good_idx()[4:], False, "data type code"),
    (gzip.compress(_good_idx())[:-8], False, "corrupt gzip"),
    (_idx_bytes(np.zeros((2, 27, 28), np.uint8)), True, "[n, 28, 28]"),
    (_idx_bytes(np.zeros((2, 784), np.int16), 0x0B), False, "uint8"),
    (b"\x00\x00", False, "not an IDX file"),
]


@pytest.mark.parametrize("content,compress,phrase", _CORRUPT_IDX,
                         ids=[c[2] for c in _CORRUPT_IDX])
def test_mnist_corrupt_files_message(tmp_path, content, compress, phrase):
  bad = _write(tmp_path / "train-images-idx3-ubyte", content, compress)
  _write(tmp_path / "t10k-images-idx3-ubyte", _good_idx())
  with pytest.raises(P.DataFileError) as err:
    P.load_mnist(tmp_path)
  assert str(bad) in str(err.value)
  assert phrase in str(err.value)


@pytest.mark.parametrize("arrays,phrase", [
    ({"x_train": np.zeros((2, 28, 28), np.uint8)}, "missing ['x_test']"),
    ({"x_train": np.zeros((2, 28, 28), np.uint8),
      "x_test": np.zeros((2, 28, 28), np.float64)}, "uint8"),
    ({"x_train": np.zeros((2, 30, 30), np.uint8),
      "x_test": np.zeros((2, 28, 28), np.uint8)}, "(2, 30, 30)"),
])
def test_mnist_npz_bad_contents(tmp_path, arrays, phrase):
  np.savez(tmp_path / "mnist.npz", **arrays)
  with pytest.raises(P.DataFileError) as err:
    P.load_mnist(tmp_path / "mnist.npz")
  assert "mnist.npz" in str(err.value) and phrase in str(err.value)


def test_mnist_npz_not_an_archive(tmp_path):
  (tmp_path / "mnist.npz").write_bytes(b"definitely not a zip")
  with pytest.raises(P.DataFileError, match="not a readable .npz"):
    P.load_mnist(tmp_path)


# ------------------------------------------------------------------- .mat


def _write_mat_v73(path, variables):
  """A MATLAB v7.3 file: HDF5 with a 512-byte MATLAB header, axes reversed."""
  with h5py.File(path, "w", userblock_size=512) as f:
    for name, value in variables.items():
      f.create_dataset(name, data=np.asarray(value).T)
  with open(path, "r+b") as f:
    f.write(b"MATLAB 7.3 MAT-file, written by the jaxmomentum tests")
  return path


def _write_mat(path, variables, fmt):
  if fmt == "v7.3":
    return _write_mat_v73(path, variables)
  scipy_io.savemat(path, variables, format=fmt)
  return path


@pytest.fixture
def curves():
  rng = np.random.default_rng(1)
  return rng.uniform(0, 1, (6, 784)), rng.uniform(0, 1, (4, 784))


@pytest.mark.parametrize("fmt", ["5", "4", "v7.3"])
@pytest.mark.parametrize("transposed", [False, True])
def test_curves_round_trip(tmp_path, curves, fmt, transposed):
  train, test = curves
  orient = (lambda a: a.T) if transposed else (lambda a: a)
  _write_mat(tmp_path / "digs3pts_1.mat",
             {"bdata": orient(train), "bdatatest": orient(test)}, fmt)
  for where in (tmp_path, tmp_path / "digs3pts_1.mat"):
    data = P.load_curves(where)
    assert data.train.dtype == np.float32 and data.train.shape == (6, 784)
    np.testing.assert_allclose(data.train, train, rtol=1e-7)
    np.testing.assert_allclose(data.test, test, rtol=1e-7)


def test_curves_uint8_scaled(tmp_path):
  img = np.arange(784 * 2, dtype=np.int64).reshape(2, 784) % 256
  _write_mat(tmp_path / "digs3pts_1.mat", {
      "bdata": img.astype(np.uint8), "bdatatest": img.astype(np.uint8)}, "5")
  np.testing.assert_allclose(P.load_curves(tmp_path).train, img / 255,
                             rtol=1e-6)


@pytest.mark.parametrize("fmt", ["5", "v7.3"])
def test_faces_round_trip_split(tmp_path, fmt):
  faces = np.random.default_rng(2).normal(size=(625, 30))  # pixels x cases
  _write_mat(tmp_path / "newfaces_rot_single.mat",
             {"newfaces_single": faces}, fmt)
  data = P.load_faces(tmp_path, num_train=18, num_test=8)
  assert data.train.shape == (18, 625) and data.test.shape == (8, 625)
  assert data.train.dtype == np.float32
  np.testing.assert_allclose(data.train, faces[:, :18].T, rtol=1e-6)
  np.testing.assert_allclose(data.test, faces[:, -8:].T, rtol=1e-6)


@pytest.mark.parametrize("loader,filename", [
    (P.load_curves, "digs3pts_1.mat"),
    (P.load_faces, "newfaces_rot_single.mat"),
])
def test_mat_missing_file_message(tmp_path, loader, filename):
  with pytest.raises(FileNotFoundError) as err:
    loader(tmp_path)
  msg = str(err.value)
  assert filename in msg and str(tmp_path) in msg
  assert "https://www.cs.toronto.edu/~jmartens/" + filename in msg


_BAD_MATS = [
    # (loader, file name, variables or raw bytes, format, phrases)
    (P.load_curves, "digs3pts_1.mat", {"bdata": np.zeros((2, 784))}, "5",
     ["missing variable(s) ['bdatatest']", "bdata"]),
    (P.load_curves, "digs3pts_1.mat", {"bdata": np.zeros((2, 784))}, "v7.3",
     ["missing variable(s) ['bdatatest']"]),
    (P.load_curves, "digs3pts_1.mat",
     {"bdata": np.zeros((2, 700)), "bdatatest": np.zeros((2, 784))}, "5",
     ["'bdata'", "(2, 700)", "784"]),
    (P.load_curves, "digs3pts_1.mat",
     {"bdata": 255.0 * np.ones((2, 784)), "bdatatest": np.zeros((2, 784))},
     "5", ["[0, 1]", "255"]),
    (P.load_curves, "digs3pts_1.mat",
     {"bdata": np.full((2, 784), np.nan), "bdatatest": np.zeros((2, 784))},
     "5", ["NaN"]),
    (P.load_curves, "digs3pts_1.mat",
     {"bdata": np.zeros((2, 784, 1, 1)), "bdatatest": np.zeros((2, 784))},
     "5", ["2-D numeric"]),
    (P.load_curves, "digs3pts_1.mat", b"MATLAB 5.0 MAT-file" + bytes(50),
     None, ["not a readable MATLAB .mat file"]),
    (P.load_curves, "digs3pts_1.mat", np.random.default_rng(3).bytes(64), None,
     ["not a readable MATLAB .mat file"]),
    (P.load_faces, "newfaces_rot_single.mat",
     {"newfaces_single": np.zeros((625, 10))}, "5",
     ["holds 10 cases", "103500 + 41400"]),
    (P.load_faces, "newfaces_rot_single.mat",
     {"faces": np.zeros((625, 10))}, "5", ["['newfaces_single']"]),
    (P.load_faces, "newfaces_rot_single.mat",
     {"newfaces_single": np.zeros((600, 10))}, "v7.3", ["(600, 10)", "625"]),
    (P.load_faces, "newfaces_rot_single.mat", b"\x89HDF\r\n\x1a\n" + bytes(9),
     None, ["not a readable MATLAB v7.3"]),
]


@pytest.mark.parametrize("loader,filename,content,fmt,phrases", _BAD_MATS,
                         ids=[f"{c[0].__name__}-{i}" for i, c in
                              enumerate(_BAD_MATS)])
def test_mat_corrupt_or_wrong_message(tmp_path, loader, filename, content,
                                      fmt, phrases):
  path = tmp_path / filename
  if fmt is None:
    path.write_bytes(content)
  else:
    _write_mat(path, content, fmt)
  with pytest.raises(P.DataFileError) as err:
    loader(path)
  msg = str(err.value)
  assert str(path) in msg
  for phrase in phrases:
    assert phrase in msg, msg


def test_load_faces_argument_errors(tmp_path):
  with pytest.raises(ValueError, match="num_train must be an integer >= 1"):
    P.load_faces(tmp_path, num_train=0)


# ------------------------------------------------------ synthetic stand-in


def test_synthetic_curves_standin(getkey):
  key = getkey()
  images = P.synthetic_curves_standin(key, 70)  # > 64: two render chunks
  assert images.shape == (70, 784) and images.dtype == jnp.float32
  x = np.asarray(images)
  assert x.min() >= 0 and x.max() <= 1
  # Each image is a thin stroke: a bright pixel, most pixels dark.
  assert np.all(x.max(1) > 0.5)
  ink = (x > 0.5).sum(1)
  assert np.all((ink >= 5) & (ink <= 250)), ink
  # A curve, not noise: the bright pixels form one 8-connected stroke.
  ndimage = pytest.importorskip("scipy.ndimage")
  for image in x:
    _, parts = ndimage.label(image.reshape(28, 28) > 0.5, np.ones((3, 3)))
    assert parts == 1
  np.testing.assert_array_equal(P.synthetic_curves_standin(key, 70), images)
  other = P.synthetic_curves_standin(getkey(), 70)
  assert not np.array_equal(other, images)


@pytest.mark.parametrize("kwargs,match", [
    ({"num_images": 0}, "num_images must be an integer >= 1"),
    ({"num_images": 2, "width": 0.0}, "width must be > 0"),
    ({"num_images": 2, "margin": 14.0}, r"margin must be in \[0, 13.5\)"),
])
def test_synthetic_curves_standin_errors(kwargs, match):
  with pytest.raises(ValueError, match=match):
    P.synthetic_curves_standin(jax.random.key(0), **kwargs)


# ----------------------------------------------------------------- samplers


def test_sample_minibatch_in_jitted_scan(getkey):
  data = {"x": jnp.arange(50.0).reshape(25, 2), "y": jnp.arange(25)}

  @jax.jit
  def run(keys):
    return jax.lax.scan(
        lambda c, k: (c, P.sample_minibatch(k, 8, data)), 0, keys)[1]

  batches = run(jax.random.split(getkey(), 6))
  assert batches["x"].shape == (6, 8, 2) and batches["y"].shape == (6, 8)
  # Rows stay paired across the pytree and come from the data.
  np.testing.assert_array_equal(batches["x"][..., 0], 2 * batches["y"])
  assert len(np.unique(batches["y"])) > 8  # not the same rows every step


def test_epoch_minibatch_covers_each_epoch_once(getkey):
  data = jnp.arange(23)
  key = getkey()

  @jax.jit
  def run(key):
    return jax.lax.scan(lambda c, s: (c, P.epoch_minibatch(key, 5, data, s)),
                        0, jnp.arange(8))[1]

  batches = np.asarray(run(key))  # 4 batches per epoch, 3 cases dropped
  for epoch in (batches[:4], batches[4:]):
    flat = epoch.ravel()
    assert len(set(flat)) == 20 and set(flat) <= set(range(23))
  assert not np.array_equal(batches[:4], batches[4:])


@pytest.mark.parametrize("call,match", [
    (lambda: P.sample_minibatch(jax.random.key(0), 0, jnp.zeros((4, 2))),
     "batch_size must be an integer >= 1"),
    (lambda: P.epoch_minibatch(jax.random.key(0), 5, jnp.zeros(4), 0),
     r"batch_size must be an integer <= the number of cases \(4\)"),
    (lambda: P.sample_minibatch(jax.random.key(0), 2,
                                (jnp.zeros(4), jnp.zeros(5))),
     "same leading"),
    (lambda: P.sample_minibatch(jax.random.key(0), 2, jnp.zeros((0, 3))),
     "no cases"),
])
def test_sampler_errors(call, match):
  with pytest.raises(ValueError, match=match):
    call()


def test_load_faces_default_split_is_martens():
  """Defaults: the first 103,500 columns train, the last 41,400 test."""
  import inspect  # pylint: disable=g-import-not-at-top
  params = inspect.signature(P.load_faces).parameters
  assert params["num_train"].default == 103_500
  assert params["num_test"].default == 41_400
