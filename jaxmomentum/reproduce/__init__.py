"""The paper's tables and figures, regenerated with jaxmomentum.

Only this package puts the paper's pieces together (optimizers, schedules,
initializers, models, problems and the training engine); the command line is
:mod:`jaxmomentum.reproduce.cli` (console script ``jaxmomentum``).
"""

from jaxmomentum.reproduce import _quadratic as quadratic

__all__ = ["quadratic"]
