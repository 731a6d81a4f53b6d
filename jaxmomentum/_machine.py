"""The machine line every benchmark and results file prints beside its figures.

Speed figures only mean something with the machine that produced them: a
kernel tuned for AVX-512's 32 vector registers ran 8x slower than XLA on an
AVX2 machine (issue 13). :func:`machine_line` reads the CPU model and its
vector extensions from ``/proc/cpuinfo`` (x86-64 ``flags``, ARM
``Features``) and the jax/jaxlib versions, e.g.::

  machine: Intel(R) Xeon(R) Processor; x86_64, 2 cores; vector: avx2 fma
  avx512f avx512bw avx512vl avx512_vnni avx512_bf16 (AVX-512: yes); jax 0.10.2,
  jaxlib 0.10.2; load average 1.05

Used by ``benchmarks/*.py`` and the ``reproduce all`` summary. jax is
imported only inside :func:`machine_line`, so a benchmark can set process
flags (host device count) first.
"""

from __future__ import annotations

import os
import platform

# The extensions that decide what a vectorised kernel can use, in order.
_X86 = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl",
        "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")
_ARM = ("asimd", "asimdhp", "sve", "sve2", "sme", "bf16", "i8mm")


def cpu_info(path: str = "/proc/cpuinfo") -> dict[str, str]:
  """The CPU model and the vector extensions that matter for kernels.

  Args:
    path: a ``/proc/cpuinfo``-format file.

  Returns:
    ``{"model": str, "vector": space-separated extensions, "avx512":
    "yes" | "no" | "n/a" (not x86)}``; the model falls back to
    ``platform.processor()`` where the file is missing.

  Example:
    >>> from jaxmomentum._machine import cpu_info
    >>> sorted(cpu_info())
    ['avx512', 'model', 'vector']
  """
  model, flags = "", set()
  try:
    with open(path, encoding="utf-8") as f:
      for line in f:
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Processor", "cpu model") and not model:
          model = value.strip()
        elif key in ("flags", "Features") and not flags:
          flags = set(value.split())
  except OSError:
    pass
  if not model:
    model = platform.processor() or platform.machine() or "unknown CPU"
  if flags & {"avx", "sse4_2"}:
    vector = [f for f in _X86 if f in flags]
    avx512 = "yes" if "avx512f" in flags else "no"
  else:
    vector = [f for f in _ARM if f in flags]
    avx512 = "n/a"
  return {"model": model, "vector": " ".join(vector) or "unknown",
          "avx512": avx512}


def machine_line() -> str:
  """One line: CPU model, vector extensions, cores, jax version, load.

  Example:
    >>> from jaxmomentum._machine import machine_line
    >>> machine_line().startswith("machine: ")
    True
  """
  import jax  # pylint: disable=import-outside-toplevel
  import jaxlib  # pylint: disable=import-outside-toplevel
  info = cpu_info()
  return (f"machine: {info['model']}; {platform.machine()}, "
          f"{os.cpu_count()} cores; vector: {info['vector']} "
          f"(AVX-512: {info['avx512']}); jax {jax.__version__}, jaxlib "
          f"{jaxlib.__version__}; load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
  print(machine_line())
