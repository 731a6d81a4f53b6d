"""A progress bar over updates: tqdm when installed, else a plain log line."""

from __future__ import annotations

import sys
import time


class Progress:
  """Progress of a grid run, in updates per run.

  Shows updates/s (per run), run-updates/s (all runs together), the ETA and
  the number of diverged runs. Uses ``tqdm`` if it can be imported; otherwise
  prints one line to stderr at most every ``log_every_s`` seconds (and at the
  end). ``enabled=False`` shows nothing.
  """

  def __init__(self, total: int, initial: int, num_runs: int, enabled: bool,
               desc: str = "training", log_every_s: float = 10.0):
    self.total = total
    self.done = initial
    self.num_runs = num_runs
    self.enabled = enabled
    self.log_every_s = log_every_s
    self._bar = None
    self._start = time.perf_counter()
    self._start_done = initial
    self._last_log = -float("inf")
    if not enabled:
      return
    try:
      from tqdm.auto import tqdm  # pylint: disable=g-import-not-at-top
    except ImportError:
      return
    self._bar = tqdm(total=total, initial=initial, desc=desc, unit="update",
                     dynamic_ncols=True, smoothing=0.1)

  def restart_clock(self) -> None:
    """Measures rates from now on (call after the first, compiling, chunk).

    tqdm's own rate and ETA are smoothed, so the compile time fades from them.
    """
    self._start = time.perf_counter()
    self._start_done = self.done

  def update(self, updates: int, num_diverged: int) -> None:
    self.done += updates
    if not self.enabled:
      return
    elapsed = max(time.perf_counter() - self._start, 1e-9)
    rate = (self.done - self._start_done) / elapsed
    if self._bar is not None:
      self._bar.set_postfix(run_updates_per_s=f"{rate * self.num_runs:.4g}",
                            runs=self.num_runs, diverged=num_diverged,
                            refresh=False)
      self._bar.update(updates)
      return
    now = time.perf_counter()
    if now - self._last_log < self.log_every_s and self.done < self.total:
      return
    self._last_log = now
    eta = (self.total - self.done) / rate if rate > 0 else float("inf")
    print(f"{self.done}/{self.total} updates, {rate:.4g} updates/s, "
          f"{rate * self.num_runs:.4g} run-updates/s over {self.num_runs} runs, "
          f"{num_diverged} diverged, ETA {eta:.0f} s", file=sys.stderr,
          flush=True)

  def close(self) -> None:
    if self._bar is not None:
      self._bar.close()
