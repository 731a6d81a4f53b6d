"""The training cases of Table 1's rows: the files a user supplies, or the
labelled stand-in.

MNIST, CURVES and FACES from the files a user supplies (``--data-dir``); a
missing file makes the row :class:`DataUnavailable` with a message saying
where it was looked for and how to get it. The synthetic curves stand-in is
used for the CURVES row only when asked for, and then labelled as such.
Fashion-MNIST is a real-data row of ours (on the MNIST architecture).
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Callable, Optional

import jax
import numpy as np

from jaxmomentum import problems as problems_lib
from jaxmomentum.reproduce import _writers
from jaxmomentum.reproduce import paper
from jaxmomentum.reproduce._protocols import AutoencoderProtocol


# Fashion-MNIST (a real-data row of ours) runs the MNIST architecture.
ARCHITECTURES = {**paper.TABLE1_ARCHITECTURES,
                 "fashion": paper.TABLE1_ARCHITECTURES["mnist"]}
_LOADERS = {"curves": problems_lib.load_curves,
            "mnist": problems_lib.load_mnist,
            "faces": problems_lib.load_faces,
            "fashion": problems_lib.load_fashion_mnist}
_LABELS = {"fashion": "Fashion-MNIST"}
STANDIN_LABEL = "synthetic curves stand-in (not CURVES)"


class DataUnavailable(Exception):
  """A row's data set cannot be had: the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class Dataset:
  """The training cases of one row and what they are."""

  problem: str
  train: np.ndarray
  label: str

  @property
  def is_standin(self) -> bool:
    return self.label == STANDIN_LABEL


@functools.lru_cache(maxsize=2)
def _standin(num_images: int) -> np.ndarray:
  """The stand-in images, made once per process (Tables 1-3 share them)."""
  images = problems_lib.synthetic_curves_standin(jax.random.key(20130617),
                                                 num_images)
  images = np.asarray(images)
  images.setflags(write=False)
  return images


def load_dataset(problem: str, data_dir: Optional[str], *,
                 synthetic_curves: bool, protocol: AutoencoderProtocol
                 ) -> Dataset:
  """The training cases of a Table 1 row, or :class:`DataUnavailable`."""
  if problem == "curves" and synthetic_curves:
    return Dataset(problem, _standin(protocol.num_train_standin),
                   STANDIN_LABEL)
  if problem == "fashion":
    # --data-dir/fashion-mnist if it is there, else Debian's package path.
    local = None if data_dir is None else Path(data_dir) / "fashion-mnist"
    data_dir = str(local) if local is not None and local.is_dir() else None
    try:
      data = problems_lib.load_fashion_mnist(data_dir)
    except FileNotFoundError as err:
      raise DataUnavailable(f"fashion: {err}") from err
    return Dataset(problem, np.asarray(data.train), _LABELS[problem])
  if data_dir is None:
    hint = (" (or --synthetic-curves for the labelled stand-in)"
            if problem == "curves" else "")
    raise DataUnavailable(
        f"{problem}: no --data-dir given; point it at the directory holding "
        f"the {problem.upper()} files{hint}")
  try:
    data = _LOADERS[problem](data_dir)
  except FileNotFoundError as err:
    raise DataUnavailable(str(err)) from err
  return Dataset(problem, np.asarray(data.train), problem.upper())


def load_datasets(protocol: AutoencoderProtocol, data_dir: Optional[str],
                  synthetic_curves: bool, problems, log: Callable[[str], None]
                  ) -> tuple[list[Dataset], list[str]]:
  """The rows' data sets that can be had, and a message per skipped row."""
  datasets, skipped = [], []
  for problem in problems:
    try:
      datasets.append(load_dataset(problem, data_dir,
                                   synthetic_curves=synthetic_curves,
                                   protocol=protocol))
    except DataUnavailable as err:
      _writers.print_skip(str(err), log)
      skipped.append(str(err))
  return datasets, skipped


def row_notes(skipped: list[str]) -> dict:
  """"no data" for the rows whose data set was missing."""
  return {s.split(":")[0].lower(): "no data" for s in skipped}
