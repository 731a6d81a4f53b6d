"""jaxmomentum: Sutskever-form momentum, initializers and experiments for JAX.

Sutskever, Martens, Dahl & Hinton (ICML 2013), *On the importance of
initialization and momentum in deep learning*, as optax transforms, Flax
initializers and jit-compiled experiments.
"""

__version__ = "0.1.0"
