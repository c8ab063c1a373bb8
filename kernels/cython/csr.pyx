# cython: language_level=3
"""CSR structure scan for input validation (twin of ``kernels/numba/csr.py``)."""

from cython cimport integral

# Same codes as kernels/numba/csr.py
cdef enum:
    CSR_OK = 0
    CSR_INDPTR_START = 1
    CSR_INDPTR_DECREASING = 2
    CSR_INDEX_NEGATIVE = 3
    CSR_INDEX_TOO_LARGE = 4
    CSR_INDEX_UNSORTED = 5


cdef int _scan(const integral[::1] indptr, const int[::1] indices, long long n_cols,
               long long* where) noexcept nogil:
    cdef Py_ssize_t n_rows = indptr.shape[0] - 1, row, pos, start, end
    cdef long long col
    if indptr[0] != 0:
        where[0] = 0
        return CSR_INDPTR_START
    for row in range(n_rows):
        if indptr[row + 1] < indptr[row]:
            where[0] = row + 1
            return CSR_INDPTR_DECREASING
    for row in range(n_rows):
        start = indptr[row]
        end = indptr[row + 1]
        for pos in range(start, end):
            col = indices[pos]
            where[0] = pos
            if col < 0:
                return CSR_INDEX_NEGATIVE
            if col >= n_cols:
                return CSR_INDEX_TOO_LARGE
            if pos > start and col <= indices[pos - 1]:
                return CSR_INDEX_UNSORTED
    where[0] = -1
    return CSR_OK


def check_csr(const integral[::1] indptr, const int[::1] indices, long long n_cols):
    """Scan a CSR structure; return ``(code, position)`` of the first fault.

    See ``kernels/numba/csr.py`` for the codes. ``indptr`` is int32 or int64.
    """
    cdef long long where = -1
    cdef int code
    with nogil:
        code = _scan(indptr, indices, n_cols, &where)
    return code, where
