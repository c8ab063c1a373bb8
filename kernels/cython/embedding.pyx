# cython: language_level=3
"""Embedding-table kernels for the MLP (twin of ``kernels/numba/embedding.py``).

See the Numba module for the contract: gather of a batch's rows and
scatter-add of their gradients (the optimiser steps fused with the scatter are
in ``optim.pyx``). Both kernels are serial (a batch is less work than a
parallel region, and a parallel scatter with repeated indices would race) and
release the GIL.
"""

from cython cimport floating


def embedding_gather(const floating[:, ::1] table, const int[::1] idx,
                     floating[:, ::1] out, Py_ssize_t col):
    """``out[:, col:col + dim] = table[idx]``."""
    cdef Py_ssize_t n = idx.shape[0], dim = table.shape[1], b, j
    cdef int row
    with nogil:
        for b in range(n):
            row = idx[b]
            for j in range(dim):
                out[b, col + j] = table[row, j]


def embedding_scatter_add(const floating[:, ::1] grad, Py_ssize_t col, const int[::1] idx,
                          floating[:, ::1] table):
    """``np.add.at(table, idx, grad[:, col:col + dim])``."""
    cdef Py_ssize_t n = idx.shape[0], dim = table.shape[1], b, j
    cdef int row
    with nogil:
        for b in range(n):
            row = idx[b]
            for j in range(dim):
                table[row, j] += grad[b, col + j]
