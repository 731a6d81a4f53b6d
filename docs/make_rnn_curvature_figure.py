"""Top Gauss-Newton eigenvalues of the paper's RNN at initialization.

Writes ``docs/rnn_curvature_init.png`` and prints the Theorem 2.1 report
(``jaxmomentum.curvature.curvature_report``): the addition problem (T = 80),
100 tanh units with the Table 4 initialization, G = Jᵀ H_L J of the masked
squared error on 100 centered sequences, top 20 eigenvalues by Lanczos (60
steps), and for ε ∈ {1e-3, 1e-5, 1e-6} (from Table 5's grid) and
μ ∈ {0.9, 0.98, 0.995} NAG's effective momentum μ(1 − ελ) per direction and
the largest stable ε of CM and NAG (the figure's right panel: ε = 1e-6).

``models.RNN`` runs its recurrence through a ``custom_vjp`` (no forward
mode), so the Gauss-Newton product uses the same equations in plain JAX on
the same parameters (checked against ``model.apply`` below).

Run (about a minute on 2 CPU cores):

    .venv/bin/python docs/make_rnn_curvature_figure.py
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from jaxmomentum import curvature  # noqa: E402
from jaxmomentum import problems  # noqa: E402
from jaxmomentum.models import RNN  # noqa: E402
from jaxmomentum.reproduce import paper  # noqa: E402

LEARNING_RATES = (1e-3, 1e-5, 1e-6)  # Table 5's grid is 1e-3 ... 1e-6
PLOTTED_LEARNING_RATE = 1e-6
MOMENTA = (0.9, 0.98, 0.995)
TOP_K = 20


def plain_outputs(params, inputs):
  """models.RNN's equations in plain JAX (differentiable in forward mode)."""
  p = params["params"]

  def step(h, x):
    h = jnp.tanh(x @ p["input_kernel"] + h @ p["recurrent_kernel"]
                 + p["hidden_bias"])
    return h, h @ p["output_kernel"] + p["output_bias"]

  h0 = jnp.zeros((inputs.shape[0], p["recurrent_kernel"].shape[0]),
                 inputs.dtype)
  _, outputs = jax.lax.scan(step, h0, jnp.swapaxes(inputs, 0, 1))
  return jnp.swapaxes(outputs, 0, 1)


def main():
  problem = problems.addition(80)
  model = RNN(output_size=problem.out_dim,
              init_recipe=paper.table4_rnn_init(
                  paper.TABLE4_INPUT_SCALE_ADD_MUL, output_bias=0.0))
  batch = problem.centered(problem.sample(jax.random.key(1), 100))
  params = model.init(jax.random.key(0), batch.inputs[:1])
  gap = float(jnp.max(jnp.abs(plain_outputs(params, batch.inputs)
                              - model.apply(params, batch.inputs))))
  print(f"plain forward vs models.RNN: max |difference| {gap:.2e}")

  loss = curvature.squared_error(targets=lambda b: b.targets,
                                 weights=lambda b: b.mask)
  print(f"loss at init {float(loss(plain_outputs(params, batch.inputs), batch)):.4f}"
        f" (problem.loss "
        f"{float(problem.loss(model.apply(params, batch.inputs), batch)):.4f})")

  @jax.jit
  def eigenpairs(params, key):
    gv = curvature.gauss_newton_vp(lambda p, b: plain_outputs(p, b.inputs),
                                   loss, params, batch)
    return curvature.top_eigenvalues(gv, params, key, TOP_K, num_iters=60)

  values = eigenpairs(params, jax.random.key(2)).values
  for lr in LEARNING_RATES:
    for mu in MOMENTA:
      print(curvature.momentum_report(values, lr, mu).table())
      print()
  reports = [curvature.momentum_report(values, PLOTTED_LEARNING_RATE, mu)
             for mu in MOMENTA]

  fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
  idx = np.arange(1, TOP_K + 1)
  ax1.semilogy(idx, np.asarray(values), "o-", color="k")
  ax1.set_xlabel("eigenvalue index")
  ax1.set_ylabel("Gauss-Newton eigenvalue λ")
  ax1.set_title("RNN at init (add T=80, 100 tanh, Table 4)")
  for rep, color in zip(reports, ("C0", "C1", "C2")):
    mu = float(rep.momentum)
    ax2.plot(idx, np.asarray(rep.effective_momentum_nag), "o-", color=color,
             label=f"NAG μ(1-ελ), μ={mu:g}")
    ax2.axhline(mu, color=color, ls="--", lw=1, label=f"CM μ={mu:g}")
  ax2.set_xlabel("eigenvalue index")
  ax2.set_ylabel("effective momentum")
  ax2.set_title(f"Theorem 2.1 at ε = {PLOTTED_LEARNING_RATE:g}")
  ax2.legend(fontsize=7, ncol=2)
  fig.tight_layout()
  out = Path(__file__).with_name("rnn_curvature_init.png")
  fig.savefig(out, dpi=110)
  print(f"wrote {out}")


if __name__ == "__main__":
  main()
