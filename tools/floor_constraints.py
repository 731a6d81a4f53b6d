"""Pins every ``name>=floor`` requirement of pyproject.toml to its floor.

    python tools/floor_constraints.py [pyproject.toml] > constraints.txt

prints one ``name==floor`` line per package named in ``dependencies`` or
``optional-dependencies`` (sorted, once each; a package with two floors is an
error), for ``pip install -c constraints.txt``: ``make floors`` installs the
package with exactly these versions and runs a smoke subset of the tests.
Standard library only (Python 3.10 has no tomllib): the requirement strings
are read with a regular expression.
"""

import pathlib
import re
import sys

_REQUIREMENT = re.compile(
    r'"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*>=\s*'
    r'([0-9][0-9A-Za-z.+!-]*)\s*(?:,[^"]*)?"')


_TABLES = ("[project]", "[project.optional-dependencies]")


def floors(text: str) -> dict[str, str]:
  """``{package: floor}`` of the ``>=`` requirements in the ``[project]``
  and ``[project.optional-dependencies]`` tables of ``text``."""
  tables = re.split(r"^(?=\[)", text, flags=re.M)
  text = "".join(t for t in tables if t.split("\n", 1)[0].strip() in _TABLES)
  found: dict[str, str] = {}
  for name, version in _REQUIREMENT.findall(text):
    name = re.sub(r"[-_.]+", "-", name).lower()
    if found.setdefault(name, version) != version:
      raise SystemExit(f"{name} has two floors: {found[name]} and {version}")
  return found


def main(argv: list[str]) -> None:
  path = pathlib.Path(argv[1] if len(argv) > 1 else "pyproject.toml")
  for name, version in sorted(floors(path.read_text()).items()):
    print(f"{name}=={version}")


if __name__ == "__main__":
  main(sys.argv)
