"""Flax (linen) models of Sutskever et al. (2013).

* :class:`RNN`: the 100-unit tanh RNN of Section 4 with the Table 4
  initialization.
* :class:`DeepAutoencoder`: the Table 1 autoencoders (presets :data:`CURVES`,
  :data:`MNIST`, :data:`FACES`) with sparse initialization.

Both are ``flax.linen`` modules: ``init`` and ``apply`` are pure functions of a
plain parameter pytree, which is what ``jax.vmap`` over seeds and the jitted
``lax.scan`` training loops of :mod:`jaxmomentum.training` want.
"""

from jaxmomentum.models._autoencoder import AUTOENCODER_ARCHITECTURES as AUTOENCODER_ARCHITECTURES
from jaxmomentum.models._autoencoder import AutoencoderArchitecture as AutoencoderArchitecture
from jaxmomentum.models._autoencoder import CURVES as CURVES
from jaxmomentum.models._autoencoder import DeepAutoencoder as DeepAutoencoder
from jaxmomentum.models._autoencoder import FACES as FACES
from jaxmomentum.models._autoencoder import MNIST as MNIST
from jaxmomentum.models._rnn import RNN as RNN

__all__ = [
    "AUTOENCODER_ARCHITECTURES",
    "AutoencoderArchitecture",
    "CURVES",
    "DeepAutoencoder",
    "FACES",
    "MNIST",
    "RNN",
]
