"""CSR structure scan for input validation (twin of ``kernels/cython/csr.pyx``)."""

from __future__ import annotations

import numpy as np

from ._config import jit

# Codes returned by check_csr; fastrec/_validation.py turns them into messages.
CSR_OK = 0
CSR_INDPTR_START = 1  # indptr[0] != 0
CSR_INDPTR_DECREASING = 2  # indptr[pos + 1] < indptr[pos]
CSR_INDEX_NEGATIVE = 3  # indices[pos] < 0
CSR_INDEX_TOO_LARGE = 4  # indices[pos] >= n_cols
CSR_INDEX_UNSORTED = 5  # indices[pos] <= indices[pos - 1] within a row (unsorted or duplicate)


@jit
def check_csr(indptr, indices, n_cols):
    """Scan a CSR structure; return ``(code, position)`` of the first fault.

    ``indptr`` has ``n_rows + 1`` entries and ``indptr[-1] == len(indices)``
    (the caller checks both first). Position is into ``indptr`` for codes 1-2
    and into ``indices`` otherwise; ``(0, -1)`` means the structure is valid.
    """
    if indptr[0] != 0:
        return CSR_INDPTR_START, 0
    n_rows = indptr.shape[0] - 1
    for row in range(n_rows):
        if indptr[row + 1] < indptr[row]:
            return CSR_INDPTR_DECREASING, row + 1
    for row in range(n_rows):
        start = indptr[row]
        end = indptr[row + 1]
        for pos in range(start, end):
            col = indices[pos]
            if col < 0:
                return CSR_INDEX_NEGATIVE, pos
            if col >= n_cols:
                return CSR_INDEX_TOO_LARGE, pos
            if pos > start and col <= indices[pos - 1]:
                return CSR_INDEX_UNSORTED, pos
    return CSR_OK, np.int64(-1)
