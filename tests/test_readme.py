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
