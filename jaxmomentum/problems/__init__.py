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

The "biases" column of Table 5 (zero-one error of a model that learns only
its output biases) as our generators give it, from
``problem.biases_baseline()`` (closed form, asserted in
``tests/test_problems_rnn.py``), beside the paper's value. "Mean" is the
constant a bias-only model converges to (the target mean; blank everywhere
for memorization), "best" the lowest error any constant attains:

================================================  ======  ======  =======
``problem.name``                                  mean    best    paper
================================================  ======  ======  =======
``add T=80``                                      0.9216  0.9216  0.82
``add T=80 [target=average, values=U[0,1]]``      0.8464  0.8464  0.82
``add T=80 [target=hochreiter, values=U[-1,1]]``  0.8464  0.8464  0.82
``mul T=80``                                      0.8888  0.7179  0.84
``mul T=80 [target=product, values=U[-1,1]]``     0.8312  0.8312  0.84
``mem-5 T=200``                                   0.0250  0.0250  0.025
``mem-20 T=80``                                   0.1250  0.1250  0.080
``mem-5 T=200, overlapping``                      0.0125  0.0125  0.025
``mem-20 T=80, overlapping``                      0.1000  0.1000  0.080
================================================  ======  ======  =======

The defaults (first, fourth, sixth and seventh rows, the 2011 release) are
the presets in :data:`TABLE5_PROBLEMS`. The paper prints the memorization
rows in percent (2.5 and 8.0). Its 0.82 / 0.84 sit closer to the averaged
addition target and to multiplication over U[-1, 1] than to the 2011
release's A + B and A B over U[0, 1]; which variant the paper used is
unverified, so every table states the variant it ran. For memorization the
release's layout (``channels="overlapping"``: blank and go on the last two
symbols' channels) errs at 2.5 and 8.0 recall steps per sequence, exactly
the paper's 2.5 and 8.0: the paper's unit is most likely wrong steps per
sequence, not percent (our separate layout: 5 and 10 steps).

This package knows nothing about models.
"""

from ._autoencoder_data import AutoencoderData as AutoencoderData
from ._autoencoder_data import DataFileError as DataFileError
from ._autoencoder_data import load_curves as load_curves
from ._autoencoder_data import load_faces as load_faces
from ._autoencoder_data import FASHION_MNIST_DIR as FASHION_MNIST_DIR
from ._autoencoder_data import load_fashion_mnist as load_fashion_mnist
from ._autoencoder_data import load_mnist as load_mnist
from ._autoencoder_data import read_idx as read_idx
from ._autoencoder_data import (
    synthetic_curves_standin as synthetic_curves_standin)
from ._metrics import argmax_error as argmax_error
from ._metrics import LOSS_NORMALIZATIONS as LOSS_NORMALIZATIONS
from ._metrics import masked_mean as masked_mean
from ._metrics import masked_sequence_sum as masked_sequence_sum
from ._metrics import softmax_cross_entropy as softmax_cross_entropy
from ._metrics import squared_error as squared_error
from ._metrics import threshold_error as threshold_error
from ._rnn_tasks import addition as addition
from ._rnn_tasks import ArithmeticProblem as ArithmeticProblem
from ._rnn_tasks import Batch as Batch
from ._rnn_tasks import BiasesBaseline as BiasesBaseline
from ._rnn_tasks import memorization as memorization
from ._rnn_tasks import MEMORIZATION_CHANNELS as MEMORIZATION_CHANNELS
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
    "FASHION_MNIST_DIR",
    "LOSS_NORMALIZATIONS",
    "MEMORIZATION_CHANNELS",
    "MemorizationProblem",
    "TABLE5_BIASES",
    "TABLE5_PROBLEMS",
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
    "sample_minibatch",
    "softmax_cross_entropy",
    "squared_error",
    "synthetic_curves_standin",
    "temporal_order",
    "threshold_error",
]
