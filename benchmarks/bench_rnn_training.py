"""RNN training speed on the CPU: the issue-13 targets side by side in one run.

The paper's RNN (100 tanh units, 2 inputs, 1 linear output at every step,
squared error at the last step) on addition-like data (T=80, batch 100,
fresh sequences every update), trained with NAG. One run prints, under a
machine line (CPU model, vector extensions, jax version, load):

  matmul  the machine's matmul peak (a jitted 1024^2 float32 chain, one
          device, all of XLA's intra-op threads), the rate of the RNN's own
          step matmul ([100, 100] x [100, 100] chained on one device), the
          same as a batch of 16 independent ones (what ``vmap`` over 16 runs
          makes of it: every run has its own weights, so it is a batched
          matmul, not one larger one), and the cost of one iteration of a
          ``lax.scan`` with a trivial body (the per-step loop overhead);
  seed    one seed: the package's RNN layer (``models._recurrence.tanh_rnn``,
          the ``custom_vjp`` layer ``models.RNN`` uses), timed as jitted scans
          of the forward pass alone, forward + backward, + the NAG update,
          + sampling, and the engine's chunk program (``run_grid``'s
          ``Trainer.run_chunk``: divergence masking and evaluation too), so
          the differences say where an update's time goes;
  torch   the same model and batch in PyTorch eager (``torch==2.13.0``):
          ``torch.nn.RNN(nonlinearity="tanh")`` + ``torch.nn.Linear`` and a
          hand-written time loop, with ``torch.optim.SGD(nesterov=True)``;
  grid    the 16-run seed x learning-rate grid as ``run_grid`` runs it,
          with the portable levers: runs batched per device by ``lax.map``
          or ``vmap``, on one host device or one per core, and the time
          loops' ``unroll``.

and the two targets: one seed at >= 2x PyTorch eager, and the grid at
>= 70% of the matmul-limited rate (the measured peak / 0.494 GFLOP per
update), or the measured account of where the rest of the time goes.
``benchmarks/bench_rnn_levers.py`` times the layer's own portable levers,
each alone, on a Table 5 update.
Every row is timed on two clocks: "wall" (throughput seen) and "cpu" (per
CPU-second of this process, which other processes' load does not count).
The host-device count is a process flag, so ``main`` calls
``training.use_all_cpu_cores()`` before JAX starts.

Run (from the repository root, after ``make test`` has built .venv):

    .venv/bin/python benchmarks/bench_rnn_training.py           # ~9 min on 2 shared cores
    .venv/bin/python benchmarks/bench_rnn_training.py --quick   # fewer cases
    .venv/bin/python benchmarks/bench_rnn_training.py --source package

``--source package`` uses ``jaxmomentum.models.RNN``,
``jaxmomentum.problems.addition(80)`` (sequences padded to 88 steps, 10% more
work) and ``jaxmomentum.nag`` for the seed and grid rows instead of the
inline model and data (the default, self-contained so the numbers do not
move while those modules change; its layer is the package's ``tanh_rnn``).
"""

from __future__ import annotations

import argparse
import os
import time

HIDDEN, INPUTS, OUTPUTS, LENGTH, BATCH = 100, 2, 1, 80, 100
GRID_LRS = (1e-3, 1e-4, 1e-5, 1e-6)  # x 4 seeds: the 16-run grid
TARGET_SHARE = 0.70  # of the matmul-limited grid rate


def flops_per_update(length=LENGTH, batch=BATCH, hidden=HIDDEN, inputs=INPUTS,
                     outputs=OUTPUTS) -> float:
  """Matmul FLOPs of one update: forward 2*T*B*H*(H+I+O), backward twice it."""
  return 3.0 * 2 * length * batch * hidden * (hidden + inputs + outputs)


# -- the model, inline -------------------------------------------------------

def _jax_pieces():
  """The inline model and data (imported after the host-device flag)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from jax import lax  # pylint: disable=g-import-not-at-top
  from jaxmomentum.models._recurrence import tanh_rnn  # pylint: disable=g-import-not-at-top

  def init(key):
    k1, k2, k3 = jax.random.split(key, 3)
    # Dense stand-in for the paper's sparse init: spectral radius ~1.1 by
    # the circular law (the timing does not depend on the values).
    w_hh = 1.1 * jax.random.normal(k2, (HIDDEN, HIDDEN)) / jnp.sqrt(HIDDEN)
    return {"w_ih": 0.001 * jax.random.normal(k1, (INPUTS, HIDDEN)),
            "w_hh": w_hh,
            "b_h": jnp.zeros(HIDDEN),
            "w_ho": 0.1 * jax.random.normal(k3, (HIDDEN, OUTPUTS)),
            "b_o": jnp.zeros(OUTPUTS)}

  def sample(key, batch_size, data=None):  # make_train's sample_fn
    """Addition-like: noise, two markers (I in [0,8), J in [8,40)), sum."""
    del data
    k_val, k_i, k_j = jax.random.split(key, 3)
    values = jax.random.uniform(k_val, (batch_size, LENGTH))
    i = jax.random.randint(k_i, (batch_size, 1), 0, LENGTH // 10)
    j = jax.random.randint(k_j, (batch_size, 1), LENGTH // 10, LENGTH // 2)
    steps = jnp.arange(LENGTH)
    marker = ((steps == i) | (steps == j)).astype(jnp.float32)
    inputs = jnp.stack([values - 0.5, marker], axis=-1)  # roughly centered
    return inputs, jnp.sum(values * marker, axis=1) - 1.0

  def apply_layer(params, inputs, unroll=1):
    """The package's whole-layer custom_vjp (what models.RNN calls)."""
    h0 = jnp.zeros((inputs.shape[0], HIDDEN))
    _, out = tanh_rnn(jnp.swapaxes(inputs, 0, 1), params["w_ih"],
                      params["b_h"], params["w_hh"], h0, params["w_ho"],
                      unroll=unroll)
    return jnp.swapaxes(out, 0, 1) + params["b_o"]

  def apply_autodiff(params, inputs):
    """Plain lax.scan differentiated by JAX: the gradient check's reference."""
    x = jnp.swapaxes(inputs, 0, 1)
    pre = jnp.einsum("tbi,ih->tbh", x, params["w_ih"]) + params["b_h"]
    def step(h, a_t):
      h = jnp.tanh(h @ params["w_hh"] + a_t)
      return h, h
    hs = lax.scan(step, jnp.zeros((inputs.shape[0], HIDDEN)), pre)[1]
    return jnp.swapaxes(hs @ params["w_ho"], 0, 1) + params["b_o"]

  def make_fns(unroll=1, apply=None):
    apply = apply or (lambda p, x: apply_layer(p, x, unroll))

    def loss(params, batch):
      inputs, target = batch
      return jnp.mean((apply(params, inputs)[:, -1, 0] - target) ** 2)

    def evaluate(params, batch):
      inputs, target = batch
      out = apply(params, inputs)[:, -1, 0]
      return {"loss": jnp.mean((out - target) ** 2),
              "error": jnp.mean(jnp.abs(out - target) > 0.04)}

    return loss, evaluate

  return {"init": init, "sample": sample, "make_fns": make_fns,
          "autodiff": make_fns(apply=apply_autodiff)[0]}


def _package_task():
  """The same task from jaxmomentum.models / problems (``--source package``)."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from jaxmomentum import models  # pylint: disable=g-import-not-at-top
  from jaxmomentum import problems  # pylint: disable=g-import-not-at-top
  from jaxmomentum.reproduce import paper  # pylint: disable=g-import-not-at-top

  problem = problems.addition(LENGTH)
  model = models.RNN(output_size=1, hidden_size=HIDDEN,
                     init_recipe=paper.table4_rnn_init())
  dummy = jnp.zeros((1, problem.max_length, 2))

  def init(key):
    return model.init(key, dummy)

  def loss(params, batch):
    return problem.loss(model.apply(params, batch.inputs), batch)

  def evaluate(params, batch):
    out = model.apply(params, batch.inputs)
    return {"loss": problem.loss(out, batch),
            "error": problem.zero_one(out, batch)}

  def sample(key, batch_size, data=None):  # make_train's sample_fn
    del data
    return problem.centered(problem.sample(key, batch_size))  # as Table 5

  return init, loss, evaluate, sample


def _optimizer_factory():
  import jaxmomentum  # pylint: disable=g-import-not-at-top
  return "jaxmomentum.nag", jaxmomentum.nag


# -- measurements -------------------------------------------------------------

REPEATS = 3


def best_of(fn, repeats=REPEATS) -> tuple[float, float]:
  """(wall s, process CPU s) of ``fn()``: the minimum of each over repeats.

  Process CPU time counts every thread of this process and none of the other
  processes sharing the machine, so it is the load-robust figure; wall time
  is the throughput actually seen.
  """
  walls, cpus = [], []
  for _ in range(repeats):
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    walls.append(time.perf_counter() - wall)
    cpus.append(time.process_time() - cpu)
  return min(walls), min(cpus)


def _timed_jit(fn, *args, repeats=REPEATS):
  """(wall s, CPU s) of a jitted ``fn(*args)`` after one compile-and-run."""
  import jax  # pylint: disable=g-import-not-at-top
  fn = jax.jit(fn)
  jax.block_until_ready(fn(*args))
  return best_of(lambda: jax.block_until_ready(fn(*args)), repeats)


def matmul_peak_gflops(n=1024, iters=20) -> tuple[float, float]:
  """(wall, per CPU-second) GFLOP/s of a jitted float32 n x n matmul chain.

  On the default device, with all of XLA's intra-op threads: the wall rate
  is the machine's peak as the issue defines it; the per-CPU-second rate is
  the same work per CPU-second (a loaded machine lowers the first only).
  """
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  a = jax.random.normal(jax.random.key(0), (n, n)) / jnp.sqrt(n)
  wall, cpu = _timed_jit(
      lambda x: jax.lax.fori_loop(0, iters, lambda _, y: y @ a, x), a,
      repeats=5)
  flops = 2.0 * n ** 3 * iters
  return flops / wall / 1e9, flops / cpu / 1e9


def small_matmul_rates(iters=880) -> dict[str, tuple[float, float]]:
  """(wall, cpu) rates of the RNN-sized pieces, on one device.

  ``"matmul"`` and ``"batched x16"``: GFLOP/s of an ``iters``-long chain of
  ``[100, 100] x [100, 100]`` matmuls (one RNN step at batch 100), alone and
  as 16 independent ones batched (16 vmapped runs); ``"loop"``: microseconds
  per iteration of a ``lax.scan`` whose body is one elementwise op on a
  ``[100, 100]`` carry (the loop overhead each time step pays); ``"step"``:
  microseconds per iteration of the forward loop without its matmul
  (``tanh(0.5 h + a_t)`` and the stacked state write).
  """
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  w = jax.random.normal(jax.random.key(0), (HIDDEN, HIDDEN)) / HIDDEN
  h = jax.random.normal(jax.random.key(1), (BATCH, HIDDEN))
  flops = 2.0 * BATCH * HIDDEN * HIDDEN * iters
  chain = lambda w, h: jax.lax.fori_loop(0, iters, lambda _, y: y @ w, h)
  out = {}
  wall, cpu = _timed_jit(chain, w, h, repeats=5)
  out["matmul"] = (flops / wall / 1e9, flops / cpu / 1e9)
  ws, hs = jnp.stack([w] * 16), jnp.stack([h] * 16)
  wall, cpu = _timed_jit(jax.vmap(chain), ws, hs, repeats=5)
  out["batched x16"] = (16 * flops / wall / 1e9, 16 * flops / cpu / 1e9)
  trivial = lambda h: jax.lax.scan(lambda c, _: (c * 0.5 + 1.0, None), h,
                                   None, length=iters)[0]
  wall, cpu = _timed_jit(trivial, h, repeats=5)
  out["loop"] = (1e6 * wall / iters, 1e6 * cpu / iters)
  pre = jnp.stack([h] * LENGTH)
  no_matmul = lambda h, pre: jax.lax.scan(
      lambda c, a: (jnp.tanh(0.5 * c + a),) * 2, h, pre)[1]
  wall, cpu = _timed_jit(no_matmul, h, pre, repeats=5)
  out["step"] = (1e6 * wall / LENGTH, 1e6 * cpu / LENGTH)
  return out


def layer_loops(repeats=5) -> dict[str, tuple[float, float]]:
  """(wall s, CPU s) of the layer's two time loops, each alone, per update.

  ``"forward loop"``: the layer's forward ``lax.scan`` as
  ``_recurrence._rnn_forward`` runs it for the paper's 2 inputs (T steps of
  matmul, the input projection's multiply-adds, tanh and state write);
  ``"backward loop"``: the reverse ``lax.scan`` of
  ``_recurrence._scan_backward`` (per step: the matmul by ``W_hh^T``, the
  output cotangent's broadcast-and-sum, ``(1 - h^2)``), written out here
  without the weight gradients after it (2-D matmuls over the stored
  states, left in "the rest").
  """
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from jaxmomentum.models import _recurrence  # pylint: disable=g-import-not-at-top
  keys = jax.random.split(jax.random.key(0), 6)
  w = jax.random.normal(keys[0], (HIDDEN, HIDDEN)) / HIDDEN
  pre = jax.random.normal(keys[1], (LENGTH, BATCH, HIDDEN))
  x = jax.random.normal(keys[4], (LENGTH, BATCH, INPUTS))
  w_ih = jax.random.normal(keys[5], (INPUTS, HIDDEN))
  b_h = jnp.zeros(HIDDEN)
  w_ho = jax.random.normal(keys[2], (HIDDEN, OUTPUTS))
  d_out = jax.random.normal(keys[3], (LENGTH, BATCH, OUTPUTS))
  h0 = jnp.zeros((BATCH, HIDDEN))
  hs = jnp.tanh(pre)

  def backward(w, hs, d_out):
    w_t, w_ho_t = w.T, w_ho.T
    def step(d_next, inputs):
      h_t, do_t = inputs
      g = d_next @ w_t + (do_t[..., :, None] * w_ho_t).sum(-2)
      return g * (1 - h_t * h_t), d_next
    return jax.lax.scan(step, h0, (hs, d_out), reverse=True)

  def forward(w, x):
    def step(h, x_t):
      h = jnp.tanh(h @ w + _recurrence._project_small(x_t, w_ih, b_h))  # pylint: disable=protected-access
      return h, h
    return jax.lax.scan(step, h0, x)[1]

  return {
      "forward loop": _timed_jit(forward, w, x, repeats=repeats),
      "backward loop": _timed_jit(backward, w, hs, d_out, repeats=repeats)}


def check_gradient(pieces) -> float:
  """Max relative difference of the layer's custom_vjp gradient from autodiff."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  params = pieces["init"](jax.random.key(0))
  batch = pieces["sample"](jax.random.key(1), BATCH)
  grads = [jax.jit(jax.grad(f))(params, batch)
           for f in (pieces["autodiff"], pieces["make_fns"]()[0])]
  diffs = jax.tree.map(
      lambda a, b: float(jnp.max(jnp.abs(a - b)) / (jnp.max(jnp.abs(a)) + 1e-30)),
      *grads)
  return max(jax.tree.leaves(diffs))


def seed_parts(init, loss, sample, steps, rounds=7):
  """(wall s, CPU s) per update of one seed's nested pieces, in jitted scans.

  ``forward``: the loss alone; ``backward``: value and gradient (+ a tiny
  SGD step that makes each iteration depend on the last, so XLA cannot hoist
  the loop-invariant work); ``optimizer``: value, gradient and the NAG
  update on a fixed batch; ``sampling``: the whole bare update, fresh data
  each step. Each row includes the ones before it. The minimum over
  ``rounds`` interleaved rounds, on each clock.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  _, factory = _optimizer_factory()
  opt = factory(1e-4, 0.99)
  params = init(jax.random.key(0))
  state = opt.init(params)
  batch = sample(jax.random.key(1), BATCH)
  data_key = jax.random.key(2)
  ts = jnp.arange(steps)

  def forward(params):
    def body(acc, _):
      # The carried loss feeds the next inputs (x (1 + 1e-30 acc)), so every
      # iteration is computed.
      b = jax.tree.map(lambda x: x * (1 + 1e-30 * acc), batch)
      return acc + loss(params, b), None
    return jax.lax.scan(body, jnp.float32(0), ts)[0]

  def backward(params):
    def body(p, _):
      g = jax.grad(loss)(p, batch)
      return jax.tree.map(lambda a, b: a - 1e-9 * b, p, g), None
    return jax.lax.scan(body, params, ts)[0]

  def with_optimizer(params, state):
    def body(carry, _):
      p, s = carry
      u, s = opt.update(jax.grad(loss)(p, batch), s, p)
      return (optax.apply_updates(p, u), s), None
    return jax.lax.scan(body, (params, state), ts)[0]

  def with_sampling(params, state):
    def body(carry, t):
      p, s = carry
      b = sample(jax.random.fold_in(data_key, t), BATCH)
      u, s = opt.update(jax.grad(loss)(p, b), s, p)
      return (optax.apply_updates(p, u), s), None
    return jax.lax.scan(body, (params, state), ts)[0]

  fns = {"forward": (jax.jit(forward), (params,)),
         "backward": (jax.jit(backward), (params,)),
         "optimizer": (jax.jit(with_optimizer), (params, state)),
         "sampling": (jax.jit(with_sampling), (params, state))}
  for fn, fn_args in fns.values():  # compile and warm up
    jax.block_until_ready(fn(*fn_args))
  # Interleaved rounds: every piece sees the same stretches of machine load,
  # so their differences stay meaningful on a shared machine.
  times = {k: [] for k in fns}
  for _ in range(rounds):
    for k, (fn, fn_args) in fns.items():
      times[k].append(best_of(lambda: jax.block_until_ready(fn(*fn_args)), 1))
  return {k: (min(w for w, _ in v) / steps, min(c for _, c in v) / steps)
          for k, v in times.items()}


def chunk_rates(trainer, num_seeds, learning_rates, devices, batching,
                batch_shards=1):
  """Run-updates/s (wall, per CPU-second) of the runner's chunk program.

  Exactly the program ``run_grid`` compiles (its private placement helper):
  ``trainer.run_chunk`` over seeds x learning rates, the run axis sharded
  over ``devices`` (``batch_shards`` devices sharing each run's minibatch),
  batched per device with ``vmap`` or ``lax.map``, the state donated; timed
  here so each chunk is measured on both clocks.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from jaxmomentum.training import _runner  # pylint: disable=g-import-not-at-top
  placement = _runner._Placement(trainer, devices, batching, batch_shards)  # pylint: disable=protected-access
  runs = num_seeds * len(learning_rates)
  rows = -(-runs // placement.run_shards) * placement.run_shards
  seeds = np.resize(np.repeat(np.arange(num_seeds), len(learning_rates)), rows)
  lrs = np.resize(np.tile(np.float32(learning_rates), num_seeds), rows)
  hparams = {"learning_rate": placement.put(lrs),
             "momentum": placement.put(np.full(rows, 0.99, np.float32))}
  state = placement.init(placement.put(np.int32(seeds)), hparams)
  state = jax.block_until_ready(placement.run_chunk(state, hparams, None)[0])

  def one_chunk():
    nonlocal state
    state = jax.block_until_ready(placement.run_chunk(state, hparams, None)[0])

  wall, cpu = best_of(one_chunk)
  updates = trainer.config.chunk_size * runs
  return updates / wall, updates / cpu


def torch_rates(steps, threads, kind="nn.RNN") -> tuple[float, float, str]:
  """(updates/s wall, per CPU-second, version) of PyTorch eager on CPU.

  ``kind``: ``"nn.RNN"`` (``torch.nn.RNN(nonlinearity="tanh")`` and a
  ``torch.nn.Linear`` output at every step) or ``"hand loop"`` (the same
  model as a Python loop over time steps).
  """
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    return float("nan"), float("nan"), "not installed"
  torch.manual_seed(0)
  torch.set_num_threads(threads)
  rnn = torch.nn.RNN(INPUTS, HIDDEN, nonlinearity="tanh", batch_first=True)
  head = torch.nn.Linear(HIDDEN, OUTPUTS)
  params = list(rnn.parameters()) + list(head.parameters())
  opt = torch.optim.SGD(params, lr=1e-4, momentum=0.99, nesterov=True)
  steps_t = torch.arange(LENGTH)

  def forward(inputs):
    if kind == "nn.RNN":
      return head(rnn(inputs)[0])  # [B, T, 1]: an output at every step
    w_ih, w_hh = rnn.weight_ih_l0.t(), rnn.weight_hh_l0.t()
    pre = inputs @ w_ih + rnn.bias_ih_l0 + rnn.bias_hh_l0
    h = torch.zeros(inputs.shape[0], HIDDEN)
    hs = []
    for t in range(LENGTH):
      h = torch.tanh(pre[:, t] + h @ w_hh)
      hs.append(h)
    return head(torch.stack(hs, 1))

  def update():
    values = torch.rand(BATCH, LENGTH)
    i = torch.randint(0, LENGTH // 10, (BATCH, 1))
    j = torch.randint(LENGTH // 10, LENGTH // 2, (BATCH, 1))
    marker = ((steps_t == i) | (steps_t == j)).float()
    inputs = torch.stack([values - 0.5, marker], dim=-1)
    target = (values * marker).sum(1) - 1.0
    loss = ((forward(inputs)[:, -1, 0] - target) ** 2).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()

  def run():
    for _ in range(steps):
      update()

  run()
  wall, cpu = best_of(run)
  return steps / wall, steps / cpu, torch.__version__


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--quick", action="store_true",
                      help="fewer cases (grid on all devices only, no unroll "
                      "or torch hand-loop rows)")
  parser.add_argument("--source", choices=("inline", "package"),
                      default="inline")
  parser.add_argument("--devices", type=int, default=None,
                      help="host CPU devices (default: one per core)")
  parser.add_argument("--unroll", type=int, default=4,
                      help="the unroll lever's value (inline model only)")
  args = parser.parse_args()

  from jaxmomentum import training  # pylint: disable=g-import-not-at-top
  from jaxmomentum import _machine  # pylint: disable=g-import-not-at-top
  num_cpu_devices = training.use_all_cpu_cores(args.devices)  # before JAX
  import jax  # pylint: disable=g-import-not-at-top

  start = time.perf_counter()
  pieces = _jax_pieces()
  opt_name, factory = _optimizer_factory()
  devices = jax.devices()
  one = devices[:1]
  flops = flops_per_update()
  cores = os.cpu_count() or 1
  print(f"# {_machine.machine_line()}")
  print(f"# RNN training: H={HIDDEN}, T={LENGTH}, batch={BATCH}, {opt_name}, "
        f"source={args.source}; {devices[0].platform} x {len(devices)} "
        f"device(s) ({num_cpu_devices} host devices requested)")
  print(f"# {flops / 1e9:.3f} GFLOP per update (3 x forward matmuls); rates "
        f"are the best of {REPEATS}; 'wall' = throughput seen, 'cpu' = per "
        "CPU-second of this process (robust to other load)")

  peak, peak_cpu = matmul_peak_gflops()
  small = small_matmul_rates()
  print(f"matmul peak (1024^2 float32 chain, jit, one device): "
        f"{peak:.1f} GFLOP/s wall, {peak_cpu:.1f} per CPU-second")
  print(f"[100,100] x [100,100] chain, one device:   {small['matmul'][0]:6.1f}"
        f" GFLOP/s wall {small['matmul'][1]:6.1f} per CPU-second "
        f"({100 * small['matmul'][1] / peak_cpu:.0f}% of the peak per "
        "CPU-second)")
  print(f"16 of them batched (16 vmapped runs):      "
        f"{small['batched x16'][0]:6.1f} GFLOP/s wall "
        f"{small['batched x16'][1]:6.1f} per CPU-second")
  print(f"lax.scan iteration, trivial body:          {small['loop'][0]:6.2f}"
        f" us wall {small['loop'][1]:6.2f} us CPU")
  print(f"forward step without matmul (tanh, write): {small['step'][0]:6.2f}"
        f" us wall {small['step'][1]:6.2f} us CPU")
  loops = layer_loops()
  for name, (wall, cpu) in loops.items():
    print(f"{name + ' of the layer, alone:':42s} {1e3 * wall:6.2f} ms wall "
          f"{1e3 * cpu:6.2f} ms CPU per update")
  print(f"layer custom_vjp gradient vs autodiff, max relative difference: "
        f"{check_gradient(pieces):.1e}")

  rows = {}

  def report(name, runs, wall, cpu):
    rows[name] = (wall, cpu)
    print(f"{name:50s} {wall / runs:7.1f} upd/s/run {wall:7.1f} run-upd/s "
          f"wall {cpu:7.1f} cpu  {wall * flops / 1e9:5.1f} GFLOP/s "
          f"({100 * wall * flops / 1e9 / peak:3.0f}% peak)", flush=True)

  if args.source == "package":
    variants = {"package": _package_task()}
    best = "package"
  else:
    variants = {}
    for unroll in sorted({1, args.unroll}):
      loss, evaluate = pieces["make_fns"](unroll)
      variants[f"unroll {unroll}"] = (pieces["init"], loss, evaluate,
                                      pieces["sample"])
    best = "unroll 1"
  init, loss, evaluate, sample = variants[best]

  # One seed, where the time goes: nested jitted scans of 20 updates.
  parts = seed_parts(init, loss, sample, 20)
  # 4 updates per chunk for the 16-run grid and 20 for one seed (so that a
  # chunk is ~0.1 s: timed well), evaluated on a 10-sequence batch: in a real
  # run the evaluation comes every ~1,000 updates, so it is kept out of the
  # timing.
  def trainers_of(chunk):
    config = training.TrainConfig(num_steps=chunk, batch_size=BATCH,
                                  eval_every=chunk, eval_batch_size=10)
    return {name: training.make_train(config, i, l, s, factory, eval_fn=e)
            for name, (i, l, e, s) in variants.items()}
  trainers, seed_trainer = trainers_of(4), trainers_of(20)[best]
  one_dev = f"engine chunk, 1 seed, {best}, 1 dev, map"
  report(one_dev, 1, *chunk_rates(seed_trainer, 1, [1e-4], one, "map"))
  # run_grid's default for one seed: its minibatch split over the devices
  # that would otherwise idle (batch_shards="auto").
  from jaxmomentum.training import _runner  # pylint: disable=g-import-not-at-top
  shards = _runner._auto_batch_shards(seed_trainer, 1, devices)  # pylint: disable=protected-access
  one_seed = (f"engine chunk, 1 seed, {best}, batch over {shards} dev"
              if shards > 1 else one_dev)
  if shards > 1:
    report(one_seed, 1, *chunk_rates(seed_trainer, 1, [1e-4], devices,
                                     "map", shards))
  for name, (wall, cpu) in parts.items():
    report(f"bare scan 1 seed, up to {name}", 1, 1 / wall, 1 / cpu)

  torch_version = "?"
  torch_cases = [("nn.RNN", t) for t in sorted({1, cores})]
  if not args.quick:
    torch_cases.append(("hand loop", cores))
  for kind, threads in torch_cases:
    wall, cpu, torch_version = torch_rates(5, threads, kind)
    report(f"torch eager {kind} 1 seed, {threads} thread(s)", 1, wall, cpu)

  # The 16-run grid, lever by lever. "auto" is run_grid's default.
  grid = []  # (variant, devices, batching)
  grid.append((best, devices, "auto"))
  grid.append((best, devices, "vmap"))
  if not args.quick:
    grid.append((best, one, "map"))
    grid.append((best, one, "vmap"))
    for name in variants:
      if name != best:
        grid.append((name, devices, "auto"))
  for variant, devs, batching in grid:
    report(f"grid 4 seeds x 4 lr, {variant}, {len(devs)} dev, {batching}", 16,
           *chunk_rates(trainers[variant], 4, list(GRID_LRS), devs, batching))

  # -- the targets, side by side ------------------------------------------
  def ratio(a, b, k):
    return rows[a][k] / rows[b][k]

  print(f"# torch {torch_version}")
  torch1 = "torch eager nn.RNN 1 seed, 1 thread(s)"
  torch_all = f"torch eager nn.RNN 1 seed, {cores} thread(s)"
  print(f"TARGET one seed >= 2x torch.nn.RNN eager:  "
        f"{ratio(one_seed, torch_all, 0):5.2f}x wall (torch on {cores} "
        f"threads), {ratio(one_seed, torch1, 1):5.2f}x per CPU-second "
        f"(torch on 1 thread)  [{one_seed}: run_grid's default]")
  if one_seed != one_dev:
    print(f"  one seed on one device: {ratio(one_dev, torch_all, 0):5.2f}x "
          f"wall, {ratio(one_dev, torch1, 1):5.2f}x per CPU-second")
  limit = peak / (flops / 1e9)
  limit_cpu = peak_cpu / (flops / 1e9)
  grid_rows = {k: v for k, v in rows.items() if k.startswith("grid")}
  default = f"grid 4 seeds x 4 lr, {best}, {len(devices)} dev, auto"
  fastest = max(grid_rows, key=lambda k: grid_rows[k][0])
  print(f"matmul-limited grid rate: {peak:.1f} GFLOP/s / {flops / 1e9:.3f} "
        f"GFLOP = {limit:.1f} run-updates/s; target {TARGET_SHARE:.0%} = "
        f"{TARGET_SHARE * limit:.1f}")
  for label, key in (("default (run_grid)", default), ("fastest lever", fastest)):
    wall, cpu = rows[key]
    print(f"TARGET grid >= {TARGET_SHARE:.0%} of matmul-limited, {label}: "
          f"{wall:6.1f} run-updates/s wall = {100 * wall / limit:3.0f}%; "
          f"{cpu:6.1f} per CPU-second = {100 * cpu / limit_cpu:3.0f}% of the "
          f"peak's {limit_cpu:.1f} per CPU-second  [{key}]")

  # Where an update's time goes, per CPU-second of one seed on one device.
  fwd, bwd, optm, smp = (parts[k][1] for k in ("forward", "backward",
                                               "optimizer", "sampling"))
  engine = 1 / rows[one_dev][1]
  matmul_ms = flops / (small["matmul"][1] * 1e9)
  loop_ms = 2 * LENGTH * small["loop"][1] / 1e3
  print("where one update's CPU time goes (one seed, one device, ms per "
        "update per CPU-second; differences of the nested rows above):")
  for label, ms in (
      ("forward pass (loss)", fwd), ("backward pass", bwd - fwd),
      ("NAG update", optm - bwd), ("sampling the batch", smp - optm),
      ("engine: masking, evaluation, chunking", engine - smp),
      ("total (engine chunk, 1 seed)", engine)):
    print(f"  {label:42s} {1e3 * ms:6.2f} ms")
  in_loops = sum(cpu for _, cpu in loops.values())
  print(f"  of which the two time loops, timed alone: {1e3 * in_loops:6.2f}"
        f" ms; the rest of forward + backward (weight gradients, "
        f"projections, loss, transposes, copies): "
        f"{1e3 * (bwd - in_loops):6.2f} ms")
  print(f"  of which matmuls at the [100,100] chain rate "
        f"({small['matmul'][1]:.0f} GFLOP/s): {1e3 * matmul_ms:6.2f} ms; at "
        f"the 1024^2 peak: {1e3 * flops / (peak_cpu * 1e9):6.2f} ms")
  print(f"  of which loop overhead (2 x {LENGTH} scan iterations x "
        f"{small['loop'][1]:.2f} us): {loop_ms:6.2f} ms")
  print(f"  of which the forward loop's tanh and state writes ({LENGTH} x "
        f"{small['step'][1]:.2f} us): {LENGTH * small['step'][1] / 1e3:6.2f}"
        " ms")
  grid_cpu_ms = 1e3 / rows[default][1]
  print(f"  grid (default): {grid_cpu_ms:6.2f} CPU-ms per run-update, "
        f"vs {1e3 * engine:6.2f} for one seed alone")
  table5 = 448 * 50_000 / rows[default][0]
  print(f"Table 5 grid (448 runs x 50,000 updates) at the default grid rate: "
        f"{table5 / 3600:.1f} h here")
  print(f"# load average at end {os.getloadavg()[0]:.2f}; "
        f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
  main()
