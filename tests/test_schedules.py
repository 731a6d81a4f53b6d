"""Momentum schedules: closed-form values, stage boundaries, composition."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxmomentum import schedules

# (schedule builder, step, expected value from the paper's formula by hand)
_CASES = [
    # Eq. 5 with μ_max = 0.999, stage length 250: 1 - 1 / (2 (k + 1)).
    (lambda: schedules.sutskever_schedule(0.999), 0, 0.5),
    (lambda: schedules.sutskever_schedule(0.999), 249, 0.5),
    (lambda: schedules.sutskever_schedule(0.999), 250, 0.75),
    (lambda: schedules.sutskever_schedule(0.999), 499, 0.75),
    (lambda: schedules.sutskever_schedule(0.999), 500, 1 - 1 / 6),
    (lambda: schedules.sutskever_schedule(0.999), 750, 0.875),
    (lambda: schedules.sutskever_schedule(0.999), 124_749, 1 - 1 / 998),
    (lambda: schedules.sutskever_schedule(0.999), 124_750, 0.999),  # capped
    (lambda: schedules.sutskever_schedule(0.999), 749_999, 0.999),
    (lambda: schedules.sutskever_schedule(0.9), 1249, 0.9),  # 1-1/10 = 0.9
    (lambda: schedules.sutskever_schedule(0.9), 1000, 0.9),  # 1-1/10 > 0.9
    (lambda: schedules.sutskever_schedule(0.9), 999, 0.875),
    (lambda: schedules.sutskever_schedule(0.0), 10_000, 0.0),
    (lambda: schedules.sutskever_schedule(0.99, stage_length=10), 10, 0.75),
    (lambda: schedules.sutskever_schedule(0.99, stage_length=10), 9, 0.5),
    # Nesterov: 1 - 3 / (t + 5).
    (schedules.nesterov_schedule, 0, 0.4),
    (schedules.nesterov_schedule, 1, 0.5),
    (schedules.nesterov_schedule, 10, 0.8),
    (schedules.nesterov_schedule, 295, 0.99),
    # Section 4.2: 0.9 for the first 1,000 updates, then μ0.
    (lambda: schedules.rnn_warmup_schedule(0.995), 0, 0.9),
    (lambda: schedules.rnn_warmup_schedule(0.995), 999, 0.9),
    (lambda: schedules.rnn_warmup_schedule(0.995), 1000, 0.995),
    (lambda: schedules.rnn_warmup_schedule(0.0), 49_999, 0.0),
    (lambda: schedules.rnn_warmup_schedule(0.98, 10, 0.5), 9, 0.5),
    (lambda: schedules.rnn_warmup_schedule(0.98, 10, 0.5), 10, 0.98),
    # Table 2: the last K updates use 0.9, unless μ is 0.
    (lambda: schedules.low_momentum_finetuning(
        schedules.sutskever_schedule(0.999), 750_000), 748_999, 0.999),
    (lambda: schedules.low_momentum_finetuning(
        schedules.sutskever_schedule(0.999), 750_000), 749_000, 0.9),
    (lambda: schedules.low_momentum_finetuning(
        schedules.sutskever_schedule(0.999), 750_000), 749_999, 0.9),
    (lambda: schedules.low_momentum_finetuning(
        schedules.sutskever_schedule(0.0), 750_000), 749_500, 0.0),
    (lambda: schedules.low_momentum_finetuning(0.99, 100, 10), 89, 0.99),
    (lambda: schedules.low_momentum_finetuning(0.99, 100, 10), 90, 0.9),
    (lambda: schedules.low_momentum_finetuning(0.5, 100, 10, 0.2), 95, 0.2),
    (lambda: schedules.low_momentum_finetuning(0.0, 100, 10), 95, 0.0),
    (lambda: schedules.low_momentum_finetuning(0.99, 100, 0), 99, 0.99),
]


@pytest.mark.parametrize("builder,step,expected", _CASES)
def test_closed_form_values(builder, step, expected):
  schedule = builder()
  assert float(schedule(step)) == pytest.approx(expected, rel=1e-6)
  assert float(jax.jit(schedule)(step)) == pytest.approx(expected, rel=1e-6)
  assert float(schedule(jnp.asarray(step, jnp.int32))) == pytest.approx(
      expected, rel=1e-6)


def test_eq5_matches_its_log2_form_everywhere():
  steps = np.arange(0, 200_000, 37)
  paper = np.minimum(1 - 2.0 ** (-1 - np.log2(steps // 250 + 1)), 0.9995)
  ours = np.asarray(jax.vmap(schedules.sutskever_schedule(0.9995))(steps))
  np.testing.assert_allclose(ours, paper, rtol=1e-6)


def test_schedules_vmap_over_traced_mu():
  mu_max = jnp.array([0.0, 0.9, 0.99, 0.995, 0.999])
  # t = 10,000 is stage 40: 1 - 1/82 = 0.9878 caps nothing above 0.9.
  values = jax.vmap(lambda m: schedules.sutskever_schedule(m)(10_000))(mu_max)
  np.testing.assert_allclose(values, [0.0, 0.9] + [1 - 1 / 82] * 3,
                             rtol=1e-6)
  values = jax.vmap(lambda m: schedules.rnn_warmup_schedule(m)(5))(mu_max)
  np.testing.assert_allclose(values, 0.9, rtol=1e-6)


def test_compose_with_optax_schedules():
  joined = optax.join_schedules(
      [schedules.nesterov_schedule(), optax.constant_schedule(0.99)], [100])
  assert float(joined(0)) == pytest.approx(0.4)
  assert float(joined(150)) == pytest.approx(0.99)
  fine = schedules.low_momentum_finetuning(joined, total_steps=200,
                                           num_final_steps=20)
  assert float(fine(185)) == pytest.approx(0.9)


_BAD_ARGS = [
    (schedules.sutskever_schedule, {"mu_max": 1.2}, "mu_max"),
    (schedules.sutskever_schedule, {"mu_max": 0.9, "stage_length": 0},
     "stage_length"),
    (schedules.rnn_warmup_schedule, {"mu0": -0.1}, "mu0"),
    (schedules.rnn_warmup_schedule, {"mu0": 0.9, "warmup_steps": -1},
     "warmup_steps"),
    (schedules.rnn_warmup_schedule, {"mu0": 0.9, "warmup_momentum": 2.0},
     "warmup_momentum"),
    (schedules.low_momentum_finetuning,
     {"schedule": 0.9, "total_steps": 100, "num_final_steps": 101},
     "num_final_steps"),
    (schedules.low_momentum_finetuning, {"schedule": 0.9, "total_steps": 0},
     "total_steps"),
    (schedules.low_momentum_finetuning,
     {"schedule": 0.9, "total_steps": 10, "num_final_steps": 5,
      "final_momentum": -1},
     "final_momentum"),
]


@pytest.mark.parametrize("builder,kwargs,arg", _BAD_ARGS)
def test_bad_arguments_name_the_argument(builder, kwargs, arg):
  with pytest.raises(ValueError, match=f"^{arg} must be"):
    builder(**kwargs)
