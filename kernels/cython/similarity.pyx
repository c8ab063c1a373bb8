# cython: language_level=3
"""Sparse similarity between CSR rows, fused with top-k (twin of ``numba/similarity.py``).

See ``kernels/numba/similarity.py`` for the algorithm, the parameters and the
degenerate cases; the two files compute the same thing in the same order.
Here the scratch (accumulator row and touched list) is allocated once per
OpenMP thread inside the parallel region and the rows are scheduled
dynamically, one at a time.
"""

from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport INFINITY, sqrt
from libc.stdlib cimport calloc, free, malloc

from _heap cimport heap_offer, heap_sort

# Same value as kernels/numba/similarity.py
cdef double ZERO_VARIANCE_RTOL = 1e-12


cdef inline long long _row_work(int i, const long long* indptr, const int* indices,
                                const long long* t_indptr) noexcept nogil:
    # sum(deg(j) for j in A[i]): the number of accumulator updates row i costs
    cdef long long p, work = 0
    cdef int j
    for p in range(indptr[i], indptr[i + 1]):
        j = indices[p]
        work += t_indptr[j + 1] - t_indptr[j]
    return work


cdef inline int _pearson_offer(int l, double* acc, long long min_support, double shrinkage,
                               double min_similarity, floating* vals, int* idxs, int size,
                               int k) noexcept nogil:
    # score the pair accumulated in acc[6 l : 6 l + 6], reset it, offer it
    cdef double* a = acc + 6 * <Py_ssize_t> l
    cdef double n = a[0], sx = a[1], sy = a[2], sxx = a[3], syy = a[4], sxy = a[5]
    cdef double var_x, var_y, sim
    cdef floating v
    a[0] = 0.0
    a[1] = 0.0
    a[2] = 0.0
    a[3] = 0.0
    a[4] = 0.0
    a[5] = 0.0
    if n < min_support:
        return size
    # Surprise's one-pass form: n * cov / sqrt(n * var_x * n * var_y)
    var_x = n * sxx - sx * sx
    var_y = n * syy - sy * sy
    if var_x <= ZERO_VARIANCE_RTOL * n * sxx or var_y <= ZERO_VARIANCE_RTOL * n * syy:
        return size
    sim = (n * sxy - sx * sy) / sqrt(var_x * var_y)
    if sim > 1.0:
        sim = 1.0
    elif sim < -1.0:
        sim = -1.0
    if shrinkage > 0.0:
        sim = sim * (n / (n + shrinkage))
    if sim == 0.0 or sim < min_similarity:
        return size
    v = <floating> sim  # rank in the output precision, so ties are the output's ties
    return heap_offer(vals, idxs, size, k, v, l)


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
    # acc[6 l : 6 l + 6] = [count, sum x, sum y, sum x*x, sum y*y, sum x*y]
    cdef long long p, q
    cdef int j, l, t, n_touched = 0, size = 0
    cdef bint dense = _row_work(i, indptr, indices, t_indptr) >= n_vectors
    cdef double x, xx, y
    cdef double* a
    for p in range(indptr[i], indptr[i + 1]):
        j = indices[p]
        x = data[p]
        xx = x * x
        if dense:
            for q in range(t_indptr[j], t_indptr[j + 1]):
                y = t_data[q]
                a = acc + 6 * <Py_ssize_t> t_indices[q]
                a[0] += 1.0
                a[1] += x
                a[2] += y
                a[3] += xx
                a[4] += y * y
                a[5] += x * y
        else:
            for q in range(t_indptr[j], t_indptr[j + 1]):
                l = t_indices[q]
                y = t_data[q]
                a = acc + 6 * <Py_ssize_t> l
                if a[0] == 0.0:
                    touched[n_touched] = l
                    n_touched = n_touched + 1
                a[0] += 1.0
                a[1] += x
                a[2] += y
                a[3] += xx
                a[4] += y * y
                a[5] += x * y
    a = acc + 6 * <Py_ssize_t> i  # no self pair
    a[0] = 0.0
    a[1] = 0.0
    a[2] = 0.0
    a[3] = 0.0
    a[4] = 0.0
    a[5] = 0.0
    if dense:
        for l in range(n_vectors):
            if acc[6 * <Py_ssize_t> l] != 0.0:
                size = _pearson_offer(l, acc, min_support, shrinkage, min_similarity,
                                      vals, idxs, size, k)
    else:
        for t in range(n_touched):
            l = touched[t]
            if l != i:
                size = _pearson_offer(l, acc, min_support, shrinkage, min_similarity,
                                      vals, idxs, size, k)
    return size


cdef inline int _dot_offer(int l, floating* acc, int* count, const unsigned char* valid,
                           long long min_support, double shrinkage, double min_similarity,
                           floating* vals, int* idxs, int size, int k) noexcept nogil:
    # score the dot product in acc[l], reset it, offer it
    cdef double sim = acc[l], n = count[l]
    cdef floating v
    acc[l] = 0
    count[l] = 0
    if sim == 0.0 or not valid[l]:
        return size
    if min_support > 1 and n < min_support:  # count is only kept when needed
        return size
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
                                  min_similarity, vals, idxs, size, k)
    else:
        for t in range(n_touched):
            l = touched[t]
            if l != i:
                size = _dot_offer(l, acc, count, valid, min_support, shrinkage,
                                  min_similarity, vals, idxs, size, k)
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
        acc = <double*> calloc(6 * n + 1, sizeof(double))
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
        free(acc)
        free(touched)
    if failed[0]:
        raise MemoryError("pearson_topk: could not allocate the per-thread accumulators")


def dot_topk(const long long[::1] indptr, const int[::1] indices, const floating[::1] data,
             const long long[::1] t_indptr, const int[::1] t_indices,
             const floating[::1] t_data, const unsigned char[::1] valid, const int[::1] rows,
             int k, long long min_support, double shrinkage, double min_similarity,
             int[:, ::1] out_idx, floating[:, ::1] out_val):
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
                                &out_val[r, 0], &out_idx[r, 0])
            _pad(&out_val[r, 0], &out_idx[r, 0], size, k)
        free(acc)
        free(count)
        free(touched)
    if failed[0]:
        raise MemoryError("dot_topk: could not allocate the per-thread accumulators")
