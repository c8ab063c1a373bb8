# cython: language_level=3
"""Maximal marginal relevance re-ranking (twin of ``numba/rerank.py``).

Carbonell and Goldstein, SIGIR 1998, section 2; see ``kernels/numba/rerank.py``
for the definition, the ties and the parameters.
"""

from cython cimport floating, integral
from cython.parallel cimport parallel, prange
from libc.stdlib cimport free, malloc


cdef void _mmr_row(const int* ids, const floating* s, int n_cand,
                   const integral* sim_indptr, const int* sim_indices,
                   const floating* sim_data, floating w_rel, floating w_div,
                   int* pos, floating* rel, floating* pen, floating* cur,
                   unsigned char* alive, int* out, int n) noexcept nogil:
    # One row: see ``_mmr_row`` in kernels/numba/rerank.py (same steps, same order).
    cdef int count = 0, c, item, m, step, best
    cdef floating lo = s[0], hi = s[0], inv, val, best_val, best_rel
    cdef floating one = 1
    cdef integral e
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
            count = count + 1
            pos[item] = c
    if hi > lo:
        inv = one / (hi - lo)
        for c in range(n_cand):
            rel[c] = (s[c] - lo) * inv
    else:
        for c in range(n_cand):
            rel[c] = one
    m = n if n < count else count
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
        alive[best] = 0
        if step + 1 < m:
            # cur[c] = S[picked, ids[c]] for the candidates still in play (0 on entry)
            item = ids[best]
            for e in range(sim_indptr[item], sim_indptr[item + 1]):
                c = pos[sim_indices[e]]
                if c >= 0 and alive[c]:
                    cur[c] += sim_data[e]  # a repeated entry adds up, as in scipy
    for step in range(m, n):
        out[step] = -1
    for c in range(n_cand):
        if ids[c] >= 0:
            pos[ids[c]] = -1


def mmr(const int[:, ::1] ids, const floating[:, ::1] scores, const integral[::1] sim_indptr,
        const int[::1] sim_indices, const floating[::1] sim_data, double w_rel, double w_div,
        int[:, ::1] out_pos):
    """MMR re-ranking of every row of candidates, rows in parallel.

    See ``kernels/numba/rerank.py:mmr`` for the parameters. ``w_rel`` and
    ``w_div`` are rounded to the scores' dtype first, as the Numba twin gets
    them. Scratch: per thread an int32 map of n_items entries and four arrays
    of n_cand.
    """
    cdef Py_ssize_t n_rows = ids.shape[0], r, i
    cdef int n_cand = <int> ids.shape[1], n = <int> out_pos.shape[1]
    cdef Py_ssize_t n_items = sim_indptr.shape[0] - 1
    cdef floating wr = <floating> w_rel, wd = <floating> w_div
    cdef int* pos
    cdef floating* rel
    cdef floating* pen
    cdef floating* cur
    cdef unsigned char* alive
    cdef int failed[1]
    cdef int* failed_p = failed  # written through a shared pointer: not thread-private
    cdef const int* sim_indices_p = &sim_indices[0] if sim_indices.shape[0] > 0 else NULL
    cdef const floating* sim_data_p = &sim_data[0] if sim_data.shape[0] > 0 else NULL
    failed[0] = 0
    if n_rows == 0 or n_cand == 0 or n == 0:
        return
    with nogil, parallel():
        pos = <int*> malloc((n_items + 1) * sizeof(int))
        rel = <floating*> malloc(n_cand * sizeof(floating))
        pen = <floating*> malloc(n_cand * sizeof(floating))
        cur = <floating*> malloc(n_cand * sizeof(floating))
        alive = <unsigned char*> malloc(n_cand)
        if pos == NULL or rel == NULL or pen == NULL or cur == NULL or alive == NULL:
            failed_p[0] = 1
        else:
            for i in range(n_items):
                pos[i] = -1
        for r in prange(n_rows, schedule="dynamic", chunksize=64):
            if pos != NULL and rel != NULL and pen != NULL and cur != NULL and alive != NULL:
                _mmr_row(&ids[r, 0], &scores[r, 0], n_cand, &sim_indptr[0], sim_indices_p,
                         sim_data_p, wr, wd, pos, rel, pen, cur, alive, &out_pos[r, 0], n)
        free(pos)
        free(rel)
        free(pen)
        free(cur)
        free(alive)
    if failed[0]:
        raise MemoryError("mmr: could not allocate the per-thread scratch")
