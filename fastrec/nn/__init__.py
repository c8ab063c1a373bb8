"""Minimal neural-network building blocks with hand-written backward passes.

NumPy forward/backward for dense and ReLU layers (:mod:`fastrec.nn.layers`),
losses with gradients (:mod:`fastrec.nn.losses`) and optimisers, including
lazy row-wise Adam/SGD for embedding tables (:mod:`fastrec.nn.optim`). The
embedding gather/scatter and the optimiser steps are compiled kernels
(``kernels/{numba,cython}/embedding``); :func:`flush_denormals` sets the
flush-to-zero mode training runs in. Used by ``fastrec.MLPRecommender``.
"""

from .fpmode import flush_denormals
from .layers import (
    MLP,
    Embedding,
    MLPWorkspace,
    dense_backward,
    dense_forward,
    relu_backward,
    relu_forward,
)
from .losses import bce_with_logits_loss, mse_loss, sigmoid
from .optim import SGD, Adam, LazyAdam, LazySGD

__all__ = [
    "MLP",
    "SGD",
    "Adam",
    "Embedding",
    "LazyAdam",
    "LazySGD",
    "MLPWorkspace",
    "bce_with_logits_loss",
    "dense_backward",
    "dense_forward",
    "flush_denormals",
    "mse_loss",
    "relu_backward",
    "relu_forward",
    "sigmoid",
]
