"""Table 5's HF row (ours, not in the paper) alone, without the momentum
grids: ``jaxmomentum.reproduce._hf_rnn.run_hf`` on the named rows under the
quick (default) or paper protocol, with the wall time and cost per row.

  python benchmarks/hf_table5_quick.py add mem20 [--protocol quick]
"""

import argparse
import time

import numpy as np

from jaxmomentum import _machine
from jaxmomentum.reproduce import _hf_rnn
from jaxmomentum.reproduce import _protocols
from jaxmomentum.reproduce import paper
from jaxmomentum.reproduce._rnn_tables import protocol_problem


def rnn_problem(row, rnn):
  """The row's problem in the protocol's memorization layout."""
  return protocol_problem(row.problem, rnn)


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("rows", nargs="+", choices=list(paper.TABLE5))
  parser.add_argument("--protocol", choices=("quick", "paper"),
                      default="quick")
  parser.add_argument("--out", default=None,
                      help="checkpoint folder (default: none)")
  args = parser.parse_args()
  rnn = _protocols.PROTOCOLS[args.protocol][0]
  hf = _hf_rnn.hf_protocol_for(rnn)
  print(_machine.machine_line())
  print(hf.describe())
  for key in args.rows:
    row = paper.TABLE5[key]
    tic = time.perf_counter()
    result = _hf_rnn.run_hf(key, rnn, hf, args.out, progress=False,
                            log=lambda _: None)
    seconds = time.perf_counter() - tic
    cell = _hf_rnn.hf_cell(key, result, hf)
    errors = result.final("error")[:, 0] * row.unit_factor
    biases = (rnn_problem(row, rnn).biases_baseline().mean_predictor_error
              * row.unit_factor)
    print(f"{row.label}: zero-one error {cell.ours.mean:.3g} ± "
          f"{cell.ours.std:.3g} {row.unit} (seeds: "
          f"{', '.join(f'{e:.3g}' for e in errors)}; biases: ours "
          f"{biases:.3g}, the paper's {paper.lookup('5', key, 'biases'):g}), loss "
          f"{np.mean(result.final('loss')):.4g}, "
          f"{np.mean(result.final('grad_evals')):,.0f} gradient-equivalents "
          f"per run, λ {np.round(result.final('damping')[:, 0], 4).tolist()}"
          f", {seconds:.0f} s wall (compile included)")


if __name__ == "__main__":
  main()
