# cython: language_level=3
"""Top-k of dense score rows with an exclusion list (twin of ``numba/topk.py``)."""

from cython cimport floating, integral
from cython.parallel cimport prange
from libc.math cimport INFINITY

from _heap cimport heap_offer, heap_sort

# Columns tested against the threshold at once (see ``_scan``).
cdef enum:
    CHUNK = 64


cdef inline int _scan(const floating* s, int start, int stop, int k, int size,
                      floating* vals, int* idxs) noexcept nogil:
    # Offer the columns [start, stop) of one row, in ascending order.
    #
    # Once the heap is full, its root (the worst kept entry) is a threshold: a
    # later column can only enter with a strictly greater score (an equal score
    # loses the tie, its index being larger). Whole chunks are first tested
    # with a branch-free "any score > threshold" (a vectorisable OR over the
    # chunk, ``(s[c:c+CHUNK] > thr).any()``) and only a chunk with a hit is
    # walked one column at a time.
    # (Py_ssize_t offsets from a chunk pointer: with int indices and Python's
    # -fwrapv, GCC cannot prove the loads contiguous and emulates gathers.)
    cdef int c = start, j
    cdef Py_ssize_t t
    cdef const floating* chunk
    cdef floating thr
    cdef bint hit
    while c < stop and size < k:
        size = heap_offer(vals, idxs, size, k, s[c], c)
        c = c + 1
    if c >= stop:
        return size
    thr = vals[0]
    while c + CHUNK <= stop:
        hit = 0
        chunk = s + c
        for t in range(CHUNK):
            hit = hit | (chunk[t] > thr)
        if hit:
            for j in range(c, c + CHUNK):
                if s[j] > thr:
                    size = heap_offer(vals, idxs, size, k, s[j], j)
                    thr = vals[0]
        c = c + CHUNK
    for j in range(c, stop):
        if s[j] > thr:
            size = heap_offer(vals, idxs, size, k, s[j], j)
            thr = vals[0]
    return size


def topk_dense(const floating[:, ::1] scores, int k, const integral[::1] excl_indptr,
               const int[::1] excl_indices, int[:, ::1] out_idx, floating[:, ::1] out_val):
    """Write the ``k`` best entries of every row of ``scores``.

    See ``kernels/numba/topk.py`` for the parameters and ordering contract.
    The row is scanned segment by segment between its excluded columns.
    """
    cdef Py_ssize_t n_rows = scores.shape[0], n_cols = scores.shape[1]
    cdef Py_ssize_t row, p, p_end
    cdef int col, size, j, seg_end
    with nogil:
        for row in prange(n_rows, schedule="dynamic", chunksize=16):
            size = 0
            p = excl_indptr[row]
            p_end = excl_indptr[row + 1]
            col = 0
            while col < n_cols:
                seg_end = excl_indices[p] if p < p_end else <int> n_cols
                size = _scan(&scores[row, 0], col, seg_end, k, size,
                             &out_val[row, 0], &out_idx[row, 0])
                col = seg_end + 1
                p = p + 1
            heap_sort(&out_val[row, 0], &out_idx[row, 0], size)
            for j in range(size, k):
                out_idx[row, j] = -1
                out_val[row, j] = -INFINITY
