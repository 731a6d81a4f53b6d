"""A tqdm progress bar over updates, with the grid's throughput."""

from __future__ import annotations

import time

from tqdm.auto import tqdm


class Progress:
  """Progress of a grid run, in updates per run.

  A ``tqdm`` bar showing updates/s (per run, tqdm's own rate and ETA),
  run-updates/s (all runs together, measured from :meth:`restart_clock`)
  and the number of diverged runs. ``enabled=False`` shows nothing.
  """

  def __init__(self, total: int, initial: int, num_runs: int, enabled: bool,
               desc: str = "training"):
    self.num_runs = num_runs
    self.done = initial
    self._start = time.perf_counter()
    self._start_done = initial
    self._bar = tqdm(total=total, initial=initial, desc=desc, unit="update",
                     dynamic_ncols=True, smoothing=0.1, disable=not enabled)

  def restart_clock(self) -> None:
    """Measures rates from now on (call after the first, compiling, chunk).

    tqdm's own rate and ETA are smoothed, so the compile time fades from them.
    """
    self._start = time.perf_counter()
    self._start_done = self.done

  def update(self, updates: int, num_diverged: int) -> None:
    self.done += updates
    elapsed = max(time.perf_counter() - self._start, 1e-9)
    rate = (self.done - self._start_done) / elapsed
    self._bar.set_postfix(run_updates_per_s=f"{rate * self.num_runs:.4g}",
                          runs=self.num_runs, diverged=num_diverged,
                          refresh=False)
    self._bar.update(updates)

  def close(self) -> None:
    self._bar.close()
