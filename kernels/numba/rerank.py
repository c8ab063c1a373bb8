"""Maximal marginal relevance re-ranking (twin of ``cython/rerank.pyx``).

Carbonell and Goldstein, "The use of MMR, diversity-based reranking for
reordering documents and producing summaries", SIGIR 1998, section 2: from a
row of candidates, greedily pick

    argmax_i  w_rel * rel(i) - w_div * max_{j picked} S[j, i]

where ``rel`` is the row's scores min-max normalised to [0, 1] and ``S`` a
sparse item x item similarity (missing entries 0). ``fastrec/rerank.py``
validates every input before calling here.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ._config import jit

#: The rows are cut into at most this many contiguous blocks; a block is one
#: parallel iteration with its own scratch, allocated once. (Per-thread scratch
#: indexed by thread id would need ``numba.get_num_threads()`` in the kernel,
#: which stops Numba from caching it.)
BLOCKS = 64


@jit
def _mmr_row(
    ids, s, sim_indptr, sim_indices, sim_data, w_rel, w_div, pos, rel, pen, cur, alive, out
):
    """Re-rank one row of candidates; write the picked positions into ``out``.

    Parameters
    ----------
    ids : (n_cand,) int32, item index of each candidate, -1 = empty slot
        (no item twice; every index < n_items)
    s : (n_cand,) float32/float64, the candidates' scores (finite where ids >= 0)
    sim_indptr, sim_indices, sim_data : CSR (n_items, n_items) of the same dtype
        as ``s``; int32 indices in range, in any order within a row (repeats
        add up)
    w_rel, w_div : scalars of the dtype of ``s``: 1 - diversity and diversity
    pos : (n_items,) int32 scratch, all -1 on entry and on return
    rel, pen, cur : (n_cand,) scratch of the dtype of ``s``
    alive : (n_cand,) bool scratch
    out : (n,) int32, written: positions in the row of the picked candidates,
        in picking order; -1 after the last one when fewer than ``n`` are valid

    rel(i) = (s[i] - min) / (max - min) over the valid candidates, 1 for all
    when they share one score. The penalty of a candidate is 0 before the
    first pick, then max over the picked items j of S[j, i] (row of the picked
    item; a missing entry counts 0). Ties in the MMR value go to the higher
    rel, then to the earlier position.
    """
    n_cand = ids.shape[0]
    n = out.shape[0]
    count = 0
    lo = s[0]
    hi = s[0]
    for c in range(n_cand):
        item = ids[c]
        alive[c] = item >= 0
        pen[c] = 0
        cur[c] = 0
        if item >= 0:
            if count == 0 or s[c] < lo:
                lo = s[c]
            if count == 0 or s[c] > hi:
                hi = s[c]
            count += 1
            pos[item] = c
    one = s.dtype.type(1)
    if hi > lo:
        inv = one / (hi - lo)  # in the scores' dtype, as the Cython twin
        for c in range(n_cand):
            rel[c] = (s[c] - lo) * inv
    else:
        for c in range(n_cand):
            rel[c] = one
    m = min(n, count)
    for step in range(m):
        best = -1
        best_val = rel[0]
        best_rel = rel[0]
        for c in range(n_cand):
            if alive[c]:
                # fold in the similarities to the item picked last step
                if step == 1:
                    pen[c] = cur[c]
                elif step > 1 and cur[c] > pen[c]:
                    pen[c] = cur[c]
                cur[c] = 0
                val = w_rel * rel[c] - w_div * pen[c]
                if best < 0 or val > best_val or (val == best_val and rel[c] > best_rel):
                    best = c
                    best_val = val
                    best_rel = rel[c]
        out[step] = best
        alive[best] = False
        if step + 1 < m:
            # cur[c] = S[picked, ids[c]] for the candidates still in play (0 on entry)
            p = ids[best]
            for e in range(sim_indptr[p], sim_indptr[p + 1]):
                c = pos[sim_indices[e]]
                if c >= 0 and alive[c]:
                    cur[c] += sim_data[e]  # a repeated entry adds up, as in scipy
    for step in range(m, n):
        out[step] = -1
    for c in range(n_cand):
        if ids[c] >= 0:
            pos[ids[c]] = -1


@jit(parallel=True)
def mmr(ids, scores, sim_indptr, sim_indices, sim_data, w_rel, w_div, out_pos):
    """MMR re-ranking of every row of candidates, rows in parallel.

    Parameters
    ----------
    ids : (n_rows, n_cand) int32, C order; item indices, -1 = empty slot; in
        each row no item twice, every index < n_items
    scores : (n_rows, n_cand) float32/float64, C order, finite where ids >= 0
    sim_indptr : (n_items + 1,) int32/int64, sim_indices : (nnz,) int32 in
        [0, n_items), any order within a row, sim_data : (nnz,) dtype of ``scores``
        The item x item similarity ``S`` as CSR.
    w_rel, w_div : dtype of ``scores``, 1 - diversity and diversity
    out_pos : (n_rows, n) int32, written: the picked positions of each row
        (see ``_mmr_row``), -1 padded

    Memory: per block of rows (``BLOCKS`` at most) an int32 map of n_items entries (every block
    returns it to all -1) and four arrays of n_cand. Each row is written by
    one iteration only: the result does not depend on the thread count.
    """
    n_rows, n_cand = ids.shape
    n_items = sim_indptr.shape[0] - 1
    n_blocks = min(n_rows, BLOCKS)
    for b in prange(n_blocks):
        r0 = b * n_rows // n_blocks
        r1 = (b + 1) * n_rows // n_blocks
        pos = np.full(n_items, -1, dtype=np.int32)
        rel = np.empty(n_cand, dtype=scores.dtype)
        pen = np.empty(n_cand, dtype=scores.dtype)
        cur = np.empty(n_cand, dtype=scores.dtype)
        alive = np.empty(n_cand, dtype=np.bool_)
        for r in range(r0, r1):
            _mmr_row(
                ids[r],
                scores[r],
                sim_indptr,
                sim_indices,
                sim_data,
                w_rel,
                w_div,
                pos,
                rel,
                pen,
                cur,
                alive,
                out_pos[r],
            )
