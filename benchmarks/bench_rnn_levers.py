"""The RNN layer's portable speed levers, each alone, in one run (issue 13).

Times one Table 5 update (fresh batch from the problem's generator,
``jax.value_and_grad`` of the Table 5 loss through ``models.RNN``, a plain
SGD step; 20 updates per jitted ``lax.scan``) with the layer's backward and
forward written four ways, the rounds interleaved so that every variant sees
the same stretches of machine load, on two clocks (CPU time of this process,
the load-robust figure, and wall):

  before   the formulation before the levers: weight gradients as 3-D
           einsums over [time, batch, hidden] (XLA:CPU transposes the states
           and the backward's e for them) and the input projection as a
           matmul before the loop (a [time, batch, hidden] pre-activation
           array, biased in a second pass);
  A        weight gradients as 2-D matmuls over the merged [time * batch]
           rows, d_w_ho as (d_out^T hs)^T; input projection as before;
  B        input projection inside the forward step (in_dim multiply-adds
           fused with the tanh); weight gradients as before;
  A+B      both: the package's ``models._recurrence.tanh_rnn`` itself.

It also prints each variant's largest relative gradient difference from the
package's layer (the levers reorder float sums; the package's own row is 0).

Run pinned to one core with XLA single-threaded, as in benchmarks/RESULTS.md:

    XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \\
      PYTHONPATH=. taskset -c 0 .venv/bin/python benchmarks/bench_rnn_levers.py \\
      [--problem add|mul|mem5|mem20] [--rounds 9]
"""

from __future__ import annotations

import argparse
import os
import time


def _layer(weight_grads: str, input_projection: str):
  """The layer with the backward's weight gradients as ``"einsum"`` or
  ``"2d"`` and the input projection as ``"matmul"`` (before the loop) or
  ``"step"``; the rest is the package's formulation."""
  import jax  # pylint: disable=g-import-not-at-top
  from jax import lax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from jaxmomentum.models import _recurrence as rec  # pylint: disable=g-import-not-at-top

  def forward(x, w_ih, b_h, w_hh, h0, w_ho):
    if input_projection == "step":
      def step(h, x_t):
        h = jnp.tanh(h @ w_hh + rec._project_small(x_t, w_ih, b_h))  # pylint: disable=protected-access
        return h, h
      hs = lax.scan(step, h0, x)[1]
    else:
      hs = rec._forward(w_hh, x @ w_ih + b_h, h0, 1)  # pylint: disable=protected-access
    return hs, hs @ w_ho

  @jax.custom_vjp
  def layer(x, w_ih, b_h, w_hh, h0, w_ho):
    return forward(x, w_ih, b_h, w_hh, h0, w_ho)

  def fwd(*args):
    x, w_ih, b_h, w_hh, h0, w_ho = (a.value for a in args)  # symbolic_zeros
    out = forward(x, w_ih, b_h, w_hh, h0, w_ho)
    return out, (x, w_ih, w_hh, h0, w_ho, out[0])

  def bwd(residuals, cotangents):
    """The package's backward (unused state cotangents are symbolic zeros,
    the output's is folded into the step), with either weight gradients."""
    x, w_ih, w_hh, h0, w_ho, hs = residuals
    d_hs, d_out = cotangents
    if isinstance(d_hs, jax.custom_derivatives.SymbolicZero):
      d_hs = None
    w_t, w_ho_t = w_hh.T, w_ho.T

    def step(d_next, inputs):
      h_t, dh_t, do_t = inputs
      g = d_next @ w_t + (do_t[..., :, None] * w_ho_t).sum(-2)
      if dh_t is not None:
        g = g + dh_t
      return g * (1 - h_t * h_t), d_next

    d_first, e = lax.scan(step, jnp.zeros_like(h0), (hs, d_hs, d_out),
                          reverse=True)
    x_next = jnp.concatenate([x[1:], jnp.zeros_like(x[:1])], axis=0)
    if weight_grads == "2d":
      rows, hidden = e.shape[0] * e.shape[1], e.shape[2]
      hs2, e2 = hs.reshape(rows, hidden), e.reshape(rows, hidden)
      d_w_ih = x_next.reshape(rows, -1).T @ e2 + x[0].T @ d_first
      d_b_h = e2.sum(0) + d_first.sum(0)
      d_w_hh = hs2.T @ e2 + h0.T @ d_first
      d_w_ho = (d_out.reshape(rows, -1).T @ hs2).T
    else:
      d_w_ih = jnp.einsum("tbi,tbh->ih", x_next, e) + x[0].T @ d_first
      d_b_h = e.sum((0, 1)) + d_first.sum(0)
      d_w_hh = jnp.einsum("tbh,tbk->hk", hs, e) + h0.T @ d_first
      d_w_ho = jnp.einsum("tbh,tbo->ho", hs, d_out)
    dz = jnp.concatenate([d_first[None], e[:-1]], axis=0)
    return dz @ w_ih.T, d_w_ih, d_b_h, d_w_hh, d_first @ w_t, d_w_ho

  layer.defvjp(fwd, bwd, symbolic_zeros=True)

  def tanh_rnn(inputs, w_ih, b_h, w_hh, h0, w_ho, *, unroll=1):
    del unroll
    return layer(inputs, w_ih, b_h, w_hh, h0, w_ho)
  return tanh_rnn


def _update_program(problem_key, layer, steps):
  """(compiled 20-update program, params, grad fn) with ``layer`` in the
  model (``models.RNN`` looks ``tanh_rnn`` up when traced)."""
  import jax  # pylint: disable=g-import-not-at-top
  from jaxmomentum.models import _rnn  # pylint: disable=g-import-not-at-top
  from jaxmomentum.reproduce import _rnn_tables  # pylint: disable=g-import-not-at-top
  from jaxmomentum.reproduce._protocols import RNN_PAPER  # pylint: disable=g-import-not-at-top
  saved = _rnn.tanh_rnn
  _rnn.tanh_rnn = layer
  try:
    task = _rnn_tables.rnn_task(problem_key, RNN_PAPER)
    params = task.init_fn(jax.random.key(0))

    def update(params, key):
      batch = task.sample_fn(key, RNN_PAPER.batch_size, None)
      loss, grads = jax.value_and_grad(task.loss_fn)(params, batch)
      return jax.tree.map(lambda p, g: p - 1e-9 * g, params, grads), loss

    def run(params):
      keys = jax.random.split(jax.random.key(1), steps)
      return jax.lax.scan(update, params, keys)

    compiled = jax.jit(run).lower(params).compile()
    batch = task.sample_fn(jax.random.key(3), RNN_PAPER.batch_size, None)
    grads = jax.jit(jax.grad(task.loss_fn))(params, batch)
  finally:
    _rnn.tanh_rnn = saved
  return compiled, params, grads


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--problem", default="add",
                      choices=("add", "mul", "mem5", "mem20"))
  parser.add_argument("--rounds", type=int, default=9)
  parser.add_argument("--steps", type=int, default=20,
                      help="updates per timed program")
  args = parser.parse_args()

  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from jaxmomentum import _machine  # pylint: disable=g-import-not-at-top
  from jaxmomentum.models import _recurrence  # pylint: disable=g-import-not-at-top

  print(f"# {_machine.machine_line()}")
  print(f"# Table 5 '{args.problem}' update (sample, value_and_grad, SGD), "
        f"{args.steps} per program, {args.rounds} interleaved rounds; "
        f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}; affinity "
        f"{sorted(os.sched_getaffinity(0))}; load average "
        f"{os.getloadavg()[0]:.2f}")
  variants = {
      "before: einsum weight grads, input matmul": _layer("einsum", "matmul"),
      "A: 2-D weight grads alone": _layer("2d", "matmul"),
      "B: input projection in the step alone": _layer("einsum", "step"),
      "A+B: the package's tanh_rnn": _recurrence.tanh_rnn,
  }
  built = {name: _update_program(args.problem, layer, args.steps)
           for name, layer in variants.items()}
  ref = built["A+B: the package's tanh_rnn"][2]
  for name, (compiled, params, grads) in built.items():
    jax.block_until_ready(compiled(params))
    diff = max(jax.tree.leaves(jax.tree.map(
        lambda a, b: float(jnp.max(jnp.abs(a - b))
                           / (jnp.max(jnp.abs(a)) + 1e-30)), ref, grads)))
    print(f"  {name:45s} gradient vs the package's: max rel diff {diff:.1e}")
  cpu = {name: [] for name in built}
  wall = {name: [] for name in built}
  for _ in range(args.rounds):
    for name, (compiled, params, _) in built.items():
      w, c = time.perf_counter(), time.process_time()
      jax.block_until_ready(compiled(params))
      cpu[name].append(time.process_time() - c)
      wall[name].append(time.perf_counter() - w)
  base = None
  for name in built:
    ms = 1e3 * min(cpu[name]) / args.steps
    med = 1e3 * sorted(cpu[name])[args.rounds // 2] / args.steps
    base = base or ms
    print(f"{name:45s} {ms:6.2f} CPU-ms/update (min; median {med:6.2f}), "
          f"wall {1e3 * min(wall[name]) / args.steps:6.2f} ms; "
          f"{base / ms:4.2f}x before")
  print(f"# load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
  main()
