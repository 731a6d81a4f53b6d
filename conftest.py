"""Suite-wide test policy, for tests/ and the package's docstring examples.

It sits at the repository root so that it covers both halves of what
``pytest`` collects (``testpaths`` in pyproject.toml): the tests in
``tests/`` and, through ``--doctest-modules``, every example in the
``jaxmomentum`` docstrings. Test helpers live in ``tests/conftest.py``.
"""

import importlib
import os
import pathlib
import tempfile

import jax
import pytest

_PACKAGE = pathlib.Path(__file__).resolve().parent / "jaxmomentum"
# Import names of the optional extras in pyproject.toml (plot, progress,
# checkpoint, data). A package module that needs one at import time is left
# out of the doctest run only where that dependency is absent.
_OPTIONAL_IMPORTS = ("matplotlib", "tqdm", "orbax", "scipy", "h5py")


_OURS = "JAXMOMENTUM_TESTS_XLA_CACHE"  # the folder this conftest chose


def pytest_configure(config):
  """A persistent XLA compilation cache for this test process.

  Tests build the same programs again from new closures, and the tests'
  fresh subprocesses (which inherit the environment variable) compile what
  their parent did. It changes no result (the cache is keyed by the program,
  the compile options, the devices and the jax/jaxlib versions). One folder
  per pytest-xdist worker: JAX writes an entry without a lock, so two
  workers must not read and write the same one at once. An explicit
  ``JAX_COMPILATION_CACHE_DIR`` wins.
  """
  path = os.environ.get("JAX_COMPILATION_CACHE_DIR")
  # The xdist controller's own setting reaches its workers' environment:
  # only a setting made outside pytest is the user's.
  if not path or os.environ.get(_OURS) == path:
    worker = getattr(config, "workerinput", {}).get("workerid", "main")
    path = os.path.join(tempfile.gettempdir(),
                        f"jaxmomentum-tests-xla-cache-{os.getuid()}", worker)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = os.environ[_OURS] = path
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
  jax.config.update("jax_compilation_cache_dir", path)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", float(
      os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]))


def pytest_ignore_collect(collection_path, config):
  del config
  path = pathlib.Path(collection_path)
  if path.suffix != ".py" or _PACKAGE not in path.parents:
    return None
  parts = path.relative_to(_PACKAGE.parent).with_suffix("").parts
  if parts[-1] == "__init__":
    parts = parts[:-1]
  try:
    importlib.import_module(".".join(parts))
  except ModuleNotFoundError as err:
    if (err.name or "").split(".")[0] in _OPTIONAL_IMPORTS:
      return True
  return None  # anything else is collected and fails there, visibly


@pytest.fixture(autouse=True)
def _strict_dtype_promotion(request, monkeypatch):
  """Every test and docstring example runs under strict dtype promotion.

  A mixed-dtype expression (say a float32 array times a bfloat16 one) raises
  instead of silently upcasting; Python scalars stay weakly typed. The
  environment variable carries the mode into subprocesses the test starts.
  A test that needs JAX's standard promotion says so, with a reason:
  ``@pytest.mark.standard_promotion(reason="...")``.
  """
  marker = request.node.get_closest_marker("standard_promotion")
  if marker is not None and not marker.kwargs.get("reason"):
    raise pytest.UsageError(
        f"{request.node.nodeid}: standard_promotion needs reason=\"...\"")
  mode = "standard" if marker is not None else "strict"
  monkeypatch.setenv("JAX_NUMPY_DTYPE_PROMOTION", mode)
  with jax.numpy_dtype_promotion(mode):
    yield
