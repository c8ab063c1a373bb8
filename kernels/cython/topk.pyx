# cython: language_level=3
"""Top-k of dense score rows with an exclusion list (twin of ``numba/topk.py``)."""

from cython cimport floating, integral
from cython.parallel cimport prange
from libc.math cimport INFINITY

from _heap cimport heap_offer, heap_sort


def topk_dense(const floating[:, ::1] scores, int k, const integral[::1] excl_indptr,
               const int[::1] excl_indices, int[:, ::1] out_idx, floating[:, ::1] out_val):
    """Write the ``k`` best entries of every row of ``scores``.

    See ``kernels/numba/topk.py`` for the parameters and ordering contract.
    """
    cdef Py_ssize_t n_rows = scores.shape[0], n_cols = scores.shape[1]
    cdef Py_ssize_t row, p, p_end
    cdef int col, size, j
    with nogil:
        for row in prange(n_rows, schedule="dynamic", chunksize=16):
            size = 0
            p = excl_indptr[row]
            p_end = excl_indptr[row + 1]
            for col in range(n_cols):
                if p < p_end and excl_indices[p] == col:
                    p = p + 1
                    continue
                size = heap_offer(&out_val[row, 0], &out_idx[row, 0], size, k,
                                  scores[row, col], col)
            heap_sort(&out_val[row, 0], &out_idx[row, 0], size)
            for j in range(size, k):
                out_idx[row, j] = -1
                out_val[row, j] = -INFINITY
