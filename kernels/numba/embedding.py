"""Embedding-table kernels for the MLP (twin of ``kernels/cython/embedding.pyx``).

A mini-batch touches at most ``batch`` rows of a ``(n_rows, dim)`` table, so
the kernels below only ever read or write those rows: the gather of a batch's
rows into the input matrix and the scatter-add of the input gradient back into
the table (the optimiser steps fused with that scatter are in ``optim.py``). No
dense gradient the size of the table is ever formed.

All kernels are serial on purpose: a batch is a few hundred rows of 32 numbers,
less work than starting a parallel region, and repeated indices in a batch
would make a parallel scatter race. ``idx`` entries must lie in
``[0, n_rows)``; the Python wrappers in ``fastrec/nn`` guarantee it.
"""

from __future__ import annotations

from ._config import jit


@jit
def embedding_gather(table, idx, out, col):
    """Copy the rows ``idx`` of ``table`` into columns ``col:col+dim`` of ``out``.

    NumPy equivalent: ``out[:, col:col + dim] = table[idx]``.

    Parameters
    ----------
    table : (n_rows, dim) float32/float64, C order
    idx : (batch,) int32, each in [0, n_rows)
    out : (batch, width) same dtype, C order, ``col + dim <= width``; written
    col : int, first column of ``out`` to write
    """
    dim = table.shape[1]
    for b in range(idx.shape[0]):
        row = idx[b]
        for j in range(dim):
            out[b, col + j] = table[row, j]


@jit
def embedding_scatter_add(grad, col, idx, table):
    """Add the rows of a batch gradient into ``table`` at the rows ``idx``.

    NumPy equivalent: ``np.add.at(table, idx, grad[:, col:col + dim])``
    (repeated indices accumulate).

    Parameters
    ----------
    grad : (batch, width) float32/float64, C order
    col : int, first column of ``grad`` that belongs to this table
    idx : (batch,) int32, each in [0, n_rows)
    table : (n_rows, dim) same dtype, C order; updated in place
    """
    dim = table.shape[1]
    for b in range(idx.shape[0]):
        row = idx[b]
        for j in range(dim):
            table[row, j] += grad[b, col + j]
