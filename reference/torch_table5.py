"""An independent PyTorch reference for the paper's Table 5 setup.

Sutskever, Martens, Dahl & Hinton (2013), "On the importance of
initialization and momentum in deep learning", Section 4 (RNNs), written from
the paper and from the project's notes on the 2011 Hessian-free RNN release
(``shared/PROBLEMS.md``) only. It imports nothing from ``jaxmomentum``: it is
the cross-check that our JAX stack is measured against
(``tests/test_torch_reference.py``, ``benchmarks/table5_reference_runs.py``).

What it implements, and where each piece comes from:

* ``AddProblem`` -- the addition problem ("add T=80") in the 2011 release's
  layout: per sequence a target step ``tau`` uniform on the integers
  [T, 1.1T) (80..87), arrays padded to 1.1T steps; channel 0 is U[0,1] noise,
  channel 1 a marker: -1 at step 0, +1 at I in [f, 10f) and J in [10f, 50f)
  (f = T/100, integer bounds: I in 0..7, J in 8..39 for T = 80; a +1 at
  I = 0 overwrites the -1), -1 at tau - 3; target A + B (the values at I and
  J) at step tau only, one linear output, squared error; zero-one error:
  |output - target| > 0.04 (Section 4.2).
* ``MemProblem`` -- noiseless memorization ("mem-20 T=80": 10 symbols from an
  alphabet of 5; "mem-5 T=200": 5 binary symbols): input one-hot over
  alphabet + 2 channels (symbols, go, blank), data at steps 0..n-1, go at
  T-n-1, blank elsewhere; target one-hot over alphabet + 1 (symbols, blank),
  blank before T-n then the data; softmax and cross-entropy at every step;
  zero-one error: fraction of time steps whose argmax is wrong (Section 4.2).
* centering (Section 4.1, "centering (mean subtraction) of both the inputs
  and the outputs"): inputs minus their known per-channel means (time
  averaged), linear targets minus their known mean; softmax targets stay
  one-hot.
* ``init_params`` -- Table 4: W_ih input_scale * N(0,1) (0.001 add/mul, 0.1
  memorization), W_hh 15 nonzero N(0,1) incoming weights per unit rescaled to
  spectral radius 1.1 (Section 4.1), W_ho 0.1 * N(0,1), b_h = 0, b_o = the
  average target ("average of outputs"; the mean one-hot vector for softmax
  outputs unless ``out_bias="log_mean"``).
* ``rnn_forward`` -- the 100-unit tanh RNN (Section 4): h_t = tanh(W_hh
  h_{t-1} + W_ih x_t + b_h), h_{-1} = 0, o_t = W_ho h_t + b_o.
* ``loss_and_error`` -- the objective in two normalizations: ``"mean"`` (mean
  over counted steps; squared error without 1/2) and ``"sum"`` (the 2011
  release: per sequence the sum over its counted steps of 1/2 squared error or
  of cross-entropy, averaged over sequences).
* ``momentum_step`` -- Section 2: CM (Eqs. 1-2) v <- mu v - eps grad f(theta),
  NAG (Eqs. 3-4) v <- mu v - eps grad f(theta + mu v); theta <- theta + v,
  with the Section 4.2 schedule mu = 0.9 for the first ``warmup`` updates,
  then mu0.
* ``traces`` -- what "establishing communication" (Table 5 caption) depends
  on, on one fixed batch: the gradient norm reaching W_ih and how much of it
  comes from the marked steps, |dL/dh_t| and |dL/dx_t| at the marked steps vs
  at the end, the spectral radius of W_hh, the sensitivity |dh_end/dx_mark|
  and the output's derivative d o_end / d x_mark (1 for a solved add problem).

CLI::

  python reference/torch_table5.py --problem add --steps 300 --lr 1e-5 \
      --mu0 0.995 --method nag --seed 0 --every 50 --out add.json

Tensors are batch-major: inputs (B, T, C), targets (B, T, O), mask (B, T).
Parameters use the math layout of the equations above: ``W_ih`` (H, C),
``W_hh`` (H, H), ``W_ho`` (O, H), ``b_h`` (H,), ``b_o`` (O,).
"""

import argparse
import dataclasses
import json
import math
import platform
import sys
import time

import torch

PARAM_NAMES = ("W_ih", "W_hh", "b_h", "W_ho", "b_o")


# ----------------------------------------------------------------------------
# Problems (Section 4, Hochreiter & Schmidhuber 1997; 2011 release layout)
# ----------------------------------------------------------------------------

@dataclasses.dataclass
class Batch:
  """One minibatch: raw (uncentered) inputs/targets and bookkeeping.

  ``marks`` (B, M) are the steps whose inputs the target depends on (add: I
  and J; memorization: the data steps), ``mark_targets`` (B, M) the step at
  which each mark's information is needed (add: tau for both; memorization:
  the recall step T - n + k), ``end`` (B,) the last counted step.
  """
  x: torch.Tensor
  y: torch.Tensor
  mask: torch.Tensor
  marks: torch.Tensor
  mark_targets: torch.Tensor
  end: torch.Tensor


class AddProblem:
  """The addition problem, 2011-release layout (see the module docstring).

  ``target="sum"`` is the release's A + B; ``"mean"`` is (A + B) / 2, a
  variant of later generators (PROBLEMS.md), kept for calibration.
  """

  kind = "linear"

  def __init__(self, T=80, tolerance=0.04, target="sum"):
    self.T = T
    self.name = f"add{T}"
    self.tolerance = tolerance
    self.target = target
    self.n_in, self.n_out = 2, 1
    # Lengths and marker ranges scale with f = T/100; the release writes them
    # as int(x * f) (here in integer arithmetic, (x T) // 100), e.g. T=80:
    # tau in [80, 88), I in [0, 8), J in [8, 40).
    def f(x):
      return (x * T) // 100
    self.tau_range = (f(100), max(f(110), f(100) + 1))
    self.i_range = (f(1), f(10))
    self.j_range = (f(10), f(50))
    self.T_max = self.tau_range[1]

  @property
  def input_mean(self):
    """Known per-channel input means, averaged over the T_max padded steps.

    Noise: 0.5 (U[0,1]). Marker: per sequence +1 at I and J, -1 at tau - 3,
    and -1 at step 0 unless I = 0 overwrites it, so its expected sum is
    P(I = 0) = 1 / |I range| when the I range starts at 0 (1/8 for T=80),
    and its mean that over T_max (1/704 for T=80).
    """
    lo, hi = self.i_range
    p_i0 = 1.0 / (hi - lo) if lo == 0 else 0.0
    return [0.5, p_i0 / self.T_max]

  @property
  def target_mean(self):
    return [1.0 if self.target == "sum" else 0.5]

  def sample(self, batch_size, gen, dtype=torch.float64):
    """Draws ``batch_size`` fresh sequences with ``gen`` (torch.Generator)."""
    B, Tm = batch_size, self.T_max
    x = torch.zeros(B, Tm, 2, dtype=dtype)
    x[:, :, 0] = torch.rand(B, Tm, generator=gen, dtype=dtype)
    tau = torch.randint(*self.tau_range, (B,), generator=gen)
    i = torch.randint(*self.i_range, (B,), generator=gen)
    j = torch.randint(*self.j_range, (B,), generator=gen)
    ar = torch.arange(B)
    a = x[ar, i, 0].clone()
    b = x[ar, j, 0].clone()
    x[:, 0, 1] = -1.0
    x[ar, i, 1] = 1.0
    x[ar, j, 1] = 1.0
    x[ar, tau - 3, 1] = -1.0
    y = torch.zeros(B, Tm, 1, dtype=dtype)
    val = a + b if self.target == "sum" else (a + b) / 2
    y[ar, tau, 0] = val
    mask = torch.zeros(B, Tm, dtype=dtype)
    mask[ar, tau] = 1.0
    marks = torch.stack([i, j], 1)
    return Batch(x, y, mask, marks, torch.stack([tau, tau], 1), tau)


class MemProblem:
  """Noiseless memorization (mem-5, mem-20), see the module docstring."""

  kind = "softmax"

  def __init__(self, n_symbols=10, alphabet=5, T=80):
    self.n, self.K, self.T = n_symbols, alphabet, T
    self.name = f"mem{n_symbols * (2 if alphabet == 5 else 1)}_T{T}"
    self.n_in, self.n_out = alphabet + 2, alphabet + 1
    self.T_max = T

  @property
  def input_mean(self):
    """Time-averaged channel means: each symbol n/(T K), go 1/T, blank
    (T - n - 1)/T."""
    n, K, T = self.n, self.K, self.T
    return [n / (T * K)] * K + [1.0 / T, (T - n - 1) / T]

  @property
  def target_mean(self):
    n, K, T = self.n, self.K, self.T
    return [n / (T * K)] * K + [(T - n) / T]

  def sample(self, batch_size, gen, dtype=torch.float64):
    B, T, n, K = batch_size, self.T, self.n, self.K
    data = torch.randint(0, K, (B, n), generator=gen)
    x = torch.zeros(B, T, K + 2, dtype=dtype)
    x[:, :, K + 1] = 1.0                        # blank
    x[:, :n, K + 1] = 0.0
    x[:, :n, :K] = torch.nn.functional.one_hot(data, K).to(dtype)
    x[:, T - n - 1, K + 1] = 0.0
    x[:, T - n - 1, K] = 1.0                    # go
    y = torch.zeros(B, T, K + 1, dtype=dtype)
    y[:, :, K] = 1.0                            # blank
    y[:, T - n:, K] = 0.0
    y[:, T - n:, :K] = torch.nn.functional.one_hot(data, K).to(dtype)
    mask = torch.ones(B, T, dtype=dtype)
    steps = torch.arange(n)
    marks = steps.expand(B, n).clone()
    return Batch(x, y, mask, marks, marks + (T - n),
                 torch.full((B,), T - 1, dtype=torch.long))


def make_problem(name, T=None, **kw):
  """``add`` (default T=80), ``mem20`` (10 symbols of 5, T=80), ``mem5`` (5
  binary symbols, T=200)."""
  if name == "add":
    return AddProblem(T=T or 80, **kw)
  if name == "mem20":
    return MemProblem(10, 5, T=T or 80, **kw)
  if name == "mem5":
    return MemProblem(5, 2, T=T or 200, **kw)
  raise ValueError(f"unknown problem {name!r}")


def center(problem, batch, centered=True):
  """Section 4.1 centering: returns (inputs, targets) for the model; linear
  targets are shifted by their known mean, softmax targets are not."""
  if not centered:
    return batch.x, batch.y
  dt = batch.x.dtype
  x = batch.x - torch.tensor(problem.input_mean, dtype=dt)
  y = batch.y
  if problem.kind == "linear":
    y = (y - torch.tensor(problem.target_mean, dtype=dt)) * batch.mask[..., None]
  return x, y


# ----------------------------------------------------------------------------
# Model and Table 4 initialization
# ----------------------------------------------------------------------------

def spectral_radius(w):
  return float(torch.linalg.eigvals(w.detach().double()).abs().max())


def init_params(problem, hidden=100, gen=None, dtype=torch.float64,
                input_scale=None, radius=1.1, fan_in=15, out_scale=0.1,
                centered=True, out_bias="mean"):
  """Table 4 initialization (see the module docstring).

  ``input_scale`` defaults to 0.001 for linear-output (add/mul) problems and
  0.1 for memorization. ``out_bias``: ``"mean"`` (Table 4: the average
  target, in the centered space when ``centered``), ``"log_mean"`` (log of the
  average one-hot target, so the initial softmax equals the target marginal),
  or ``"zero"``. Linear outputs use the average target either way. For
  mem-20 the choice matters at the start: the initial cross-entropy is about
  1.27 nats per step with ``"mean"`` (a nearly uniform softmax) against 0.57
  with ``"log_mean"`` (measured; jaxmomentum uses the log form).
  """
  if input_scale is None:
    input_scale = 0.001 if problem.kind == "linear" else 0.1
  H, C, O = hidden, problem.n_in, problem.n_out
  w_ih = input_scale * torch.randn(H, C, generator=gen, dtype=torch.float64)
  w_hh = torch.zeros(H, H, dtype=torch.float64)
  k = min(fan_in, H)
  for u in range(H):
    src = torch.randperm(H, generator=gen)[:k]
    w_hh[u, src] = torch.randn(k, generator=gen, dtype=torch.float64)
  w_hh *= radius / spectral_radius(w_hh)
  w_ho = out_scale * torch.randn(O, H, generator=gen, dtype=torch.float64)
  mean = torch.tensor(problem.target_mean, dtype=torch.float64)
  if out_bias == "zero":
    b_o = torch.zeros(O, dtype=torch.float64)
  elif problem.kind == "linear":
    b_o = torch.zeros(O, dtype=torch.float64) if centered else mean
  elif out_bias == "log_mean":
    b_o = mean.log()
  else:
    b_o = mean
  params = dict(W_ih=w_ih, W_hh=w_hh, b_h=torch.zeros(H, dtype=torch.float64),
                W_ho=w_ho, b_o=b_o)
  return {k: v.to(dtype) for k, v in params.items()}


def rnn_forward(params, x):
  """Section 4's tanh RNN on batch-major ``x`` (B, T, C): returns the hidden
  states (list of T tensors (B, H), kept separate so autograd can give
  dL/dh_t) and the outputs (B, T, O)."""
  B, T, _ = x.shape
  pre_in = x @ params["W_ih"].T + params["b_h"]
  h = torch.zeros(B, params["W_hh"].shape[0], dtype=x.dtype)
  hs = []
  for t in range(T):
    h = torch.tanh(pre_in[:, t] + h @ params["W_hh"].T)
    hs.append(h)
  out = torch.stack(hs, 1) @ params["W_ho"].T + params["b_o"]
  return hs, out


def loss_and_error(problem, out, y, mask, norm="mean"):
  """The training objective and the Section 4.2 zero-one error.

  norm="mean": mean over counted steps (squared error, no 1/2; cross-entropy).
  norm="sum": 2011 release -- per sequence, sum over counted steps of
  1/2 squared error (or cross-entropy), averaged over sequences.
  Zero-one: linear, |o - y| > tolerance at a counted step; softmax, argmax
  mismatch; as a fraction of counted steps.
  """
  if problem.kind == "linear":
    per_step = ((out - y) ** 2).sum(-1)
    wrong = ((out - y).abs() > problem.tolerance).any(-1)
  else:
    per_step = -(y * torch.log_softmax(out, -1)).sum(-1)
    wrong = out.argmax(-1) != y.argmax(-1)
  counted = mask.sum()
  if norm == "mean":
    loss = (per_step * mask).sum() / counted
  elif norm == "sum":
    half = 0.5 if problem.kind == "linear" else 1.0
    loss = half * (per_step * mask).sum() / mask.shape[0]
  else:
    raise ValueError(f"unknown norm {norm!r}")
  error = (wrong.to(mask.dtype) * mask).sum() / counted
  return loss, error


def objective(params, problem, x, y, mask, norm="mean"):
  _, out = rnn_forward(params, x)
  return loss_and_error(problem, out, y, mask, norm)


def loss_and_grads(params, problem, x, y, mask, norm="mean"):
  """(loss, error, grads dict) at ``params``."""
  p = {k: v.detach().requires_grad_(True) for k, v in params.items()}
  loss, err = objective(p, problem, x, y, mask, norm)
  grads = torch.autograd.grad(loss, [p[k] for k in PARAM_NAMES])
  return loss.detach(), err.detach(), dict(zip(PARAM_NAMES, grads))


# ----------------------------------------------------------------------------
# Section 2: CM and NAG in Sutskever form, Section 4.2 momentum schedule
# ----------------------------------------------------------------------------

def momentum_at(step, mu0, warmup=1000, mu_warm=0.9):
  """Section 4.2: mu = 0.9 for the first ``warmup`` updates, then mu0."""
  return mu_warm if step < warmup else mu0


def momentum_step(params, velocity, grad_fn, lr, mu, method="nag"):
  """One update. CM (Eqs. 1-2): v <- mu v - lr grad f(theta); NAG (Eqs.
  3-4): v <- mu v - lr grad f(theta + mu v); then theta <- theta + v.

  ``grad_fn(params) -> (loss, error, grads)``; returns (params, velocity,
  loss, error), the loss and error measured where the gradient was taken.
  """
  if method == "nag":
    at = {k: params[k] + mu * velocity[k] for k in PARAM_NAMES}
  elif method == "cm":
    at = params
  else:
    raise ValueError(f"unknown method {method!r}")
  loss, err, g = grad_fn(at)
  velocity = {k: mu * velocity[k] - lr * g[k] for k in PARAM_NAMES}
  params = {k: params[k] + velocity[k] for k in PARAM_NAMES}
  return params, velocity, loss, err


# ----------------------------------------------------------------------------
# Traces: what "establishing communication" depends on
# ----------------------------------------------------------------------------

def _gather(seq, idx):
  """seq (B, T, ...) at per-sequence steps idx (B, M) -> (B, M, ...)."""
  ar = torch.arange(seq.shape[0])[:, None]
  return seq[ar, idx]


def traces(params, problem, batch, centered=True, norm="mean"):
  """Diagnostics on one batch (cheap: one forward/backward plus one forward
  tangent pass).

  Returns a dict of floats:
    loss, error; grad_norm/<param>;
    w_ih_grad_from_marks: |sum_b delta_{m_b} x_{m_b}^T| over the marked steps
      (the part of the W_ih gradient that can carry A, B / the symbols);
    w_ih_grad_from_end: the same for the end step;
    dLdh_mark<k>, dLdh_end: mean over sequences of |dL/dh_t| at the k-th
      marked step and at the last counted step;
    dLdx_mark<k>, dLdx_end: mean |dL/dx_t| (all channels);
    spectral_radius: of W_hh;
    sens_mark<k>: mean |d h_target / d x_mark| (Frobenius over the input
      channels carrying the information: add, the value channel; mem, all),
      where "target" is the step at which the mark's information is needed;
    dout_dx_mark<k>: mean d o_target / d x_mark (add: the value channel to the
      single output; 1.0 when A, B are added perfectly; mem: Frobenius norm).
  """
  x, y = center(problem, batch, centered)
  x = x.detach().requires_grad_(True)
  p = {k: v.detach().requires_grad_(True) for k, v in params.items()}
  hs, out = rnn_forward(p, x)
  loss, err = loss_and_error(problem, out, y, batch.mask, norm)
  ins = [p[k] for k in PARAM_NAMES] + [x] + hs
  gr = torch.autograd.grad(loss, ins)
  res = dict(loss=float(loss.detach()), error=float(err))
  for k, g in zip(PARAM_NAMES, gr[:5]):
    res[f"grad_norm/{k}"] = float(g.norm())
  dx = gr[5]
  dh = torch.stack(gr[6:], 1)                       # (B, T, H)
  H = torch.stack(hs, 1).detach()
  delta = dh * (1 - H ** 2)                         # dL / d pre-activation
  xd = x.detach()
  marks, tgt, end = batch.marks, batch.mark_targets, batch.end
  dm, xm = _gather(delta, marks), _gather(xd, marks)   # (B, M, H), (B, M, C)
  res["w_ih_grad_from_marks"] = float(torch.einsum("bmh,bmc->hc", dm, xm).norm())
  de, xe = _gather(delta, end[:, None]), _gather(xd, end[:, None])
  res["w_ih_grad_from_end"] = float(torch.einsum("bmh,bmc->hc", de, xe).norm())
  show = [0, marks.shape[1] - 1] if marks.shape[1] > 2 else list(
      range(marks.shape[1]))
  dh_m = _gather(dh, marks).norm(dim=-1)            # (B, M)
  dx_m = _gather(dx, marks).norm(dim=-1)
  for k in show:
    res[f"dLdh_mark{k}"] = float(dh_m[:, k].mean())
    res[f"dLdx_mark{k}"] = float(dx_m[:, k].mean())
  res["dLdh_end"] = float(_gather(dh, end[:, None]).norm(dim=-1).mean())
  res["dLdx_end"] = float(_gather(dx, end[:, None]).norm(dim=-1).mean())
  res["spectral_radius"] = spectral_radius(params["W_hh"])
  # Forward tangents: u_t = D_t W_hh u_{t-1} after the mark, D_m W_ih[:, chans]
  # at the mark, with D_t = diag(1 - h_t^2).
  chans = [0] if problem.kind == "linear" else list(range(problem.n_in))
  with torch.no_grad():
    w_hh, w_ih, w_ho = params["W_hh"], params["W_ih"][:, chans], params["W_ho"]
    D = 1 - H ** 2
    B, T = H.shape[:2]
    for k in show:
      m, tt = marks[:, k], tgt[:, k]
      u = torch.zeros(B, H.shape[2], len(chans), dtype=H.dtype)
      u_at = torch.zeros_like(u)
      for t in range(T):
        prop = D[:, t, :, None] * torch.einsum("ij,bjc->bic", w_hh, u)
        start = D[:, t, :, None] * w_ih[None]
        u = torch.where((t > m)[:, None, None], prop,
                        torch.where((t == m)[:, None, None], start,
                                    torch.zeros_like(u)))
        u_at = torch.where((t == tt)[:, None, None], u, u_at)
      res[f"sens_mark{k}"] = float(u_at.flatten(1).norm(dim=1).mean())
      dout = torch.einsum("oh,bhc->boc", w_ho, u_at)
      if problem.kind == "linear":
        res[f"dout_dx_mark{k}"] = float(dout[:, 0, 0].mean())
      else:
        res[f"dout_dx_mark{k}"] = float(dout.flatten(1).norm(dim=1).mean())
  return res


# ----------------------------------------------------------------------------
# Training loop and CLI
# ----------------------------------------------------------------------------

def train(problem, steps, lr, mu0, method="nag", seed=0, warmup=1000,
          batch_size=100, hidden=100, every=100, eval_batch=300,
          trace_batch=100, dtype=torch.float32, norm="mean", centered=True,
          input_scale=None, out_bias="mean", init=None, trace_data=None,
          log=None):
  """Section 4.2 protocol: fresh minibatches of ``batch_size`` sequences, the
  warm-up schedule, CM or NAG. Every ``every`` updates (and at 0 and the
  end): the loss and zero-one error on ``eval_batch`` fresh sequences (at
  theta), the mean minibatch loss of the period (where the gradients were
  taken: theta + mu v for NAG), and ``traces`` on one fixed batch
  (``trace_data``, a ``Batch``, or ``trace_batch`` sequences drawn once).
  ``init``: starting params (a dict as ``init_params`` returns) instead of
  drawing them. Returns a JSON-ready dict."""
  gen = torch.Generator().manual_seed(seed)
  data_gen = torch.Generator().manual_seed(seed + 1)
  eval_gen = torch.Generator().manual_seed(seed + 2)
  if init is None:
    params = init_params(problem, hidden, gen, dtype, input_scale=input_scale,
                         centered=centered, out_bias=out_bias)
  else:
    params = {k: torch.as_tensor(init[k]).to(dtype) for k in PARAM_NAMES}
  velocity = {k: torch.zeros_like(v) for k, v in params.items()}
  if trace_data is None:
    trace_b = problem.sample(trace_batch,
                             torch.Generator().manual_seed(seed + 3), dtype)
  else:
    trace_b = dataclasses.replace(
        trace_data, x=trace_data.x.to(dtype), y=trace_data.y.to(dtype),
        mask=trace_data.mask.to(dtype))
  curve, trace_log = [], []
  diverged = False
  t0 = time.perf_counter()

  def evaluate(step, train_loss):
    b = problem.sample(eval_batch, eval_gen, dtype)
    x, y = center(problem, b, centered)
    with torch.no_grad():
      loss, err = objective(params, problem, x, y, b.mask, norm)
    row = dict(step=step, train_loss=train_loss, eval_loss=float(loss),
               eval_error=float(err), mu=momentum_at(step, mu0, warmup),
               seconds=time.perf_counter() - t0)
    curve.append(row)
    if not all(bool(torch.isfinite(v).all()) for v in params.values()):
      return
    tr = traces(params, problem, trace_b, centered, norm)
    tr["step"] = step
    trace_log.append(tr)
    if log:
      log(f"step {step:6d}  eval loss {row['eval_loss']:.5g}  "
          f"error {row['eval_error']:.4f}  |g W_ih| "
          f"{tr['grad_norm/W_ih']:.3g}  rho {tr['spectral_radius']:.3f}  "
          f"dout/dx {tr.get('dout_dx_mark0', 0):.3g}")

  evaluate(0, None)
  period = []
  for step in range(steps):
    mu = momentum_at(step, mu0, warmup)
    b = problem.sample(batch_size, data_gen, dtype)
    x, y = center(problem, b, centered)
    params, velocity, loss, _ = momentum_step(
        params, velocity,
        lambda p: loss_and_grads(p, problem, x, y, b.mask, norm), lr, mu,
        method)
    period.append(float(loss))
    if not math.isfinite(period[-1]):
      diverged = True
      evaluate(step + 1, period[-1])
      break
    if (step + 1) % every == 0 or step + 1 == steps:
      evaluate(step + 1, sum(period) / len(period))
      period = []
  return dict(curve=curve, traces=trace_log, diverged=diverged,
              seconds=time.perf_counter() - t0)


def environment():
  """CPU model, SIMD flags and versions, for the run record."""
  info = dict(python=sys.version.split()[0], torch=torch.__version__,
              platform=platform.platform(), cpu=platform.processor())
  try:
    with open("/proc/cpuinfo") as f:
      text = f.read()
    for line in text.splitlines():
      if line.startswith("model name"):
        info["cpu"] = line.split(":", 1)[1].strip()
        break
    flags = set()
    for line in text.splitlines():
      if line.startswith("flags"):
        flags = set(line.split(":", 1)[1].split())
        break
    info["avx2"] = "avx2" in flags
    info["avx512f"] = "avx512f" in flags
  except OSError:
    pass
  return info


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("--problem", default="add", choices=["add", "mem20", "mem5"])
  ap.add_argument("--T", type=int, default=None)
  ap.add_argument("--steps", type=int, default=1000)
  ap.add_argument("--lr", type=float, default=1e-5)
  ap.add_argument("--mu0", type=float, default=0.995)
  ap.add_argument("--method", default="nag", choices=["nag", "cm"])
  ap.add_argument("--warmup", type=int, default=1000)
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--batch", type=int, default=100)
  ap.add_argument("--hidden", type=int, default=100)
  ap.add_argument("--every", type=int, default=100)
  ap.add_argument("--eval-batch", type=int, default=300)
  ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
  ap.add_argument("--norm", default="mean", choices=["mean", "sum"])
  ap.add_argument("--no-center", action="store_true")
  ap.add_argument("--input-scale", type=float, default=None)
  ap.add_argument("--out-bias", default="mean",
                  choices=["mean", "log_mean", "zero"])
  ap.add_argument("--threads", type=int, default=1)
  ap.add_argument("--out", default=None)
  a = ap.parse_args(argv)
  torch.set_num_threads(a.threads)
  problem = make_problem(a.problem, a.T)
  res = train(problem, a.steps, a.lr, a.mu0, a.method, a.seed, a.warmup,
              a.batch, a.hidden, a.every, a.eval_batch,
              dtype=getattr(torch, a.dtype), norm=a.norm,
              centered=not a.no_center, input_scale=a.input_scale,
              out_bias=a.out_bias, log=print)
  res["config"] = vars(a)
  res["environment"] = environment()
  if a.out:
    with open(a.out, "w") as f:
      json.dump(res, f, indent=1)
  return res


if __name__ == "__main__":
  main()
