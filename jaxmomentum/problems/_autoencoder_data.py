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

import functools
import gzip
import math
import os
import zlib
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxmomentum._validation import check_int, check_scalar

__all__ = [
    "AutoencoderData",
    "DataFileError",
    "read_idx",
    "load_mnist",
    "load_curves",
    "load_faces",
    "synthetic_curves_standin",
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
_IDX_DTYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"),
               0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


class DataFileError(ValueError):
  """A data file exists but is corrupt, truncated or wrongly shaped."""


def _check_readable(path: str, what: str) -> None:
  """``DataFileError`` if ``path`` exists but cannot be read (not "missing")."""
  folder = os.path.isdir(path)
  if os.path.exists(path) and not os.access(
      path, os.R_OK | (os.X_OK if folder else 0)):
    kind = "folder" if folder else "file"
    raise DataFileError(
        f"{what}: the {kind} {path} exists but cannot be read (permission "
        f"denied); fix its permissions (chmod u+r{'x' if folder else ''})")


def _read_bytes(path: str, what: str) -> bytes:
  _check_readable(path, what)
  try:
    with open(path, "rb") as f:
      return f.read()
  except OSError as err:
    raise DataFileError(f"{what}: cannot read {path} ({err.strerror or err})"
                        ) from err


class AutoencoderData(NamedTuple):
  """Training and test cases, float32 ``[cases, pixels]``."""
  train: np.ndarray
  test: np.ndarray


# ----------------------------------------------------------------------- IDX


def read_idx(path: str | os.PathLike) -> np.ndarray:
  """Reads an IDX file (LeCun's MNIST format), gzip-compressed or raw.

  The header is two zero bytes, a type code (0x08 unsigned byte, 0x09 signed
  byte, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), the number of
  dimensions, then each dimension as a big-endian uint32; the data follow
  in C order. Compression is detected from the gzip magic bytes, not the
  file name.

  Args:
    path: the file.

  Returns:
    The array in its stored dtype (native byte order) and shape.

  Raises:
    FileNotFoundError: no such file.
    DataFileError: bad gzip stream, bad header or a size that does not match
      the header.

  Example:
    >>> import numpy as np, tempfile, os
    >>> from jaxmomentum.problems import read_idx
    >>> path = os.path.join(tempfile.mkdtemp(), "x-idx1-ubyte")
    >>> with open(path, "wb") as f:
    ...   _ = f.write(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]))
    >>> read_idx(path).tolist()
    [7, 8, 9]
  """
  path = os.fspath(path)
  _check_readable(os.path.dirname(path) or ".", "IDX file")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"IDX file {path} does not exist")
  raw = _read_bytes(path, "IDX file")
  if raw[:2] == b"\x1f\x8b":
    try:
      raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
      raise DataFileError(
          f"{path}: corrupt gzip stream ({err}); download it again") from err
  if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
    raise DataFileError(
        f"{path}: not an IDX file (the header must start with two zero "
        f"bytes; got {raw[:4]!r})")
  code, ndim = raw[2], raw[3]
  if code not in _IDX_DTYPES:
    raise DataFileError(f"{path}: unknown IDX data type code {code:#04x}")
  header = 4 + 4 * ndim
  if ndim == 0 or len(raw) < header:
    raise DataFileError(
        f"{path}: IDX header declares {ndim} dimensions but the file has "
        f"only {len(raw)} bytes")
  shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
  dtype = _IDX_DTYPES[code]
  expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
  if len(raw) - header != expected:
    raise DataFileError(
        f"{path}: IDX header says shape {shape} ({expected} data bytes) but "
        f"the file holds {len(raw) - header} data bytes (truncated or "
        "corrupt; download it again)")
  data = np.frombuffer(raw, dtype, offset=header).reshape(shape)
  return data.astype(dtype.newbyteorder("="))


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
  _check_readable(path, "MNIST")
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


# ---------------------------------------------------------------- .mat files


def _locate(path: str | os.PathLike, filename: str, dataset: str,
            help_text: str) -> str:
  path = os.path.expanduser(os.fspath(path))
  _check_readable(path, dataset)
  if os.path.isfile(path):
    return path
  candidate = os.path.join(path, filename) if os.path.isdir(path) else path
  _check_readable(candidate, dataset)
  if not os.path.isfile(candidate):
    raise FileNotFoundError(
        f"{dataset}: {filename} not found (looked for {candidate}). "
        f"{help_text}")
  return candidate


def _read_mat(path: str, names: Sequence[str]) -> dict[str, np.ndarray]:
  """The named variables of a .mat file, in MATLAB's orientation."""
  try:
    import scipy.io  # pylint: disable=g-import-not-at-top
  except ImportError as err:
    raise ImportError(
        "reading .mat files needs scipy (and h5py for v7.3 files): "
        "pip install 'jaxmomentum[data]'") from err
  head = _read_bytes(path, "MATLAB file")[:8]
  hdf5 = False
  try:
    import h5py  # pylint: disable=g-import-not-at-top
    hdf5 = h5py.is_hdf5(path)
  except ImportError:
    h5py = None
  if hdf5 or head[:4] == b"\x89HDF":
    return _read_mat_hdf5(path, names, h5py)
  try:
    contents = scipy.io.loadmat(path, variable_names=list(names))
  except NotImplementedError:  # MATLAB v7.3 without an HDF5 signature match
    return _read_mat_hdf5(path, names, h5py)
  except Exception as err:  # corrupt, truncated or not a .mat file
    raise DataFileError(
        f"{path}: not a readable MATLAB .mat file ({type(err).__name__}: "
        f"{err}); download it again") from err
  missing = [n for n in names if n not in contents]
  if missing:
    try:
      present = sorted(v[0] for v in scipy.io.whosmat(path))
    except Exception:  # pylint: disable=broad-except
      present = "unknown"
    raise DataFileError(
        f"{path}: missing variable(s) {missing}; the file holds {present}")
  return {n: contents[n] for n in names}


def _read_mat_hdf5(path: str, names: Sequence[str], h5py) -> dict:
  if h5py is None:
    raise ImportError(
        f"{path} is a MATLAB v7.3 (HDF5) file; reading it needs h5py: "
        "pip install 'jaxmomentum[data]'")
  try:
    with h5py.File(path, "r") as f:
      present = sorted(f.keys())
      missing = [n for n in names if n not in present]
      if missing:
        raise DataFileError(
            f"{path}: missing variable(s) {missing}; the file holds "
            f"{present}")
      out = {}
      for n in names:
        if not isinstance(f[n], h5py.Dataset):
          raise DataFileError(f"{path}: variable {n!r} is not a numeric array")
        # HDF5 stores MATLAB's column-major arrays with reversed axes.
        out[n] = np.asarray(f[n][()]).T
      return out
  except DataFileError:
    raise
  except Exception as err:
    raise DataFileError(
        f"{path}: not a readable MATLAB v7.3 (HDF5) file "
        f"({type(err).__name__}: {err}); download it again") from err


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
  v = _read_mat(path, ("bdata", "bdatatest"))
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
  faces = _cases_by_pixels(_read_mat(path, (name,))[name], 625, path, name,
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


# ------------------------------------------------------ synthetic stand-in


@functools.partial(jax.jit, static_argnames=("num_images", "image_size",
                                             "num_points", "chunk"))
def _render_curves(key, num_images, image_size, num_points, width, margin,
                   chunk):
  anchors = jax.random.uniform(
      key, (num_images, 3, 2), jnp.float32, margin, image_size - 1 - margin)
  s = jnp.linspace(0.0, 1.0, num_points, dtype=jnp.float32)
  # Quadratic Lagrange basis through the anchors at s = 0, 1/2, 1.
  basis = jnp.stack([2 * (s - 0.5) * (s - 1), -4 * s * (s - 1),
                     2 * s * (s - 0.5)], axis=-1)            # [S, 3]
  pixel = jnp.arange(image_size, dtype=jnp.float32)
  grid = jnp.stack(jnp.meshgrid(pixel, pixel, indexing="ij"), -1)
  grid = grid.reshape(-1, 2)                            # [P, 2] (row, col)

  def render(points):                                         # [3, 2]
    curve = basis @ points                                    # [S, 2]
    d2 = jnp.sum(jnp.square(grid[:, None, :] - curve[None]), -1)
    return jnp.exp(-jnp.min(d2, axis=1) / (2 * width * width))

  return jax.lax.map(render, anchors, batch_size=chunk)


def synthetic_curves_standin(key: jax.Array, num_images: int, *,
                             image_size: int = 28, num_points: int = 64,
                             width: float = 0.8, margin: float = 2.0
                             ) -> jax.Array:
  r"""A synthetic stand-in for CURVES: smooth curves through three points.

  Not the CURVES data set (whose generator is not public) and never to be
  reported as it. Each image draws three points uniformly in
  :math:`[m, S - 1 - m]^2` (pixel coordinates), passes the quadratic
  :math:`c(s) = \sum_k \ell_k(s) p_k` through them (Lagrange basis at
  :math:`s = 0, \tfrac12, 1`), samples it at ``num_points`` values of
  :math:`s \in [0, 1]` and renders the stroke

  .. math::

    x_{ij} = \exp\!\left(-\frac{\min_s \lVert (i, j) - c(s) \rVert^2}
    {2 w^2}\right) \in (0, 1].

  Vectorised JAX, jit-compiled, images rendered in chunks of 64 to bound
  memory.

  Args:
    key: a PRNG key.
    num_images: number of images, >= 1.
    image_size: side S >= 4 of the square image (28: 784 pixels).
    num_points: samples along each curve, >= 2.
    width: stroke width w > 0 in pixels.
    margin: m >= 0, distance of the anchor points from the border
      (2 m < S - 1).

  Returns:
    ``[num_images, image_size ** 2]`` float32 in [0, 1], rows in row-major
    pixel order (like MNIST).

  Example:
    >>> import jax
    >>> from jaxmomentum.problems import synthetic_curves_standin
    >>> x = synthetic_curves_standin(jax.random.key(0), 16)
    >>> x.shape, bool(x.min() >= 0), bool(x.max() <= 1)
    ((16, 784), True, True)
  """
  num_images = check_int("num_images", num_images, 1)
  image_size = check_int("image_size", image_size, 4)
  num_points = check_int("num_points", num_points, 2)
  check_scalar("width", width, 0.0, low_open=True)
  check_scalar("margin", margin, 0.0, (image_size - 1) / 2, high_open=True)
  return _render_curves(key, num_images, image_size, num_points,
                        float(width), float(margin), min(num_images, 64))
