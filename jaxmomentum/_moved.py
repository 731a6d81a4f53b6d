"""Names that moved: a module ``__getattr__`` that still finds them.

The paper's facts (Table 4's initialization, Table 5's rows, Table 1's
architectures) moved from the core modules to
:mod:`jaxmomentum.reproduce.paper`. Their old names keep working, with a
``DeprecationWarning`` that says where they live now; nothing is stored
twice.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Optional
import warnings

Moved = tuple[str, str, Optional[Callable[[Any], Any]]]


def forwarder(module: str, moved: dict[str, Moved]) -> Callable[[str], Any]:
  """The ``__getattr__`` of ``module`` for its moved names.

  Args:
    module: the module's ``__name__``.
    moved: old name -> ``(new module, new name, convert)``; the old name
      returns ``convert(value)`` (the value itself when ``convert`` is
      ``None``), so an old layout can be derived from the new home.
  """

  def __getattr__(name: str) -> Any:  # pylint: disable=invalid-name
    if name not in moved:
      raise AttributeError(f"module {module!r} has no attribute {name!r}")
    target, attribute, convert = moved[name]
    warnings.warn(f"{module}.{name} moved to {target}.{attribute}",
                  DeprecationWarning, stacklevel=2)
    value = getattr(importlib.import_module(target), attribute)
    return value if convert is None else convert(value)

  return __getattr__
