"""Command line: ``jaxmomentum demo`` and ``jaxmomentum reproduce TARGET``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence


def _reproduce_quadratic(args) -> None:
  from jaxmomentum.reproduce import _quadratic  # pylint: disable=import-outside-toplevel
  start = time.perf_counter()
  table, paths = _quadratic.reproduce(Path(args.out))
  print(table)
  print(f"\nwrote ({time.perf_counter() - start:.1f} s):")
  for path in paths:
    print(f"  {path}")


TARGETS = {"quadratic": _reproduce_quadratic}


def _demo(args) -> None:
  print("== jaxmomentum demo: the paper's appendix experiment (CM vs NAG on "
        "an oblong quadratic)\n")
  _reproduce_quadratic(args)


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="jaxmomentum",
      description="Reproduce Sutskever et al. (2013) with jaxmomentum.")
  sub = parser.add_subparsers(dest="command", required=True)
  demo = sub.add_parser("demo", help="the main job on its built-in default")
  demo.add_argument("--out", default="demo_out",
                    help="directory for tables and figures (default demo_out)")
  demo.set_defaults(func=_demo)
  rep = sub.add_parser("reproduce", help="regenerate a table or figure")
  rep.add_argument("target", choices=sorted(TARGETS))
  rep.add_argument("--out", default="results",
                   help="directory for tables and figures (default results)")
  rep.set_defaults(func=lambda a: TARGETS[a.target](a))
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  args = build_parser().parse_args(argv)
  args.func(args)
  return 0


if __name__ == "__main__":
  sys.exit(main())
