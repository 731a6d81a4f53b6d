"""Shared test helpers."""

import jax
import numpy as np
import pytest


@pytest.fixture
def getkey():
  """Returns a function producing fresh PRNG keys, deterministic per test."""
  key = jax.random.key(0)

  def _getkey():
    nonlocal key
    key, sub = jax.random.split(key)
    return sub

  return _getkey
