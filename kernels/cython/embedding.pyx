# cython: language_level=3
"""Embedding-table kernels for the MLP (twin of ``kernels/numba/embedding.py``).

See the Numba module for the contract: gather of a batch's rows, scatter-add of
their gradients, and lazy (row-wise) Adam / SGD steps fused with the scatter.
All kernels are serial (a batch is less work than a parallel region, and a
parallel scatter with repeated indices would race) and release the GIL.
``slot`` must be all -1 on entry; it is all -1 again on exit.
"""

from cython cimport floating
from libc.math cimport sqrt, sqrtf


cdef inline floating _sqrt(floating x) noexcept nogil:
    # sqrtf for float32 so the loop stays in single precision (vectorisable)
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


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
    cdef floating g
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
                m[j] = b1 * m[j] + one_b1 * g
                v[j] = b2 * v[j] + one_b2 * g * g
                t[j] -= step_size * m[j] / (_sqrt(v[j]) * inv_sqrt_bc2 + eps_)
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
                t[j] -= lr_ * (a[j] + wd * t[j])
    return n_unique


def adam_update(floating[::1] param, floating[::1] exp_avg, floating[::1] exp_avg_sq,
                const floating[::1] grad, double lr, double beta1, double beta2, double eps,
                double weight_decay, double bias_correction1, double bias_correction2):
    """One dense Adam step on a flat parameter vector (see the Numba twin)."""
    cdef Py_ssize_t k, n = param.shape[0]
    cdef floating g
    cdef floating step_size = <floating>(lr / bias_correction1)
    cdef floating inv_sqrt_bc2 = <floating>(1.0 / sqrt(bias_correction2))
    cdef floating b1 = <floating>beta1, b2 = <floating>beta2
    cdef floating one_b1 = <floating>(1.0 - beta1), one_b2 = <floating>(1.0 - beta2)
    cdef floating eps_ = <floating>eps, wd = <floating>weight_decay
    with nogil:
        for k in range(n):
            g = grad[k] + wd * param[k]
            exp_avg[k] = b1 * exp_avg[k] + one_b1 * g
            exp_avg_sq[k] = b2 * exp_avg_sq[k] + one_b2 * g * g
            param[k] -= step_size * exp_avg[k] / (_sqrt(exp_avg_sq[k]) * inv_sqrt_bc2 + eps_)


def sgd_update(floating[::1] param, const floating[::1] grad, double lr, double weight_decay):
    """``param -= lr * (grad + weight_decay * param)``."""
    cdef Py_ssize_t k, n = param.shape[0]
    cdef floating lr_ = <floating>lr, wd = <floating>weight_decay
    with nogil:
        for k in range(n):
            param[k] -= lr_ * (grad[k] + wd * param[k])
