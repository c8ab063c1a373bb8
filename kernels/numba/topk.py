"""Top-k of dense score rows with an exclusion list (twin of ``cython/topk.pyx``)."""

from __future__ import annotations

import numpy as np
from numba import prange

from ._config import jit
from ._heap import heap_offer, heap_sort

# Columns tested against the threshold at once (see ``_scan``).
CHUNK = 64


@jit
def _scan(s, start, stop, k, size, vals, idxs):
    """Offer the columns ``[start, stop)`` of the score row ``s``, in ascending order.

    Once the heap is full its root (the worst kept entry) is a threshold: a
    later column can only enter with a strictly greater score (an equal score
    loses the tie, its index being larger). Whole chunks are first tested with
    a branch-free ``(s[c:c+CHUNK] > thr).any()`` and only a chunk with a hit is
    walked one column at a time. Returns the new heap size.
    """
    c = start
    while c < stop and size < k:
        size = heap_offer(vals, idxs, size, k, s[c], c)
        c += 1
    if c >= stop:
        return size
    thr = vals[0]
    while c + CHUNK <= stop:
        hit = False
        for j in range(c, c + CHUNK):
            hit |= s[j] > thr
        if hit:
            for j in range(c, c + CHUNK):
                if s[j] > thr:
                    size = heap_offer(vals, idxs, size, k, s[j], j)
                    thr = vals[0]
        c += CHUNK
    for j in range(c, stop):
        if s[j] > thr:
            size = heap_offer(vals, idxs, size, k, s[j], j)
            thr = vals[0]
    return size


@jit(parallel=True)
def topk_dense(scores, k, excl_indptr, excl_indices, out_idx, out_val):
    """Write the ``k`` best entries of every row of ``scores``.

    Parameters
    ----------
    scores : (n_rows, n_cols) float32/float64, C order
    k : int, 1 <= k
    excl_indptr : (n_rows + 1,) int32/int64 CSR row pointer of the entries to skip
        (use ``zeros(n_rows + 1)`` for none)
    excl_indices : (nnz,) int32, strictly increasing within each row, < n_cols
    out_idx : (n_rows, k) int32, written: column indices, best first
    out_val : (n_rows, k) same dtype as scores, written: their scores

    Ordering is by descending score, ties by ascending column. A row with fewer
    than ``k`` candidates is padded with index -1 and score -inf. The row is
    scanned segment by segment between its excluded columns (``_scan``). Each
    row is written by one iteration only, so the result does not depend on
    threads.
    """
    n_rows, n_cols = scores.shape
    for row in prange(n_rows):
        vals = out_val[row]
        idxs = out_idx[row]
        s = scores[row]
        size = 0
        p = excl_indptr[row]
        p_end = excl_indptr[row + 1]
        col = 0
        while col < n_cols:
            seg_end = excl_indices[p] if p < p_end else n_cols
            size = _scan(s, col, seg_end, k, size, vals, idxs)
            col = seg_end + 1
            p += 1
        heap_sort(vals, idxs, size)
        for j in range(size, k):
            idxs[j] = -1
            vals[j] = -np.inf
