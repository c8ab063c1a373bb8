"""Losses with their gradients, written for preallocated batch buffers.

Both losses are means over the batch; the gradient returned is with respect
to the network output (the prediction for MSE, the logit for BCE).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

__all__ = ["bce_with_logits_loss", "mse_loss", "sigmoid"]


def mse_loss(
    pred: np.ndarray,
    target: np.ndarray,
    grad: np.ndarray | None = None,
    scratch: np.ndarray | None = None,
) -> float:
    """Mean squared error ``mean((pred - target)**2)`` and its gradient.

    Parameters
    ----------
    pred, target : (batch,) float arrays
    grad : (batch,) optional; written with ``2 * (pred - target) / batch``
    scratch : (batch,) optional buffer for the residual (avoids an allocation)

    Returns
    -------
    float, the loss (NaN if any prediction is NaN).
    """
    n = pred.shape[0]
    diff = np.subtract(pred, target, out=scratch)
    loss = float(np.dot(diff, diff)) / n
    if grad is not None:
        np.multiply(diff, 2.0 / n, out=grad)
    return loss


def bce_with_logits_loss(
    logits: np.ndarray,
    target: np.ndarray,
    grad: np.ndarray | None = None,
    scratch: np.ndarray | None = None,
) -> float:
    """Binary cross-entropy on logits, ``mean(log(1 + e^z) - y z)``, and its gradient.

    The NCF log loss (He et al. 2017, eq. 7) written on logits so it is stable
    for any ``z``: ``log(1 + e^z)`` is ``np.logaddexp(0, z)``.

    Parameters
    ----------
    logits : (batch,) float
    target : (batch,) float labels in [0, 1]
    grad : (batch,) optional; written with ``(sigmoid(z) - y) / batch``
    scratch : (batch,) optional buffer

    Returns
    -------
    float, the loss.
    """
    n = logits.shape[0]
    t = np.logaddexp(0, logits, out=scratch)
    loss = (float(t.sum()) - float(np.dot(logits, target))) / n
    if grad is not None:
        expit(logits, out=grad)
        np.subtract(grad, target, out=grad)
        np.multiply(grad, 1.0 / n, out=grad)
    return loss


def sigmoid(z: np.ndarray) -> np.ndarray:
    """``1 / (1 + e^-z)`` without overflow warnings."""
    return expit(z)
