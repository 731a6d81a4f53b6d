"""Compiling, caching and registering the package's C++ XLA FFI kernels.

One small kernel library backs an opt-in CPU fast path:
``_csrc/fused_update.cc`` (:class:`jaxmomentum.FusedUpdate`). It is compiled
with the machine's C++ compiler (``-march=native``) the first time it is
needed (a few seconds), cached in
``$JAXMOMENTUM_CACHE_DIR`` (default ``~/.cache/jaxmomentum``) under a key of
its source, its flags, the jax version and the CPU, and registered as XLA
FFI targets for the CPU. Where a library cannot be built its callers fall
back to plain JAX, which agrees with the kernels to float rounding, and a
warning says so once per process. ``JAXMOMENTUM_DISABLE_FUSED=1`` turns every
kernel off.
"""

from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import os
import pathlib
import platform
import subprocess
import tempfile
import threading
from typing import Any, Optional
import warnings

import jax

_CSRC = pathlib.Path(__file__).parent / "_csrc"
_COMMON_FLAGS = ("-O3", "-march=native", "-fno-math-errno", "-std=c++17",
                 "-shared", "-fPIC", "-pthread", "-w")


@dataclasses.dataclass(frozen=True)
class Library:
  """One kernel source file and the FFI handler symbols it exports.

  Attributes:
    name: the source's stem in ``_csrc/`` and the cached library's prefix.
    symbols: exported handler symbols; each is registered as the CPU FFI
      target ``"jaxmomentum_" + symbol``.
    flags: compiler flags besides the common ones (``-ffp-contract=...``
      decides whether ``a * b + c`` may become one fused multiply-add).
    purpose: what falls back when it is missing, for the warning.
  """
  name: str
  symbols: tuple[str, ...]
  flags: tuple[str, ...]
  purpose: str

  @property
  def source(self) -> pathlib.Path:
    return _CSRC / f"{self.name}.cc"


_lock = threading.Lock()
_state: dict[str, dict[str, Any]] = {}  # library name -> {"ok": bool, "error": str}


def _cache_dir() -> pathlib.Path:
  root = os.environ.get("JAXMOMENTUM_CACHE_DIR") or os.path.join(
      os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
      "jaxmomentum")
  return pathlib.Path(root)


def _cpu_signature() -> str:
  """What ``-march=native`` depends on: the CPU's feature flags."""
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        if line.startswith(("flags", "Features")):
          return line
  except OSError:
    pass
  return platform.processor() or platform.machine()


def _command(library: Library, out: pathlib.Path) -> list[str]:
  cxx = os.environ.get("CXX", "c++")
  return [cxx, *_COMMON_FLAGS, *library.flags, f"-I{jax.ffi.include_dir()}",
          str(library.source), "-o", str(out)]


def _build(library: Library, target: pathlib.Path) -> None:
  with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
    out = pathlib.Path(tmp) / target.name
    cmd = _command(library, out)
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
      raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stderr[-2000:]}")
    os.replace(out, target)  # atomic: concurrent builders never see half a file


def load(library: Library) -> bool:
  """Whether ``library``'s kernels are compiled and registered (builds once).

  Thread-safe; the outcome is remembered for the process. On failure it
  warns once and returns False; :func:`error` says why.
  """
  with _lock:
    state = _state.setdefault(library.name, {})
    if "ok" in state:
      return state["ok"]
    if os.environ.get("JAXMOMENTUM_DISABLE_FUSED", "") not in ("", "0"):
      state.update(ok=False, error="JAXMOMENTUM_DISABLE_FUSED is set")
      return False
    try:
      key = hashlib.sha256(
          library.source.read_bytes() + " ".join(library.flags).encode() +
          jax.__version__.encode() + jax.ffi.include_dir().encode() +
          _cpu_signature().encode()).hexdigest()[:16]
      directory = _cache_dir()
      directory.mkdir(parents=True, exist_ok=True)
      path = directory / f"{library.name}-{key}.so"
      if not path.exists():
        _build(library, path)
      lib = ctypes.cdll.LoadLibrary(str(path))
      for symbol in library.symbols:
        jax.ffi.register_ffi_target(
            f"jaxmomentum_{symbol}", jax.ffi.pycapsule(getattr(lib, symbol)),
            platform="cpu")
      state["ok"] = True
    except Exception as e:  # pylint: disable=broad-except
      state.update(ok=False, error=f"{type(e).__name__}: {e}")
      warnings.warn(
          f"jaxmomentum: the {library.name} CPU kernels are not available "
          f"({state['error']}); {library.purpose} falls back to plain JAX "
          "(same numbers up to float rounding, slower).", RuntimeWarning,
          stacklevel=4)
    return state["ok"]


def error(library: Library) -> Optional[str]:
  """Why ``library`` is unavailable (``None`` if it loaded or is untried)."""
  return _state.get(library.name, {}).get("error")


def target(symbol: str) -> str:
  """The FFI target name registered for ``symbol``."""
  return f"jaxmomentum_{symbol}"
