"""Data of the deep-autoencoder experiments (Table 1): MNIST, CURVES, FACES.

The loaders read files the user supplies and return float32 numpy arrays of
shape ``[cases, pixels]`` (put them on device with ``jax.device_put``). A
missing file raises ``FileNotFoundError`` saying which file, where it was
looked for and how to get it; a file that cannot be read, or that holds the
wrong variables, shapes or values, raises :class:`DataFileError` naming the
file and what is wrong. No loader ever returns a silently wrong array.

What the ``.mat`` files hold was taken from public code that loads them
(Martens' HF MATLAB demos ``nnet_demo_*.m`` and several Python ports): CURVES
``digs3pts_1.mat`` holds ``bdata`` (training) and ``bdatatest`` (test), cases
by pixels (``[n, 784]``); FACES ``newfaces_rot_single.mat`` holds
``newfaces_single``, pixels by cases (``[625, 165600]``), of which the first
103,500 columns train and the last 41,400 test (the middle 20,700 are left as
a validation set). These layouts are checked on load; a file whose variable
has the other orientation is transposed only when that is unambiguous.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from jaxmomentum._validation import check_int
from jaxmomentum.problems._file_formats import check_readable
from jaxmomentum.problems._file_formats import DataFileError
from jaxmomentum.problems._file_formats import read_idx
from jaxmomentum.problems._file_formats import read_mat

__all__ = [
    "AutoencoderData",
    "FASHION_MNIST_DIR",
    "load_mnist",
    "load_fashion_mnist",
    "load_curves",
    "load_faces",
]

MNIST_HELP = (
    "Get train-images-idx3-ubyte.gz and t10k-images-idx3-ubyte.gz from "
    "http://yann.lecun.com/exdb/mnist/ (or a mirror such as "
    "https://storage.googleapis.com/cvdf-datasets/mnist/), or the Keras "
    "mnist.npz from https://storage.googleapis.com/tensorflow/"
    "tf-keras-datasets/mnist.npz, and put them in that directory.")
CURVES_HELP = (
    "Get digs3pts_1.mat (Salakhutdinov's CURVES, distributed with Martens' "
    "Hessian-free code) from https://www.cs.toronto.edu/~jmartens/"
    "digs3pts_1.mat. For offline demos use synthetic_curves_standin, which "
    "is not CURVES.")
FACES_HELP = (
    "Get newfaces_rot_single.mat from "
    "https://www.cs.toronto.edu/~jmartens/newfaces_rot_single.mat.")

_MNIST_IDX_NAMES = {
    "train": ("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte",
              "train-images.idx3-ubyte", "train-images.idx3-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte",
             "t10k-images.idx3-ubyte", "t10k-images.idx3-ubyte.gz"),
}


class AutoencoderData(NamedTuple):
  """Training and test cases, float32 ``[cases, pixels]``."""
  train: np.ndarray
  test: np.ndarray


# --------------------------------------------------------------- MNIST


def _mnist_images(array: np.ndarray, source: str, what: str) -> np.ndarray:
  if array.dtype != np.uint8:
    raise DataFileError(
        f"{source}: {what} must be uint8 pixels in 0..255, got dtype "
        f"{array.dtype}")
  if array.ndim == 3 and array.shape[1:] == (28, 28):
    array = array.reshape(array.shape[0], 784)
  if array.ndim != 2 or array.shape[1] != 784 or array.shape[0] == 0:
    raise DataFileError(
        f"{source}: {what} must have shape [n, 28, 28] (or [n, 784]) with "
        f"n >= 1, got {array.shape}")
  return array.astype(np.float32) / np.float32(255.0)


def _load_mnist_npz(path: str) -> AutoencoderData:
  try:
    with np.load(path, allow_pickle=False) as npz:
      keys = list(npz.keys())
      missing = [k for k in ("x_train", "x_test") if k not in keys]
      if missing:
        raise DataFileError(
            f"{path}: expected arrays 'x_train' and 'x_test' (the Keras "
            f"mnist.npz layout); missing {missing}, found {keys}")
      train, test = npz["x_train"], npz["x_test"]
  except DataFileError:
    raise
  except Exception as err:  # zipfile.BadZipFile, ValueError, OSError, ...
    raise DataFileError(
        f"{path}: not a readable .npz archive ({type(err).__name__}: {err})"
    ) from err
  return AutoencoderData(_mnist_images(train, path, "x_train"),
                         _mnist_images(test, path, "x_test"))


def load_mnist(path: str | os.PathLike) -> AutoencoderData:
  """MNIST images (train 60,000, test 10,000 in the standard files) in [0, 1].

  Pixels are divided by 255 and flattened to ``[n, 784]`` float32, keeping
  the standard train/test split. Any number of cases is accepted (so small
  files work in tests); shapes, dtypes and sizes are checked.

  Args:
    path: a directory holding the IDX files ``train-images-idx3-ubyte`` and
      ``t10k-images-idx3-ubyte`` (each gzipped ``.gz`` or raw; the
      ``train-images.idx3-ubyte`` spelling is accepted too) or ``mnist.npz``;
      or the path of an ``.npz`` file with ``x_train`` and ``x_test`` (Keras
      layout). IDX files win when a directory holds both.

  Returns:
    :class:`AutoencoderData` ``(train, test)``.

  Raises:
    FileNotFoundError: neither complete IDX pair nor ``mnist.npz`` found.
    DataFileError: a file is corrupt or wrongly shaped.

  Example:
    >>> from jaxmomentum.problems import load_mnist
    >>> data = load_mnist("~/data/mnist")  # doctest: +SKIP
    >>> data.train.shape, data.test.shape  # doctest: +SKIP
    ((60000, 784), (10000, 784))

  Reference:
    LeCun, Bottou, Bengio & Haffner (1998); Hinton & Salakhutdinov (2006).
  """
  path = os.path.expanduser(os.fspath(path))
  check_readable(path, "MNIST")
  if os.path.isfile(path):
    if not path.endswith(".npz"):
      raise ValueError(
          f"MNIST: {path} is a file but not an .npz archive; pass the "
          f"directory that holds the IDX files ({os.path.dirname(path)!r}) "
          "or an .npz file")
    return _load_mnist_npz(path)
  if not os.path.isdir(path):
    raise FileNotFoundError(
        f"MNIST: {path} is neither a directory nor a file. {MNIST_HELP}")
  found = {}
  for split, names in _MNIST_IDX_NAMES.items():
    for name in names:
      candidate = os.path.join(path, name)
      if os.path.isfile(candidate):
        found[split] = candidate
        break
  if len(found) == 2:
    return AutoencoderData(
        *(_mnist_images(read_idx(found[s]), found[s], "the IDX images")
          for s in ("train", "test")))
  npz = os.path.join(path, "mnist.npz")
  if os.path.isfile(npz):
    return _load_mnist_npz(npz)
  missing = [s for s in ("train", "test") if s not in found]
  looked = ", ".join(n for s in missing for n in _MNIST_IDX_NAMES[s])
  raise FileNotFoundError(
      f"MNIST: no {' or '.join(missing)} images in {path} (looked for "
      f"{looked}, and for mnist.npz). {MNIST_HELP}")


# Where Debian's ``dataset-fashion-mnist`` package installs the IDX files.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_HELP = (
    "On Debian or Ubuntu: `sudo apt-get install dataset-fashion-mnist` "
    f"(installs the IDX files in {FASHION_MNIST_DIR}); elsewhere get "
    "train-images-idx3-ubyte.gz and t10k-images-idx3-ubyte.gz from the "
    "zalandoresearch/fashion-mnist repository and put them in one directory.")


def load_fashion_mnist(path: str | os.PathLike | None = None
                       ) -> AutoencoderData:
  """Fashion-MNIST images in [0, 1], read exactly as :func:`load_mnist` reads
  MNIST (same IDX format, sizes and 28 x 28 layout: a drop-in real data set
  for the MNIST autoencoder; it is *not* MNIST and is labelled so).

  Args:
    path: a directory with ``train-images-idx3-ubyte(.gz)`` and
      ``t10k-images-idx3-ubyte(.gz)``; ``None`` (default) is where Debian's
      ``dataset-fashion-mnist`` package puts them
      (:data:`FASHION_MNIST_DIR`).

  Returns:
    :class:`AutoencoderData` ``(train, test)``: 60,000 and 10,000 cases of
    784 pixels / 255 for the released files.

  Raises:
    FileNotFoundError: the files are not there (the message says how to get
      them).
    DataFileError: a file is corrupt or wrongly shaped.

  Example:
    >>> from jaxmomentum.problems import load_fashion_mnist
    >>> data = load_fashion_mnist()  # doctest: +SKIP
    >>> data.train.shape, data.test.shape  # doctest: +SKIP
    ((60000, 784), (10000, 784))

  Reference:
    Xiao, Rasul & Vollgraf (2017), Fashion-MNIST, arXiv:1708.07747.
  """
  path = FASHION_MNIST_DIR if path is None else os.fspath(path)
  try:
    return load_mnist(path)
  except FileNotFoundError as err:
    raise FileNotFoundError(
        str(err).replace("MNIST:", "Fashion-MNIST:", 1).replace(
            MNIST_HELP, FASHION_MNIST_HELP)) from err


# ------------------------------------------------------ CURVES and FACES


def _locate(path: str | os.PathLike, filename: str, dataset: str,
            help_text: str) -> str:
  path = os.path.expanduser(os.fspath(path))
  check_readable(path, dataset)
  if os.path.isfile(path):
    return path
  candidate = os.path.join(path, filename) if os.path.isdir(path) else path
  check_readable(candidate, dataset)
  if not os.path.isfile(candidate):
    raise FileNotFoundError(
        f"{dataset}: {filename} not found (looked for {candidate}). "
        f"{help_text}")
  return candidate


def _cases_by_pixels(array: np.ndarray, pixels: int, path: str, name: str,
                     stored: str) -> np.ndarray:
  """``[cases, pixels]`` from the documented layout or its transpose."""
  if array.dtype.kind not in "fiub" or array.ndim != 2:
    raise DataFileError(
        f"{path}: variable {name!r} must be a 2-D numeric array {stored}, "
        f"got dtype {array.dtype} and shape {array.shape}")
  rows, cols = array.shape
  if stored.startswith("[cases"):
    if cols == pixels:
      return array
    if rows == pixels:
      return array.T
  else:
    if rows == pixels:
      return array.T
    if cols == pixels:
      return array
  raise DataFileError(
      f"{path}: variable {name!r} must be {stored} with {pixels} pixels per "
      f"case, got shape {array.shape}")


def _nonempty(array: np.ndarray, path: str, name: str) -> np.ndarray:
  if array.shape[0] == 0:
    raise DataFileError(f"{path}: variable {name!r} holds no cases (shape "
                        f"{array.shape}); download the file again")
  return array


def _unit_interval(array: np.ndarray, path: str, name: str) -> np.ndarray:
  """Pixels in [0, 1]: uint8 0..255 divided by 255, but uint8 holding only
  0 and 1 (binary pixels, as bool or logical MATLAB data) kept as they are."""
  if array.dtype == np.uint8:
    if array.size and array.max() <= 1:
      return array.astype(np.float32)
    return array.astype(np.float32) / np.float32(255.0)
  array = array.astype(np.float32)
  if not np.all(np.isfinite(array)):
    raise DataFileError(f"{path}: variable {name!r} holds NaN or inf")
  lo, hi = float(array.min(initial=0.0)), float(array.max(initial=0.0))
  if lo < 0.0 or hi > 1.0:
    raise DataFileError(
        f"{path}: variable {name!r} must hold pixel intensities in [0, 1], "
        f"found values in [{lo:g}, {hi:g}]")
  return array


def load_curves(path: str | os.PathLike) -> AutoencoderData:
  """The CURVES data set (``digs3pts_1.mat``), ``[n, 784]`` in [0, 1].

  Reads ``bdata`` (training, 20,000 cases in the published file) and
  ``bdatatest`` (test, 10,000), stored cases by pixels (28 x 28 = 784). Both
  MATLAB v5 (scipy.io) and v7.3 (h5py) files are read.

  Args:
    path: the file, or a directory holding ``digs3pts_1.mat``.

  Returns:
    :class:`AutoencoderData` ``(train, test)``, float32.

  Raises:
    FileNotFoundError: the file is not there.
    DataFileError: unreadable file, missing variables, a wrong shape or
      values outside [0, 1].

  Example:
    >>> from jaxmomentum.problems import load_curves
    >>> data = load_curves("~/data/digs3pts_1.mat")  # doctest: +SKIP

  Reference:
    Hinton & Salakhutdinov (2006); Martens (2010), Section 6.
  """
  path = _locate(path, "digs3pts_1.mat", "CURVES", CURVES_HELP)
  v = read_mat(path, ("bdata", "bdatatest"))
  arrays = [
      _unit_interval(_nonempty(
          _cases_by_pixels(v[n], 784, path, n, "[cases, 784]"), path, n),
                     path, n)
      for n in ("bdata", "bdatatest")]
  return AutoencoderData(*arrays)


def load_faces(path: str | os.PathLike, *, num_train: int = 103_500,
               num_test: int = 41_400) -> AutoencoderData:
  """The FACES data set (``newfaces_rot_single.mat``), ``[n, 625]``.

  Reads ``newfaces_single``, stored pixels by cases (25 x 25 = 625 rows,
  165,600 columns in the published file). Training cases are the first
  ``num_train`` columns and test cases the last ``num_test`` (Martens' HF
  code; the columns between are unused). Values are returned as stored (a
  linear-output problem; only finiteness is checked).

  Args:
    path: the file, or a directory holding ``newfaces_rot_single.mat``.
    num_train: training cases, >= 1 (103,500).
    num_test: test cases, >= 0 (41,400); ``num_train + num_test`` must not
      exceed the cases in the file.

  Returns:
    :class:`AutoencoderData` ``(train, test)``, float32.

  Raises:
    FileNotFoundError: the file is not there.
    DataFileError: unreadable file, missing variable, a wrong shape, too few
      cases or non-finite values.

  Example:
    >>> from jaxmomentum.problems import load_faces
    >>> data = load_faces("~/data")  # doctest: +SKIP
    >>> data.train.shape  # doctest: +SKIP
    (103500, 625)

  Reference:
    Hinton & Salakhutdinov (2006); Martens (2010), Section 6.
  """
  num_train = check_int("num_train", num_train, 1)
  num_test = check_int("num_test", num_test, 0)
  path = _locate(path, "newfaces_rot_single.mat", "FACES", FACES_HELP)
  name = "newfaces_single"
  faces = _cases_by_pixels(read_mat(path, (name,))[name], 625, path, name,
                           "[625, cases]")
  total = faces.shape[0]
  if num_train + num_test > total:
    raise DataFileError(
        f"{path}: variable {name!r} holds {total} cases, fewer than "
        f"num_train + num_test = {num_train} + {num_test}")
  faces = faces.astype(np.float32)
  if not np.all(np.isfinite(faces)):
    raise DataFileError(f"{path}: variable {name!r} holds NaN or inf")
  return AutoencoderData(faces[:num_train], faces[total - num_test:])
