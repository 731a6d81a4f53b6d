"""Flax (linen) models of Sutskever et al. (2013).

* :class:`RNN`: the tanh RNN of Section 4, its parameters' initializers an
  :class:`RNNInit` (the paper's Table 4 recipe is
  :func:`jaxmomentum.reproduce.paper.table4_rnn_init`);
  :func:`rnn_outputs_and_preactivations` is its forward pass in a form
  forward-mode autodiff goes through (Gauss-Newton products with structural
  damping).
* :class:`DeepAutoencoder`: a sparse-initialized deep autoencoder of any
  :class:`AutoencoderArchitecture` (the paper's three are
  :data:`jaxmomentum.reproduce.paper.TABLE1_ARCHITECTURES`).

Both are ``flax.linen`` modules: ``init`` and ``apply`` are pure functions of a
plain parameter pytree, which is what ``jax.vmap`` over seeds and the jitted
``lax.scan`` training loops of :mod:`jaxmomentum.training` want.
"""

from jaxmomentum import _moved
from jaxmomentum.models._autoencoder import AutoencoderArchitecture as AutoencoderArchitecture
from jaxmomentum.models._autoencoder import DeepAutoencoder as DeepAutoencoder
from jaxmomentum.models._rnn import RNN as RNN
from jaxmomentum.models._rnn import RNNInit as RNNInit
from jaxmomentum.models._rnn import rnn_outputs_and_preactivations as rnn_outputs_and_preactivations

__all__ = [
    "AutoencoderArchitecture",
    "DeepAutoencoder",
    "RNN",
    "RNNInit",
    "rnn_outputs_and_preactivations",
]

# Table 1's architectures moved to jaxmomentum.reproduce.paper; the old
# names still resolve, with a warning.
__getattr__ = _moved.forwarder(__name__, {
    **{name: ("jaxmomentum.reproduce.paper", name, None)
       for name in ("CURVES", "MNIST", "FACES")},
    "AUTOENCODER_ARCHITECTURES": (
        "jaxmomentum.reproduce.paper", "TABLE1_ARCHITECTURES",
        lambda rows: tuple(rows.values())),
})
