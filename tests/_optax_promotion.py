"""Markers for test cases whose reference path runs optax code that strict
dtype promotion rejects (optax 0.2.8): those cases run under JAX's standard
promotion, with the reason on the marker (see the root conftest.py)."""

import pytest


def _standard(reason):
  return pytest.mark.standard_promotion(reason=reason)


ADAM = _standard("optax.scale_by_adam's bias correction raises a Python "
                 "float to its int32 step count")
RMS = _standard("optax.scale_by_rms/scale_by_stddev's bias correction "
                "raises a Python float to their int32 step count")
MULTISTEPS = _standard("optax.MultiSteps divides a float gradient by its "
                       "int32 step count")
MU_DTYPE = _standard("optax.tree.update_moment mixes a float32 gradient with "
                     "a bfloat16 first moment (mu_dtype)")


def marked(names, marks):
  """``names`` as pytest parameters, each with its marker from ``marks``."""
  return [pytest.param(n, marks=marks[n]) if n in marks else n for n in names]
