# cython: language_level=3
"""Optimiser steps for the MLP (twin of ``kernels/numba/optim.py``).

See the Numba module for the contract: dense Adam / SGD steps on a flat
parameter vector, and lazy (row-wise) Adam / SGD steps fused with the scatter
of a batch gradient into an embedding table. All kernels are serial and
release the GIL. ``slot`` must be all -1 on entry; it is all -1 again on exit.
"""

from cython cimport floating
from libc.float cimport DBL_MIN, FLT_MIN
from libc.math cimport fabs, sqrt, sqrtf


cdef inline floating _flush(floating x) noexcept nogil:
    # x, or 0 when subnormal: decaying parameters and moments must not turn
    # subnormal, which slows x86 arithmetic (BLAS included) tenfold
    if floating is float:
        return x if fabs(x) >= FLT_MIN else 0
    else:
        return x if fabs(x) >= DBL_MIN else 0


cdef inline floating _sqrt(floating x) noexcept nogil:
    # sqrtf for float32 so the loop stays in single precision (vectorisable)
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef Py_ssize_t _accumulate_rows(const floating[:, ::1] grad, Py_ssize_t col,
                                 const int[::1] idx, int[::1] slot, int[::1] rows,
                                 floating[:, ::1] acc) noexcept nogil:
    # acc[s] = sum of grad[b, col:col+dim] over b with idx[b] == rows[s]
    cdef Py_ssize_t n = idx.shape[0], dim = acc.shape[1], b, j
    cdef int row, s, n_unique = 0
    for b in range(n):
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


def embedding_adam(floating[:, ::1] table, floating[:, ::1] exp_avg,
                   floating[:, ::1] exp_avg_sq, const int[::1] idx,
                   const floating[:, ::1] grad, Py_ssize_t col, int[::1] slot, int[::1] rows,
                   floating[:, ::1] acc, double lr, double beta1, double beta2, double eps,
                   double weight_decay, double bias_correction1, double bias_correction2):
    """Scatter a batch gradient and take one lazy Adam step on the touched rows.

    Returns the number of distinct rows updated. See the Numba twin for the
    update formula; arithmetic runs in the table's precision, as there.
    """
    cdef Py_ssize_t n_unique, s, j, dim = table.shape[1]
    cdef int row
    cdef floating* t
    cdef floating* m
    cdef floating* v
    cdef floating* a
    cdef floating g, mj, vj
    cdef floating step_size = <floating>(lr / bias_correction1)
    cdef floating inv_sqrt_bc2 = <floating>(1.0 / sqrt(bias_correction2))
    cdef floating b1 = <floating>beta1, b2 = <floating>beta2
    cdef floating one_b1 = <floating>(1.0 - beta1), one_b2 = <floating>(1.0 - beta2)
    cdef floating eps_ = <floating>eps, wd = <floating>weight_decay
    with nogil:
        n_unique = _accumulate_rows(grad, col, idx, slot, rows, acc)
        for s in range(n_unique):
            row = rows[s]
            slot[row] = -1
            t = &table[row, 0]
            m = &exp_avg[row, 0]
            v = &exp_avg_sq[row, 0]
            a = &acc[s, 0]
            for j in range(dim):
                g = a[j] + wd * t[j]
                mj = _flush(b1 * m[j] + one_b1 * g)
                vj = _flush(b2 * v[j] + one_b2 * g * g)
                m[j] = mj
                v[j] = vj
                t[j] = _flush(t[j] - step_size * mj / (_sqrt(vj) * inv_sqrt_bc2 + eps_))
    return n_unique


def embedding_sgd(floating[:, ::1] table, const int[::1] idx, const floating[:, ::1] grad,
                  Py_ssize_t col, int[::1] slot, int[::1] rows, floating[:, ::1] acc,
                  double lr, double weight_decay):
    """``table[r] -= lr * (summed gradient of r + weight_decay * table[r])`` per touched row."""
    cdef Py_ssize_t n_unique, s, j, dim = table.shape[1]
    cdef int row
    cdef floating* t
    cdef floating* a
    cdef floating lr_ = <floating>lr, wd = <floating>weight_decay
    with nogil:
        n_unique = _accumulate_rows(grad, col, idx, slot, rows, acc)
        for s in range(n_unique):
            row = rows[s]
            slot[row] = -1
            t = &table[row, 0]
            a = &acc[s, 0]
            for j in range(dim):
                t[j] = _flush(t[j] - lr_ * (a[j] + wd * t[j]))
    return n_unique


def adam_update(floating[::1] param, floating[::1] exp_avg, floating[::1] exp_avg_sq,
                const floating[::1] grad, double lr, double beta1, double beta2, double eps,
                double weight_decay, double bias_correction1, double bias_correction2):
    """One dense Adam step on a flat parameter vector (see the Numba twin)."""
    cdef Py_ssize_t k, n = param.shape[0]
    cdef floating g, m, v
    cdef floating step_size = <floating>(lr / bias_correction1)
    cdef floating inv_sqrt_bc2 = <floating>(1.0 / sqrt(bias_correction2))
    cdef floating b1 = <floating>beta1, b2 = <floating>beta2
    cdef floating one_b1 = <floating>(1.0 - beta1), one_b2 = <floating>(1.0 - beta2)
    cdef floating eps_ = <floating>eps, wd = <floating>weight_decay
    with nogil:
        for k in range(n):
            g = grad[k] + wd * param[k]
            m = _flush(b1 * exp_avg[k] + one_b1 * g)
            v = _flush(b2 * exp_avg_sq[k] + one_b2 * g * g)
            exp_avg[k] = m
            exp_avg_sq[k] = v
            param[k] = _flush(param[k] - step_size * m / (_sqrt(v) * inv_sqrt_bc2 + eps_))


def sgd_update(floating[::1] param, const floating[::1] grad, double lr, double weight_decay):
    """``param -= lr * (grad + weight_decay * param)``."""
    cdef Py_ssize_t k, n = param.shape[0]
    cdef floating lr_ = <floating>lr, wd = <floating>weight_decay
    with nogil:
        for k in range(n):
            param[k] = _flush(param[k] - lr_ * (grad[k] + wd * param[k]))
