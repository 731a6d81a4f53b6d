"""The README's example runs and does what it says."""

import pathlib
import re

import jax.numpy as jnp
import numpy as np

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def test_readme_example_runs_and_fits():
  blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
  assert blocks, "README has no python example"
  namespace = {}
  exec(compile(blocks[0], "README.md", "exec"), namespace)  # pylint: disable=exec-used
  theta = namespace["theta"]
  np.testing.assert_allclose(theta["w"], jnp.ones((3, 1)), atol=1e-2)
  np.testing.assert_allclose(theta["b"], 0.0, atol=1e-2)


def test_module_map_lists_exactly_the_package_files():
  text = README.read_text()
  section = text.split("## Module map", 1)[1].split("\n## ", 1)[0]
  listed = re.findall(r"^\| `(jaxmomentum/[^`]+)` \|", section, re.M)
  root = README.parent
  files = sorted(str(p.relative_to(root)) for pattern in ("*.py", "*.cc")
                 for p in (root / "jaxmomentum").rglob(pattern))
  assert len(listed) == len(set(listed))
  assert sorted(listed) == files
