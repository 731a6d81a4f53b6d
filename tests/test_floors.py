"""tools/floor_constraints.py pins every floor of pyproject.toml (make floors)."""

import importlib.util
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location(
    "floor_constraints", ROOT / "tools" / "floor_constraints.py")
floor_constraints = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(floor_constraints)


def test_every_dependency_has_a_floor_and_is_pinned_to_it():
  text = (ROOT / "pyproject.toml").read_text()
  block = re.search(r"^dependencies = \[(.*?)^\]", text, re.S | re.M).group(1)
  required = re.findall(r'^\s*"([^"]+)"', block, re.M)
  assert required
  pins = floor_constraints.floors(text)
  for requirement in required:
    name, floor = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9][^,]*)",
                               requirement).groups()
    assert pins[name.lower()] == floor
  assert "setuptools" not in pins  # [build-system] is not a dependency


def test_two_floors_for_one_package_is_an_error():
  text = ('[project]\ndependencies = ["jax>=0.6.1"]\n'
          '[project.optional-dependencies]\nx = ["JAX>=0.7"]\n')
  with pytest.raises(SystemExit, match="jax has two floors"):
    floor_constraints.floors(text)
