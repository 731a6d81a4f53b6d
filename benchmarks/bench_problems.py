"""Sampling one RNN-problem batch vs one RNN training step, both inside jit.

The Table 5 runs draw 100 fresh sequences for each of 50,000 updates, so the
generator must be cheap next to the step it feeds. This times, per iteration
of a jitted ``lax.scan`` (no Python dispatch in the figures):

* ``sample``: ``problem.sample(key, batch)`` (add T=80, batch 100);
* ``step``:   one training step of a 100-unit tanh RNN on a fixed batch:
  forward over all time steps, backward, and a classical-momentum update
  written inline here (the toolkit's models are not used, to keep this
  benchmark about the generator);
* ``fused``:  sampling and the step in the same scan iteration, as a
  training loop runs them.

It prints ms per iteration, ``sample / step`` (target: below 10%) and the
marginal cost ``(fused - step) / step``.

Run (from the repository root):

    .venv/bin/python benchmarks/bench_problems.py
    .venv/bin/python benchmarks/bench_problems.py --problem mem5
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxmomentum import _machine
from jaxmomentum.reproduce import paper


def rnn_step_fn(problem, hidden: int, learning_rate: float = 1e-4,
                momentum: float = 0.9, input_scale: float = 0.001):
  """``(params, velocity, batch) -> (params, velocity, loss)`` and an init."""

  def init(seed):
    # numpy, not jax.random: nothing to compile for the setup.
    rng = np.random.default_rng(seed)
    params = {
        "w_ih": input_scale * rng.normal(size=(problem.in_dim, hidden)),
        "w_hh": 1.1 / np.sqrt(hidden) * rng.normal(size=(hidden, hidden)),
        "b_h": np.zeros(hidden),
        "w_ho": 0.1 * rng.normal(size=(hidden, problem.out_dim)),
        "b_o": np.zeros(problem.out_dim),
    }
    params = {k: jnp.asarray(v, jnp.float32) for k, v in params.items()}
    return params, jax.tree.map(jnp.zeros_like, params)

  def forward(params, inputs):  # [batch, time, in] -> [batch, time, out]
    def cell(h, x):
      h = jnp.tanh(x @ params["w_ih"] + h @ params["w_hh"] + params["b_h"])
      return h, h
    h0 = jnp.zeros((inputs.shape[0], hidden))
    _, hs = jax.lax.scan(cell, h0, jnp.swapaxes(inputs, 0, 1))
    return jnp.swapaxes(hs @ params["w_ho"] + params["b_o"], 0, 1)

  def loss(params, batch):
    batch = problem.centered(batch)
    return problem.loss(forward(params, batch.inputs), batch)

  def step(params, velocity, batch):
    value, grads = jax.value_and_grad(loss)(params, batch)
    velocity = jax.tree.map(lambda v, g: momentum * v - learning_rate * g,
                            velocity, grads)
    params = jax.tree.map(jnp.add, params, velocity)
    return params, velocity, value

  return init, step


def make_loops(problem, batch_size: int, hidden: int, iters: int,
               input_scale: float = 0.001):
  """Three jitted functions, each running ``iters`` iterations in a scan."""
  init, step = rnn_step_fn(problem, hidden, input_scale=input_scale)
  # Setup under jit: eager dispatch would compile every op separately.
  params, velocity = init(1)
  fixed = jax.jit(problem.sample, static_argnums=1)(jax.random.key(2),
                                                    batch_size)
  keys = jax.jit(jax.random.split, static_argnums=1)(jax.random.key(3), iters)

  @jax.jit
  def sample_loop(keys):
    def body(acc, key):
      # Reduce every element, so XLA cannot drop any of the sampling work.
      b = problem.sample(key, batch_size)
      return acc + sum(jnp.sum(x) for x in b), None
    return jax.lax.scan(body, jnp.float32(0), keys)[0]

  @jax.jit
  def step_loop(params, velocity, batch):
    def body(carry, _):
      p, v, _ = step(*carry, batch)
      return (p, v), None
    return jax.lax.scan(body, (params, velocity), None, length=iters)[0]

  @jax.jit
  def fused_loop(params, velocity, keys):
    def body(carry, key):
      p, v, _ = step(*carry, problem.sample(key, batch_size))
      return (p, v), None
    return jax.lax.scan(body, (params, velocity), keys)[0]

  return {
      "sample": lambda: sample_loop(keys),
      "step": lambda: step_loop(params, velocity, fixed),
      "fused": lambda: fused_loop(params, velocity, keys),
  }


def measure(problem_name: str = "add", batch_size: int = 100,
            hidden: int = 100, iters: int = 20, repeats: int = 5,
            which: tuple[str, ...] = ("sample", "step", "fused")) -> dict:
  """Median seconds per iteration of each loop, timed in interleaved rounds."""
  row = paper.TABLE5[problem_name]
  loops = make_loops(row.problem, batch_size, hidden, iters, row.input_scale)
  loops = {name: loops[name] for name in which}
  for loop in loops.values():  # compile and warm up
    jax.block_until_ready(loop())
  samples = {name: [] for name in loops}
  for _ in range(repeats):
    for name, loop in loops.items():
      start = time.perf_counter()
      jax.block_until_ready(loop())
      samples[name].append((time.perf_counter() - start) / iters)
  return {name: statistics.median(s) for name, s in samples.items()}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--problem", default="add", choices=list(paper.TABLE5))
  parser.add_argument("--batch", type=int, default=100)
  parser.add_argument("--hidden", type=int, default=100)
  parser.add_argument("--iters", type=int, default=20)
  parser.add_argument("--repeats", type=int, default=7)
  args = parser.parse_args()
  t = measure(args.problem, args.batch, args.hidden, args.iters,
              args.repeats)
  print(f"# {_machine.machine_line()}")
  print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()})")
  print(f"{args.problem}, batch {args.batch}, {args.hidden} tanh units; "
        f"ms per iteration inside a jitted scan of {args.iters}, median of "
        f"{args.repeats}")
  print(f"  sample one batch      {1e3 * t['sample']:9.3f} ms")
  print(f"  RNN training step     {1e3 * t['step']:9.3f} ms")
  print(f"  sample + step (fused) {1e3 * t['fused']:9.3f} ms")
  print(f"  sample / step          {100 * t['sample'] / t['step']:8.2f} %"
        "   (target < 10 %)")
  print(f"  (fused - step) / step  "
        f"{100 * (t['fused'] - t['step']) / t['step']:8.2f} %")


if __name__ == "__main__":
  main()
