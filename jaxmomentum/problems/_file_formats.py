"""The file formats the data sets come in: IDX (MNIST) and MATLAB ``.mat``.

Readers that either return the stored arrays or raise an error naming the
file and what is wrong with it: ``FileNotFoundError`` for a missing file,
:class:`DataFileError` for one that cannot be read or is corrupt. Which
arrays a data set needs, and their shapes, is
:mod:`jaxmomentum.problems._autoencoder_data`'s business.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from typing import Sequence

import numpy as np

__all__ = ["DataFileError", "read_idx"]

_IDX_DTYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"),
               0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


class DataFileError(ValueError):
  """A data file exists but is corrupt, truncated or wrongly shaped."""


def check_readable(path: str, what: str) -> None:
  """``DataFileError`` if ``path`` exists but cannot be read (not "missing")."""
  folder = os.path.isdir(path)
  if os.path.exists(path) and not os.access(
      path, os.R_OK | (os.X_OK if folder else 0)):
    kind = "folder" if folder else "file"
    raise DataFileError(
        f"{what}: the {kind} {path} exists but cannot be read (permission "
        f"denied); fix its permissions (chmod u+r{'x' if folder else ''})")


def read_bytes(path: str, what: str) -> bytes:
  check_readable(path, what)
  try:
    with open(path, "rb") as f:
      return f.read()
  except OSError as err:
    raise DataFileError(f"{what}: cannot read {path} ({err.strerror or err})"
                        ) from err


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
  check_readable(os.path.dirname(path) or ".", "IDX file")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"IDX file {path} does not exist")
  raw = read_bytes(path, "IDX file")
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



# ---------------------------------------------------------------- .mat files


def read_mat(path: str, names: Sequence[str]) -> dict[str, np.ndarray]:
  """The named variables of a .mat file, in MATLAB's orientation."""
  try:
    import scipy.io  # pylint: disable=g-import-not-at-top
  except ImportError as err:
    raise ImportError(
        "reading .mat files needs scipy (and h5py for v7.3 files): "
        "pip install 'jaxmomentum[data]'") from err
  head = read_bytes(path, "MATLAB file")[:8]
  hdf5 = False
  try:
    import h5py  # pylint: disable=g-import-not-at-top
    hdf5 = h5py.is_hdf5(path)
  except ImportError:
    h5py = None
  if hdf5 or head[:4] == b"\x89HDF":
    return read_mat_hdf5(path, names, h5py)
  try:
    contents = scipy.io.loadmat(path, variable_names=list(names))
  except NotImplementedError:  # MATLAB v7.3 without an HDF5 signature match
    return read_mat_hdf5(path, names, h5py)
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


def read_mat_hdf5(path: str, names: Sequence[str], h5py) -> dict:
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
