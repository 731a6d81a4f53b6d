"""The paper's problems: RNN task generators, their metrics, autoencoder data.

* RNN long-term-dependency problems (Table 5), generated on device:
  :func:`addition`, :func:`multiplication`, :func:`memorization`,
  :func:`temporal_order`, the presets :data:`TABLE5_PROBLEMS` and the paper's
  "biases" column :data:`TABLE5_BIASES`.
* Masked losses and zero-one errors: :func:`squared_error`,
  :func:`softmax_cross_entropy`, :func:`threshold_error`,
  :func:`argmax_error`.
* Deep-autoencoder data (Table 1): :func:`load_mnist`, :func:`load_curves`,
  :func:`load_faces`, the offline :func:`synthetic_curves_standin` (not
  CURVES), and the on-device samplers :func:`sample_minibatch` and
  :func:`epoch_minibatch`.

This package knows nothing about models.
"""

from ._autoencoder_data import AutoencoderData as AutoencoderData
from ._autoencoder_data import DataFileError as DataFileError
from ._autoencoder_data import load_curves as load_curves
from ._autoencoder_data import load_faces as load_faces
from ._autoencoder_data import load_mnist as load_mnist
from ._autoencoder_data import read_idx as read_idx
from ._autoencoder_data import (
    synthetic_curves_standin as synthetic_curves_standin)
from ._metrics import argmax_error as argmax_error
from ._metrics import masked_mean as masked_mean
from ._metrics import softmax_cross_entropy as softmax_cross_entropy
from ._metrics import squared_error as squared_error
from ._metrics import threshold_error as threshold_error
from ._rnn_tasks import addition as addition
from ._rnn_tasks import ArithmeticProblem as ArithmeticProblem
from ._rnn_tasks import Batch as Batch
from ._rnn_tasks import BiasesBaseline as BiasesBaseline
from ._rnn_tasks import memorization as memorization
from ._rnn_tasks import MemorizationProblem as MemorizationProblem
from ._rnn_tasks import multiplication as multiplication
from ._rnn_tasks import TABLE5_BIASES as TABLE5_BIASES
from ._rnn_tasks import TABLE5_PROBLEMS as TABLE5_PROBLEMS
from ._rnn_tasks import temporal_order as temporal_order
from ._rnn_tasks import TemporalOrderProblem as TemporalOrderProblem
from ._sampler import epoch_minibatch as epoch_minibatch
from ._sampler import sample_minibatch as sample_minibatch

__all__ = [
    "ArithmeticProblem",
    "AutoencoderData",
    "Batch",
    "BiasesBaseline",
    "DataFileError",
    "MemorizationProblem",
    "TABLE5_BIASES",
    "TABLE5_PROBLEMS",
    "TemporalOrderProblem",
    "addition",
    "argmax_error",
    "epoch_minibatch",
    "load_curves",
    "load_faces",
    "load_mnist",
    "masked_mean",
    "memorization",
    "multiplication",
    "read_idx",
    "sample_minibatch",
    "softmax_cross_entropy",
    "squared_error",
    "synthetic_curves_standin",
    "temporal_order",
    "threshold_error",
]
