"""The RNN and the deep autoencoders: shapes, init, forward pass, vmap.

The forward passes are checked against NumPy loops written from the
equations. What the SI scale does to the autoencoder at init (the mechanism
behind Table 3, the table quoted in ``DeepAutoencoder``'s docstring) is a
measurement: ``benchmarks/si_scale_table.py``.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmomentum.models import AutoencoderArchitecture
from jaxmomentum.models import DeepAutoencoder
from jaxmomentum.models import RNN
from jaxmomentum.reproduce import paper

# Equal widths: every layer has the same kernel shape, so one compile of the
# initializer serves them all (compiles dominate these tests on CPU).
TINY = AutoencoderArchitecture("tiny", (16, 16, 16), "logistic")
TINY_LINEAR = AutoencoderArchitecture("tiny-linear", (16, 16, 16), "linear")


def inputs(shape, seed=0, kind="uniform"):
  """Test inputs from NumPy: a new shape costs no compile (jax.random's
  would, about a second each on a busy 2-core CPU)."""
  rng = np.random.default_rng(seed)
  draw = rng.uniform(size=shape) if kind == "uniform" else rng.normal(
      size=shape)
  return jnp.asarray(draw, jnp.float32)


def sigmoid(x):
  return 1 / (1 + np.exp(-x))


# ------------------------------------------------------------ autoencoders

# Table 1: layer widths input to output, and the output units.
_TABLE1 = [
    (paper.CURVES, (784, 400, 200, 100, 50, 25, 6, 25, 50, 100, 200, 400,
                     784), "logistic"),
    (paper.MNIST, (784, 1000, 500, 250, 30, 250, 500, 1000, 784),
     "logistic"),
    (paper.FACES, (625, 2000, 1000, 500, 30, 500, 1000, 2000, 625),
     "linear"),
]


@pytest.mark.parametrize("arch,sizes,output", _TABLE1,
                         ids=[arch.name for arch, _, _ in _TABLE1])
def test_autoencoder_architectures_shapes(arch, sizes, output):
  assert arch.output == output
  assert paper.TABLE1_ARCHITECTURES[arch.name] is arch
  model = DeepAutoencoder(arch)
  x = jax.ShapeDtypeStruct((7, arch.input_dim), jnp.float32)
  params = jax.eval_shape(model.init, jax.random.key(0), x)["params"]
  depth = len(arch.encoder_sizes) - 1
  names = ([f"encoder_{i}" for i in range(depth)]
           + [f"decoder_{i}" for i in range(depth)])
  assert sorted(params) == sorted(names)     # untied: 2 * depth layers
  for i, name in enumerate(names):
    assert params[name]["kernel"].shape == (sizes[i], sizes[i + 1])
    assert params[name]["bias"].shape == (sizes[i + 1],)
  assert arch.layer_sizes == sizes
  out = jax.eval_shape(model.apply, {"params": params}, x)
  assert out.shape == (7, arch.input_dim)
  code = jax.eval_shape(lambda p, x: model.apply(p, x, method="encode"),
                        {"params": params}, x)
  assert code.shape == (7, arch.code_dim)


@pytest.mark.parametrize("arch", [TINY, TINY_LINEAR], ids=lambda a: a.name)
def test_autoencoder_forward_matches_numpy(getkey, arch):
  x = inputs((5, arch.input_dim))
  model = DeepAutoencoder(arch, init_scale=2.0)
  params = model.init(getkey(), x)["params"]
  depth = len(arch.encoder_sizes) - 1
  layers = ([params[f"encoder_{i}"] for i in range(depth)]
            + [params[f"decoder_{i}"] for i in range(depth)])
  h = np.asarray(x, np.float64)
  for i, layer in enumerate(layers):
    # SI: exactly min(15, fan_in) nonzero incoming weights, zero biases.
    kernel = np.asarray(layer["kernel"], np.float64)
    np.testing.assert_array_equal((kernel != 0).sum(0), 15)
    np.testing.assert_array_equal(layer["bias"], 0.0)
    pre = h @ kernel + np.asarray(layer["bias"])
    is_code, is_output = i == depth - 1, i == 2 * depth - 1
    h = pre if is_code or is_output else sigmoid(pre)
  logits = h
  want = sigmoid(logits) if arch.output == "logistic" else logits
  np.testing.assert_allclose(model.apply({"params": params}, x), want,
                             rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(
      model.apply({"params": params}, x, logits=True), logits,
      rtol=1e-5, atol=1e-4)


# ------------------------------------------------------------------- RNN

def rnn_numpy(params, x, head, h0=None):
  """h_t = tanh(x_t W_ih + h_{t-1} W_hh + b_h); o_t = h_t W_ho + b_o."""
  p = {k: np.asarray(v, np.float64) for k, v in params.items()}
  x = np.asarray(x, np.float64)
  batch, steps, _ = x.shape
  h = np.zeros((batch, p["recurrent_kernel"].shape[0])) if h0 is None else (
      np.broadcast_to(h0, (batch, h0.shape[-1])))
  outs = []
  for t in range(steps):
    h = np.tanh(x[:, t] @ p["input_kernel"] + h @ p["recurrent_kernel"]
                + p["hidden_bias"])
    outs.append(h @ p["output_kernel"] + p["output_bias"])
  o = np.stack(outs, axis=1)
  if head == "softmax":
    o = o - o.max(-1, keepdims=True)
    o = o - np.log(np.exp(o).sum(-1, keepdims=True))
  return o


def _perturbed(params, seed=0, scale=0.3):
  """Params with every entry moved, so the check sees all of them act."""
  rng = np.random.default_rng(seed)
  return jax.tree.map(
      lambda l: l + scale * rng.normal(size=l.shape).astype(np.float32),
      params)


def test_rnn_unroll_changes_speed_not_numbers(getkey):
  x = inputs((3, 9, 4), kind="normal")
  models_ = [RNN(output_size=2, hidden_size=8, unroll=u) for u in (1, 4)]
  params = _perturbed(models_[0].init(getkey(), x))

  def loss(p, model):
    return jnp.sum(model.apply(p, x) ** 2)

  (l1, g1), (l4, g4) = (jax.value_and_grad(loss)(params, m) for m in models_)
  np.testing.assert_allclose(l4, l1, rtol=1e-6)
  for a, b in zip(jax.tree.leaves(g4), jax.tree.leaves(g1)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("head,learn_h0", [("linear", False),
                                            ("softmax", True)])
def test_rnn_forward_matches_numpy(getkey, head, learn_h0):
  # in = hidden = out = 16: one compile for all the dense draws.
  model = RNN(output_size=16, hidden_size=16, head=head,
              learn_initial_state=learn_h0)
  x = inputs((3, 9, 16), kind="normal")
  params = _perturbed(model.init(getkey(), x)["params"])
  assert ("initial_state" in params) == learn_h0
  out = model.apply({"params": params}, x)
  assert out.shape == (3, 9, 16)
  h0 = np.asarray(params["initial_state"]) if learn_h0 else None
  np.testing.assert_allclose(out, rnn_numpy(params, x, head, h0),
                             rtol=1e-4, atol=1e-5)
  if head == "softmax":
    np.testing.assert_allclose(jnp.exp(out).sum(-1), 1.0, rtol=1e-5)


def test_rnn_table4_init_hidden_states_and_gradient(getkey):
  assert RNN(output_size=1).hidden_size == 100               # the paper's
  # Small sizes keep the test fast (in = hidden = out: one compile of the
  # dense draws); the Table 4 values are checked at size 100 in
  # test_reproduce_paper.py.
  target_mean = jnp.linspace(-0.5, 0.5, 16)
  recipe = paper.table4_rnn_init(paper.TABLE4_INPUT_SCALE_ADD_MUL,
                                 output_bias=target_mean)
  model = RNN(output_size=16, hidden_size=16, init_recipe=recipe)
  x = inputs((4, 30, 16))
  params = model.init(getkey(), x)["params"]
  w_hh = np.asarray(params["recurrent_kernel"], np.float64)
  np.testing.assert_array_equal((w_hh != 0).sum(0), 15)
  radius = np.abs(np.linalg.eigvals(w_hh)).max()
  assert abs(radius / 1.1 - 1) <= 1e-4
  assert abs(np.std(params["input_kernel"]) / 0.001 - 1) < 0.25  # 256 draws
  assert abs(np.std(params["output_kernel"]) / 0.1 - 1) < 0.25
  np.testing.assert_array_equal(params["hidden_bias"], 0.0)
  np.testing.assert_array_equal(params["output_bias"], target_mean)
  out, state = model.apply({"params": params}, x,
                           mutable=["intermediates"])
  hs = state["intermediates"]["hidden_states"][0]
  assert hs.shape == (30, 4, 16)                           # time-major
  np.testing.assert_allclose(
      out, jnp.einsum("tbh,ho->bto", hs, params["output_kernel"])
      + target_mean, rtol=1e-5, atol=1e-6)

  @jax.jit
  def loss(params):
    return jnp.mean((model.apply({"params": params}, x)[:, -1] - 1.0) ** 2)

  grads = jax.grad(loss)(params)
  chex.assert_tree_all_finite(grads)
  assert jnp.abs(grads["recurrent_kernel"]).max() > 0


# --------------------------------------------------- vmap(init) == loop

_MODELS_UNDER_TEST = {
    "rnn-softmax-h0": (RNN(output_size=16, hidden_size=16, head="softmax",
                           learn_initial_state=True,
                           init_recipe=paper.table4_rnn_init(0.1)),
                       (2, 6, 16)),
    "autoencoder-tiny": (DeepAutoencoder(TINY, init_scale=0.5), (2, 16)),
}


@pytest.mark.parametrize("name", list(_MODELS_UNDER_TEST))
def test_vmapped_init_equals_looped_init(getkey, name):
  model, input_shape = _MODELS_UNDER_TEST[name]
  x = jnp.zeros(input_shape)
  keys = jax.random.split(getkey(), 3)
  vmapped = jax.vmap(model.init, in_axes=(0, None))(keys, x)
  looped = jax.tree.map(lambda *l: jnp.stack(l),
                        *[model.init(k, x) for k in keys])
  # Plain pytrees of arrays; positions exact, values to rounding (the
  # echo-state radius is computed with batched matmuls under vmap).
  chex.assert_trees_all_equal_structs(vmapped, looped)
  jax.tree.map(lambda a, b: np.testing.assert_array_equal(a != 0, b != 0),
               vmapped, looped)
  chex.assert_trees_all_close(vmapped, looped, rtol=1e-5, atol=1e-7)
  first = jax.tree.leaves(vmapped)[-1]
  assert not np.array_equal(first[0], first[1])   # keys differ -> params do


# ---------------------------------------------------------- bad arguments

@pytest.mark.parametrize("make,error,name", [
    (lambda: RNN(output_size=0), ValueError, "output_size"),
    (lambda: RNN(output_size=1, hidden_size=0), ValueError, "hidden_size"),
    (lambda: RNN(output_size=1, head="sigmoid"), ValueError, "head"),
    (lambda: DeepAutoencoder(paper.MNIST, init_scale=-1.0), ValueError,
     "init_scale"),
    (lambda: DeepAutoencoder(paper.MNIST, num_connections=0), ValueError,
     "num_connections"),
    (lambda: DeepAutoencoder("mnist"), TypeError, "architecture"),
    (lambda: AutoencoderArchitecture("x", (10,), "linear"), ValueError,
     "encoder_sizes"),
    (lambda: AutoencoderArchitecture("x", (10, 0), "linear"), ValueError,
     "encoder_sizes"),
    (lambda: AutoencoderArchitecture("x", (10, 5), "softmax"), ValueError,
     "output"),
    (lambda: RNN(output_size=1).init(jax.random.key(0), jnp.zeros((5, 2))),
     ValueError, "inputs"),
    (lambda: RNN(output_size=1, unroll=0), ValueError, "^unroll must be"),
    (lambda: DeepAutoencoder(TINY).init(jax.random.key(0), jnp.zeros((1, 7))),
     ValueError, "inputs"),
])
def test_bad_arguments_name_the_argument(make, error, name):
  with pytest.raises(error, match=name):
    make()


# ------------------------------------------------ SI scale (Table 3)

def test_init_scale_multiplies_every_si_kernel_and_nothing_else(getkey):
  """Same key, scale s: every kernel is s times scale 1's (the scales are
  powers of two, so exactly), biases stay zero. What the scale then does to
  the activations and gradients is measured by
  ``benchmarks/si_scale_table.py``."""
  key, x = getkey(), inputs((2, TINY.input_dim))
  base = DeepAutoencoder(TINY, init_scale=1.0).init(key, x)["params"]
  for scale in (0.25, 4.0):
    scaled = DeepAutoencoder(TINY, init_scale=scale).init(key, x)["params"]
    chex.assert_trees_all_equal(
        scaled, jax.tree.map(lambda p: p * scale, base))
  assert all(np.all(np.asarray(layer["bias"]) == 0) for layer in base.values())
  assert all(np.any(np.asarray(layer["kernel"]) != 0)
             for layer in base.values())
