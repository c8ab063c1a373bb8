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

Pearson is symmetric, so when every row is queried :func:`pearson_topk_all`
accumulates each unordered pair once, by its lower row ``i`` (the walk of
``A.T[j]`` starts just past ``i``, found by binary search), and offers the
similarity both to row ``i``'s heap and to a per-stripe (per-thread in
Cython) heap of the higher row; each row's heaps are merged at the end. This
halves the accumulation work, the dominant cost on rating data.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ._config import jit
from ._heap import heap_offer, heap_sort
from ._simcore import clip_unit, pearson, shrink

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


#: Accumulators per pair: ``[count, sum x, sum y, sum x*x, sum y*y, sum x*y]``
#: padded to 8 float64 (one 64-byte cache line; the Cython twin adds them as
#: one vector).
ACC_WIDTH = 8


@jit
def _upper_bound(a, lo, hi, key):
    """``lo + np.searchsorted(a[lo:hi], key, side="right")`` for sorted ``a[lo:hi]``."""
    while lo < hi:
        mid = lo + (hi - lo) // 2
        if a[mid] <= key:
            lo = mid + 1
        else:
            hi = mid
    return lo


@jit
def _pearson_sim(n, sx, sy, sxx, syy, sxy, min_support, shrinkage):
    """Pearson from the six sums (``_simcore``), clipped to [-1, 1], then shrunk.

    0.0 when the pair gets no similarity (support below ``min_support``, zero
    variance): it is not stored. Symmetric in ``(x, y)``.
    """
    if n < min_support:
        return 0.0
    sim = pearson(n, sx, sy, sxx, syy, sxy)
    if sim != sim:  # NaN: zero variance
        return 0.0
    return shrink(clip_unit(sim), n, shrinkage)


@jit
def _dot_sim(dot, n, min_support, shrinkage, clip):
    """Shrunk dot product, clipped to [-1, 1] when ``clip``; 0.0 below ``min_support``.

    (``n`` only kept when needed.)
    """
    if min_support > 1 and n < min_support:
        return 0.0
    sim = np.float64(dot)
    if clip:
        sim = clip_unit(sim)
    return shrink(sim, n, shrinkage)


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

    ``acc`` is (n, 8) float64, all zero on entry and on exit; per row ``l`` it
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
def _offer(vals, idxs, size, k, v, l):
    """``heap_offer`` with the common reject (full heap, ``v`` not better than the root) inline."""
    if size < k or v > vals[0] or (v == vals[0] and l < idxs[0]):
        size = heap_offer(vals, idxs, size, k, v, l)
    return size


@jit
def _sym_starts(i, indptr, indices, t_indptr, t_indices, starts):
    """Where each column's walk starts for the pairs ``l > i``; returns their number.

    ``starts[p - indptr[i]]`` = first position of ``A.T[indices[p]]`` past
    row ``i`` (its indices are sorted).
    """
    p0 = indptr[i]
    work = 0
    for p in range(p0, indptr[i + 1]):
        j = indices[p]
        q = _upper_bound(t_indices, t_indptr[j], t_indptr[j + 1], i)
        starts[p - p0] = q
        work += t_indptr[j + 1] - q
    return work


@jit
def _max_row_len(indptr):
    """``np.diff(indptr).max()`` (0 for no rows)."""
    max_len = 0
    for r in range(indptr.shape[0] - 1):
        max_len = max(max_len, indptr[r + 1] - indptr[r])
    return max_len


@jit
def _merge_sets(r, size, heap_val, heap_idx, heap_size, k, vals, idxs):
    """Merge every stripe's heap of row ``r`` into its own heap (``size`` entries), then pad."""
    for s in range(heap_val.shape[0]):
        for e in range(heap_size[s, r]):
            size = _offer(vals, idxs, size, k, heap_val[s, r, e], heap_idx[s, r, e])
    _pad(vals, idxs, size, k)


@jit
def _pearson_row_sym(
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
    starts,
    cast,
    vals,
    idxs,
    r_vals,
    r_idxs,
    r_size,
    r_thr,
    r_thr_idx,
):
    """Top-k Pearson similarities of row ``i`` with the rows ``l > i``; returns the number kept.

    Per column ``j`` of row ``i`` the walk of ``A.T[j]`` (sorted indices)
    starts just past ``i``, so each unordered pair is accumulated once, by its
    lower row. The pair goes to row ``i``'s heap ``(vals, idxs)`` and to this
    stripe's heap of row ``l``: ``(r_vals[l], r_idxs[l])`` with ``r_size[l]``
    entries. ``(r_thr[l], r_thr_idx[l])`` is that heap's root once it is full
    (``(-inf, n)`` before), so the common reject reads two compact arrays.
    ``acc`` is as in :func:`_pearson_row`; ``starts`` has room for row ``i``.
    """
    n_vectors = acc.shape[0]
    p0 = indptr[i]
    work = _sym_starts(i, indptr, indices, t_indptr, t_indices, starts)
    dense = work >= n_vectors - i - 1
    n_touched = 0
    for p in range(p0, indptr[i + 1]):
        j = indices[p]
        x = np.float64(data[p])
        xx = x * x
        for q in range(starts[p - p0], t_indptr[j + 1]):
            l = t_indices[q]
            y = np.float64(t_data[q])
            if not dense and acc[l, 0] == 0.0:
                touched[n_touched] = l
                n_touched += 1
            acc[l, 0] += 1.0
            acc[l, 1] += x
            acc[l, 2] += y
            acc[l, 3] += xx
            acc[l, 4] += y * y
            acc[l, 5] += x * y
    size = 0
    n_scan = n_vectors - i - 1 if dense else n_touched
    for t in range(n_scan):
        l = i + 1 + t if dense else touched[t]
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
        size = _offer(vals, idxs, size, k, v, l)
        # this stripe's heap of row l; (r_thr[l], r_thr_idx[l]) is its root once
        # full. Written out here: as a helper function (even with Numba's
        # inline="always") the kernel ran 1.3-1.6x slower.
        if v > r_thr[l] or (v == r_thr[l] and i < r_thr_idx[l]):
            r_size[l] = heap_offer(r_vals[l], r_idxs[l], r_size[l], k, v, i)
            if r_size[l] == k:
                r_thr[l] = r_vals[l, 0]
                r_thr_idx[l] = r_idxs[l, 0]
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
    clip=True,
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
        sim = _dot_sim(acc[l], np.float64(count[l]), min_support, shrinkage, clip)
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
def _dot_row_sym(
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
    starts,
    cast,
    vals,
    idxs,
    r_vals,
    r_idxs,
    r_size,
    r_thr,
    r_thr_idx,
    clip=True,
):
    """:func:`_dot_row` over the pairs ``(i, l)``, ``l > i`` only, offered to both rows.

    The heaps and the walk are as in :func:`_pearson_row_sym`.
    """
    n_vectors = acc.shape[0]
    p0 = indptr[i]
    work = _sym_starts(i, indptr, indices, t_indptr, t_indices, starts)
    dense = work >= n_vectors - i - 1
    need_count = min_support > 1 or shrinkage > 0.0
    n_touched = 0
    for p in range(p0, indptr[i + 1]):
        x = data[p]
        q0 = starts[p - p0]
        q1 = t_indptr[indices[p] + 1]
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
    size = 0
    n_scan = n_vectors - i - 1 if dense else n_touched
    for t in range(n_scan):
        l = i + 1 + t if dense else touched[t]
        if acc[l] == 0:
            count[l] = 0
            continue
        sim = _dot_sim(acc[l], np.float64(count[l]), min_support, shrinkage, clip)
        acc[l] = 0
        count[l] = 0
        if sim == 0.0 or sim < min_similarity or not valid[l]:
            continue
        cast[0] = sim  # rank in the output precision, so ties are the output's ties
        v = cast[0]
        size = _offer(vals, idxs, size, k, v, l)
        # this stripe's heap of row l; (r_thr[l], r_thr_idx[l]) is its root once
        # full. Written out here: as a helper function (even with Numba's
        # inline="always") the kernel ran 1.3-1.6x slower.
        if v > r_thr[l] or (v == r_thr[l] and i < r_thr_idx[l]):
            r_size[l] = heap_offer(r_vals[l], r_idxs[l], r_size[l], k, v, i)
            if r_size[l] == k:
                r_thr[l] = r_vals[l, 0]
                r_thr_idx[l] = r_idxs[l, 0]
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
        acc = np.zeros((n, ACC_WIDTH), dtype=np.float64)
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
    clip=True,
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
    clip : bool, default True
        Clip the similarities to [-1, 1] (cosine kinds); False for the
        unnormalised ``bm25`` dot products.

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
                    clip,
                )
            _pad(out_val[r], out_idx[r], size, k)


@jit(parallel=True)
def pearson_topk_all(
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
    lo,
    hi,
    heap_idx,
    heap_val,
    heap_size,
    own_size,
    out_idx,
    out_val,
):
    """Top-k Pearson correlation of every row, each pair computed once.

    The same result as :func:`pearson_topk` with ``rows = arange(n)``, for
    half the accumulation work: ``sim(i, l) == sim(l, i)``, so only the pairs
    ``l > i`` are accumulated (by row ``i``) and each similarity is offered to
    both rows' heaps.

    Parameters
    ----------
    indptr, indices, data, t_indptr, t_indices, t_data, k, min_support, shrinkage,
    min_similarity
        As in :func:`pearson_topk`.
    heap_idx : (n_sets, n, k) int32, scratch
    heap_val : (n_sets, n, k) float32/float64 (the data dtype), scratch
    lo, hi : int, the rows ``i`` in ``[lo, hi)`` are computed by this call.
        The work can be split into calls over consecutive row ranges (so the
        caller can stop between two); the heaps carry over from call to call.
    heap_size : (n_sets, n) int32, zero before the first call
        One set of ``n`` size-``k`` heaps per stripe of rows (per thread in
        the Cython twin): set ``s`` collects the pairs ``(i, l)`` found by
        the rows ``i`` of stripe ``s`` for the higher row ``l``. Memory
        ``n_sets * n * k * (4 + itemsize)`` bytes; the caller bounds it.
    own_size : (n,) int32, written for the rows of the range: the number of
        entries of row ``i``'s own heap (``out_idx[i]``, ``out_val[i]``).
    out_idx : (n, k) int32, written: row ``i``'s own heap (the pairs ``l > i``);
        :func:`merge_sets`, once every row is done, turns it into the result:
        neighbour rows, best first, -1 padded.
    out_val : (n, k) float32/float64, written: their similarities, -inf padded.

    Notes
    -----
    Rows are dealt round-robin into ``n_sets`` stripes (``STRIPES`` in
    :func:`pearson_topk`); row ``i``'s own heap (the pairs ``l > i``) is then
    merged with every set's heap of row ``i`` (the pairs ``l < i``). The top
    ``k`` under the total order (similarity descending, index ascending) of a
    union does not depend on how it was split, and each pair's similarity is
    computed once, so the output is the same for any number of stripes or
    threads, and the same as :func:`pearson_topk`'s up to the last bit of
    float64 products on float64 data (float32 products are exact in float64,
    so with float32 data it is bitwise the same). The work of row ``i`` is
    about proportional to the number of rows after it, so stripes of
    round-robin rows get similar work.
    """
    n = indptr.shape[0] - 1
    n_sets = heap_val.shape[0]
    hi = min(hi, n)
    if lo >= hi:
        return
    max_len = _max_row_len(indptr)
    for s in prange(n_sets):
        if lo + s >= hi:
            continue
        acc = np.zeros((n, ACC_WIDTH), dtype=np.float64)
        touched = np.empty(n, dtype=np.int32)
        starts = np.empty(max_len, dtype=np.int64)
        cast = np.empty(1, dtype=out_val.dtype)
        thr = np.full(n, -np.inf, dtype=out_val.dtype)
        thr_idx = np.full(n, n, dtype=np.int32)
        for i in range(lo + s, hi, n_sets):
            own_size[i] = _pearson_row_sym(
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
                starts,
                cast,
                out_val[i],
                out_idx[i],
                heap_val[s],
                heap_idx[s],
                heap_size[s],
                thr,
                thr_idx,
            )


@jit(parallel=True)
def dot_topk_all(
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
    lo,
    hi,
    heap_idx,
    heap_val,
    heap_size,
    own_size,
    out_idx,
    out_val,
    clip=True,
):
    """Top-k dot products (unit-norm rows) of every row, each pair computed once.

    :func:`dot_topk` with ``rows = arange(n)``, by the scheme of
    :func:`pearson_topk_all` (same heap and range arguments, same merge). The dot
    product sums the same products in the same column order from either
    side, so the output is that of :func:`dot_topk`. An invalid row (norm 0)
    has no pairs and is skipped.
    """
    n = indptr.shape[0] - 1
    n_sets = heap_val.shape[0]
    hi = min(hi, n)
    if lo >= hi:
        return
    max_len = _max_row_len(indptr)
    for s in prange(n_sets):
        if lo + s >= hi:
            continue
        acc = np.zeros(n, dtype=data.dtype)
        count = np.zeros(n, dtype=np.int32)
        touched = np.empty(n, dtype=np.int32)
        starts = np.empty(max_len, dtype=np.int64)
        cast = np.empty(1, dtype=out_val.dtype)
        thr = np.full(n, -np.inf, dtype=out_val.dtype)
        thr_idx = np.full(n, n, dtype=np.int32)
        for i in range(lo + s, hi, n_sets):
            if valid[i]:
                own_size[i] = _dot_row_sym(
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
                    starts,
                    cast,
                    out_val[i],
                    out_idx[i],
                    heap_val[s],
                    heap_idx[s],
                    heap_size[s],
                    thr,
                    thr_idx,
                    clip,
                )


@jit(parallel=True)
def merge_sets(heap_idx, heap_val, heap_size, own_size, out_idx, out_val):
    """Finish :func:`pearson_topk_all` / :func:`dot_topk_all` once every row is done.

    Row ``r``'s own heap (``own_size[r]`` entries of ``out_idx[r]``,
    ``out_val[r]``) is merged with every set's heap of row ``r``, sorted best
    first and padded with -1 / ``-inf``.
    """
    k = out_idx.shape[1]
    for r in prange(out_idx.shape[0]):
        _merge_sets(r, own_size[r], heap_val, heap_idx, heap_size, k, out_val[r], out_idx[r])
