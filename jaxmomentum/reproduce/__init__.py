"""The paper's tables and figures, regenerated with jaxmomentum.

Only this package puts the paper's pieces together (optimizers, schedules,
initializers, models, problems and the training engine).
:mod:`jaxmomentum.reproduce.paper` holds the paper's facts, each once
(Table 4's initialization, Table 5's rows, Table 1's architectures, every
reported number); the command line is :mod:`jaxmomentum.reproduce.cli`
(console script ``jaxmomentum``).
"""

from jaxmomentum.reproduce import paper
from jaxmomentum.reproduce import _quadratic as quadratic

__all__ = ["paper", "quadratic"]
