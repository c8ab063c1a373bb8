# cython: language_level=3
"""Top-k of dense score rows with an exclusion list (twin of ``numba/topk.py``)."""

from cpython.pycapsule cimport PyCapsule_GetName, PyCapsule_GetPointer
from cython cimport floating, integral
from cython.parallel cimport parallel, prange
from libc.math cimport INFINITY
from libc.stdlib cimport free, malloc

from _heap cimport heap_offer, heap_sort

# Columns tested against the threshold at once (see ``_scan``).
cdef enum:
    CHUNK = 64


cdef inline int _scan(const floating* s, int base, int start, int stop, int k, int size,
                      floating* vals, int* idxs) noexcept nogil:
    # Offer the columns [start, stop) of one row, in ascending order, to the
    # heap (vals, idxs) of ``size`` entries; returns the new size. Column c's
    # score is s[c - base] (s holds the row from column ``base`` on).
    #
    # Once the heap is full, its root (the worst kept entry) is a threshold: a
    # later column can only enter with a strictly greater score (an equal score
    # loses the tie, its index being larger). Whole chunks are first tested
    # with a branch-free "any score > threshold" (a vectorisable OR over the
    # chunk, ``(s[c:c+CHUNK] > thr).any()``) and only a chunk with a hit is
    # walked one column at a time.
    # (Py_ssize_t offsets from a chunk pointer: with int indices and Python's
    # -fwrapv, GCC cannot prove the loads contiguous and emulates gathers.)
    cdef int c = start, j
    cdef Py_ssize_t t
    cdef const floating* chunk
    cdef floating thr
    cdef bint hit
    while c < stop and size < k:
        size = heap_offer(vals, idxs, size, k, s[c - base], c)
        c = c + 1
    if c >= stop:
        return size
    thr = vals[0]
    while c + CHUNK <= stop:
        hit = 0
        chunk = s + (c - base)
        for t in range(CHUNK):
            hit = hit | (chunk[t] > thr)
        if hit:
            for j in range(c, c + CHUNK):
                if s[j - base] > thr:
                    size = heap_offer(vals, idxs, size, k, s[j - base], j)
                    thr = vals[0]
        c = c + CHUNK
    for j in range(c, stop):
        if s[j - base] > thr:
            size = heap_offer(vals, idxs, size, k, s[j - base], j)
            thr = vals[0]
    return size


def topk_dense(const floating[:, ::1] scores, int k, const integral[::1] excl_indptr,
               const int[::1] excl_indices, int[:, ::1] out_idx, floating[:, ::1] out_val):
    """Write the ``k`` best entries of every row of ``scores``.

    See ``kernels/numba/topk.py`` for the parameters and ordering contract.
    The row is scanned segment by segment between its excluded columns.
    """
    cdef Py_ssize_t n_rows = scores.shape[0], n_cols = scores.shape[1]
    cdef Py_ssize_t row, p, p_end
    cdef int col, size, j, seg_end
    with nogil:
        for row in prange(n_rows, schedule="dynamic", chunksize=16):
            size = 0
            p = excl_indptr[row]
            p_end = excl_indptr[row + 1]
            col = 0
            while col < n_cols:
                seg_end = excl_indices[p] if p < p_end else <int> n_cols
                size = _scan(&scores[row, 0], 0, col, seg_end, k, size,
                             &out_val[row, 0], &out_idx[row, 0])
                col = seg_end + 1
                p = p + 1
            heap_sort(&out_val[row, 0], &out_idx[row, 0], size)
            for j in range(size, k):
                out_idx[row, j] = -1
                out_val[row, j] = -INFINITY


# ---------------------------------------------------------------------------
# Factor scores fused with the top-k: factor_topk
# ---------------------------------------------------------------------------

# BLAS gemm (Fortran ABI) from SciPy's own BLAS, looked up at import through
# the capsules of scipy.linalg.cython_blas: no build dependency on SciPy's
# headers. Each OpenMP thread calls it on its own tile; the caller holds BLAS
# to one thread (``fastrec._backend.threads``), so the calls do not nest pools.
ctypedef void (*sgemm_t)(char*, char*, int*, int*, int*, float*, float*, int*, float*,
                         int*, float*, float*, int*) noexcept nogil
ctypedef void (*dgemm_t)(char*, char*, int*, int*, int*, double*, double*, int*, double*,
                         int*, double*, double*, int*) noexcept nogil

cdef sgemm_t _sgemm = NULL
cdef dgemm_t _dgemm = NULL


def _load_blas():
    global _sgemm, _dgemm
    from scipy.linalg import cython_blas

    caps = cython_blas.__pyx_capi__
    _sgemm = <sgemm_t> PyCapsule_GetPointer(caps["sgemm"], PyCapsule_GetName(caps["sgemm"]))
    _dgemm = <dgemm_t> PyCapsule_GetPointer(caps["dgemm"], PyCapsule_GetName(caps["dgemm"]))


_load_blas()

# Tile of one thread: TILE_ROWS query rows x TILE_COLS items of scores
# (64 x 2048 x 4 bytes = 512 KiB in float32: it stays in the core's L2 between
# the product that writes it and the scan that reads it).
cdef enum:
    TILE_ROWS = 64
    TILE_COLS = 2048


cdef inline void _gemm_tile(const floating* a, const floating* b, floating* c, int m, int n,
                            int f) noexcept nogil:
    # c[:m, :n] (row-major, leading dimension n) = a[:m, :f] @ b[:n, :f].T
    # Column-major view: c.T (n x m) = b (f x n).T @ a.T (f x m).
    cdef char ta = b"T", tb = b"N"
    cdef float s_one = 1.0, s_zero = 0.0
    cdef double d_one = 1.0, d_zero = 0.0
    if floating is float:
        _sgemm(&ta, &tb, &n, &m, &f, &s_one, <float*> b, &f, <float*> a, &f, &s_zero,
               <float*> c, &n)
    else:
        _dgemm(&ta, &tb, &n, &m, &f, &d_one, <double*> b, &f, <double*> a, &f, &d_zero,
               <double*> c, &n)


def factor_topk(const floating[:, ::1] row_vectors, const floating[:, ::1] item_factors,
                const floating[::1] item_offset, const int[::1] rows, int k,
                const integral[::1] excl_indptr, const int[::1] excl_indices,
                int[:, ::1] out_idx, floating[:, ::1] out_val):
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
    Each thread computes tiles of TILE_ROWS rows x TILE_COLS items with one
    BLAS call (itself single-threaded) and scans each tile while it is in
    cache, carrying every row's heap and exclusion pointer across the item
    tiles, so the (m, n_items) score matrix never exists.
    """
    cdef Py_ssize_t m = rows.shape[0], n_items = item_factors.shape[0]
    cdef int f = <int> item_factors.shape[1]
    cdef Py_ssize_t n_tiles = (m + TILE_ROWS - 1) // TILE_ROWS, tile
    cdef bint has_offset = item_offset.shape[0] > 0
    cdef floating* scores
    cdef floating* a
    cdef long long* pos
    cdef int* sizes
    cdef int failed[1]
    cdef int* failed_p = failed
    cdef Py_ssize_t r0, r1, r, c0, c1, q, g
    cdef int nr, nc, col, seg_end, j, x
    cdef long long p, p_end
    cdef const floating* srow
    failed[0] = 0
    if m == 0:
        return
    if n_items == 0:  # nothing to rank: all padding
        for r in range(m):
            for j in range(k):
                out_idx[r, j] = -1
                out_val[r, j] = -INFINITY
        return
    with nogil, parallel():
        scores = <floating*> malloc(TILE_ROWS * TILE_COLS * sizeof(floating))
        a = <floating*> malloc((TILE_ROWS * f + 1) * sizeof(floating))
        pos = <long long*> malloc(TILE_ROWS * sizeof(long long))
        sizes = <int*> malloc(TILE_ROWS * sizeof(int))
        if scores == NULL or a == NULL or pos == NULL or sizes == NULL:
            failed_p[0] = 1
        for tile in prange(n_tiles, schedule="dynamic", chunksize=1):
            if scores == NULL or a == NULL or pos == NULL or sizes == NULL:
                continue
            r0 = tile * TILE_ROWS
            r1 = min(r0 + TILE_ROWS, m)
            nr = <int> (r1 - r0)
            for r in range(nr):  # a[:nr] = row_vectors[rows[r0:r1]]
                x = rows[r0 + r]
                for g in range(f):
                    a[r * f + g] = row_vectors[x, g]
                pos[r] = excl_indptr[x]
                sizes[r] = 0
            c0 = 0
            while c0 < n_items:
                c1 = min(c0 + TILE_COLS, n_items)
                nc = <int> (c1 - c0)
                if f > 0:
                    _gemm_tile(a, &item_factors[c0, 0], scores, nr, nc, f)
                else:
                    for q in range(nr * nc):
                        scores[q] = 0
                if has_offset:
                    for r in range(nr):
                        for q in range(nc):
                            scores[r * nc + q] = scores[r * nc + q] + item_offset[c0 + q]
                for r in range(nr):
                    srow = scores + r * nc
                    x = rows[r0 + r]
                    p = pos[r]
                    p_end = excl_indptr[x + 1]
                    col = <int> c0
                    while col < c1:
                        seg_end = <int> c1
                        if p < p_end and excl_indices[p] < c1:
                            seg_end = excl_indices[p]
                        sizes[r] = _scan(srow, <int> c0, col, seg_end, k, sizes[r],
                                         &out_val[r0 + r, 0], &out_idx[r0 + r, 0])
                        if seg_end < c1:  # an excluded column: skip it
                            p = p + 1
                            col = seg_end + 1
                        else:
                            col = <int> c1
                    pos[r] = p
                c0 = c1
            for r in range(nr):
                heap_sort(&out_val[r0 + r, 0], &out_idx[r0 + r, 0], sizes[r])
                for j in range(sizes[r], k):
                    out_idx[r0 + r, j] = -1
                    out_val[r0 + r, j] = -INFINITY
        free(scores)
        free(a)
        free(pos)
        free(sizes)
    if failed[0]:
        raise MemoryError("factor_topk: could not allocate the per-thread score tiles")
