"""One way to interrupt a grid for the resume tests: stop right after a save.

``with stopped_after_save(n): run(...)`` makes
``GridCheckpointer.save`` raise ``KeyboardInterrupt`` right after it has
written the checkpoint of chunk ``n``, and asserts that the block raised it;
the real ``save`` is back when the block ends.
"""

from __future__ import annotations

import contextlib

import pytest

from jaxmomentum.training import _checkpoint


@contextlib.contextmanager
def stopped_after_save(chunk: int):
  real_save = _checkpoint.GridCheckpointer.save

  def save_then_stop(self, chunks_done, tree):
    real_save(self, chunks_done, tree)
    if chunks_done == chunk:
      raise KeyboardInterrupt

  patch = pytest.MonkeyPatch()
  patch.setattr(_checkpoint.GridCheckpointer, "save", save_then_stop)
  try:
    with pytest.raises(KeyboardInterrupt):
      yield
  finally:
    patch.undo()
