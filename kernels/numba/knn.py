"""Neighbourhood (k-NN) prediction and scoring kernels (twin of ``cython/knn.pyx``).

Every kernel works in one orientation: the *target* side ``x`` (items for
ItemKNN, users for UserKNN) and the *other* side ``y``. The ratings matrix is
passed twice, as ``A`` (n_x, n_y) in CSR (``a_*``: the ratings of each x) and
as ``B = A.T`` in CSR (``b_*``: for each y, the x that rated it), both with
sorted int32 indices.

Similarities are computed on demand, one target row at a time, with dense
per-thread accumulators indexed by x' (the "sparse row times sparse matrix with
a dense accumulator and a touched list" scheme), so no n_x x n_x matrix ever
exists. The similarity of x and x' is taken over their co-rated support
Y = {y : A[x, y] and A[x', y] both stored}, n = |Y|:

``kind == 0`` (Pearson over the co-rated support, as scikit-surprise's
    ``pearson``): ``(n Sxy - Sx Sy) / sqrt((n Sxx - Sx^2)(n Syy - Sy^2))``, i.e.
    ``np.corrcoef(a[Y], a2[Y])[0, 1]``. A zero variance on the support (which
    includes n == 1) gives 0. The variance is taken as zero when it is below
    1e-12 of ``n Sxx`` (cancellation guard; exact for ratings on a 0.5 grid).
``kind == 1`` (dot product): ``sum_Y a[y] * a2[y]``; the caller passes values
    already centred / normalised so that this is the wanted measure (cosine,
    centred cosine, adjusted cosine, tfidf, bm25).
``kind == 2`` (cosine over the co-rated support, scikit-surprise's
    ``pearson_baseline`` when the values are baseline residuals):
    ``Sxy / sqrt(Sxx Syy)``; a zero ``Sxx`` or ``Syy``, or ``n < 2``, gives no
    similarity (surprise: 0).

Then ``n < min_support`` gives no similarity, and ``shrinkage`` multiplies by
``n / (n + shrinkage)`` (kinds 0 and 1, Koren) or by
``(n - 1) / (n - 1 + shrinkage)`` (kind 2, as scikit-surprise). A pair with no
co-rating, too little support or a zero
variance has no similarity (NaN inside the kernels): it is never a neighbour
and never listed by ``similar_rows``, as in ``fastrec.similarity``. The target
is never its own neighbour.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ._config import jit
from ._heap import heap_offer, heap_sort

KIND_PEARSON = 0
KIND_DOT = 1
KIND_SUPPORT_COSINE = 2
# ranking modes of score_user_based (1, 2) and score_item_topn weights
RANK_RATING, RANK_SUM, RANK_WEIGHTED = 0, 1, 2
# Relative threshold under which a one-pass variance is treated as zero.
_VAR_EPS = 1e-12


# Columns of the per-thread accumulator ``acc`` (n_x, 8) float64: one 64-byte
# row (a cache line) per candidate x2, so a pair update touches one line.
CNT, SX, SY, SXX, SYY, SXY = 0, 1, 2, 3, 4, 5
# predict_pairs: 1.0 on the lines of the current group's candidates, else 0.0
# (column 6 is padding: a line is 8 doubles)
FLAG = 7
ACC_WIDTH = 8
# Interleaved chunks of tasks (task t goes to chunk t % N_CHUNKS): per-thread
# scratch is allocated once per chunk, and skewed tasks spread over threads.
# The result of every task is independent of the chunking and of threads.
N_CHUNKS = 64


@jit
def accumulate_row(
    x, a_indptr, a_indices, a_data, b_indptr, b_indices, b_data, acc, touched, allowed, filtered
):
    """Co-rated sums of target ``x`` against every other x'; returns #touched.

    With ``filtered``, only the x2 with ``allowed[x2] != 0`` are accumulated
    (the candidates some query needs); the others stay zero.

    NumPy equivalent, for every x2 != x with Y its co-rated columns with x:
    ``acc[x2, CNT] = len(Y); acc[x2, SX] = A[x, Y].sum(); acc[x2, SY] =
    A[x2, Y].sum()``, and ``SXX, SYY, SXY`` the sums of squares and of
    products. ``touched[:ret]`` lists the x2 with a count > 0 in first-touch
    order. ``acc`` must be zero on entry (``clear_rows`` restores that).
    """
    n_touched = 0
    for p in range(a_indptr[x], a_indptr[x + 1]):
        y = a_indices[p]
        rx = np.float64(a_data[p])
        rxx = rx * rx
        for q in range(b_indptr[y], b_indptr[y + 1]):
            x2 = b_indices[q]
            if x2 == x or (filtered and allowed[x2] == 0):
                continue
            ry = np.float64(b_data[q])
            # branch-free "append x2 to touched on its first visit"
            touched[n_touched] = x2
            n_touched += acc[x2, CNT] == 0.0
            acc[x2, CNT] += 1.0
            acc[x2, SX] += rx
            acc[x2, SY] += ry
            acc[x2, SXX] += rxx
            acc[x2, SYY] += ry * ry
            acc[x2, SXY] += rx * ry
    return n_touched


@jit
def pair_similarity(kind, acc, x2, min_support, shrinkage):
    """Similarity of the pair whose co-rated sums are ``acc[x2]`` (module docstring).

    NaN when the pair has no similarity (support below ``min_support``, or a
    zero variance for Pearson): it then fails every ``s > 0`` test, and
    ``similar_rows`` skips it.
    """
    nf = acc[x2, CNT]
    if nf == 0.0 or nf < min_support:
        return np.nan
    if kind == KIND_PEARSON:
        sx = acc[x2, SX]
        sy = acc[x2, SY]
        sxx = acc[x2, SXX]
        syy = acc[x2, SYY]
        var_x = nf * sxx - sx * sx
        var_y = nf * syy - sy * sy
        if var_x <= _VAR_EPS * nf * sxx or var_y <= _VAR_EPS * nf * syy:
            return np.nan
        sim = (nf * acc[x2, SXY] - sx * sy) / np.sqrt(var_x * var_y)
    elif kind == KIND_SUPPORT_COSINE:
        sxx = acc[x2, SXX]
        syy = acc[x2, SYY]
        if nf < 2.0 or sxx == 0.0 or syy == 0.0:
            return np.nan
        sim = acc[x2, SXY] / np.sqrt(sxx * syy)
        if shrinkage > 0.0:
            sim = sim * ((nf - 1.0) / (nf - 1.0 + shrinkage))
        return sim
    else:
        sim = acc[x2, SXY]
    if shrinkage > 0.0:
        sim = sim * (nf / (nf + shrinkage))
    return sim


@jit
def clear_rows(touched, n_touched, acc):
    """``acc[touched] = 0``."""
    for t in range(n_touched):
        x2 = touched[t]
        for c in range(ACC_WIDTH):
            acc[x2, c] = 0.0


@jit
def accumulate_masked(x, a_indptr, a_indices, a_data, b_indptr, b_indices, b_data, acc, masked):
    """Co-rated sums of target ``x`` against every x2, or the flagged x2 only.

    NumPy equivalent, for every x2 with Y its co-rated columns with x:
    ``acc[x2, :6] += f * [len(Y), A[x, Y].sum(), A[x2, Y].sum(),
    (A[x, Y] ** 2).sum(), (A[x2, Y] ** 2).sum(), (A[x, Y] * A[x2, Y]).sum()]``,
    with ``f = acc[x2, FLAG]`` (0 or 1) when ``masked``, else 1. Every x2 is
    visited; the 0/1 factor (exact) replaces an unpredictable branch, and the
    sums of a flagged line are bit for bit those of the plain loop.
    ``acc[:, :6]`` must be zero on entry.
    """
    for pa in range(a_indptr[x], a_indptr[x + 1]):
        y = a_indices[pa]
        rx = np.float64(a_data[pa])
        rxx = rx * rx
        for q in range(b_indptr[y], b_indptr[y + 1]):
            x2 = b_indices[q]
            ry = np.float64(b_data[q])
            f = acc[x2, FLAG] if masked else 1.0
            acc[x2, CNT] += f
            acc[x2, SX] += f * rx
            acc[x2, SY] += f * ry
            acc[x2, SXX] += f * rxx
            acc[x2, SYY] += f * (ry * ry)
            acc[x2, SXY] += f * (rx * ry)


@jit
def kth_largest(vals, n, k, work):
    """``(t, (vals[:n] > t).sum())`` with ``t = np.sort(vals[:n])[n - k]``.

    For ``1 <= k <= n`` and no NaN.

    Hoare's "Find" (C. A. R. Hoare, "Algorithm 65: Find", CACM 1961) with a
    median-of-three pivot and a branch-free three-way partition: each round
    copies the values below / above the pivot into two of the three scratch
    rows of ``work`` (3, >= n) and continues in one of them. Expected O(n).
    ``vals`` is not modified.
    """
    src = vals
    which = -1  # the row of work that src is (-1: vals)
    above = 0
    while True:
        if which == 0:
            lt_row, gt_row = 1, 2
        elif which == 1:
            lt_row, gt_row = 0, 2
        else:
            lt_row, gt_row = 0, 1
        lt = work[lt_row]
        gt = work[gt_row]
        a = src[0]
        b = src[n // 2]
        c = src[n - 1]
        if a > b:
            a, b = b, a
        if b > c:
            b = c
        if a > b:
            b = a
        pivot = b  # one of the values: the "equal" part is never empty
        nl = 0
        ng = 0
        for i in range(n):
            v = src[i]
            lt[nl] = v
            nl += v < pivot
            gt[ng] = v
            ng += v > pivot
        if k <= ng:
            src = gt
            which = gt_row
            n = ng
        elif k <= n - nl:
            return pivot, above + ng
        else:  # t < pivot: the n - nl values >= pivot are all above t
            above += n - nl
            k -= n - nl
            src = lt
            which = lt_row
            n = nl


@jit(parallel=True)
def predict_pairs(
    a_indptr,
    a_indices,
    a_data,
    b_indptr,
    b_indices,
    b_data,
    b_ratings,
    means,
    scales,
    kind,
    min_support,
    shrinkage,
    k,
    centered,
    group_target,
    group_ptr,
    query_other,
    out_pred,
    out_count,
):
    """k-NN predictions for queries grouped by target.

    Parameters
    ----------
    a_indptr, a_indices, a_data : CSR of A (n_x, n_y); data float32/float64
    b_indptr, b_indices, b_data : CSR of A.T (n_y, n_x), same data dtype
    b_ratings : (nnz,) same dtype, the ratings aggregated in the prediction,
        laid out as ``b_data`` (the same array for Pearson; the raw ratings when
        ``b_data`` holds transformed values for a dot-product kind)
    means : (n_x,) float64, the mean rating of each x (used when ``centered``)
    scales : (n_x,) float64 > 0, the scale of each x (used when ``centered``:
        ones for mean centring, standard deviations for z-scores)
    kind : int, 0 Pearson, 1 dot product, 2 cosine over the support (module docstring)
    min_support : int; shrinkage : float >= 0
    k : int >= 1, neighbours used per prediction
    centered : bool, KNNWithMeans (True) or KNNBasic (False) aggregation
    group_target : (n_groups,) int32, the target x of each group
    group_ptr : (n_groups + 1,) int64, queries of group g are
        ``group_ptr[g]:group_ptr[g + 1]``
    query_other : (n_queries,) int32, the y of each query (grouped order)
    out_pred : (n_queries,) float64, written
    out_count : (n_queries,) int32, written: neighbours used (0..k)

    The neighbours of query (x, y) are the k x' != x with the highest positive
    similarity to x among the x' that rated y (ties: lower x' first). With
    ``s`` their similarities and ``r`` their ratings of y, summed in increasing
    x' order::

        pred = means[x] + scales[x] * sum(s * (r - means[x']) / scales[x']) / sum(s)   # centered
        pred = sum(s * r) / sum(s)                             # not centered

    With no neighbour, ``out_pred`` is ``means[x]`` (centered) or 0 and
    ``out_count`` 0: the caller applies its fallback for counts below min_k.

    Per group: (1) flag the candidates (the raters of its query columns) in
    their accumulator line; (2) ``accumulate_masked``; (3) turn each flagged
    line into a similarity in a compact (n_x,) array ``sim`` (0 where there is
    none or it is not positive), zeroing the line; (4) per query, gather the
    positive similarities of the column's raters and keep the k best with a
    quickselect threshold (no heap). A group whose columns hold at least n_x
    entries is "dense": it skips (1), accumulates every line in (2) and walks
    every line in (3) instead of its columns (same result, fewer random
    accesses).
    """
    n_x = means.shape[0]
    n_groups = group_target.shape[0]
    n_chunks = max(1, min(n_groups, N_CHUNKS))
    for chunk in prange(n_chunks):
        acc = np.zeros((n_x, ACC_WIDTH), dtype=np.float64)
        sim = np.zeros(n_x, dtype=np.float64)
        cand_val = np.empty(n_x + 1, dtype=np.float64)
        work = np.empty((3, n_x + 1), dtype=np.float64)
        cand_pos = np.empty(n_x + 1, dtype=np.int32)
        for g in range(chunk, n_groups, n_chunks):
            x = group_target[g]
            n_visits = 0
            for q in range(group_ptr[g], group_ptr[g + 1]):
                y = query_other[q]
                n_visits += b_indptr[y + 1] - b_indptr[y]
            # a "dense" group flags every line: cheaper than walking its columns twice
            dense = n_visits >= n_x
            # (1) only the raters of the group's query columns can be neighbours (a
            # dense group accumulates every line: flag = 1 everywhere, implicitly)
            if not dense:
                for q in range(group_ptr[g], group_ptr[g + 1]):
                    y = query_other[q]
                    for p in range(b_indptr[y], b_indptr[y + 1]):
                        acc[b_indices[p], FLAG] = 1.0
                acc[x, FLAG] = 0.0  # never its own neighbour
            # (2)
            accumulate_masked(
                x, a_indptr, a_indices, a_data, b_indptr, b_indices, b_data, acc, not dense
            )
            # (3) sim[x2] = similarity if positive else 0 for the flagged lines, zeroed
            if dense:
                for x2 in range(n_x):
                    s = pair_similarity(kind, acc, x2, min_support, shrinkage)
                    sim[x2] = s if s > 0.0 else 0.0
                    for c in range(ACC_WIDTH):
                        acc[x2, c] = 0.0
            else:
                # list each flagged x2 once (branch-free: its flag is cleared on the
                # first visit), then compute the listed similarities
                n_list = 0
                for q in range(group_ptr[g], group_ptr[g + 1]):
                    y = query_other[q]
                    for p in range(b_indptr[y], b_indptr[y + 1]):
                        x2 = b_indices[p]
                        cand_pos[n_list] = x2
                        n_list += acc[x2, FLAG] != 0.0
                        acc[x2, FLAG] = 0.0
                for c in range(n_list):
                    x2 = cand_pos[c]
                    s = pair_similarity(kind, acc, x2, min_support, shrinkage)
                    sim[x2] = s if s > 0.0 else 0.0
                    for j in range(ACC_WIDTH):
                        acc[x2, j] = 0.0
            sim[x] = 0.0  # stale from an earlier group, if x rated a query column
            acc[x, FLAG] = 0.0
            # (4) every sim[x2] read below was written in (3) for this group
            for q in range(group_ptr[g], group_ptr[g + 1]):
                y = query_other[q]
                start = b_indptr[y]
                n_cand = 0
                for p in range(start, b_indptr[y + 1]):
                    s = sim[b_indices[p]]
                    cand_val[n_cand] = s
                    cand_pos[n_cand] = p - start
                    n_cand += s > 0.0
                # the k best: every candidate above the k-th largest value t, then
                # the first ones (lowest x') equal to t; all of them if <= k
                size = n_cand
                t = 0.0
                n_tied = 0
                if n_cand > k:
                    t, n_greater = kth_largest(cand_val, n_cand, k, work)
                    n_tied = k - n_greater  # how many of the values equal to t are kept
                    # compact the k kept ones in place (branch-free)
                    size = 0
                    for c in range(n_cand):
                        s = cand_val[c]
                        tie = (s == t) & (n_tied > 0)
                        n_tied -= tie
                        cand_val[size] = s
                        cand_pos[size] = cand_pos[c]
                        size += (s > t) | tie
                num = 0.0
                den = 0.0
                for c in range(size):
                    s = cand_val[c]
                    p = start + cand_pos[c]
                    r = np.float64(b_ratings[p])
                    if centered:
                        x2 = b_indices[p]
                        r = (r - means[x2]) / scales[x2]
                    num += s * r
                    den += s
                pred = means[x] if centered else 0.0
                if size > 0:
                    pred += (scales[x] if centered else 1.0) * (num / den)
                out_pred[q] = pred
                out_count[q] = size


@jit
def row_neighbours(
    x,
    a_indptr,
    a_indices,
    a_data,
    b_indptr,
    b_indices,
    b_data,
    kind,
    min_support,
    shrinkage,
    positive_only,
    acc,
    touched,
    allowed,
    heap_val,
    heap_idx,
):
    """The (at most ``len(heap_val)``) x' most similar to ``x``; returns how many.

    Writes them best first (descending similarity, ties by ascending index)
    into ``heap_val`` / ``heap_idx``. Candidates: the x' with a similarity
    (``positive_only``: a positive one). ``acc`` is zero on entry and on
    return (``accumulate_row``, unfiltered: ``allowed`` is only passed
    through, then ``clear_rows``).
    """
    cap = heap_val.shape[0]
    n_touched = accumulate_row(
        x, a_indptr, a_indices, a_data, b_indptr, b_indices, b_data, acc, touched, allowed, False
    )
    size = 0
    for t in range(n_touched):
        x2 = touched[t]
        s = pair_similarity(kind, acc, x2, min_support, shrinkage)
        if (s > 0.0) if positive_only else (s == s):  # s == s: not NaN
            size = heap_offer(heap_val, heap_idx, size, cap, s, x2)
    clear_rows(touched, n_touched, acc)
    heap_sort(heap_val, heap_idx, size)
    return size


@jit(parallel=True)
def similar_rows(
    a_indptr,
    a_indices,
    a_data,
    b_indptr,
    b_indices,
    b_data,
    kind,
    min_support,
    shrinkage,
    rows,
    positive_only,
    out_idx,
    out_val,
):
    """The most similar x' of each x in ``rows``, best first.

    Parameters
    ----------
    a_*, b_*, kind, min_support, shrinkage : as in ``predict_pairs``
    rows : (m,) int32, the target rows
    positive_only : bool. True: candidates are the x' with similarity > 0.
        False: every x' != x that has a similarity (co-rating at least
        ``max(min_support, 1)`` y, and no zero variance for Pearson).
    out_idx : (m, n) int32, written; padded with -1
    out_val : (m, n) float32/float64, written; padded with -inf

    Ordering: descending similarity, ties by ascending index.
    """
    n_x = a_indptr.shape[0] - 1
    m = rows.shape[0]
    n = out_idx.shape[1]
    n_chunks = max(1, min(m, N_CHUNKS))
    for chunk in prange(n_chunks):
        acc = np.zeros((n_x, ACC_WIDTH), dtype=np.float64)
        touched = np.empty(n_x + 1, dtype=np.int32)
        allowed = np.zeros(1, dtype=np.uint8)
        heap_val = np.empty(n, dtype=np.float64)
        heap_idx = np.empty(n, dtype=np.int32)
        for row in range(chunk, m, n_chunks):
            size = row_neighbours(
                rows[row],
                a_indptr,
                a_indices,
                a_data,
                b_indptr,
                b_indices,
                b_data,
                kind,
                min_support,
                shrinkage,
                positive_only,
                acc,
                touched,
                allowed,
                heap_val,
                heap_idx,
            )
            for j in range(size):
                out_idx[row, j] = heap_idx[j]
                out_val[row, j] = heap_val[j]
            for j in range(size, n):
                out_idx[row, j] = -1
                out_val[row, j] = -np.inf


@jit(parallel=True)
def score_user_based(
    a_indptr,
    a_indices,
    a_data,
    b_indptr,
    b_indices,
    b_data,
    a_ratings,
    means,
    scales,
    kind,
    min_support,
    shrinkage,
    k,
    min_k,
    centered,
    mode,
    max_neighbors,
    users,
    fallback,
    out_scores,
):
    """UserKNN scores of every item for a block of users.

    Parameters
    ----------
    a_* : CSR of the ratings (n_users, n_items); b_* : its transpose (n_items, n_users)
    a_ratings : (nnz,) the ratings aggregated, laid out as ``a_data`` (see
        ``b_ratings`` in ``predict_pairs``)
    means, scales : (n_users,) float64; kind, min_support, shrinkage, k, centered:
        as in ``predict_pairs``
    min_k : int, items with fewer neighbours get ``fallback`` (mode 0)
    mode : int, 0 (``RANK_RATING``): the predicted rating; 1 (``RANK_SUM``):
        ``sum_v s(u, v)`` over the ``k`` most similar users ``v`` (positive
        similarity, ties by lower index) who rated the item; 2
        (``RANK_WEIGHTED``): the same sum of ``s(u, v) * (r_vi - means[v]) /
        scales[v]``. Modes 1 and 2 give 0 to items no neighbour rated and ignore
        ``min_k``, ``centered``, ``max_neighbors`` and ``fallback``.
    max_neighbors : int >= 1, mode 0: only the ``max_neighbors`` most similar
        users (positive similarity, ties by lower index) are considered
    users : (m,) int32; fallback : (m,) float64, the score of items with fewer
        than ``min_k`` neighbours
    out_scores : (m, n_items) float32, written

    Mode 0 with ``max_neighbors >= n_users``: the score of item i equals
    ``predict_pairs`` for (u, i): walking the neighbours in descending
    similarity and giving each item its first ``k`` raters is the same top-k.
    """
    n_users = means.shape[0]
    n_items = b_indptr.shape[0] - 1
    m = users.shape[0]
    cap = min(max_neighbors, n_users) if mode == RANK_RATING else min(k, n_users)
    cap = max(cap, 1)
    n_chunks = max(1, min(m, N_CHUNKS))
    for chunk in prange(n_chunks):
        acc = np.zeros((n_users, ACC_WIDTH), dtype=np.float64)
        touched = np.empty(n_users + 1, dtype=np.int32)
        allowed = np.zeros(1, dtype=np.uint8)
        nb_val = np.empty(cap, dtype=np.float64)
        nb_idx = np.empty(cap, dtype=np.int32)
        num = np.zeros(n_items, dtype=np.float64)
        den = np.zeros(n_items, dtype=np.float64)
        used = np.zeros(n_items, dtype=np.int32)
        for row in range(chunk, m, n_chunks):
            u = users[row]
            size = row_neighbours(
                u,
                a_indptr,
                a_indices,
                a_data,
                b_indptr,
                b_indices,
                b_data,
                kind,
                min_support,
                shrinkage,
                True,
                acc,
                touched,
                allowed,
                nb_val,
                nb_idx,
            )
            if mode != RANK_RATING:
                for h in range(size):
                    v = nb_idx[h]
                    s = nb_val[h]
                    for p in range(a_indptr[v], a_indptr[v + 1]):
                        i = a_indices[p]
                        if mode == RANK_SUM:
                            num[i] += s
                        else:
                            num[i] += s * ((np.float64(a_ratings[p]) - means[v]) / scales[v])
                for i in range(n_items):
                    out_scores[row, i] = num[i]
                    num[i] = 0.0
                continue
            for h in range(size):
                v = nb_idx[h]
                s = nb_val[h]
                for p in range(a_indptr[v], a_indptr[v + 1]):
                    i = a_indices[p]
                    if used[i] < k:
                        r = np.float64(a_ratings[p])
                        if centered:
                            r = (r - means[v]) / scales[v]
                        num[i] += s * r
                        den[i] += s
                        used[i] += 1
            base = means[u] if centered else 0.0
            scale = scales[u] if centered else 1.0
            for i in range(n_items):
                if used[i] >= min_k and used[i] > 0:
                    out_scores[row, i] = base + scale * (num[i] / den[i])
                else:
                    out_scores[row, i] = fallback[row]
                num[i] = 0.0
                den[i] = 0.0
                used[i] = 0


@jit(parallel=True)
def score_item_based(
    r_indptr,
    r_indices,
    r_data,
    nbr_indptr,
    nbr_indices,
    nbr_data,
    means,
    scales,
    k,
    min_k,
    centered,
    users,
    fallback,
    out_scores,
):
    """ItemKNN scores of every item for a block of users, from stored neighbours.

    Parameters
    ----------
    r_* : CSR of the ratings (n_users, n_items), data float32/float64
    nbr_* : CSR (n_items, n_items), float32/float64 data: row j lists the items
        i that keep j among their stored neighbours, with similarity
        ``sim(i, j) > 0`` (the transpose of the per-item neighbour lists)
    means, scales : (n_items,) float64; k, centered: as in ``predict_pairs``
    min_k : int; users : (m,) int32
    fallback : (n_items,) float64, the score of an item with fewer than
        ``min_k`` neighbours among the user's items
    out_scores : (m, n_items) float32, written

    Item i's neighbours for user u are the k items j that u rated with the
    highest stored similarity (ties: lower j first), as in ``predict_pairs``
    restricted to the stored lists.
    """
    n_items = means.shape[0]
    m = users.shape[0]
    n_chunks = max(1, min(m, N_CHUNKS))
    for chunk in prange(n_chunks):
        heap_val = np.empty((n_items, k), dtype=np.float64)
        heap_pos = np.empty((n_items, k), dtype=np.int32)
        size = np.zeros(n_items, dtype=np.int32)
        touched = np.empty(n_items, dtype=np.int32)
        for row in range(chunk, m, n_chunks):
            u = users[row]
            start = r_indptr[u]
            n_touched = 0
            for p in range(start, r_indptr[u + 1]):
                j = r_indices[p]
                for q in range(nbr_indptr[j], nbr_indptr[j + 1]):
                    i = nbr_indices[q]
                    if size[i] == 0:
                        touched[n_touched] = i
                        n_touched += 1
                    size[i] = heap_offer(
                        heap_val[i], heap_pos[i], size[i], k, np.float64(nbr_data[q]), p - start
                    )
            for i in range(n_items):
                out_scores[row, i] = fallback[i]
            for t in range(n_touched):
                i = touched[t]
                num = 0.0
                den = 0.0
                for h in range(size[i]):
                    p = start + heap_pos[i, h]
                    r = np.float64(r_data[p])
                    if centered:
                        j = r_indices[p]
                        r = (r - means[j]) / scales[j]
                    num += heap_val[i, h] * r
                    den += heap_val[i, h]
                if size[i] >= min_k:
                    if centered:
                        out_scores[row, i] = means[i] + scales[i] * (num / den)
                    else:
                        out_scores[row, i] = num / den
                size[i] = 0


@jit(parallel=True)
def score_item_topn(
    r_indptr, r_indices, r_weights, nbr_indptr, nbr_indices, nbr_data, users, out_scores
):
    """Item-based top-N scores (Deshpande and Karypis) for a block of users.

    Parameters
    ----------
    r_indptr, r_indices : CSR structure of the ratings (n_users, n_items)
    r_weights : (nnz,) float32/float64, the weight of each rating (laid out as
        the ratings): 1 for the plain sum, the user's centred rating for the
        weighted sum
    nbr_* : CSR (n_items, n_items): row j lists the items i that keep j among
        their ``k`` stored neighbours, with ``sim(i, j)`` (the transpose of the
        neighbour lists), same float type as ``r_weights``
    users : (m,) int32
    out_scores : (m, n_items) float32, written

    ``out_scores[row, i] = sum_j w[u, j] * sim(i, j)`` over the items ``j``
    that ``u`` rated and that are among ``i``'s stored neighbours (0 when there
    is none), i.e. ``w[u] @ S.T`` with ``S`` the neighbour lists; summed in
    float64 in the order of ``u``'s ratings, then of ``nbr``'s rows.
    """
    n_items = nbr_indptr.shape[0] - 1
    m = users.shape[0]
    n_chunks = max(1, min(m, N_CHUNKS))
    for chunk in prange(n_chunks):
        acc = np.zeros(n_items, dtype=np.float64)
        for row in range(chunk, m, n_chunks):
            u = users[row]
            for p in range(r_indptr[u], r_indptr[u + 1]):
                j = r_indices[p]
                w = np.float64(r_weights[p])
                for q in range(nbr_indptr[j], nbr_indptr[j + 1]):
                    acc[nbr_indices[q]] += w * np.float64(nbr_data[q])
            for i in range(n_items):
                out_scores[row, i] = acc[i]
                acc[i] = 0.0


@jit(parallel=True)
def recommend_item_topn(
    r_indptr,
    r_indices,
    r_weights,
    nbr_indptr,
    nbr_indices,
    nbr_data,
    users,
    excl_indptr,
    excl_indices,
    out_idx,
    out_val,
):
    """``score_item_topn`` fused with the top-n selection, without a dense row.

    Parameters
    ----------
    r_*, nbr_*, users : as in ``score_item_topn``
    excl_indptr : (m + 1,) int64; excl_indices : int32, sorted per row: the
        items row ``row`` must not return (its seen items); empty rows for none
    out_idx : (m, n) int32, written; out_val : (m, n) float32, written

    Row ``row`` gets exactly what ``fr.topk`` returns for the dense row
    ``score_item_topn`` writes, with the same exclusions: the ``n`` best items
    by float32 score (ties: lower index first), ``-1`` / ``-inf`` after the
    last one. Only the items the user's neighbour lists touch can score
    above 0, so when at least ``n`` of them (not excluded) do, the heap only
    sees those; otherwise (few candidates, or negative weighted sums) the row
    is scanned whole, untouched items scoring 0, as the dense path would.
    """
    n_items = nbr_indptr.shape[0] - 1
    m = users.shape[0]
    n = out_idx.shape[1]
    n_chunks = max(1, min(m, N_CHUNKS))
    for chunk in prange(n_chunks):
        acc = np.zeros(n_items, dtype=np.float64)
        flag = np.zeros(n_items, dtype=np.uint8)  # 1: touched, 2: excluded
        touched = np.empty(n_items, dtype=np.int32)
        for row in range(chunk, m, n_chunks):
            u = users[row]
            n_touched = 0
            for p in range(r_indptr[u], r_indptr[u + 1]):
                j = r_indices[p]
                w = np.float64(r_weights[p])
                for q in range(nbr_indptr[j], nbr_indptr[j + 1]):
                    i = nbr_indices[q]
                    if flag[i] == 0:
                        flag[i] = 1
                        touched[n_touched] = i
                        n_touched += 1
                    acc[i] += w * np.float64(nbr_data[q])
            for e in range(excl_indptr[row], excl_indptr[row + 1]):
                flag[excl_indices[e]] |= 2
            vals = out_val[row]
            idxs = out_idx[row]
            size = 0
            n_positive = 0
            for t in range(n_touched):
                i = touched[t]
                s = np.float32(acc[i])
                if flag[i] == 1 and s > 0:
                    n_positive += 1
                    size = heap_offer(vals, idxs, size, n, s, i)
            if n_positive < n:  # untouched items (score 0) are in the top n
                size = 0
                for i in range(n_items):
                    if (flag[i] & 2) == 0:
                        size = heap_offer(vals, idxs, size, n, np.float32(acc[i]), i)
            heap_sort(vals, idxs, size)
            for c in range(size, n):
                idxs[c] = -1
                vals[c] = -np.inf
            for t in range(n_touched):
                i = touched[t]
                acc[i] = 0.0
                flag[i] = 0
            for e in range(excl_indptr[row], excl_indptr[row + 1]):
                flag[excl_indices[e]] = 0


@jit
def baseline_sgd(indptr, indices, ratings, mu, lr, reg, n_epochs, bu, bi):
    """User and item biases by SGD, in place (scikit-surprise's ``baseline_sgd``).

    Parameters
    ----------
    indptr, indices, ratings : CSR of the ratings (n_users, n_items), float64 data
    mu : float, the global mean; lr, reg : float; n_epochs : int
    bu : (n_users,) float64, bi : (n_items,) float64: the starting biases, updated

    For every epoch, every rating in CSR order (users in index order, each
    user's ratings in stored order)::

        err = r - (mu + bu[u] + bi[i])
        bu[u] += lr * (err - reg * bu[u])
        bi[i] += lr * (err - reg * bi[i])

    Sequential by definition (each step reads the previous one's biases).
    """
    n_users = indptr.shape[0] - 1
    for _ in range(n_epochs):
        for u in range(n_users):
            for p in range(indptr[u], indptr[u + 1]):
                i = indices[p]
                err = ratings[p] - (mu + bu[u] + bi[i])
                bu[u] += lr * (err - reg * bu[u])
                bi[i] += lr * (err - reg * bi[i])
