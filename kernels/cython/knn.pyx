# cython: language_level=3
"""Neighbourhood (k-NN) prediction and scoring kernels (twin of ``numba/knn.py``).

See ``kernels/numba/knn.py`` for the orientation (target side x, matrix A and
its transpose B), the similarity definitions and each kernel's contract. Index
pointers are int64 here (the Python wrapper converts); data are float32 or
float64 (one fused type per call); accumulators are float64.
"""

import numpy as np
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.math cimport INFINITY, sqrt

from _heap cimport heap_offer, heap_sort

cdef enum:
    KIND_PEARSON = 0
    KIND_DOT = 1

cdef double VAR_EPS = 1e-12


cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #else
    static int omp_get_max_threads(void) { return 1; }
    #endif
    """
    int omp_get_max_threads() nogil

# Per-thread scratch: row t of each buffer belongs to OpenMP thread t. The
# accumulators of one thread are 6 planes of length n_x in one float64 block:
# sx, sy, sxx, syy, sxy and the finished similarities.
cdef enum:
    SX = 0
    SY = 1
    SXX = 2
    SYY = 3
    SXY = 4
    SIM = 5
    N_PLANES = 6


def _n_threads():
    return max(1, omp_get_max_threads())


cdef int accumulate_row(int x, const long long[::1] a_indptr, const int[::1] a_indices,
                        const floating[::1] a_data, const long long[::1] b_indptr,
                        const int[::1] b_indices, const floating[::1] b_data,
                        int* cnt, double* acc, Py_ssize_t stride, int* touched) noexcept nogil:
    # Co-rated sums of x against every other x2 (see numba twin); returns #touched.
    cdef int n_touched = 0, y, x2
    cdef long long p, q
    cdef double rx, ry
    cdef double* sx = acc + SX * stride
    cdef double* sy = acc + SY * stride
    cdef double* sxx = acc + SXX * stride
    cdef double* syy = acc + SYY * stride
    cdef double* sxy = acc + SXY * stride
    for p in range(a_indptr[x], a_indptr[x + 1]):
        y = a_indices[p]
        rx = a_data[p]
        for q in range(b_indptr[y], b_indptr[y + 1]):
            x2 = b_indices[q]
            if x2 == x:
                continue
            ry = b_data[q]
            if cnt[x2] == 0:
                touched[n_touched] = x2
                n_touched = n_touched + 1
            cnt[x2] += 1
            sx[x2] += rx
            sy[x2] += ry
            sxx[x2] += rx * rx
            syy[x2] += ry * ry
            sxy[x2] += rx * ry
    return n_touched


cdef inline double pair_similarity(int kind, int n, double sx, double sy, double sxx,
                                   double syy, double sxy, int min_support,
                                   double shrinkage) noexcept nogil:
    cdef double nf, var_x, var_y, sim
    if n == 0 or n < min_support:
        return 0.0
    if kind == KIND_PEARSON:
        nf = n
        var_x = nf * sxx - sx * sx
        var_y = nf * syy - sy * sy
        if var_x <= VAR_EPS * nf * sxx or var_y <= VAR_EPS * nf * syy:
            return 0.0
        sim = (nf * sxy - sx * sy) / sqrt(var_x * var_y)
    else:
        sim = sxy
    if shrinkage > 0.0:
        sim = sim * (n / (n + shrinkage))
    return sim


cdef void finish_row(int kind, int min_support, double shrinkage, int n_touched,
                     int* cnt, double* acc, Py_ssize_t stride, int* touched) noexcept nogil:
    # sim[x2] for every touched x2, and the sums reset to zero (cnt kept).
    cdef int t, x2
    for t in range(n_touched):
        x2 = touched[t]
        acc[SIM * stride + x2] = pair_similarity(
            kind, cnt[x2], acc[SX * stride + x2], acc[SY * stride + x2],
            acc[SXX * stride + x2], acc[SYY * stride + x2], acc[SXY * stride + x2],
            min_support, shrinkage)
        acc[SX * stride + x2] = 0.0
        acc[SY * stride + x2] = 0.0
        acc[SXX * stride + x2] = 0.0
        acc[SYY * stride + x2] = 0.0
        acc[SXY * stride + x2] = 0.0


def predict_pairs(const long long[::1] a_indptr, const int[::1] a_indices,
                  const floating[::1] a_data, const long long[::1] b_indptr,
                  const int[::1] b_indices, const floating[::1] b_data,
                  const double[::1] means, int kind, int min_support, double shrinkage, int k,
                  bint centered, const int[::1] group_target, const long long[::1] group_ptr,
                  const int[::1] query_other, double[::1] out_pred, int[::1] out_count):
    """k-NN predictions for queries grouped by target (see the numba twin)."""
    cdef Py_ssize_t n_x = means.shape[0], n_groups = group_target.shape[0]
    cdef int n_threads = _n_threads()
    cdef int[:, ::1] cnt_buf = np.zeros((n_threads, n_x + 1), dtype=np.int32)
    cdef double[:, ::1] acc_buf = np.zeros((n_threads, N_PLANES * (n_x + 1)))
    cdef int[:, ::1] touched_buf = np.zeros((n_threads, n_x + 1), dtype=np.int32)
    cdef double[:, ::1] heap_val_buf = np.zeros((n_threads, k))
    cdef int[:, ::1] heap_pos_buf = np.zeros((n_threads, k), dtype=np.int32)
    cdef Py_ssize_t stride = n_x + 1, g
    cdef long long q, p, start
    cdef int x, x2, y, size, h, n_touched, t, tid
    cdef double s, num, den, r, pred
    cdef int* cnt
    cdef double* acc
    cdef int* touched
    cdef double* heap_val
    cdef int* heap_pos
    with nogil:
        for g in prange(n_groups, schedule="dynamic"):
            tid = threadid()
            cnt = &cnt_buf[tid, 0]
            acc = &acc_buf[tid, 0]
            touched = &touched_buf[tid, 0]
            heap_val = &heap_val_buf[tid, 0]
            heap_pos = &heap_pos_buf[tid, 0]
            x = group_target[g]
            n_touched = accumulate_row(x, a_indptr, a_indices, a_data, b_indptr,
                                       b_indices, b_data, cnt, acc, stride, touched)
            finish_row(kind, min_support, shrinkage, n_touched, cnt, acc, stride, touched)
            for q in range(group_ptr[g], group_ptr[g + 1]):
                y = query_other[q]
                start = b_indptr[y]
                size = 0
                for p in range(start, b_indptr[y + 1]):
                    x2 = b_indices[p]
                    s = acc[SIM * stride + x2]
                    if x2 != x and s > 0.0:
                        size = heap_offer(heap_val, heap_pos, size, k, s, <int> (p - start))
                num = 0.0
                den = 0.0
                for h in range(size):
                    p = start + heap_pos[h]
                    r = b_data[p]
                    if centered:
                        r = r - means[b_indices[p]]
                    num = num + heap_val[h] * r
                    den = den + heap_val[h]
                pred = means[x] if centered else 0.0
                if size > 0:
                    pred = pred + num / den
                out_pred[q] = pred
                out_count[q] = size
            for t in range(n_touched):
                x2 = touched[t]
                acc[SIM * stride + x2] = 0.0
                cnt[x2] = 0


def similar_rows(const long long[::1] a_indptr, const int[::1] a_indices,
                 const floating[::1] a_data, const long long[::1] b_indptr,
                 const int[::1] b_indices, const floating[::1] b_data, int kind,
                 int min_support, double shrinkage, const int[::1] rows, bint positive_only,
                 int[:, ::1] out_idx, floating[:, ::1] out_val):
    """The most similar x' of each x in ``rows``, best first (see the numba twin)."""
    cdef Py_ssize_t n_x = a_indptr.shape[0] - 1, m = rows.shape[0]
    cdef int n = out_idx.shape[1]
    cdef int n_threads = _n_threads()
    cdef int[:, ::1] cnt_buf = np.zeros((n_threads, n_x + 1), dtype=np.int32)
    cdef double[:, ::1] acc_buf = np.zeros((n_threads, N_PLANES * (n_x + 1)))
    cdef int[:, ::1] touched_buf = np.zeros((n_threads, n_x + 1), dtype=np.int32)
    cdef double[:, ::1] heap_val_buf = np.zeros((n_threads, n))
    cdef int[:, ::1] heap_idx_buf = np.zeros((n_threads, n), dtype=np.int32)
    cdef Py_ssize_t stride = n_x + 1, row
    cdef int x, x2, size, j, t, n_touched, keep, tid
    cdef double s
    cdef int* cnt
    cdef double* acc
    cdef int* touched
    cdef double* heap_val
    cdef int* heap_idx
    with nogil:
        for row in prange(m, schedule="dynamic"):
            tid = threadid()
            cnt = &cnt_buf[tid, 0]
            acc = &acc_buf[tid, 0]
            touched = &touched_buf[tid, 0]
            heap_val = &heap_val_buf[tid, 0]
            heap_idx = &heap_idx_buf[tid, 0]
            x = rows[row]
            n_touched = accumulate_row(x, a_indptr, a_indices, a_data, b_indptr,
                                       b_indices, b_data, cnt, acc, stride, touched)
            finish_row(kind, min_support, shrinkage, n_touched, cnt, acc, stride, touched)
            size = 0
            for t in range(n_touched):
                x2 = touched[t]
                s = acc[SIM * stride + x2]
                if positive_only:
                    keep = s > 0.0
                else:
                    keep = cnt[x2] >= min_support
                if keep:
                    size = heap_offer(heap_val, heap_idx, size, n, s, x2)
                acc[SIM * stride + x2] = 0.0
                cnt[x2] = 0
            heap_sort(heap_val, heap_idx, size)
            for j in range(size):
                out_idx[row, j] = heap_idx[j]
                out_val[row, j] = <floating> heap_val[j]
            for j in range(size, n):
                out_idx[row, j] = -1
                out_val[row, j] = -INFINITY


def score_user_based(const long long[::1] a_indptr, const int[::1] a_indices,
                     const floating[::1] a_data, const long long[::1] b_indptr,
                     const int[::1] b_indices, const floating[::1] b_data,
                     const double[::1] means, int kind, int min_support, double shrinkage,
                     int k, int min_k, bint centered, int max_neighbors, const int[::1] users,
                     const double[::1] fallback, float[:, ::1] out_scores):
    """UserKNN scores of every item for a block of users (see the numba twin)."""
    cdef Py_ssize_t n_users = means.shape[0], n_items = b_indptr.shape[0] - 1
    cdef Py_ssize_t m = users.shape[0], row
    cdef int cap = max(1, min(max_neighbors, n_users))
    cdef int n_threads = _n_threads()
    cdef int[:, ::1] cnt_buf = np.zeros((n_threads, n_users + 1), dtype=np.int32)
    cdef double[:, ::1] acc_buf = np.zeros((n_threads, N_PLANES * (n_users + 1)))
    cdef int[:, ::1] touched_buf = np.zeros((n_threads, n_users + 1), dtype=np.int32)
    cdef double[:, ::1] nb_val_buf = np.zeros((n_threads, cap))
    cdef int[:, ::1] nb_idx_buf = np.zeros((n_threads, cap), dtype=np.int32)
    cdef double[:, ::1] num_buf = np.zeros((n_threads, n_items + 1))
    cdef double[:, ::1] den_buf = np.zeros((n_threads, n_items + 1))
    cdef int[:, ::1] used_buf = np.zeros((n_threads, n_items + 1), dtype=np.int32)
    cdef Py_ssize_t stride = n_users + 1
    cdef int u, v, i, size, h, t, n_touched, tid
    cdef long long p
    cdef double s, r, base
    cdef int* cnt
    cdef double* acc
    cdef int* touched
    cdef double* nb_val
    cdef int* nb_idx
    cdef double* num
    cdef double* den
    cdef int* used
    with nogil:
        for row in prange(m, schedule="dynamic"):
            tid = threadid()
            cnt = &cnt_buf[tid, 0]
            acc = &acc_buf[tid, 0]
            touched = &touched_buf[tid, 0]
            nb_val = &nb_val_buf[tid, 0]
            nb_idx = &nb_idx_buf[tid, 0]
            num = &num_buf[tid, 0]
            den = &den_buf[tid, 0]
            used = &used_buf[tid, 0]
            u = users[row]
            n_touched = accumulate_row(u, a_indptr, a_indices, a_data, b_indptr,
                                       b_indices, b_data, cnt, acc, stride, touched)
            finish_row(kind, min_support, shrinkage, n_touched, cnt, acc, stride, touched)
            size = 0
            for t in range(n_touched):
                v = touched[t]
                s = acc[SIM * stride + v]
                if s > 0.0:
                    size = heap_offer(nb_val, nb_idx, size, cap, s, v)
                acc[SIM * stride + v] = 0.0
                cnt[v] = 0
            heap_sort(nb_val, nb_idx, size)
            for h in range(size):
                v = nb_idx[h]
                s = nb_val[h]
                for p in range(a_indptr[v], a_indptr[v + 1]):
                    i = a_indices[p]
                    if used[i] < k:
                        r = a_data[p]
                        if centered:
                            r = r - means[v]
                        num[i] += s * r
                        den[i] += s
                        used[i] += 1
            base = means[u] if centered else 0.0
            for i in range(n_items):
                if used[i] >= min_k and used[i] > 0:
                    out_scores[row, i] = <float> (base + num[i] / den[i])
                else:
                    out_scores[row, i] = <float> fallback[row]
                num[i] = 0.0
                den[i] = 0.0
                used[i] = 0


def score_item_based(const long long[::1] r_indptr, const int[::1] r_indices,
                     const floating[::1] r_data, const long long[::1] nbr_indptr,
                     const int[::1] nbr_indices, const floating[::1] nbr_data,
                     const double[::1] means, int k, int min_k, bint centered,
                     const int[::1] users, const double[::1] fallback,
                     float[:, ::1] out_scores):
    """ItemKNN scores of every item for a block of users (see the numba twin)."""
    cdef Py_ssize_t n_items = means.shape[0], m = users.shape[0], row
    cdef int n_threads = _n_threads()
    cdef double[:, ::1] heap_val_buf = np.zeros((n_threads, n_items * k + 1))
    cdef int[:, ::1] heap_pos_buf = np.zeros((n_threads, n_items * k + 1), dtype=np.int32)
    cdef int[:, ::1] size_buf = np.zeros((n_threads, n_items + 1), dtype=np.int32)
    cdef int[:, ::1] touched_buf = np.zeros((n_threads, n_items + 1), dtype=np.int32)
    cdef int u, i, j, h, t, n_touched, tid
    cdef long long p, q, start
    cdef double num, den, r
    cdef double* heap_val
    cdef int* heap_pos
    cdef int* size
    cdef int* touched
    with nogil:
        for row in prange(m, schedule="dynamic"):
            tid = threadid()
            heap_val = &heap_val_buf[tid, 0]
            heap_pos = &heap_pos_buf[tid, 0]
            size = &size_buf[tid, 0]
            touched = &touched_buf[tid, 0]
            u = users[row]
            start = r_indptr[u]
            n_touched = 0
            for p in range(start, r_indptr[u + 1]):
                j = r_indices[p]
                for q in range(nbr_indptr[j], nbr_indptr[j + 1]):
                    i = nbr_indices[q]
                    if size[i] == 0:
                        touched[n_touched] = i
                        n_touched = n_touched + 1
                    size[i] = heap_offer(&heap_val[i * k], &heap_pos[i * k], size[i], k,
                                         <double> nbr_data[q], <int> (p - start))
            for i in range(n_items):
                out_scores[row, i] = <float> fallback[i]
            for t in range(n_touched):
                i = touched[t]
                num = 0.0
                den = 0.0
                for h in range(size[i]):
                    p = start + heap_pos[i * k + h]
                    r = r_data[p]
                    if centered:
                        r = r - means[r_indices[p]]
                    num = num + heap_val[i * k + h] * r
                    den = den + heap_val[i * k + h]
                if size[i] >= min_k:
                    out_scores[row, i] = <float> ((means[i] if centered else 0.0) + num / den)
                size[i] = 0
