"""jaxmomentum: Sutskever-form momentum, initializers and experiments for JAX.

Sutskever, Martens, Dahl & Hinton (ICML 2013), *On the importance of
initialization and momentum in deep learning*, as optax transforms, Flax
initializers and jit-compiled experiments.
"""

from jaxmomentum import curvature as curvature
from jaxmomentum import problems as problems
from jaxmomentum import schedules as schedules
from jaxmomentum._adaptive import scale_by_adam as scale_by_adam
from jaxmomentum._adaptive import scale_by_rms as scale_by_rms
from jaxmomentum._adaptive import ScaleByRmsState as ScaleByRmsState
from jaxmomentum._alias import adam as adam
from jaxmomentum._alias import cm as cm
from jaxmomentum._alias import nag as nag
from jaxmomentum._alias import nag_or_cm as nag_or_cm
from jaxmomentum._alias import rmsprop as rmsprop
from jaxmomentum._fused import FusedUpdate as FusedUpdate
from jaxmomentum._fused import update_and_apply as update_and_apply
from jaxmomentum._hessian_free import hessian_free as hessian_free
from jaxmomentum._hessian_free import HessianFreeInfo as HessianFreeInfo
from jaxmomentum._hessian_free import HessianFreeState as HessianFreeState
from jaxmomentum._momentum import ClassicalMomentumState as ClassicalMomentumState
from jaxmomentum._momentum import classical_momentum as classical_momentum
from jaxmomentum._momentum import nag_eval_params as nag_eval_params
from jaxmomentum._momentum import NesterovMomentumState as NesterovMomentumState
from jaxmomentum._momentum import nesterov_momentum as nesterov_momentum
from jaxmomentum._momentum import switched_momentum as switched_momentum

__version__ = "0.1.0"

__all__ = [
    "ClassicalMomentumState",
    "FusedUpdate",
    "HessianFreeInfo",
    "HessianFreeState",
    "NesterovMomentumState",
    "ScaleByRmsState",
    "adam",
    "classical_momentum",
    "cm",
    "curvature",
    "hessian_free",
    "nag",
    "nag_eval_params",
    "nag_or_cm",
    "nesterov_momentum",
    "problems",
    "rmsprop",
    "scale_by_adam",
    "scale_by_rms",
    "switched_momentum",
    "schedules",
    "update_and_apply",
]
