"""Top-k of dense score rows with an exclusion list (twin of ``cython/topk.pyx``)."""

from __future__ import annotations

import numpy as np
from numba import prange

from ._config import jit
from ._heap import heap_offer, heap_sort

# Columns tested against the threshold at once (see ``_scan``).
CHUNK = 64


@jit
def _scan(s, base, start, stop, k, size, vals, idxs):
    """Offer the columns ``[start, stop)`` of a score row, in ascending order.

    Column ``c``'s score is ``s[c - base]`` (``s`` holds the row from column
    ``base`` on); the heap ``(vals, idxs)`` holds ``size`` entries.

    Once the heap is full its root (the worst kept entry) is a threshold: a
    later column can only enter with a strictly greater score (an equal score
    loses the tie, its index being larger). Whole chunks are first tested with
    a branch-free ``(s[c:c+CHUNK] > thr).any()`` and only a chunk with a hit is
    walked one column at a time. Returns the new heap size.
    """
    c = start
    while c < stop and size < k:
        size = heap_offer(vals, idxs, size, k, s[c - base], c)
        c += 1
    if c >= stop:
        return size
    thr = vals[0]
    while c + CHUNK <= stop:
        hit = False
        for j in range(c - base, c - base + CHUNK):
            hit |= s[j] > thr
        if hit:
            for j in range(c, c + CHUNK):
                if s[j - base] > thr:
                    size = heap_offer(vals, idxs, size, k, s[j - base], j)
                    thr = vals[0]
        c += CHUNK
    for j in range(c, stop):
        if s[j - base] > thr:
            size = heap_offer(vals, idxs, size, k, s[j - base], j)
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
            size = _scan(s, 0, col, seg_end, k, size, vals, idxs)
            col = seg_end + 1
            p += 1
        heap_sort(vals, idxs, size)
        for j in range(size, k):
            idxs[j] = -1
            vals[j] = -np.inf


# Tile of one thread: TILE_ROWS query rows x TILE_COLS items of scores.
TILE_ROWS = 64
TILE_COLS = 2048


@jit(parallel=True)
def factor_topk(
    row_vectors, item_factors, item_offset, rows, k, excl_indptr, excl_indices, out_idx, out_val
):
    """Top-k of ``row_vectors[rows] @ item_factors.T + item_offset``, never materialised.

    Parameters
    ----------
    row_vectors : (n_vectors, f) float32/float64, C order
    item_factors : (n_items, f) same dtype, C order
    item_offset : (n_items,) or (0,) same dtype
        Added to every score row (e.g. item biases); empty for none.
    rows : (m,) int32, each in [0, n_vectors)
    k : int >= 1
    excl_indptr : (n_vectors + 1,) int32/int64, excl_indices : int32
        CSR over ``row_vectors``' rows (not over ``rows``): the items never
        returned for that row, strictly increasing, in [0, n_items).
    out_idx : (m, k) int32, out_val : (m, k) same dtype, written

    Same ordering, ties and padding as ``topk_dense`` on the dense product.
    Each parallel iteration takes TILE_ROWS rows, multiplies them with
    TILE_COLS items at a time (``np.dot``: BLAS, held to one thread by the
    caller) and scans that tile while it is in cache, carrying every row's
    heap and exclusion pointer across the item tiles.
    """
    m = rows.shape[0]
    n_items = item_factors.shape[0]
    has_offset = item_offset.shape[0] > 0
    n_tiles = (m + TILE_ROWS - 1) // TILE_ROWS
    for tile in prange(n_tiles):
        r0 = tile * TILE_ROWS
        r1 = min(r0 + TILE_ROWS, m)
        nr = r1 - r0
        a = np.empty((nr, row_vectors.shape[1]), dtype=row_vectors.dtype)
        pos = np.empty(nr, dtype=np.int64)
        sizes = np.zeros(nr, dtype=np.int64)
        for r in range(nr):
            x = rows[r0 + r]
            a[r] = row_vectors[x]
            pos[r] = excl_indptr[x]
        for c0 in range(0, n_items, TILE_COLS):
            c1 = min(c0 + TILE_COLS, n_items)
            scores = np.dot(a, item_factors[c0:c1].T)
            if has_offset:
                scores += item_offset[c0:c1]
            for r in range(nr):
                x = rows[r0 + r]
                p = pos[r]
                p_end = excl_indptr[x + 1]
                col = c0
                while col < c1:
                    seg_end = c1
                    if p < p_end and excl_indices[p] < c1:
                        seg_end = excl_indices[p]
                    sizes[r] = _scan(
                        scores[r], c0, col, seg_end, k, sizes[r], out_val[r0 + r], out_idx[r0 + r]
                    )
                    if seg_end < c1:
                        p += 1
                        col = seg_end + 1
                    else:
                        col = c1
                pos[r] = p
        for r in range(nr):
            heap_sort(out_val[r0 + r], out_idx[r0 + r], sizes[r])
            for j in range(sizes[r], k):
                out_idx[r0 + r, j] = -1
                out_val[r0 + r, j] = -np.inf
