# cython: language_level=3
"""Sparse similarity between CSR rows, fused with top-k (twin of ``numba/similarity.py``).

See ``kernels/numba/similarity.py`` for the algorithm, the parameters and the
degenerate cases; the two files compute the same thing in the same order.
Here the scratch (accumulator row and touched list) is allocated once per
OpenMP thread inside the parallel region and the rows are scheduled
dynamically, one at a time. ``pearson_topk_all`` gives thread ``t`` heap set
``t`` (``threadid()``, with at most ``heap_val.shape[0]`` threads) instead of
the Numba twin's round-robin stripes; the merged output is the same. The
Pearson accumulators are one 64-byte-aligned cache line per pair, added as
one 8-double vector (GCC/Clang vector extensions; plain C elsewhere).
"""

from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.math cimport INFINITY, sqrt
from libc.stdlib cimport calloc, free, malloc

from _heap cimport heap_offer, heap_sort

# Same value as kernels/numba/similarity.py
cdef double ZERO_VARIANCE_RTOL = 1e-12

cdef extern from *:
    """
    #include <stdlib.h>
    #include <string.h>
    /* Pearson accumulators: 8 doubles per pair (one 64-byte cache line, 64-byte
       aligned), [count, sum x, sum y, sum x*x, sum y*y, sum x*y, 0, 0]. */
    #define FR_ACC 8
    #if defined(__GNUC__) || defined(__clang__)
    /* Two 32-byte halves (lanes [count, sum x, sum y, sum x*x] and [sum y*y,
       sum x*y, 0, 0]): the widest vector native on every AVX target. A 64-byte
       GNU vector without AVX-512 is lowered piecewise through the stack. */
    typedef double fr_v4d __attribute__((vector_size(32), aligned(32)));
    static inline void fr_pearson_add(double* a, double x, double xx, double y) {
        /* a[0:6] += [1, x, y, xx, y*y, x*y]: every product is rounded once, as in
           the scalar form below, so both give the same bits; two vector adds */
        const fr_v4d b = {1.0, x, 0.0, xx};
        const fr_v4d c = {0.0, 0.0, 1.0, 0.0};
        const fr_v4d d = {0.0, x, 0.0, 0.0};
        const fr_v4d e = {1.0, 0.0, 0.0, 0.0};
        fr_v4d* p = (fr_v4d*) __builtin_assume_aligned(a, 64);
        p[0] += b + y * c;
        p[1] += y * (d + y * e);  /* (y*y, x*y, 0, 0) */
    }
    static inline void fr_pearson_zero(double* a) {
        fr_v4d* p = (fr_v4d*) __builtin_assume_aligned(a, 64);
        p[0] = (fr_v4d){0.0, 0.0, 0.0, 0.0};
        p[1] = (fr_v4d){0.0, 0.0, 0.0, 0.0};
    }
    #else
    static inline void fr_pearson_add(double* a, double x, double xx, double y) {
        a[0] += 1.0; a[1] += x; a[2] += y; a[3] += xx; a[4] += y * y; a[5] += x * y;
    }
    static inline void fr_pearson_zero(double* a) {
        memset(a, 0, FR_ACC * sizeof(double));
    }
    #endif
    /* for q from q0 while q < q1 and idx[q] < stop:
           acc[8 idx[q] : 8 idx[q] + 6] += [1, x, y[q], xx, y[q]**2, x y[q]];
       returns where it stopped */
    #define FR_RUN(NAME, T) \
    static inline long long NAME(double* acc, const int* idx, const T* y, long long q, \
                                 long long q1, int stop, double x, double xx) { \
        for (; q < q1 && idx[q] < stop; q++) \
            fr_pearson_add(acc + FR_ACC * (size_t) idx[q], x, xx, (double) y[q]); \
        return q; \
    }
    FR_RUN(fr_pearson_run_f, float)
    FR_RUN(fr_pearson_run_d, double)
    /* n_pairs zeroed, 64-byte aligned accumulators (NULL on failure) */
    static double* fr_acc_alloc(size_t n_pairs) {
        size_t bytes = (n_pairs + 1) * FR_ACC * sizeof(double);
        double* a;
    #if defined(_WIN32)
        a = (double*) _aligned_malloc(bytes, 64);
    #else
        if (posix_memalign((void**) &a, 64, bytes) != 0) a = NULL;
    #endif
        if (a != NULL) memset(a, 0, bytes);
        return a;
    }
    static void fr_acc_free(double* a) {
    #if defined(_WIN32)
        _aligned_free(a);
    #else
        free(a);
    #endif
    }
    """
    int FR_ACC
    void fr_pearson_add(double* a, double x, double xx, double y) noexcept nogil
    void fr_pearson_zero(double* a) noexcept nogil
    long long fr_pearson_run_f(double* acc, const int* idx, const float* y, long long q,
                               long long q1, int stop, double x, double xx) noexcept nogil
    long long fr_pearson_run_d(double* acc, const int* idx, const double* y, long long q,
                               long long q1, int stop, double x, double xx) noexcept nogil
    double* fr_acc_alloc(size_t n_pairs) noexcept nogil
    void fr_acc_free(double* a) noexcept nogil


cdef inline long long _run(double* acc, const int* idx, const floating* y, long long q,
                          long long q1, int stop, double x, double xx) noexcept nogil:
    # while q < q1 and idx[q] < stop: acc[8 idx[q] : 8 idx[q] + 6] += [1, x, y[q], xx,
    # y[q]**2, x y[q]]; q += 1. Returns q.
    if floating is float:
        return fr_pearson_run_f(acc, idx, y, q, q1, stop, x, xx)
    else:
        return fr_pearson_run_d(acc, idx, y, q, q1, stop, x, xx)


cdef inline long long _row_work(int i, const long long* indptr, const int* indices,
                                const long long* t_indptr) noexcept nogil:
    # sum(deg(j) for j in A[i]): the number of accumulator updates row i costs
    cdef long long p, work = 0
    cdef int j
    for p in range(indptr[i], indptr[i + 1]):
        j = indices[p]
        work += t_indptr[j + 1] - t_indptr[j]
    return work


cdef inline long long _upper_bound(const int* a, long long lo, long long hi,
                                   int key) noexcept nogil:
    # lo + np.searchsorted(a[lo:hi], key, side="right"), a[lo:hi] sorted
    cdef long long mid
    while lo < hi:
        mid = lo + (hi - lo) // 2
        if a[mid] <= key:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef inline bint _pearson_score(double* a, long long min_support, double shrinkage,
                                double* sim_out) noexcept nogil:
    # Pearson (then shrunk) from the six sums in a[0:6], which are reset;
    # False when the pair gets no similarity (support, zero variance, exactly 0)
    cdef double n = a[0], sx = a[1], sy = a[2], sxx = a[3], syy = a[4], sxy = a[5]
    cdef double var_x, var_y, sim
    fr_pearson_zero(a)
    if n < min_support:
        return False
    # Surprise's one-pass form: n * cov / sqrt(n * var_x * n * var_y); symmetric in
    # (x, y), so sim(i, l) and sim(l, i) get the same bits from the same sums
    var_x = n * sxx - sx * sx
    var_y = n * syy - sy * sy
    if var_x <= ZERO_VARIANCE_RTOL * n * sxx or var_y <= ZERO_VARIANCE_RTOL * n * syy:
        return False
    sim = (n * sxy - sx * sy) / sqrt(var_x * var_y)
    if sim > 1.0:
        sim = 1.0
    elif sim < -1.0:
        sim = -1.0
    if shrinkage > 0.0:
        sim = sim * (n / (n + shrinkage))
    sim_out[0] = sim
    return sim != 0.0


cdef inline int _offer_inline(floating* vals, int* idxs, int size, int k, floating v,
                              int l) noexcept nogil:
    # heap_offer, with the common reject (full heap, v not better than the root) inline
    if size < k or v > vals[0] or (v == vals[0] and l < idxs[0]):
        return heap_offer(vals, idxs, size, k, v, l)
    return size


cdef inline int _pearson_row(
    int i,
    const long long* indptr,
    const int* indices,
    const floating* data,
    const long long* t_indptr,
    const int* t_indices,
    const floating* t_data,
    int n_vectors,
    int k,
    long long min_support,
    double shrinkage,
    double min_similarity,
    double* acc,
    int* touched,
    floating* vals,
    int* idxs,
) noexcept nogil:
    # acc[8 l : 8 l + 6] = [count, sum x, sum y, sum x*x, sum y*y, sum x*y] over
    # every l sharing a column with i (both sides of i)
    cdef long long p, q
    cdef int j, l, t, n_touched = 0, size = 0
    cdef bint dense = _row_work(i, indptr, indices, t_indptr) >= n_vectors
    cdef double x, xx, sim
    cdef double* a
    cdef floating v
    for p in range(indptr[i], indptr[i + 1]):
        j = indices[p]
        x = data[p]
        xx = x * x
        if dense:
            _run(acc, t_indices, t_data, t_indptr[j], t_indptr[j + 1], n_vectors, x, xx)
        else:
            for q in range(t_indptr[j], t_indptr[j + 1]):
                l = t_indices[q]
                a = acc + FR_ACC * <Py_ssize_t> l
                if a[0] == 0.0:
                    touched[n_touched] = l
                    n_touched = n_touched + 1
                fr_pearson_add(a, x, xx, t_data[q])
    fr_pearson_zero(acc + FR_ACC * <Py_ssize_t> i)  # no self pair
    if dense:
        n_touched = n_vectors
    for t in range(n_touched):
        l = t if dense else touched[t]
        a = acc + FR_ACC * <Py_ssize_t> l
        if a[0] == 0.0:
            continue
        if not _pearson_score(a, min_support, shrinkage, &sim) or sim < min_similarity:
            continue
        v = <floating> sim  # rank in the output precision, so ties are the output's ties
        size = _offer_inline(vals, idxs, size, k, v, l)
    return size


cdef inline void _offer_reverse(int i, int l, floating v, int k, floating* r_vals,
                                int* r_idxs, int* r_size, floating* r_thr,
                                int* r_thr_idx) noexcept nogil:
    # offer the pair (l, i) of similarity v to this thread's heap of row l
    # (r_vals[l k : l k + k]); (r_thr[l], r_thr_idx[l]) is its root once full
    if v > r_thr[l] or (v == r_thr[l] and i < r_thr_idx[l]):
        r_size[l] = heap_offer(r_vals + <Py_ssize_t> l * k, r_idxs + <Py_ssize_t> l * k,
                               r_size[l], k, v, i)
        if r_size[l] == k:
            r_thr[l] = r_vals[<Py_ssize_t> l * k]
            r_thr_idx[l] = r_idxs[<Py_ssize_t> l * k]


cdef inline long long _sym_starts(int i, const long long* indptr, const int* indices,
                                  const long long* t_indptr, const int* t_indices,
                                  long long* starts) noexcept nogil:
    # starts[p - indptr[i]] = first position of A.T[indices[p]] past row i (sorted
    # indices); returns how many entries the walks from there cover
    cdef long long p, q, p0 = indptr[i], work = 0
    cdef int j
    for p in range(p0, indptr[i + 1]):
        j = indices[p]
        q = _upper_bound(t_indices, t_indptr[j], t_indptr[j + 1], i)
        starts[p - p0] = q
        work += t_indptr[j + 1] - q
    return work


cdef inline int _pearson_offer_both(
    int i,
    int l,
    double* acc,
    long long min_support,
    double shrinkage,
    double min_similarity,
    int k,
    int size,
    floating* vals,
    int* idxs,
    floating* r_vals,
    int* r_idxs,
    int* r_size,
    floating* r_thr,
    int* r_thr_idx,
) noexcept nogil:
    # score the pair (i, l) accumulated at acc[8 l], reset it, offer it to row i's
    # heap (returns its new size) and to this thread's heap of row l
    cdef double* a = acc + FR_ACC * <Py_ssize_t> l
    cdef double sim
    cdef floating v
    if a[0] == 0.0:
        return size
    if not _pearson_score(a, min_support, shrinkage, &sim) or sim < min_similarity:
        return size
    v = <floating> sim  # rank in the output precision, so ties are the output's ties
    size = _offer_inline(vals, idxs, size, k, v, l)
    _offer_reverse(i, l, v, k, r_vals, r_idxs, r_size, r_thr, r_thr_idx)
    return size


cdef inline int _pearson_row_sym(
    int i,
    const long long* indptr,
    const int* indices,
    const floating* data,
    const long long* t_indptr,
    const int* t_indices,
    const floating* t_data,
    int n_vectors,
    int k,
    long long min_support,
    double shrinkage,
    double min_similarity,
    double* acc,
    int* touched,
    long long* starts,
    floating* vals,
    int* idxs,
    floating* r_vals,
    int* r_idxs,
    int* r_size,
    floating* r_thr,
    int* r_thr_idx,
) noexcept nogil:
    # Pairs (i, l) with l > i only: per column j of row i, walk A.T[j] from just
    # past i (its indices are sorted). Each pair is offered to row i's heap
    # (vals, idxs) and to this thread's heap of row l (r_vals[l k : l k + k]);
    # (r_thr[l], r_thr_idx[l]) is that heap's root once it is full ((-inf, n)
    # before), so the common reject reads compact arrays, not scattered heaps.
    cdef long long p, q, p0 = indptr[i], work = 0
    cdef int j, l, t, n_touched = 0, size = 0
    cdef bint dense
    cdef double x, xx
    cdef double* a
    work = _sym_starts(i, indptr, indices, t_indptr, t_indices, starts)
    dense = work >= n_vectors - i - 1
    if dense:
        # scatter every column's run, then scan all rows l > i
        for p in range(p0, indptr[i + 1]):
            x = data[p]
            _run(acc, t_indices, t_data, starts[p - p0], t_indptr[indices[p] + 1], n_vectors,
                 x, x * x)
        for l in range(i + 1, n_vectors):
            size = _pearson_offer_both(i, l, acc, min_support, shrinkage, min_similarity, k,
                                       size, vals, idxs, r_vals, r_idxs, r_size, r_thr,
                                       r_thr_idx)
        return size
    for p in range(p0, indptr[i + 1]):
        j = indices[p]
        x = data[p]
        xx = x * x
        for q in range(starts[p - p0], t_indptr[j + 1]):
            l = t_indices[q]
            a = acc + FR_ACC * <Py_ssize_t> l
            if a[0] == 0.0:
                touched[n_touched] = l
                n_touched = n_touched + 1
            fr_pearson_add(a, x, xx, t_data[q])
    for t in range(n_touched):
        size = _pearson_offer_both(i, touched[t], acc, min_support, shrinkage, min_similarity,
                                   k, size, vals, idxs, r_vals, r_idxs, r_size, r_thr, r_thr_idx)
    return size


cdef inline int _dot_offer(int l, floating* acc, int* count, const unsigned char* valid,
                           long long min_support, double shrinkage, double min_similarity,
                           floating* vals, int* idxs, int size, int k,
                           bint clip) noexcept nogil:
    # score the dot product in acc[l], reset it, offer it
    cdef double sim = acc[l], n = count[l]
    cdef floating v
    acc[l] = 0
    count[l] = 0
    if sim == 0.0 or not valid[l]:
        return size
    if min_support > 1 and n < min_support:  # count is only kept when needed
        return size
    if clip:
        if sim > 1.0:
            sim = 1.0
        elif sim < -1.0:
            sim = -1.0
    if shrinkage > 0.0:
        sim = sim * (n / (n + shrinkage))
    if sim < min_similarity:
        return size
    v = <floating> sim
    return heap_offer(vals, idxs, size, k, v, l)


cdef inline int _dot_row(
    int i,
    const long long* indptr,
    const int* indices,
    const floating* data,
    const long long* t_indptr,
    const int* t_indices,
    const floating* t_data,
    const unsigned char* valid,
    int n_vectors,
    int k,
    long long min_support,
    double shrinkage,
    double min_similarity,
    floating* acc,
    int* count,
    int* touched,
    floating* vals,
    int* idxs,
    bint clip,
) noexcept nogil:
    # acc[l] = sum x*y, count[l] = number of common columns (when needed)
    cdef long long p, q, q0, q1
    cdef int j, l, t, n_touched = 0, size = 0
    cdef bint dense = _row_work(i, indptr, indices, t_indptr) >= n_vectors
    cdef bint need_count = min_support > 1 or shrinkage > 0.0
    cdef floating x
    for p in range(indptr[i], indptr[i + 1]):
        j = indices[p]
        x = data[p]
        q0 = t_indptr[j]
        q1 = t_indptr[j + 1]
        if dense and not need_count:
            # acc[A.T[j].indices] += x * A.T[j].data
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
                    n_touched = n_touched + 1
                acc[l] += x * t_data[q]
                count[l] += 1
    acc[i] = 0  # no self pair
    count[i] = 0
    if dense:
        for l in range(n_vectors):
            if acc[l] != 0 or count[l] != 0:
                size = _dot_offer(l, acc, count, valid, min_support, shrinkage,
                                  min_similarity, vals, idxs, size, k, clip)
    else:
        for t in range(n_touched):
            l = touched[t]
            if l != i:
                size = _dot_offer(l, acc, count, valid, min_support, shrinkage,
                                  min_similarity, vals, idxs, size, k, clip)
    return size


cdef inline int _dot_offer_both(int i, int l, floating* acc, int* count,
                                const unsigned char* valid, long long min_support,
                                double shrinkage, double min_similarity, int k, int size,
                                floating* vals, int* idxs, floating* r_vals, int* r_idxs,
                                int* r_size, floating* r_thr, int* r_thr_idx,
                                bint clip) noexcept nogil:
    # as _dot_offer for the pair (i, l), offered to row i's heap (returns its new
    # size) and to this thread's heap of row l (see _pearson_offer_both)
    cdef double sim = acc[l], n = count[l]
    cdef floating v
    acc[l] = 0
    count[l] = 0
    if sim == 0.0 or not valid[l]:
        return size
    if min_support > 1 and n < min_support:
        return size
    if clip:
        if sim > 1.0:
            sim = 1.0
        elif sim < -1.0:
            sim = -1.0
    if shrinkage > 0.0:
        sim = sim * (n / (n + shrinkage))
    if sim < min_similarity:
        return size
    v = <floating> sim
    size = _offer_inline(vals, idxs, size, k, v, l)
    _offer_reverse(i, l, v, k, r_vals, r_idxs, r_size, r_thr, r_thr_idx)
    return size


cdef inline int _dot_row_sym(
    int i,
    const long long* indptr,
    const int* indices,
    const floating* data,
    const long long* t_indptr,
    const int* t_indices,
    const floating* t_data,
    const unsigned char* valid,
    int n_vectors,
    int k,
    long long min_support,
    double shrinkage,
    double min_similarity,
    floating* acc,
    int* count,
    int* touched,
    long long* starts,
    floating* vals,
    int* idxs,
    floating* r_vals,
    int* r_idxs,
    int* r_size,
    floating* r_thr,
    int* r_thr_idx,
    bint clip,
) noexcept nogil:
    # _dot_row over the pairs (i, l), l > i only (see _pearson_row_sym)
    cdef long long p, q, q0, q1, p0 = indptr[i], work = 0
    cdef int j, l, t, n_touched = 0, size = 0
    cdef bint dense
    cdef bint need_count = min_support > 1 or shrinkage > 0.0
    cdef floating x
    work = _sym_starts(i, indptr, indices, t_indptr, t_indices, starts)
    dense = work >= n_vectors - i - 1
    for p in range(p0, indptr[i + 1]):
        x = data[p]
        q0 = starts[p - p0]
        q1 = t_indptr[indices[p] + 1]
        if dense and not need_count:
            # acc[A.T[j].indices[q0:q1]] += x * A.T[j].data[q0:q1]
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
                    n_touched = n_touched + 1
                acc[l] += x * t_data[q]
                count[l] += 1
    if dense:
        for l in range(i + 1, n_vectors):
            if acc[l] != 0 or count[l] != 0:
                size = _dot_offer_both(i, l, acc, count, valid, min_support, shrinkage,
                                       min_similarity, k, size, vals, idxs, r_vals, r_idxs,
                                       r_size, r_thr, r_thr_idx, clip)
    else:
        for t in range(n_touched):
            size = _dot_offer_both(i, touched[t], acc, count, valid, min_support, shrinkage,
                                   min_similarity, k, size, vals, idxs, r_vals, r_idxs,
                                   r_size, r_thr, r_thr_idx, clip)
    return size


cdef inline void _pad(floating* vals, int* idxs, int size, int k) noexcept nogil:
    cdef int j
    heap_sort(vals, idxs, size)
    for j in range(size, k):
        idxs[j] = -1
        vals[j] = -INFINITY


def pearson_topk(const long long[::1] indptr, const int[::1] indices, const floating[::1] data,
                 const long long[::1] t_indptr, const int[::1] t_indices,
                 const floating[::1] t_data, const int[::1] rows, int k,
                 long long min_support, double shrinkage, double min_similarity,
                 int[:, ::1] out_idx, floating[:, ::1] out_val):
    """Top-k Pearson correlation over the co-rated support, for the query ``rows``.

    See ``kernels/numba/similarity.py:pearson_topk``.
    """
    cdef Py_ssize_t n = indptr.shape[0] - 1, n_rows = rows.shape[0], r
    cdef double* acc
    cdef int* touched
    cdef int size
    cdef int failed[1]
    cdef int* failed_p = failed  # written through a shared pointer: not thread-private
    # empty arrays have no element 0 to point at
    cdef const floating* data_p = &data[0] if data.shape[0] > 0 else NULL
    cdef const floating* t_data_p = &t_data[0] if t_data.shape[0] > 0 else NULL
    cdef const int* indices_p = &indices[0] if indices.shape[0] > 0 else NULL
    cdef const int* t_indices_p = &t_indices[0] if t_indices.shape[0] > 0 else NULL
    failed[0] = 0
    if n_rows == 0:
        return
    with nogil, parallel():
        acc = fr_acc_alloc(n)
        touched = <int*> malloc((n + 1) * sizeof(int))
        if acc == NULL or touched == NULL:
            failed_p[0] = 1
        for r in prange(n_rows, schedule="dynamic", chunksize=1):
            if acc == NULL or touched == NULL:
                continue
            size = _pearson_row(rows[r], &indptr[0], indices_p, data_p, &t_indptr[0],
                                t_indices_p, t_data_p, n, k, min_support, shrinkage,
                                min_similarity, acc, touched, &out_val[r, 0], &out_idx[r, 0])
            _pad(&out_val[r, 0], &out_idx[r, 0], size, k)
        fr_acc_free(acc)
        free(touched)
    if failed[0]:
        raise MemoryError("pearson_topk: could not allocate the per-thread accumulators")


def dot_topk(const long long[::1] indptr, const int[::1] indices, const floating[::1] data,
             const long long[::1] t_indptr, const int[::1] t_indices,
             const floating[::1] t_data, const unsigned char[::1] valid, const int[::1] rows,
             int k, long long min_support, double shrinkage, double min_similarity,
             int[:, ::1] out_idx, floating[:, ::1] out_val, bint clip=True):
    """Top-k dot products between rows already scaled to unit norm, for ``rows``.

    See ``kernels/numba/similarity.py:dot_topk``.
    """
    cdef Py_ssize_t n = indptr.shape[0] - 1, n_rows = rows.shape[0], r
    cdef floating* acc
    cdef int* count
    cdef int* touched
    cdef int size
    cdef int failed[1]
    cdef int* failed_p = failed  # written through a shared pointer: not thread-private
    cdef const floating* data_p = &data[0] if data.shape[0] > 0 else NULL
    cdef const floating* t_data_p = &t_data[0] if t_data.shape[0] > 0 else NULL
    cdef const int* indices_p = &indices[0] if indices.shape[0] > 0 else NULL
    cdef const int* t_indices_p = &t_indices[0] if t_indices.shape[0] > 0 else NULL
    failed[0] = 0
    if n_rows == 0:
        return
    with nogil, parallel():
        acc = <floating*> calloc(n + 1, sizeof(floating))
        count = <int*> calloc(n + 1, sizeof(int))
        touched = <int*> malloc((n + 1) * sizeof(int))
        if acc == NULL or count == NULL or touched == NULL:
            failed_p[0] = 1
        for r in prange(n_rows, schedule="dynamic", chunksize=1):
            size = 0
            if acc != NULL and count != NULL and touched != NULL and valid[rows[r]]:
                size = _dot_row(rows[r], &indptr[0], indices_p, data_p, &t_indptr[0],
                                t_indices_p, t_data_p, &valid[0], n, k, min_support,
                                shrinkage, min_similarity, acc, count, touched,
                                &out_val[r, 0], &out_idx[r, 0], clip)
            _pad(&out_val[r, 0], &out_idx[r, 0], size, k)
        free(acc)
        free(count)
        free(touched)
    if failed[0]:
        raise MemoryError("dot_topk: could not allocate the per-thread accumulators")


def pearson_topk_all(const long long[::1] indptr, const int[::1] indices,
                     const floating[::1] data, const long long[::1] t_indptr,
                     const int[::1] t_indices, const floating[::1] t_data, int k,
                     long long min_support, double shrinkage, double min_similarity,
                     Py_ssize_t lo, Py_ssize_t hi,
                     int[:, :, ::1] heap_idx, floating[:, :, ::1] heap_val,
                     int[:, ::1] heap_size, int[::1] own_size, int[:, ::1] out_idx,
                     floating[:, ::1] out_val):
    """Top-k Pearson correlation of every row, each pair computed once.

    See ``kernels/numba/similarity.py:pearson_topk_all`` (rows ``[lo, hi)`` per
    call, :func:`merge_sets` at the end). Here the threads are capped at
    ``heap_val.shape[0]`` and thread ``t`` uses heap set ``t``.
    """
    cdef Py_ssize_t n = indptr.shape[0] - 1, r, e
    cdef int n_sets = heap_val.shape[0]
    cdef Py_ssize_t max_len = 0
    cdef double* acc
    cdef int* touched
    cdef long long* starts
    cdef floating* thr
    cdef int* thr_idx
    cdef int size, tid
    cdef int* fsize
    cdef int failed[1]
    cdef int* failed_p = failed  # written through a shared pointer: not thread-private
    cdef const floating* data_p = &data[0] if data.shape[0] > 0 else NULL
    cdef const floating* t_data_p = &t_data[0] if t_data.shape[0] > 0 else NULL
    cdef const int* indices_p = &indices[0] if indices.shape[0] > 0 else NULL
    cdef const int* t_indices_p = &t_indices[0] if t_indices.shape[0] > 0 else NULL
    failed[0] = 0
    if hi > n:
        hi = n
    if lo < 0 or lo >= hi:
        return
    for r in range(n):
        if indptr[r + 1] - indptr[r] > max_len:
            max_len = indptr[r + 1] - indptr[r]
    fsize = &own_size[0]
    with nogil, parallel(num_threads=n_sets):
        acc = fr_acc_alloc(n)
        touched = <int*> malloc((n + 1) * sizeof(int))
        starts = <long long*> malloc((max_len + 1) * sizeof(long long))
        thr = <floating*> malloc(n * sizeof(floating))
        thr_idx = <int*> malloc(n * sizeof(int))
        if acc == NULL or touched == NULL or starts == NULL or thr == NULL or thr_idx == NULL:
            failed_p[0] = 1
        else:
            for e in range(n):
                thr[e] = -INFINITY
                thr_idx[e] = n
        tid = threadid()
        for r in prange(lo, hi, schedule="dynamic", chunksize=1):
            if failed_p[0]:
                continue
            fsize[r] = _pearson_row_sym(
                r, &indptr[0], indices_p, data_p, &t_indptr[0], t_indices_p, t_data_p, n, k,
                min_support, shrinkage, min_similarity, acc, touched, starts,
                &out_val[r, 0], &out_idx[r, 0], &heap_val[tid, 0, 0], &heap_idx[tid, 0, 0],
                &heap_size[tid, 0], thr, thr_idx)
        fr_acc_free(acc)
        free(thr)
        free(thr_idx)
        free(touched)
        free(starts)
    if failed[0]:
        raise MemoryError("pearson_topk_all: could not allocate the per-thread scratch")


cdef void _merge_sets(int[:, :, ::1] heap_idx, floating[:, :, ::1] heap_val,
                      int[:, ::1] heap_size, int* fsize, int[:, ::1] out_idx,
                      floating[:, ::1] out_val) noexcept:
    # row r: its own heap (out[r], fsize[r] entries) merged with every set's heap r
    cdef Py_ssize_t n = out_idx.shape[0], r
    cdef int k = out_idx.shape[1], n_sets = heap_val.shape[0], s, e, size
    cdef floating* vals
    cdef int* idxs
    with nogil:
        for r in prange(n, schedule="dynamic", chunksize=256):
            vals = &out_val[r, 0]
            idxs = &out_idx[r, 0]
            size = fsize[r]
            for s in range(n_sets):
                for e in range(heap_size[s, r]):
                    size = _offer_inline(vals, idxs, size, k, heap_val[s, r, e],
                                         heap_idx[s, r, e])
            _pad(vals, idxs, size, k)


def dot_topk_all(const long long[::1] indptr, const int[::1] indices, const floating[::1] data,
                 const long long[::1] t_indptr, const int[::1] t_indices,
                 const floating[::1] t_data, const unsigned char[::1] valid, int k,
                 long long min_support, double shrinkage, double min_similarity,
                 Py_ssize_t lo, Py_ssize_t hi,
                 int[:, :, ::1] heap_idx, floating[:, :, ::1] heap_val,
                 int[:, ::1] heap_size, int[::1] own_size, int[:, ::1] out_idx,
                 floating[:, ::1] out_val, bint clip=True):
    """Top-k dot products (unit-norm rows) of every row, each pair computed once.

    See ``kernels/numba/similarity.py:dot_topk_all`` and :func:`pearson_topk_all`.
    """
    cdef Py_ssize_t n = indptr.shape[0] - 1, r, e
    cdef int n_sets = heap_val.shape[0]
    cdef Py_ssize_t max_len = 0
    cdef floating* acc
    cdef int* count
    cdef int* touched
    cdef long long* starts
    cdef floating* thr
    cdef int* thr_idx
    cdef int tid
    cdef int* fsize
    cdef int failed[1]
    cdef int* failed_p = failed  # written through a shared pointer: not thread-private
    cdef const floating* data_p = &data[0] if data.shape[0] > 0 else NULL
    cdef const floating* t_data_p = &t_data[0] if t_data.shape[0] > 0 else NULL
    cdef const int* indices_p = &indices[0] if indices.shape[0] > 0 else NULL
    cdef const int* t_indices_p = &t_indices[0] if t_indices.shape[0] > 0 else NULL
    failed[0] = 0
    if hi > n:
        hi = n
    if lo < 0 or lo >= hi:
        return
    for r in range(n):
        if indptr[r + 1] - indptr[r] > max_len:
            max_len = indptr[r + 1] - indptr[r]
    fsize = &own_size[0]
    with nogil, parallel(num_threads=n_sets):
        acc = <floating*> calloc(n + 1, sizeof(floating))
        count = <int*> calloc(n + 1, sizeof(int))
        touched = <int*> malloc((n + 1) * sizeof(int))
        starts = <long long*> malloc((max_len + 1) * sizeof(long long))
        thr = <floating*> malloc(n * sizeof(floating))
        thr_idx = <int*> malloc(n * sizeof(int))
        if (acc == NULL or count == NULL or touched == NULL or starts == NULL or thr == NULL
                or thr_idx == NULL):
            failed_p[0] = 1
        else:
            for e in range(n):
                thr[e] = -INFINITY
                thr_idx[e] = n
        tid = threadid()
        for r in prange(lo, hi, schedule="dynamic", chunksize=1):
            if failed_p[0] or not valid[r]:  # an invalid row has no pairs at all
                fsize[r] = 0
                continue
            fsize[r] = _dot_row_sym(
                r, &indptr[0], indices_p, data_p, &t_indptr[0], t_indices_p, t_data_p,
                &valid[0], n, k, min_support, shrinkage, min_similarity, acc, count, touched,
                starts, &out_val[r, 0], &out_idx[r, 0], &heap_val[tid, 0, 0],
                &heap_idx[tid, 0, 0], &heap_size[tid, 0], thr, thr_idx, clip)
        free(acc)
        free(count)
        free(touched)
        free(starts)
        free(thr)
        free(thr_idx)
    if failed[0]:
        raise MemoryError("dot_topk_all: could not allocate the per-thread scratch")


def merge_sets(int[:, :, ::1] heap_idx, floating[:, :, ::1] heap_val, int[:, ::1] heap_size,
               int[::1] own_size, int[:, ::1] out_idx, floating[:, ::1] out_val):
    """Finish :func:`pearson_topk_all` / :func:`dot_topk_all` once every row is done.

    See ``kernels/numba/similarity.py:merge_sets``.
    """
    if out_idx.shape[0] == 0:
        return
    _merge_sets(heap_idx, heap_val, heap_size, &own_size[0], out_idx, out_val)
