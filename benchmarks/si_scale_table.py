"""What the SI scale does to a deep autoencoder at init (Table 3's mechanism).

A measurement, not a test: for each sparse-initialization scale in
{0.25, 0.5, 1, 2, 4} it builds ``DeepAutoencoder(arch, init_scale)`` with the
same key (the same connections and N(0, 1) draws, only the scale differs),
feeds a batch of uniform inputs and reports, averaged over seeds:

* the spread over inputs of the first, third and last hidden layers, of the
  code and of the output (std over the batch, mean over units);
* the fraction of saturated logistic units (< 0.01 or > 0.99);
* |∇W1| of the squared reconstruction error, and its ratio to scale 1.

It prints the table quoted in the README and in ``DeepAutoencoder``'s
docstring, then checks the claims made there (the first-layer gradient and
the output's spread grow with the scale and are < 1% of scale 1's at 0.25;
small scales never saturate, scale 4 saturates over half the units) and
exits non-zero if one fails.

Run (from the repository root; about 20 s on 2 cores):

    .venv/bin/python benchmarks/si_scale_table.py            # MNIST, 2 seeds
    .venv/bin/python benchmarks/si_scale_table.py --arch curves --seeds 4
"""

from __future__ import annotations

import argparse
import functools
import sys

import jax
import jax.numpy as jnp
import numpy as np

from jaxmomentum.reproduce import paper
from jaxmomentum.models import DeepAutoencoder

SI_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)


@functools.partial(jax.jit, static_argnums=2)
def _statistics_at(params, x, arch):
  """Statistics of one autoencoder at init (vmapped over scales)."""
  model = DeepAutoencoder(arch)
  depth = len(arch.encoder_sizes) - 1
  out, state = model.apply(params, x, capture_intermediates=True)
  pre = [state["intermediates"][f"{part}_{i}"]["__call__"][0]
         for part in ("encoder", "decoder") for i in range(depth)]
  hidden = [jax.nn.sigmoid(p) for i, p in enumerate(pre)
            if i not in (depth - 1, 2 * depth - 1)]     # not code, output
  saturated = jnp.concatenate(
      [((h < 0.01) | (h > 0.99)).ravel() for h in hidden])

  def loss(params):
    return jnp.mean(jnp.sum((model.apply(params, x) - x) ** 2, -1))

  grad = jax.grad(loss)(params)["params"]["encoder_0"]["kernel"]
  return {
      "std_hidden": jnp.stack([h.std(0).mean() for h in hidden]),
      "std_code": pre[depth - 1].std(0).mean(),
      "std_output": out.std(0).mean(),
      "saturated": saturated.mean(),
      "grad_w1": jnp.linalg.norm(grad),
  }


def statistics(seed: int, arch, batch: int = 64) -> dict:
  """At init, per SI scale: activation spread, saturation, |∇W1|."""
  x = jnp.asarray(np.random.default_rng(seed).uniform(
      size=(batch, arch.input_dim)), jnp.float32)
  # Eager init reuses the initializer's compiled kernels across scales and
  # seeds (a jitted init would recompile every draw).
  params = [DeepAutoencoder(arch, init_scale=s).init(jax.random.key(seed), x)
            for s in SI_SCALES]
  stacked = jax.tree.map(lambda *l: jnp.stack(l), *params)
  return jax.vmap(_statistics_at, in_axes=(0, None, None))(stacked, x, arch)


def format_table(s: dict) -> str:
  lines = ["| scale | std h1 | std h3 | std last h | std code | std output "
           "| saturated | grad W1 | grad W1 / at 1 |", "|" + "---|" * 9]
  for i, scale in enumerate(SI_SCALES):
    lines.append(
        f"| {scale:g} | {s['std_hidden'][i, 0]:.3f} "
        f"| {s['std_hidden'][i, 2]:.2g} | {s['std_hidden'][i, -1]:.2g} "
        f"| {s['std_code'][i]:.2g} | {s['std_output'][i]:.2g} "
        f"| {s['saturated'][i]:.3f} | {s['grad_w1'][i]:.3g} "
        f"| {s['grad_w1'][i] / s['grad_w1'][2]:.2g} |")
  return "\n".join(lines)


def failed_claims(s: dict) -> list[str]:
  """The docstring's claims about the table that do not hold."""
  grad, out, sat = s["grad_w1"], s["std_output"], s["saturated"]
  decay = s["std_hidden"][:, -1] / s["std_hidden"][:, 0]   # last / first
  claims = {
      "|∇W1| grows with the scale": np.all(np.diff(grad) > 0),
      "|∇W1| at 0.25 < 1% of scale 1's": grad[0] < 1e-2 * grad[2],
      "output spread grows with the scale": np.all(np.diff(out) > 0),
      "output spread at 0.25 < 1% of scale 1's": out[0] < 1e-2 * out[2],
      "variations die out with depth at 0.25, not at 1":
          decay[0] < 1e-2 and decay[2] > 0.05,
      "saturation grows with the scale": np.all(np.diff(sat) > 0),
      "no saturation at 0.25, over half at 4": sat[0] < 0.01 and sat[-1] > 0.5,
  }
  return [claim for claim, holds in claims.items() if not holds]


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--arch", choices=("mnist", "curves"), default="mnist")
  parser.add_argument("--seeds", type=int, default=2)
  args = parser.parse_args(argv)
  arch = {"mnist": paper.MNIST, "curves": paper.CURVES}[args.arch]
  runs = [statistics(seed, arch) for seed in range(args.seeds)]
  s = jax.tree.map(lambda *r: np.mean(np.stack(r), 0), *runs)
  print(f"{arch.name} autoencoder at init, 64 uniform inputs, mean of "
        f"{args.seeds} seeds\n")
  print(format_table(s))
  failed = failed_claims(s)
  for claim in failed:
    print(f"FAILED: {claim}")
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
