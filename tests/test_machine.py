"""The machine line benchmarks and results files carry (issue 13)."""

from jaxmomentum import _machine

EPYC = """processor\t: 0
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse4_2 avx avx2 fma bmi2
"""
XEON = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512bw avx512vl
"""
GRAVITON = """processor\t: 0
Features\t: fp asimd evtstrm aes sve sve2 i8mm bf16
CPU implementer\t: 0x41
"""


def test_vector_extensions_from_cpuinfo(tmp_path):
  cases = {"epyc": (EPYC, "AMD EPYC 7B13", "no", "sse4_2 avx avx2 fma"),
           "xeon": (XEON, "Intel(R) Xeon(R) Platinum 8481C CPU", "yes",
                    "sse4_2 avx avx2 fma avx512f avx512bw avx512vl"),
           "arm": (GRAVITON, None, "n/a", "asimd sve sve2 bf16 i8mm")}
  for name, (text, model, avx512, vector) in cases.items():
    path = tmp_path / name
    path.write_text(text)
    info = _machine.cpu_info(str(path))
    assert info["avx512"] == avx512, name
    assert info["vector"] == vector, name
    if model is not None:
      assert info["model"] == model
    assert info["model"]  # ARM: platform fallback, never empty


def test_machine_line_names_cpu_vector_and_jax():
  import jax  # pylint: disable=import-outside-toplevel
  line = _machine.machine_line()
  assert f"jax {jax.__version__}" in line
  assert "vector: " in line and "AVX-512: " in line
  assert _machine.cpu_info()["model"] in line
