"""Optimiser steps for the MLP (twin of ``kernels/cython/optim.pyx``).

Dense Adam and SGD steps on a flat parameter vector (``adam_update``,
``sgd_update``), and the same steps fused with the scatter of a batch
gradient into an embedding table (``embedding_adam``, ``embedding_sgd``):
lazy, row-wise Adam and SGD, where rows the batch did not touch are not
updated and their moment estimates do not decay (TensorFlow's
``LazyAdamOptimizer`` and PyTorch's ``SparseAdam`` behave the same way).

All kernels are serial on purpose (see ``embedding.py``). ``idx`` entries must
lie in ``[0, n_rows)``; the Python wrappers in ``fastrec/nn`` guarantee it.

The embedding kernels deduplicate the batch's rows with ``slot``, an int32
array of ``n_rows`` entries that is all ``-1`` on entry and is restored to all
``-1`` on exit, so deduplication costs O(batch), not O(n_rows) or a sort. Rows
are processed in order of first appearance in the batch and the gradients of a
repeated row are summed in batch order, so results are deterministic and equal
``np.add.at`` followed by the dense update restricted to the touched rows.

Every kernel here flushes subnormal results (parameters and moments) to
zero, see :func:`_flush`. The Adam kernels compile with
``error_model="numpy"`` so that their division vectorises (its divisor
``sqrt(v) + eps`` is positive for ``eps > 0``).
"""

from __future__ import annotations

import math

import numpy as np

from ._config import jit


@jit
def _flush(x, tiny):
    """``x``, or 0 when it is subnormal (``abs(x) < tiny``, the smallest normal).

    Without this, parameters and moments that decay towards zero (dead ReLU
    units under weight decay, moments of units whose gradient is exactly 0)
    turn subnormal, and subnormal operands make x86 arithmetic, BLAS included,
    an order of magnitude slower.
    """
    return x * (abs(x) >= tiny)


@jit
def _accumulate_rows(grad, col, idx, slot, rows, acc):
    """Sum the gradient rows of each distinct index; return how many there are.

    ``rows[:n]`` lists the distinct indices in order of first appearance and
    ``acc[s]`` is the summed gradient of ``rows[s]``; ``slot[rows[s]] == s``
    afterwards (the caller resets it to -1).
    """
    dim = acc.shape[1]
    n_unique = 0
    for b in range(idx.shape[0]):
        row = idx[b]
        s = slot[row]
        if s < 0:
            s = n_unique
            slot[row] = s
            rows[s] = row
            n_unique += 1
            for j in range(dim):
                acc[s, j] = grad[b, col + j]
        else:
            for j in range(dim):
                acc[s, j] += grad[b, col + j]
    return n_unique


@jit(error_model="numpy")
def embedding_adam(
    table,
    exp_avg,
    exp_avg_sq,
    idx,
    grad,
    col,
    slot,
    rows,
    acc,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay,
    bias_correction1,
    bias_correction2,
):
    """Scatter a batch gradient and take one lazy Adam step on the touched rows.

    Adam (Kingma and Ba 2015, Algorithm 1) applied row-wise to the rows that
    appear in ``idx`` only, with L2 weight decay added to the gradient (as
    ``torch.optim.Adam(weight_decay=...)``). For each distinct row ``r``::

        g = sum of grad[b, col:col+dim] over b with idx[b] == r  (+ weight_decay * table[r])
        exp_avg[r] = beta1 * exp_avg[r] + (1 - beta1) * g
        exp_avg_sq[r] = beta2 * exp_avg_sq[r] + (1 - beta2) * g * g
        table[r] -= lr / bias_correction1 * exp_avg[r]
                    / (sqrt(exp_avg_sq[r]) / sqrt(bias_correction2) + eps)

    where ``bias_correction{1,2} = 1 - beta{1,2} ** step`` use the global step
    count. Rows not in ``idx`` are left untouched (lazy Adam). The arithmetic
    runs in the table's precision (the hyperparameters are rounded to it), as
    in the Cython twin.

    Parameters
    ----------
    table, exp_avg, exp_avg_sq : (n_rows, dim) float32/float64, C order; updated
    idx : (batch,) int32, each in [0, n_rows)
    grad : (batch, width) same dtype; this table's gradient is ``grad[:, col:col+dim]``
    col : int
    slot : (n_rows,) int32, all -1 on entry; restored to all -1 on exit
    rows : (batch,) int32 scratch
    acc : (batch, dim) same dtype as ``table``, scratch
    lr, beta1, beta2, eps, weight_decay, bias_correction1, bias_correction2 : float

    Returns
    -------
    int, the number of distinct rows updated.
    """
    n_unique = _accumulate_rows(grad, col, idx, slot, rows, acc)
    # arithmetic in the table's precision, so float32 tables vectorise 8 wide
    real = table.dtype.type
    step_size = real(lr / bias_correction1)
    inv_sqrt_bc2 = real(1.0 / math.sqrt(bias_correction2))
    b1, b2, eps_, wd = real(beta1), real(beta2), real(eps), real(weight_decay)
    one_b1, one_b2 = real(1.0 - beta1), real(1.0 - beta2)
    tiny = real(np.finfo(table.dtype).tiny)
    for s in range(n_unique):
        row = rows[s]
        slot[row] = -1
        t, m, v, a = table[row], exp_avg[row], exp_avg_sq[row], acc[s]
        for j in range(t.shape[0]):
            g = a[j] + wd * t[j]
            mj = _flush(b1 * m[j] + one_b1 * g, tiny)
            vj = _flush(b2 * v[j] + one_b2 * g * g, tiny)
            m[j] = mj
            v[j] = vj
            t[j] = _flush(t[j] - step_size * mj / (math.sqrt(vj) * inv_sqrt_bc2 + eps_), tiny)
    return n_unique


@jit
def embedding_sgd(table, idx, grad, col, slot, rows, acc, lr, weight_decay):
    """Scatter a batch gradient and take one lazy SGD step on the touched rows.

    For each distinct row ``r`` of ``idx``:
    ``table[r] -= lr * (sum of its gradient rows + weight_decay * table[r])``.
    Same arguments as :func:`embedding_adam`. Returns the number of distinct rows.
    """
    n_unique = _accumulate_rows(grad, col, idx, slot, rows, acc)
    real = table.dtype.type
    lr_, wd = real(lr), real(weight_decay)
    tiny = real(np.finfo(table.dtype).tiny)
    for s in range(n_unique):
        row = rows[s]
        slot[row] = -1
        t, a = table[row], acc[s]
        for j in range(t.shape[0]):
            t[j] = _flush(t[j] - lr_ * (a[j] + wd * t[j]), tiny)
    return n_unique


@jit(error_model="numpy")
def adam_update(
    param,
    exp_avg,
    exp_avg_sq,
    grad,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay,
    bias_correction1,
    bias_correction2,
):
    """One dense Adam step on a flat parameter vector (all layers at once).

    NumPy equivalent (``g = grad + weight_decay * param``)::

        exp_avg[:] = beta1 * exp_avg + (1 - beta1) * g
        exp_avg_sq[:] = beta2 * exp_avg_sq + (1 - beta2) * g**2
        param -= lr / bias_correction1 * exp_avg / (sqrt(exp_avg_sq / bias_correction2) + eps)

    Parameters
    ----------
    param, exp_avg, exp_avg_sq : (n,) float32/float64; updated in place
    grad : (n,) same dtype
    """
    real = param.dtype.type
    step_size = real(lr / bias_correction1)
    inv_sqrt_bc2 = real(1.0 / math.sqrt(bias_correction2))
    b1, b2, eps_, wd = real(beta1), real(beta2), real(eps), real(weight_decay)
    one_b1, one_b2 = real(1.0 - beta1), real(1.0 - beta2)
    tiny = real(np.finfo(param.dtype).tiny)
    for k in range(param.shape[0]):
        g = grad[k] + wd * param[k]
        m = _flush(b1 * exp_avg[k] + one_b1 * g, tiny)
        v = _flush(b2 * exp_avg_sq[k] + one_b2 * g * g, tiny)
        exp_avg[k] = m
        exp_avg_sq[k] = v
        param[k] = _flush(param[k] - step_size * m / (math.sqrt(v) * inv_sqrt_bc2 + eps_), tiny)


@jit
def sgd_update(param, grad, lr, weight_decay):
    """One dense SGD step: ``param -= lr * (grad + weight_decay * param)``."""
    real = param.dtype.type
    lr_, wd = real(lr), real(weight_decay)
    tiny = real(np.finfo(param.dtype).tiny)
    for k in range(param.shape[0]):
        param[k] = _flush(param[k] - lr_ * (grad[k] + wd * param[k]), tiny)
