"""Does the hidden state hold the mem-20 symbols? A linear (echo-state) probe.

For the Table 4 RNN at initialization, and for the runs of a Table 5
checkpoint (the paper-length grid's ``mem20-nag`` folder), fit a ridge
readout from the hidden state at step t to each of the 10 data symbols on
2,000 fresh sequences and report its accuracy on 2,000 others (chance: 20%),
with the recurrent matrix's spectral radius and the hidden-state norm:

  python experiments/table5_fidelity/probe_memory.py \\
      [--checkpoint runs/paper_table5/checkpoints/table5/mem20-nag]
"""

from __future__ import annotations

import argparse
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from jaxmomentum.models import RNN
from jaxmomentum.reproduce import paper

PROBLEM = paper.TABLE5["mem20"].problem
STEPS = (9, 40, 69)  # the last data symbol, mid-delay, the "go" step


def model(input_scale=0.1, radius=1.1):
  return RNN(output_size=PROBLEM.out_dim, hidden_size=100, head="softmax",
             init_recipe=paper.table4_rnn_init(
                 input_scale, output_bias=jnp.asarray(
                     paper.table4_output_bias(PROBLEM)),
                 spectral_radius=radius))


def probe(rnn, params=None, seed=0, n=4000):
  problem = PROBLEM
  raw = problem.sample(jax.random.key(1000 + seed), n)
  batch = problem.centered(raw)
  if params is None:
    params = rnn.init(jax.random.key(seed), batch.inputs[:1])
  _, state = rnn.apply(params, batch.inputs, mutable=["intermediates"])
  hidden = np.asarray(state["intermediates"]["hidden_states"][0], np.float64)
  symbols = np.asarray(jnp.argmax(raw.inputs[:, :problem.num_symbols,
                                             :problem.alphabet_size], -1))
  train, test = slice(0, n // 2), slice(n // 2, n)
  accuracy = {}
  for t in STEPS:
    x = np.concatenate([hidden[t], np.ones((n, 1))], 1)
    gram = x[train].T @ x[train] + 1e-3 * np.eye(x.shape[1])
    accs = []
    for k in range(problem.num_symbols):
      y = np.eye(problem.alphabet_size)[symbols[:, k]]
      w = np.linalg.solve(gram, x[train].T @ y[train])
      accs.append(np.mean(np.argmax(x[test] @ w, 1) == symbols[test, k]))
    accuracy[t] = float(np.mean(accs))
  w_hh = np.asarray(params["params"]["recurrent_kernel"], np.float64)
  return {"rho": float(np.abs(np.linalg.eigvals(w_hh)).max()),
          "h_norm_go": float(np.linalg.norm(hidden[69], axis=-1).mean()),
          **{f"acc_t{t}": a for t, a in accuracy.items()}}


def checkpoint_runs(directory: pathlib.Path):
  """The runs' parameters in a grid checkpoint (either format), read by
  ``experiments/table5_paper_length/report.py``."""
  import sys  # pylint: disable=import-outside-toplevel
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]
                         / "table5_paper_length"))
  import report  # pylint: disable=import-outside-toplevel
  grid = report.read_grid(directory)
  for run, (mu0, lr) in enumerate(zip(grid["grid"]["mu0"],
                                      grid["grid"]["learning_rate"])):
    yield (f"after {grid['steps_done']:,} updates: μ0={mu0:g}, ε={lr:g}",
           {"params": {k: jnp.asarray(v[run])
                       for k, v in grid["params"].items()}})


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--checkpoint", type=pathlib.Path)
  args = parser.parse_args()
  print("| run | spectral radius | mean |h| at go | probe accuracy t=9 | "
        "t=40 | t=69 (go) |\n|---|---|---|---|---|---|")
  rows = [(f"init, seed {s}" + (f", {k}" if k else ""), model(**kw), None, s)
          for s in (0, 1) for k, kw in (("", {}),)]
  rows += [(f"init, seed 0, {k}", model(**kw), None, 0) for k, kw in (
      ("input scale 0.01", {"input_scale": 0.01}),
      ("radius 1.0", {"radius": 1.0}), ("radius 1.2", {"radius": 1.2}))]
  if args.checkpoint:
    rows += [(label, model(), params, 0)
             for label, params in checkpoint_runs(args.checkpoint)]
  for label, rnn, params, seed in rows:
    r = probe(rnn, params, seed)
    print(f"| {label} | {r['rho']:.2f} | {r['h_norm_go']:.2f} | "
          f"{r['acc_t9']:.2f} | {r['acc_t40']:.2f} | {r['acc_t69']:.2f} |")


if __name__ == "__main__":
  main()
