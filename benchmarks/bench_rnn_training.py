"""RNN training speed: one seed, 4 seeds, a 16-run grid, vs PyTorch eager.

The paper's RNN (100 tanh units, 2 inputs, 1 linear output at every step,
squared error at the last step) on addition-like data (T=80, batch 100,
fresh sequences every update), trained with NAG, all measured in one run:

  raw     a jitted ``lax.scan`` of bare NAG updates, one seed, to isolate the
          model, one lever at a time: autodiff through the recurrence vs the
          package's hand-written backward
          (``jaxmomentum.models._recurrence.tanh_recurrence``, a
          ``jax.custom_vjp``); the batch-major -> time-major transpose done
          by the input-projection einsum (``"bti,ih->tbh"``, slow on XLA:CPU)
          vs on the small inputs before it; the package's whole-layer
          ``custom_vjp`` (``tanh_rnn``, ``lax.scan`` time loops); and
          the package's own ``models.RNN`` + ``problems.addition(80)``
          (sequences padded to 88);
  chunk   the program ``jaxmomentum.training.run_grid`` runs per chunk
          (``Trainer.run_chunk`` vmapped over runs, sharded over devices,
          state donated: sampling, NAG, divergence masking, evaluation;
          inline model with the inputs layout unless ``--source package``):
          (a) one seed, (b) 4 seeds, (c) a 16-run seed x learning-rate
          grid, on one device and sharded over every host device, with the
          runs of a device batched by ``vmap`` or run by ``lax.map``;
  torch   the same model and ``torch.optim.SGD(nesterov=True)`` in PyTorch
          eager on CPU (``torch==2.13.0``).

It prints updates/s per run, run-updates/s in total, the achieved GFLOP/s
(analytic count: 3 x the forward matmul FLOPs) against the machine's
measured matmul peak, and the ratios. The host-device count is a process
flag, so ``main`` calls ``training.use_all_cpu_cores()`` before JAX starts.

Run (from the repository root, after ``make test`` has built .venv):

    .venv/bin/python benchmarks/bench_rnn_training.py    # ~2-3 min on 2 idle cores
    .venv/bin/python benchmarks/bench_rnn_training.py --quick   # fewer cases
    .venv/bin/python benchmarks/bench_rnn_training.py --source package

``--source package`` uses ``jaxmomentum.models.RNN``,
``jaxmomentum.problems.addition(80)`` and ``jaxmomentum.nag`` instead of the
inline model and data (the default, self-contained so the numbers do not move
while those modules change).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import time

HIDDEN, INPUTS, OUTPUTS, LENGTH, BATCH = 100, 2, 1, 80, 100


def flops_per_update(length=LENGTH, batch=BATCH, hidden=HIDDEN, inputs=INPUTS,
                     outputs=OUTPUTS) -> float:
  """Matmul FLOPs of one update: forward 2*T*B*H*(H+I+O), backward twice it."""
  return 3.0 * 2 * length * batch * hidden * (hidden + inputs + outputs)


# -- the model, inline -------------------------------------------------------

def _jax_pieces():
  """The inline model, data and recurrences (imported after the flag)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from jax import lax  # pylint: disable=g-import-not-at-top

  def recurrence_autodiff(w_hh, pre, h0):
    def step(h, a_t):
      h = jnp.tanh(h @ w_hh + a_t)
      return h, h
    return lax.scan(step, h0, pre)[1]

  from jaxmomentum.models._recurrence import tanh_recurrence  # pylint: disable=g-import-not-at-top
  from jaxmomentum.models._recurrence import tanh_rnn  # pylint: disable=g-import-not-at-top

  def recurrence_custom(w_hh, pre, h0):
    # The package's hand-written backward through time (jax.custom_vjp).
    return tanh_recurrence(w_hh, pre, h0)

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

  def sample(key, batch_size):
    """Addition-like: noise, two markers (I in [0,8), J in [8,40)), sum."""
    k_val, k_i, k_j = jax.random.split(key, 3)
    values = jax.random.uniform(k_val, (batch_size, LENGTH))
    i = jax.random.randint(k_i, (batch_size, 1), 0, LENGTH // 10)
    j = jax.random.randint(k_j, (batch_size, 1), LENGTH // 10, LENGTH // 2)
    steps = jnp.arange(LENGTH)
    marker = ((steps == i) | (steps == j)).astype(jnp.float32)
    inputs = jnp.stack([values - 0.5, marker], axis=-1)  # roughly centered
    return inputs, jnp.sum(values * marker, axis=1) - 1.0

  def make_apply(recurrence, layout):
    """``layout``: where the batch-major -> time-major transpose happens.

    ``"inputs"`` transposes the small ``[B, T, 2]`` inputs before the input
    projection; ``"projection"`` (as ``models.RNN`` did) asks the einsum for
    a time-major ``[T, B, H]`` result straight from batch-major inputs, which
    XLA:CPU turns into a slow, transposing elementwise loop (~10 ms here,
    more than the whole forward recurrence).
    """
    def apply(params, inputs):
      if recurrence == "layer":
        # The package's whole-layer custom_vjp (models.RNN uses it).
        h0 = jnp.zeros((inputs.shape[0], HIDDEN))
        _, out = tanh_rnn(jnp.swapaxes(inputs, 0, 1), params["w_ih"],
                          params["b_h"], params["w_hh"], h0, params["w_ho"])
        return jnp.swapaxes(out, 0, 1) + params["b_o"]
      if layout == "inputs":
        pre = jnp.einsum("tbi,ih->tbh", jnp.swapaxes(inputs, 0, 1),
                         params["w_ih"]) + params["b_h"]
      else:
        pre = jnp.einsum("bti,ih->tbh", inputs, params["w_ih"]) + params["b_h"]
      h0 = jnp.zeros((inputs.shape[0], HIDDEN))
      hs = recurrence(params["w_hh"], pre, h0)
      if layout == "inputs":
        return jnp.swapaxes(hs @ params["w_ho"], 0, 1) + params["b_o"]
      return jnp.einsum("tbh,ho->bto", hs, params["w_ho"]) + params["b_o"]
    return apply

  def make_fns(recurrence, layout="inputs"):
    apply = make_apply(recurrence, layout)

    def loss(params, batch):
      inputs, target = batch
      return jnp.mean((apply(params, inputs)[:, -1, 0] - target) ** 2)

    def evaluate(params, batch):
      inputs, target = batch
      out = apply(params, inputs)[:, -1, 0]
      return {"loss": jnp.mean((out - target) ** 2),
              "error": jnp.mean(jnp.abs(out - target) > 0.04)}

    return loss, evaluate

  return {"autodiff": recurrence_autodiff, "custom_vjp": recurrence_custom,
          "layer": "layer", "init": init,
          "sample": sample, "make_fns": make_fns}


def _package_task():
  """The same task from jaxmomentum.models / problems (``--source package``)."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from jaxmomentum import models  # pylint: disable=g-import-not-at-top
  from jaxmomentum import problems  # pylint: disable=g-import-not-at-top

  problem = problems.addition(LENGTH)
  model = models.RNN(output_size=1, hidden_size=HIDDEN)
  dummy = jnp.zeros((1, problem.max_length, 2))

  def init(key):
    return model.init(key, dummy)

  def loss(params, batch):
    return problem.loss(model.apply(params, batch.inputs), batch)

  def evaluate(params, batch):
    out = model.apply(params, batch.inputs)
    return {"loss": problem.loss(out, batch),
            "error": problem.zero_one(out, batch)}

  return init, loss, evaluate, problem.sample


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


def matmul_peak_gflops(n=1024, iters=20) -> float:
  """GFLOP/s of a jitted float32 n x n matmul chain on the default device."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  a = jax.random.normal(jax.random.key(0), (n, n)) / jnp.sqrt(n)

  @jax.jit
  def chain(x):
    return jax.lax.fori_loop(0, iters, lambda _, y: y @ a, x)

  jax.block_until_ready(chain(a))
  wall, _ = best_of(lambda: jax.block_until_ready(chain(a)), 5)
  return 2.0 * n ** 3 * iters / wall / 1e9


def check_custom_vjp(pieces, name="custom_vjp") -> float:
  """Max relative difference of a custom_vjp gradient from autodiff."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  params = pieces["init"](jax.random.key(0))
  batch = pieces["sample"](jax.random.key(1), BATCH)
  grads = [jax.jit(jax.grad(pieces["make_fns"](pieces[name])[0]))(params, batch)
           for name in ("autodiff", name)]
  diffs = jax.tree.map(
      lambda a, b: float(jnp.max(jnp.abs(a - b)) / (jnp.max(jnp.abs(a)) + 1e-30)),
      *grads)
  return max(jax.tree.leaves(diffs))


def raw_rates(init, loss, sample, steps):
  """One seed: a jitted lax.scan of ``steps`` bare NAG updates (no engine)."""
  import jax  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  _, factory = _optimizer_factory()
  opt = factory(1e-4, 0.99)
  data_key = jax.random.key(1)

  def update(carry, t):
    params, state = carry
    batch = sample(jax.random.fold_in(data_key, t), BATCH)
    grads = jax.grad(loss)(params, batch)
    updates, state = opt.update(grads, state, params)
    return (optax.apply_updates(params, updates), state), None

  @jax.jit
  def run(params, state):
    return jax.lax.scan(update, (params, state), jax.numpy.arange(steps))[0]

  params = init(jax.random.key(0))
  state = opt.init(params)
  jax.block_until_ready(run(params, state))
  wall, cpu = best_of(lambda: jax.block_until_ready(run(params, state)))
  return steps / wall, steps / cpu


def chunk_rates(trainer, num_seeds, learning_rates, devices, batching):
  """Run-updates/s (wall, per CPU-second) of the runner's chunk program.

  Exactly the program ``run_grid`` compiles (its private placement helper):
  ``trainer.run_chunk`` over seeds x learning rates, the run axis sharded
  over ``devices``, batched per device with ``vmap`` or ``lax.map``, the
  state donated; timed here so each chunk is measured on both clocks.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from jaxmomentum.training import _runner  # pylint: disable=g-import-not-at-top
  placement = _runner._Placement(trainer, devices, batching)  # pylint: disable=protected-access
  runs = num_seeds * len(learning_rates)
  rows = -(-runs // placement.num_devices) * placement.num_devices
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


def torch_rates(steps, threads) -> tuple[float, float, str]:
  """(updates/s wall, per CPU-second, version) of PyTorch eager on CPU."""
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    return float("nan"), float("nan"), "not installed"
  torch.manual_seed(0)
  torch.set_num_threads(threads)
  w_ih = (0.001 * torch.randn(INPUTS, HIDDEN)).requires_grad_()
  w_hh = (1.1 * torch.randn(HIDDEN, HIDDEN) / HIDDEN ** 0.5).requires_grad_()
  b_h = torch.zeros(HIDDEN, requires_grad=True)
  w_ho = (0.1 * torch.randn(HIDDEN, OUTPUTS)).requires_grad_()
  b_o = torch.zeros(OUTPUTS, requires_grad=True)
  params = [w_ih, w_hh, b_h, w_ho, b_o]
  opt = torch.optim.SGD(params, lr=1e-4, momentum=0.99, nesterov=True)
  steps_t = torch.arange(LENGTH)

  def update():
    values = torch.rand(BATCH, LENGTH)
    i = torch.randint(0, LENGTH // 10, (BATCH, 1))
    j = torch.randint(LENGTH // 10, LENGTH // 2, (BATCH, 1))
    marker = ((steps_t == i) | (steps_t == j)).float()
    inputs = torch.stack([values - 0.5, marker], dim=-1)
    target = (values * marker).sum(1) - 1.0
    pre = torch.einsum("bti,ih->tbh", inputs, w_ih) + b_h
    h = torch.zeros(BATCH, HIDDEN)
    hs = []
    for t in range(LENGTH):
      h = torch.tanh(pre[t] + h @ w_hh)
      hs.append(h)
    out = torch.einsum("tbh,ho->bto", torch.stack(hs), w_ho) + b_o
    loss = ((out[:, -1, 0] - target) ** 2).mean()
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
                      help="fewer cases (no autodiff engine cases)")
  parser.add_argument("--source", choices=("inline", "package"),
                      default="inline")
  parser.add_argument("--devices", type=int, default=None,
                      help="host CPU devices (default: one per core)")
  args = parser.parse_args()

  from jaxmomentum import training  # pylint: disable=g-import-not-at-top
  num_cpu_devices = training.use_all_cpu_cores(args.devices)  # before JAX
  import jax  # pylint: disable=g-import-not-at-top

  pieces = _jax_pieces()
  opt_name, factory = _optimizer_factory()
  devices = jax.devices()
  one = devices[:1]
  flops = flops_per_update()
  cores = os.cpu_count() or 1
  print(f"# RNN training benchmark: H={HIDDEN}, T={LENGTH}, batch={BATCH}, "
        f"{opt_name}, source={args.source}")
  print(f"# jax {jax.__version__}, {devices[0].platform} x {len(devices)} "
        f"device(s) ({num_cpu_devices} host devices requested), {cores} "
        f"cores, {platform.processor() or platform.machine()}, load average "
        f"at start {os.getloadavg()[0]:.2f}")
  print(f"# {flops / 1e6:.0f} MFLOP per update (3 x forward matmuls); rates "
        f"are the best of {REPEATS}; 'wall' = throughput seen, 'cpu' = per "
        "CPU-second of this process (robust to other load)")
  peak = matmul_peak_gflops()
  print(f"matmul peak (1024^2 float32, jit, one device, wall): {peak:.1f} "
        "GFLOP/s")
  print(f"custom_vjp gradient vs autodiff, max relative difference: "
        f"{check_custom_vjp(pieces):.1e} (recurrence), "
        f"{check_custom_vjp(pieces, 'layer'):.1e} (layer)")

  rows = {}

  def report(name, runs, wall, cpu):
    rows[name] = (wall, cpu)
    print(f"{name:56s} {wall / runs:7.1f} upd/s/run {wall:7.1f} run-upd/s "
          f"wall {cpu:7.1f} cpu  {wall * flops / 1e9:5.1f} GFLOP/s "
          f"({100 * wall * flops / 1e9 / peak:3.0f}% peak)", flush=True)

  # Raw rows, one lever at a time: the hand-written backward, then the
  # input-projection layout, then the package's model and data (T <= 88).
  package_task = _package_task()
  raw = [("autodiff, projection layout", "autodiff", "projection"),
         ("custom_vjp, projection layout", "custom_vjp", "projection"),
         ("custom_vjp, inputs layout", "custom_vjp", "inputs"),
         ("custom_vjp layer", "layer", "inputs")]
  raw_steps = 20
  for label, name, layout in raw:
    loss, _ = pieces["make_fns"](pieces[name], layout)
    report(f"raw scan 1 seed, {label}", 1,
           *raw_rates(pieces["init"], loss, pieces["sample"], raw_steps))
  init, loss, _, sample = package_task
  report("raw scan 1 seed, package", 1, *raw_rates(init, loss, sample,
                                                   raw_steps))

  if args.source == "package":
    variants = {"package": package_task}
  else:
    variants = {}
    for name in ("autodiff", "custom_vjp", "layer"):
      loss, evaluate = pieces["make_fns"](pieces[name])
      variants[name] = (pieces["init"], loss, evaluate, pieces["sample"])
  # 4 updates per chunk, evaluated on a 10-sequence batch: in a real run the
  # evaluation comes every ~1,000 updates, so it is kept out of the timing.
  chunk = 4
  config = training.TrainConfig(num_steps=chunk, batch_size=BATCH,
                                eval_every=chunk, eval_batch_size=10)
  trainers = {name: training.make_train(config, init, loss, sample, factory,
                                        eval_fn=evaluate)
              for name, (init, loss, evaluate, sample) in variants.items()}
  best = "package" if args.source == "package" else "layer"
  full = not args.quick and args.source != "package"
  if full:  # what divergence masking costs
    init, loss, evaluate, sample = variants[best]
    trainers["layer, no divergence check"] = training.make_train(
        dataclasses.replace(config, detect_divergence=False), init, loss,
        sample, factory, eval_fn=evaluate)
  lrs4 = [1e-3, 1e-4, 1e-5, 1e-6]
  # (variant, label, seeds, learning rates, devices, batching)
  cases = [(best, "(a) 1 seed", 1, [1e-4], one, "map")]
  if full:
    cases.append(("custom_vjp", "(a) 1 seed", 1, [1e-4], one, "map"))
    cases.append(("autodiff", "(a) 1 seed", 1, [1e-4], one, "map"))
    cases.append(("layer, no divergence check", "(a) 1 seed", 1, [1e-4],
                  one, "map"))
  cases.append((best, "(b) 4 seeds", 4, [1e-4], devices, "auto"))
  if full:
    cases.append((best, "(c) 4 seeds x 4 lr", 4, lrs4, one, "vmap"))
    cases.append((best, "(c) 4 seeds x 4 lr", 4, lrs4, one, "map"))
    cases.append((best, "(c) 4 seeds x 4 lr", 4, lrs4, devices, "vmap"))
  cases.append((best, "(c) 4 seeds x 4 lr", 4, lrs4, devices, "auto"))
  if full:
    cases.append(("custom_vjp", "(c) 4 seeds x 4 lr", 4, lrs4, devices,
                  "auto"))
    cases.append(("autodiff", "(c) 4 seeds x 4 lr", 4, lrs4, devices,
                  "auto"))
  for variant, label, seeds, lrs, devs, batching in cases:
    report(f"chunk {label}, {variant}, {len(devs)} dev, {batching}",
           seeds * len(lrs),
           *chunk_rates(trainers[variant], seeds, lrs, devs, batching))

  torch_version = "?"
  for threads in sorted({1, cores}):
    wall, cpu, torch_version = torch_rates(5, threads)
    report(f"torch eager 1 seed, {threads} thread(s)", 1, wall, cpu)

  def ratio(a, b, k):
    return rows[a][k] / rows[b][k]

  one_seed = f"chunk (a) 1 seed, {best}, 1 dev, map"
  grid_all = f"chunk (c) 4 seeds x 4 lr, {best}, {len(devices)} dev, auto"
  torch1 = "torch eager 1 seed, 1 thread(s)"
  torch_all = f"torch eager 1 seed, {cores} thread(s)"
  print(f"# torch {torch_version}")
  print(f"one seed, JAX engine / torch eager:   {ratio(one_seed, torch1, 1):5.2f}x"
        f" per CPU-second (1 thread), {ratio(one_seed, torch_all, 0):5.2f}x "
        f"wall (torch on {cores} threads)")
  def raw_row(label):
    return f"raw scan 1 seed, {label}"

  print(f"custom_vjp / autodiff, raw one seed:   "
        f"{ratio(raw_row(raw[1][0]), raw_row(raw[0][0]), 1):5.2f}x"
        " per CPU-second")
  print(f"inputs / projection layout, raw:       "
        f"{ratio(raw_row(raw[2][0]), raw_row(raw[1][0]), 1):5.2f}x"
        " per CPU-second")
  print(f"layer / recurrence custom_vjp, raw:    "
        f"{ratio(raw_row(raw[3][0]), raw_row(raw[2][0]), 1):5.2f}x"
        " per CPU-second")
  same_raw = raw_row("package" if best == "package" else raw[3][0])
  print(f"engine chunk (a) / raw scan, same model: "
        f"{ratio(one_seed, same_raw, 1):5.2f}x per CPU-second, "
        f"{ratio(one_seed, same_raw, 0):5.2f}x wall")
  if full:
    nodiv = "chunk (a) 1 seed, layer, no divergence check, 1 dev, map"
    print(f"divergence check on / off, chunk (a):  "
          f"{ratio(one_seed, nodiv, 1):5.2f}x per CPU-second")
  print(f"16-run grid on {len(devices)} dev / 1 seed on 1 dev:  "
        f"{ratio(grid_all, one_seed, 0):5.2f}x wall, "
        f"{ratio(grid_all, one_seed, 1):5.2f}x per CPU-second")
  if full:
    vmap1 = "chunk (c) 4 seeds x 4 lr, layer, 1 dev, vmap"
    map1 = "chunk (c) 4 seeds x 4 lr, layer, 1 dev, map"
    grid_rec = f"chunk (c) 4 seeds x 4 lr, custom_vjp, {len(devices)} dev, auto"
    print(f"16-run grid, layer / recurrence custom_vjp: "
          f"{ratio(grid_all, grid_rec, 1):5.2f}x per CPU-second, "
          f"{ratio(grid_all, grid_rec, 0):5.2f}x wall")
    print(f"16 runs on 1 dev, lax.map / vmap:      "
          f"{ratio(map1, vmap1, 1):5.2f}x per CPU-second, "
          f"{ratio(map1, vmap1, 0):5.2f}x wall")
  table5 = 448 * 50_000 / rows[grid_all][0]
  print(f"Table 5 grid (448 runs x 50,000 updates) at the 16-run grid rate: "
        f"{table5 / 3600:.1f} h here")
  print(f"# load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
  main()
