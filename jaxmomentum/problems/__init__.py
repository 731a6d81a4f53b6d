"""Problems: RNN task generators, their metrics, autoencoder data.

* RNN long-term-dependency problems, generated on device:
  :func:`addition`, :func:`multiplication`, :func:`memorization`,
  :func:`temporal_order` (each with ``loss``, ``zero_one``,
  ``biases_baseline()`` and centering).
* Masked losses and zero-one errors: :func:`squared_error`,
  :func:`softmax_cross_entropy`, :func:`threshold_error`,
  :func:`argmax_error`.
* The deep autoencoders' objective and error: :func:`reconstruction`.
  Both kinds of problem are a :class:`ScoredProblem` (``loss``, ``error``,
  ``metrics``).
* Deep-autoencoder data: :func:`load_mnist`, :func:`load_fashion_mnist`,
  :func:`load_curves`, :func:`load_faces`, the offline
  :func:`synthetic_curves_standin` (not CURVES), and the on-device samplers
  :func:`sample_minibatch` and :func:`epoch_minibatch`.

This package knows nothing about models, nor about the paper's tables: the
rows of Table 5 (which problem, its label, the paper's "biases" value, and
how our generators' baselines compare with it) are
:data:`jaxmomentum.reproduce.paper.TABLE5`.
"""

from jaxmomentum import _moved
from ._autoencoder_data import AutoencoderData as AutoencoderData
from ._autoencoder_data import FASHION_MNIST_DIR as FASHION_MNIST_DIR
from ._autoencoder_data import load_curves as load_curves
from ._autoencoder_data import load_faces as load_faces
from ._autoencoder_data import load_fashion_mnist as load_fashion_mnist
from ._autoencoder_data import load_mnist as load_mnist
from ._file_formats import DataFileError as DataFileError
from ._file_formats import read_idx as read_idx
from ._metrics import argmax_error as argmax_error
from ._metrics import LOSS_NORMALIZATIONS as LOSS_NORMALIZATIONS
from ._metrics import masked_mean as masked_mean
from ._metrics import masked_sequence_sum as masked_sequence_sum
from ._metrics import ScoredProblem as ScoredProblem
from ._metrics import softmax_cross_entropy as softmax_cross_entropy
from ._metrics import squared_error as squared_error
from ._metrics import threshold_error as threshold_error
from ._reconstruction import reconstruction as reconstruction
from ._reconstruction import ReconstructionProblem as ReconstructionProblem
from ._arithmetic import addition as addition
from ._arithmetic import ArithmeticProblem as ArithmeticProblem
from ._arithmetic import multiplication as multiplication
from ._memorization import memorization as memorization
from ._memorization import MEMORIZATION_CHANNELS as MEMORIZATION_CHANNELS
from ._memorization import MemorizationProblem as MemorizationProblem
from ._sequence import Batch as Batch
from ._sequence import BiasesBaseline as BiasesBaseline
from ._standin import synthetic_curves_standin as synthetic_curves_standin
from ._temporal_order import temporal_order as temporal_order
from ._temporal_order import TemporalOrderProblem as TemporalOrderProblem
from ._sampler import epoch_minibatch as epoch_minibatch
from ._sampler import sample_minibatch as sample_minibatch

__all__ = [
    "ArithmeticProblem",
    "AutoencoderData",
    "Batch",
    "BiasesBaseline",
    "DataFileError",
    "FASHION_MNIST_DIR",
    "LOSS_NORMALIZATIONS",
    "MEMORIZATION_CHANNELS",
    "MemorizationProblem",
    "ReconstructionProblem",
    "ScoredProblem",
    "TemporalOrderProblem",
    "addition",
    "argmax_error",
    "epoch_minibatch",
    "load_curves",
    "load_faces",
    "load_fashion_mnist",
    "load_mnist",
    "masked_mean",
    "masked_sequence_sum",
    "memorization",
    "multiplication",
    "read_idx",
    "reconstruction",
    "sample_minibatch",
    "softmax_cross_entropy",
    "squared_error",
    "synthetic_curves_standin",
    "temporal_order",
    "threshold_error",
]

# Table 5's rows moved to jaxmomentum.reproduce.paper.TABLE5 (keyed "add",
# "mul", "mem5", "mem20"); the old mappings, keyed by the rows' labels, are
# derived from it on access, with a warning.
__getattr__ = _moved.forwarder(__name__, {
    "TABLE5_PROBLEMS": ("jaxmomentum.reproduce.paper", "TABLE5",
                        lambda rows: {r.label: r.problem
                                      for r in rows.values()}),
    "TABLE5_BIASES": ("jaxmomentum.reproduce.paper", "TABLE5",
                      lambda rows: {r.label: r.paper_biases
                                    for r in rows.values()}),
})
