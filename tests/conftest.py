"""Shared test helpers."""

import chex
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


@pytest.fixture(autouse=True)
def _fresh_trace_counter():
  """``chex.assert_max_traces`` counts per definition site, which is the
  same in every case of a parametrized test: each test starts from zero."""
  chex.clear_trace_counter()
