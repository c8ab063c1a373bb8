"""Top-k of dense score rows with an exclusion list (twin of ``cython/topk.pyx``)."""

from __future__ import annotations

import numpy as np
from numba import prange

from ._config import jit
from ._heap import heap_offer, heap_sort


@jit(parallel=True)
def topk_dense(scores, k, excl_indptr, excl_indices, out_idx, out_val):
    """Write the ``k`` best entries of every row of ``scores``.

    Parameters
    ----------
    scores : (n_rows, n_cols) float32/float64, C order
    k : int, 1 <= k
    excl_indptr : (n_rows + 1,) int32/int64 CSR row pointer of the entries to skip
        (use ``zeros(n_rows + 1)`` for none)
    excl_indices : (nnz,) int32, sorted within each row
    out_idx : (n_rows, k) int32, written: column indices, best first
    out_val : (n_rows, k) same dtype as scores, written: their scores

    Ordering is by descending score, ties by ascending column. A row with fewer
    than ``k`` candidates is padded with index -1 and score -inf. Each row is
    written by one iteration only, so the result does not depend on threads.
    """
    n_rows, n_cols = scores.shape
    for row in prange(n_rows):
        vals = out_val[row]
        idxs = out_idx[row]
        size = 0
        p = excl_indptr[row]
        p_end = excl_indptr[row + 1]
        for col in range(n_cols):
            if p < p_end and excl_indices[p] == col:
                p += 1
                continue
            score = scores[row, col]
            # the common case, a candidate worse than the kept worst, decided
            # inline: a call into heap_offer per column is costly in Numba
            if size == k and not (score > vals[0] or (score == vals[0] and col < idxs[0])):
                continue
            size = heap_offer(vals, idxs, size, k, score, col)
        heap_sort(vals, idxs, size)
        for j in range(size, k):
            idxs[j] = -1
            vals[j] = -np.inf
