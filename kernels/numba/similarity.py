"""Sparse similarity between the rows of a CSR matrix, fused with top-k selection.

Twin of ``kernels/cython/similarity.pyx`` (same names, same signatures).

Both kernels compute, for each query row ``i`` of ``A`` (n x m, CSR), its
similarity with every row ``l`` of ``A`` that shares at least one column with
it, by a row-by-row sparse product ``A[i] @ A.T`` (Gustavson's algorithm): for
each stored ``(i, j)`` walk row ``j`` of ``A.T`` (given as its own CSR) and add
into a dense accumulator indexed by ``l``, remembering which ``l`` were
touched. The touched list is then scored, offered to a size-``k`` heap
(``_heap.py``) and the accumulators touched are reset. A heavy row (at least
``n`` updates, the common case for item-item on popular items) skips the
touched bookkeeping in its inner loop and scans all ``n`` accumulators
instead, which costs less than the updates it saved. A similarity of exactly 0
is never stored. The n x n matrix never exists: the memory is one accumulator
row per thread (per stripe in Numba) plus the ``(rows, k)`` output.

Each query row is computed by exactly one loop iteration, in an order fixed by
the data alone, so the output does not depend on the number of threads.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ._config import jit
from ._heap import heap_offer, heap_sort

#: A centred sum of squares ``n * sxx - sx**2`` at or below this fraction of
#: ``n * sxx`` is treated as zero: the vector is constant on the support and
#: its correlation undefined (similarity 0, not stored). Exact data (ratings
#: that are multiples of 0.5) give an exact 0 anyway; this only absorbs the
#: rounding of arbitrary floats.
ZERO_VARIANCE_RTOL = 1e-12

#: The query rows are dealt round-robin into this many stripes (row ``r`` goes
#: to stripe ``r % STRIPES``); a stripe is one parallel iteration with its own
#: accumulator, allocated once and reset entry by entry after each row. Rows
#: are very skewed (popular items), and round-robin stripes are each a uniform
#: sample of them, so threads get similar work. The caller sets
#: ``numba.set_parallel_chunksize(1)`` so that stripes are also handed out
#: dynamically. (Per-thread buffers indexed by thread id would need
#: ``numba.get_num_threads()`` in the kernel, which stops Numba from caching it.)
STRIPES = 64


@jit
def _row_work(i, indptr, indices, t_indptr):
    """Number of accumulator updates row ``i`` costs: ``sum(deg(j) for j in A[i])``."""
    work = 0
    for p in range(indptr[i], indptr[i + 1]):
        j = indices[p]
        work += t_indptr[j + 1] - t_indptr[j]
    return work


@jit
def _pearson_sim(n, sx, sy, sxx, syy, sxy, min_support, shrinkage):
    """Pearson from the six sums (then shrunk); 0.0 when there is none."""
    if n < min_support:
        return 0.0
    # Surprise's one-pass form: n * cov / sqrt(n * var_x * n * var_y)
    var_x = n * sxx - sx * sx
    var_y = n * syy - sy * sy
    if var_x <= ZERO_VARIANCE_RTOL * n * sxx or var_y <= ZERO_VARIANCE_RTOL * n * syy:
        return 0.0
    sim = (n * sxy - sx * sy) / np.sqrt(var_x * var_y)
    sim = min(1.0, max(-1.0, sim))
    if shrinkage > 0.0:
        sim *= n / (n + shrinkage)
    return sim


@jit
def _dot_sim(dot, n, min_support, shrinkage):
    """Clipped, shrunk dot product; 0.0 below ``min_support`` (``n`` only kept when needed)."""
    if min_support > 1 and n < min_support:
        return 0.0
    sim = min(1.0, max(-1.0, np.float64(dot)))
    if shrinkage > 0.0:
        sim *= n / (n + shrinkage)
    return sim


@jit
def _pearson_row(
    i,
    indptr,
    indices,
    data,
    t_indptr,
    t_indices,
    t_data,
    k,
    min_support,
    shrinkage,
    min_similarity,
    acc,
    touched,
    cast,
    vals,
    idxs,
):
    """Top-k Pearson similarities of row ``i``; returns the number kept.

    ``acc`` is (n, 6) float64, all zero on entry and on exit; per row ``l`` it
    accumulates over the common columns ``j``:
    ``[count, sum x, sum y, sum x*x, sum y*y, sum x*y]`` with ``x = A[i, j]``,
    ``y = A[l, j]``. A heavy row (at least ``n`` updates) skips the touched
    list and scans all ``n`` accumulators instead.
    """
    n_vectors = acc.shape[0]
    dense = _row_work(i, indptr, indices, t_indptr) >= n_vectors
    n_touched = 0
    for p in range(indptr[i], indptr[i + 1]):
        j = indices[p]
        x = np.float64(data[p])
        xx = x * x
        if dense:
            for q in range(t_indptr[j], t_indptr[j + 1]):
                l = t_indices[q]
                y = np.float64(t_data[q])
                acc[l, 0] += 1.0
                acc[l, 1] += x
                acc[l, 2] += y
                acc[l, 3] += xx
                acc[l, 4] += y * y
                acc[l, 5] += x * y
        else:
            for q in range(t_indptr[j], t_indptr[j + 1]):
                l = t_indices[q]
                y = np.float64(t_data[q])
                if acc[l, 0] == 0.0:
                    touched[n_touched] = l
                    n_touched += 1
                acc[l, 0] += 1.0
                acc[l, 1] += x
                acc[l, 2] += y
                acc[l, 3] += xx
                acc[l, 4] += y * y
                acc[l, 5] += x * y
    for c in range(6):  # no self pair
        acc[i, c] = 0.0
    size = 0
    n_scan = n_vectors if dense else n_touched
    for t in range(n_scan):
        l = t if dense else touched[t]
        if acc[l, 0] == 0.0:
            continue
        sim = _pearson_sim(
            acc[l, 0], acc[l, 1], acc[l, 2], acc[l, 3], acc[l, 4], acc[l, 5], min_support, shrinkage
        )
        for c in range(6):
            acc[l, c] = 0.0
        if sim == 0.0 or sim < min_similarity:
            continue
        cast[0] = sim  # rank in the output precision, so ties are the output's ties
        v = cast[0]
        # one comparison with the heap's root, inline: most candidates of a long
        # row stop here, and a Numba call that passes arrays is not free
        if size < k or v > vals[0] or (v == vals[0] and l < idxs[0]):
            size = heap_offer(vals, idxs, size, k, v, l)
    return size


@jit
def _dot_row(
    i,
    indptr,
    indices,
    data,
    t_indptr,
    t_indices,
    t_data,
    valid,
    k,
    min_support,
    shrinkage,
    min_similarity,
    acc,
    count,
    touched,
    cast,
    vals,
    idxs,
):
    """Top-k dot products of row ``i`` (rows already unit norm); returns the number kept.

    ``acc`` (n,) of the data dtype and ``count`` (n,) int32 are all zero on
    entry and on exit. The count of common columns is only kept when
    ``min_support > 1`` or ``shrinkage > 0`` need it, or to track touched rows
    for a light row; a heavy row (at least ``n`` updates) does a bare
    scatter-add ``acc[A.T[j].indices] += x * A.T[j].data`` and then scans all
    ``n`` accumulators. A zero dot product is never stored, so "touched" and
    "nonzero" are the same thing.
    """
    n_vectors = acc.shape[0]
    dense = _row_work(i, indptr, indices, t_indptr) >= n_vectors
    need_count = min_support > 1 or shrinkage > 0.0
    n_touched = 0
    for p in range(indptr[i], indptr[i + 1]):
        j = indices[p]
        x = data[p]
        q0 = t_indptr[j]
        q1 = t_indptr[j + 1]
        if dense and not need_count:
            for q in range(q0, q1):
                acc[t_indices[q]] += x * t_data[q]
        elif dense:
            for q in range(q0, q1):
                l = t_indices[q]
                acc[l] += x * t_data[q]
                count[l] += 1
        else:
            for q in range(q0, q1):
                l = t_indices[q]
                if count[l] == 0:
                    touched[n_touched] = l
                    n_touched += 1
                acc[l] += x * t_data[q]
                count[l] += 1
    acc[i] = 0  # no self pair
    count[i] = 0
    size = 0
    n_scan = n_vectors if dense else n_touched
    for t in range(n_scan):
        l = t if dense else touched[t]
        if acc[l] == 0:
            count[l] = 0
            continue
        sim = _dot_sim(acc[l], np.float64(count[l]), min_support, shrinkage)
        acc[l] = 0
        count[l] = 0
        if sim == 0.0 or sim < min_similarity or not valid[l]:
            continue
        cast[0] = sim  # rank in the output precision, so ties are the output's ties
        v = cast[0]
        # one comparison with the heap's root, inline: most candidates of a long
        # row stop here, and a Numba call that passes arrays is not free
        if size < k or v > vals[0] or (v == vals[0] and l < idxs[0]):
            size = heap_offer(vals, idxs, size, k, v, l)
    return size


@jit
def _pad(vals, idxs, size, k):
    heap_sort(vals, idxs, size)
    for j in range(size, k):
        idxs[j] = -1
        vals[j] = -np.inf


@jit(parallel=True)
def pearson_topk(
    indptr,
    indices,
    data,
    t_indptr,
    t_indices,
    t_data,
    rows,
    k,
    min_support,
    shrinkage,
    min_similarity,
    out_idx,
    out_val,
):
    """Top-k Pearson correlation over the co-rated support, for the query ``rows``.

    Parameters
    ----------
    indptr, indices, data : CSR of ``A``, shape (n, m): int64 (n + 1,), int32 (nnz,),
        float32/float64 (nnz,). Sorted indices. The similarity is between rows.
    t_indptr, t_indices, t_data : CSR of ``A.T``, shape (m, n), same dtypes.
    rows : (n_rows,) int32, the query rows (each in ``[0, n)``).
    k : int >= 1, neighbours kept per query row.
    min_support : int >= 1, pairs with fewer common columns get no similarity.
    shrinkage : float >= 0, similarity multiplied by ``count / (count + shrinkage)``.
    min_similarity : float, similarities (after shrinkage) below it are dropped
        (``-inf`` keeps all).
    out_idx : (n_rows, k) int32, written: neighbour rows, best first, -1 padded.
    out_val : (n_rows, k) float32/float64, written: their similarities, -inf padded.

    Notes
    -----
    With ``x, y`` the two rows restricted to their common columns (``count``
    entries), the similarity is ``cov(x, y) / (std(x) std(y))`` with means over
    the common columns (scikit-surprise's ``pearson``; Herlocker et al., 1999),
    computed in one pass from six float64 accumulators per pair. A pair where
    either side is constant on the common columns (which includes a single
    common column) has similarity 0; a similarity of exactly 0 is never
    stored. Values are clipped to [-1, 1]. No self pairs. Ties by ascending
    row index.
    """
    n = indptr.shape[0] - 1
    n_rows = rows.shape[0]
    n_stripes = min(n_rows, STRIPES)
    for stripe in prange(n_stripes):
        # scratch per stripe; rows stripe, stripe + n_stripes, ... share it
        acc = np.zeros((n, 6), dtype=np.float64)
        touched = np.empty(n, dtype=np.int32)
        cast = np.empty(1, dtype=out_val.dtype)
        for r in range(stripe, n_rows, n_stripes):
            size = _pearson_row(
                rows[r],
                indptr,
                indices,
                data,
                t_indptr,
                t_indices,
                t_data,
                k,
                min_support,
                shrinkage,
                min_similarity,
                acc,
                touched,
                cast,
                out_val[r],
                out_idx[r],
            )
            _pad(out_val[r], out_idx[r], size, k)


@jit(parallel=True)
def dot_topk(
    indptr,
    indices,
    data,
    t_indptr,
    t_indices,
    t_data,
    valid,
    rows,
    k,
    min_support,
    shrinkage,
    min_similarity,
    out_idx,
    out_val,
):
    """Top-k dot products between rows already scaled to unit norm, for ``rows``.

    The cosine-family kinds (``cosine``, ``centered_cosine``,
    ``adjusted_cosine``) are all this kernel after a per-kind transform of the
    data done once in Python (``fastrec/neighbours.py``).

    Parameters
    ----------
    indptr, indices, data, t_indptr, t_indices, t_data, rows, k, min_support,
    shrinkage, min_similarity, out_idx, out_val
        As in :func:`pearson_topk`; ``data`` and ``t_data`` hold the transformed
        (centred, unit-norm) values and their dtype is the accumulation dtype.
    valid : (n,) uint8, 0 for a row of norm zero: its pairs are not stored.

    Notes
    -----
    The dot products accumulate in the data dtype; ``count`` (the number of
    common columns, for ``min_support`` and ``shrinkage``) in int32. A zero
    similarity is not stored.
    """
    n = indptr.shape[0] - 1
    n_rows = rows.shape[0]
    n_stripes = min(n_rows, STRIPES)
    for stripe in prange(n_stripes):
        acc = np.zeros(n, dtype=data.dtype)
        count = np.zeros(n, dtype=np.int32)
        touched = np.empty(n, dtype=np.int32)
        cast = np.empty(1, dtype=out_val.dtype)
        for r in range(stripe, n_rows, n_stripes):
            size = 0
            if valid[rows[r]]:
                size = _dot_row(
                    rows[r],
                    indptr,
                    indices,
                    data,
                    t_indptr,
                    t_indices,
                    t_data,
                    valid,
                    k,
                    min_support,
                    shrinkage,
                    min_similarity,
                    acc,
                    count,
                    touched,
                    cast,
                    out_val[r],
                    out_idx[r],
                )
            _pad(out_val[r], out_idx[r], size, k)
