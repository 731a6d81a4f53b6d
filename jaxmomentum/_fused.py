"""Opt-in one-pass update-and-apply for ``cm``, ``nag`` and ``adam`` on XLA:CPU.

Through optax's interface a step is ``opt.update`` then
``optax.apply_updates``. XLA:CPU compiles a momentum step as two loop fusions
(the new velocity, then the new params) and so moves 7 arrays per update where
one pass needs 5 (read g, v, p; write v, p; Adam 7 where it moved 10). XLA's
GPU backend fuses the two; its CPU backend (jax 0.10) does not, and its
multi-output fusion pass is not reachable by flags.

By default :func:`update_and_apply` runs the two calls (plain XLA, portable).
A :class:`FusedUpdate`, which the user constructs explicitly
(``FusedUpdate.nag(lr, mu)``), does the step in one pass with a small C++
kernel (``_csrc/fused_update.cc``, an XLA FFI custom call whose work is split
over XLA's own intra-op thread pool), compiled with the machine's C++
compiler the first time it is needed and cached. Where the kernel does not
apply (another backend, mixed dtypes, no compiler) a :class:`FusedUpdate`
runs the two calls of its optimizer, which agree with the kernels to float
rounding. Nothing is registered globally: the kernel's plan lives in the
object.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Optional, Union

import jax
import jax.numpy as jnp
import optax

from jaxmomentum import _alias
from jaxmomentum import _momentum
from jaxmomentum import _native
from jaxmomentum._momentum import NesterovMomentumState
from jaxmomentum._momentum import value_at

_KERNELS = {"momentum": "JmMomentum", "adam": "JmAdam"}
_DTYPES = {jnp.dtype(jnp.float32): "F32", jnp.dtype(jnp.float64): "F64"}
# Library symbol of each (kernel, dtype); its FFI target is "jaxmomentum_" + it.
_TARGETS = {(k, d): prefix + suffix for k, prefix in _KERNELS.items()
            for d, suffix in _DTYPES.items()}
# No fused multiply-adds: the kernels round like the two-call XLA path.
LIBRARY = _native.Library(
    "fused_update", tuple(_TARGETS.values()), ("-ffp-contract=off",),
    "jaxmomentum.FusedUpdate")


def kernels_available() -> bool:
  """Whether the fused CPU kernels are compiled and registered.

  The first call compiles ``_csrc/fused_update.cc`` (a few seconds) into
  ``$JAXMOMENTUM_CACHE_DIR`` (default ``~/.cache/jaxmomentum``), keyed by the
  source, the jaxlib version and the CPU; later calls and processes reuse it.
  Set ``JAXMOMENTUM_DISABLE_FUSED=1`` to turn the kernels off.
  """
  return _native.load(LIBRARY)


def _call(kernel: str, operands, coefs, **attrs):
  """The FFI call for one leaf; outputs alias the params and state inputs."""
  dtype = operands[0].dtype
  n_out = len(operands) - 1  # every operand but the gradient is updated
  call = jax.ffi.ffi_call(
      _native.target(_TARGETS[(kernel, jnp.dtype(dtype))]),
      tuple(jax.ShapeDtypeStruct(o.shape, dtype) for o in operands[:n_out]),
      input_output_aliases={i: i for i in range(n_out)},
      vmap_method="broadcast_all")
  return call(*operands, coefs, **attrs)


def _eligible(*trees) -> bool:
  """All leaves float32 (or all float64), the same dtype within each leaf."""
  leaves = [jax.tree.leaves(t) for t in trees]
  if any(len(l) != len(leaves[0]) for l in leaves):
    return False
  for group in zip(*leaves):
    dtypes = {jnp.dtype(x.dtype) for x in group}
    shapes = {tuple(x.shape) for x in group}
    if len(dtypes) != 1 or len(shapes) != 1:
      return False
    if dtypes.pop() not in _DTYPES:
      return False
  return True


def _learning_rate_step(learning_rate, lr_state):
  """ε_t and the next state of ``optax.scale_by_learning_rate(learning_rate)``."""
  if not callable(learning_rate):
    return learning_rate, lr_state  # optax.scale: an empty state
  return learning_rate(lr_state.count), optax.ScaleByScheduleState(
      count=optax.safe_increment(lr_state.count))


@dataclasses.dataclass(frozen=True)
class MomentumPlan:
  learning_rate: Any
  momentum: Any
  nesterov: bool

  def __call__(self, grads, state, params):
    lr_state, m_state = state
    lr, lr_state = _learning_rate_step(self.learning_rate, lr_state)
    mu = value_at(self.momentum, m_state.count)
    mu_next = value_at(self.momentum, optax.safe_increment(m_state.count))

    def leaf(p, v, g):
      coefs = jnp.stack([jnp.asarray(x, p.dtype) for x in (mu, -lr, mu_next)])
      return _call("momentum", (p, v, g), coefs, nesterov=self.nesterov)

    out = jax.tree.map(leaf, params, m_state.velocity, grads)
    treedef = jax.tree.structure(params)
    new_params, velocity = jax.tree.transpose(
        treedef, jax.tree.structure((0, 0)), out)
    m_state = m_state._replace(count=optax.safe_increment(m_state.count),
                               velocity=velocity)
    if isinstance(m_state, NesterovMomentumState):
      m_state = m_state._replace(lookahead_momentum=jnp.asarray(
          mu_next, m_state.lookahead_momentum.dtype))
    return new_params, (lr_state, m_state)

  def applies(self, grads, state, params) -> bool:
    return _eligible(params, state[1].velocity, grads)


@dataclasses.dataclass(frozen=True)
class AdamPlan:
  learning_rate: Any
  b1: Any
  b2: Any
  eps: Any
  eps_root: Any
  bias_correction: bool

  def __call__(self, grads, state, params):
    adam_state, lr_state = state
    lr, lr_state = _learning_rate_step(self.learning_rate, lr_state)
    count = optax.safe_increment(adam_state.count)
    if self.bias_correction:
      steps = jnp.asarray(count, float)  # no int/float mixing
      bc1, bc2 = 1 - self.b1 ** steps, 1 - self.b2 ** steps
    else:
      bc1 = bc2 = 1.0

    def leaf(p, m, v, g):
      coefs = jnp.stack([jnp.asarray(x, p.dtype) for x in (
          self.b1, self.b2, bc1, bc2, self.eps_root, self.eps, -lr)])
      return _call("adam", (p, m, v, g), coefs)

    out = jax.tree.map(leaf, params, adam_state.mu, adam_state.nu, grads)
    new_params, mu, nu = jax.tree.transpose(
        jax.tree.structure(params), jax.tree.structure((0, 0, 0)), out)
    return new_params, (optax.ScaleByAdamState(count=count, mu=mu, nu=nu),
                        lr_state)

  def applies(self, grads, state, params) -> bool:
    return _eligible(params, state[0].mu, state[0].nu, grads)


def _two_calls(optimizer, grads, opt_state, params):
  updates, opt_state = optimizer.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state


def _arguments(factory, args, kwargs) -> dict[str, Any]:
  """``factory``'s arguments by name, defaults filled in (one copy of them)."""
  bound = inspect.signature(factory).bind(*args, **kwargs)
  bound.apply_defaults()
  return bound.arguments


@dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity
class FusedUpdate:
  r"""An optimizer step done in one pass per leaf: the explicit CPU opt-in.

  Built with :meth:`cm`, :meth:`nag` or :meth:`adam` (same arguments as
  ``jaxmomentum.cm``/``nag``/``adam``); ``fused.optimizer`` is that plain
  optax optimizer, ``fused.init`` its ``init``, and
  ``fused(grads, state, params)`` returns ``(new_params, new_state)``, equal
  to::

    updates, state = fused.optimizer.update(grads, state, params)
    params = optax.apply_updates(params, updates)

  On the CPU it runs a C++ kernel per leaf (an XLA FFI custom call) that
  reads the gradient, the state and the params once and writes the new
  state and params once, in place when the jitted step donates params and
  state: 5 array passes for CM/NAG instead of the 7 that XLA:CPU compiles
  the two calls into, 7 for Adam instead of 10. The kernel splits each leaf
  over XLA's intra-op thread pool (the threads XLA:CPU runs its own loops
  on; it starts none). It applies when every leaf of params, grads and state
  has one dtype, float32 or float64; otherwise, on other backends (XLA's GPU
  backend fuses the two calls itself), or when the kernel cannot be compiled
  (a warning says so once), the two calls above run instead. The results
  agree with them to float rounding: the kernels do the same operations in
  the same order without fused multiply-adds, except that Adam multiplies by
  :math:`1/(1-\beta^t)` instead of dividing by it.

  The kernel is compiled the first time it is needed (a few seconds) into
  ``$JAXMOMENTUM_CACHE_DIR`` (default ``~/.cache/jaxmomentum``) with
  ``-march=native``; ``JAXMOMENTUM_DISABLE_FUSED=1`` turns it off. Measure
  before relying on it: ``benchmarks/bench_update.py`` times it against the
  plain path on the machine at hand.

  Attributes:
    optimizer: the plain ``optax.GradientTransformation`` it fuses.
    plan: the kernel's coefficients for each step (internal).

  Example:
    >>> import jax, jax.numpy as jnp, jaxmomentum
    >>> fused = jaxmomentum.FusedUpdate.nag(0.1, 0.9)
    >>> params = jnp.ones(4)
    >>> state = fused.init(params)
    >>> @jax.jit
    ... def step(params, state):
    ...   grads = jax.grad(lambda p: (p ** 2).sum())(params)
    ...   return fused(grads, state, params)
    >>> params, state = step(params, state)

  Reference:
    Sutskever, Martens, Dahl & Hinton, ICML 2013, Eqs. 1-4 (CM, NAG);
    Kingma & Ba, ICLR 2015 (Adam).
  """
  optimizer: optax.GradientTransformation
  plan: Union[MomentumPlan, AdamPlan]

  @classmethod
  def cm(cls, *args, **kwargs) -> "FusedUpdate":
    """``jaxmomentum.cm(*args, **kwargs)`` with its one-pass step."""
    a = _arguments(_alias.cm, args, kwargs)
    return cls(_alias.cm(*args, **kwargs), MomentumPlan(
        a["learning_rate"], a["momentum"], nesterov=False))

  @classmethod
  def nag(cls, *args, **kwargs) -> "FusedUpdate":
    """``jaxmomentum.nag(*args, **kwargs)`` with its one-pass step.

    Raises:
      ValueError: ``momentum`` is an array (not a float or a schedule): the
        kernel has no term for an inexact look-ahead; use
        ``jaxmomentum.nag`` with :func:`update_and_apply`.
    """
    a = _arguments(_alias.nag, args, kwargs)
    if not _momentum.is_lookahead_exact(a["momentum"]):
      raise ValueError(
          "FusedUpdate.nag: momentum must be a float or a schedule (the "
          "one-pass kernel has no term for an array momentum's inexact "
          f"look-ahead); got {type(a['momentum']).__name__}")
    return cls(_alias.nag(*args, **kwargs), MomentumPlan(
        a["learning_rate"], a["momentum"], nesterov=True))

  @classmethod
  def adam(cls, *args, **kwargs) -> "FusedUpdate":
    """``jaxmomentum.adam(*args, **kwargs)`` with its one-pass step."""
    a = _arguments(_alias.adam, args, kwargs)
    return cls(_alias.adam(*args, **kwargs), AdamPlan(
        a["learning_rate"], a["b1"], a["b2"], a["eps"], a["eps_root"],
        a["bias_correction"]))

  def init(self, params: optax.Params) -> optax.OptState:
    """``self.optimizer.init(params)``."""
    return self.optimizer.init(params)

  def uses_kernel(self, grads, opt_state, params) -> bool:
    """Whether a call with these arguments runs the kernel (vs two calls)."""
    return (jax.default_backend() == "cpu"
            and self.plan.applies(grads, opt_state, params)
            and kernels_available())

  def __call__(self, grads: optax.Updates, opt_state: optax.OptState,
               params: optax.Params
               ) -> tuple[optax.Params, optax.OptState]:
    if self.uses_kernel(grads, opt_state, params):
      return self.plan(grads, opt_state, params)
    return _two_calls(self.optimizer, grads, opt_state, params)


def update_and_apply(
    optimizer: Union[optax.GradientTransformation, FusedUpdate],
    grads: optax.Updates,
    opt_state: optax.OptState,
    params: optax.Params,
) -> tuple[optax.Params, optax.OptState]:
  r"""One optimizer step: the update and ``optax.apply_updates`` in one call.

  Equal to::

    updates, opt_state = optimizer.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)

  and computes exactly that, with plain XLA, for any optax optimizer. The
  one-pass CPU kernel is an explicit opt-in: pass a :class:`FusedUpdate`
  (``jaxmomentum.FusedUpdate.nag(lr, mu)`` in place of
  ``jaxmomentum.nag(lr, mu)``) and this calls it.

  Args:
    optimizer: any ``optax.GradientTransformation``, or a
      :class:`FusedUpdate`.
    grads: gradients at ``params``.
    opt_state: ``optimizer``'s state.
    params: the params (for NAG, the look-ahead point).

  Returns:
    ``(new_params, new_opt_state)``.

  Example:
    >>> import jax, jax.numpy as jnp, jaxmomentum
    >>> opt = jaxmomentum.nag(0.1, 0.9)
    >>> params = jnp.ones(4)
    >>> state = opt.init(params)
    >>> @jax.jit
    ... def step(params, state):
    ...   grads = jax.grad(lambda p: (p ** 2).sum())(params)
    ...   return jaxmomentum.update_and_apply(opt, grads, state, params)
    >>> params, state = step(params, state)
  """
  if isinstance(optimizer, FusedUpdate):
    return optimizer(grads, opt_state, params)
  return _two_calls(optimizer, grads, opt_state, params)


def fused_kernel_error() -> Optional[str]:
  """Why the fused kernels are unavailable (``None`` if they are or untried)."""
  return _native.error(LIBRARY)

