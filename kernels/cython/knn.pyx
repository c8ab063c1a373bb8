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
from libc.math cimport INFINITY, NAN, sqrt

from _heap cimport heap_offer, heap_sort

cdef enum:
    KIND_PEARSON = 0
    KIND_DOT = 1
    KIND_SUPPORT_COSINE = 2

cdef enum:
    RANK_RATING = 0
    RANK_SUM = 1
    RANK_WEIGHTED = 2

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
# accumulator of one thread is (n_x, ACC_WIDTH) float64, one 64-byte line per
# candidate x2: count, sx, sy, sxx, syy, sxy, -, flag (as the numba twin).
cdef enum:
    CNT = 0
    SX = 1
    SY = 2
    SXX = 3
    SYY = 4
    SXY = 5
    FLAG = 7      # predict_pairs: 1.0 on the current group's candidates (6: padding)
    ACC_WIDTH = 8


cdef extern from *:
    """
    #include <stddef.h>
    /* acc[idx[q], 0:8] += f * [1, rx, ry, rx*rx, ry*ry, rx*ry, 0, 0] for q < n, with
       ry = val[q] and f = acc[idx[q], 7] (a 0/1 flag) if masked, else 1. NumPy:
       ``acc[idx, :6] += acc[idx, 7:8] * [1, rx, ry, rx**2, ry**2, rx*ry]``.
       Each lane is rounded exactly as the scalar sum would be: the lanes of
       c0 + ry * c1 and ry * (c2 + ry * c3) are single products (the others are
       exact with 0 or 1), and flag * v is exact, so contraction into FMAs changes
       nothing. */
    #if defined(__GNUC__) || defined(__clang__)
    /* Two 32-byte halves, the widest vector every x86-64 target with AVX has
       natively: a 64-byte GNU vector on a CPU without AVX-512 is lowered
       piecewise through the stack (about 36 instructions an update instead
       of about 10). Halves: lanes [count, sx, sy, sxx] and [syy, sxy, -, flag]. */
    typedef double fastrec_v4d __attribute__((vector_size(32), aligned(32)));
    #define FASTREC_ACCUMULATE(NAME, T)                                              \\
    static inline void NAME(double *acc, const int *idx, const T *val, long long n,  \\
                            double rx, int masked) {                                 \\
        const fastrec_v4d c0 = {1.0, rx, 0.0, rx * rx};                              \\
        const fastrec_v4d c1 = {0.0, 0.0, 1.0, 0.0};                                 \\
        const fastrec_v4d c2 = {0.0, rx, 0.0, 0.0};                                  \\
        const fastrec_v4d c3 = {1.0, 0.0, 0.0, 0.0};                                 \\
        long long q;                                                                 \\
        if (masked) {                                                                \\
            for (q = 0; q < n; q++) {                                                \\
                double *line = acc + (ptrdiff_t)idx[q] * 8;  /* 64-byte aligned */   \\
                double ry = (double)val[q], f = line[7];                             \\
                fastrec_v4d lo = c0 + ry * c1, hi = ry * (c2 + ry * c3);             \\
                *(fastrec_v4d *)line += f * lo;                                      \\
                *(fastrec_v4d *)(line + 4) += f * hi;                                \\
            }                                                                        \\
        } else {                                                                     \\
            for (q = 0; q < n; q++) {                                                \\
                double *line = acc + (ptrdiff_t)idx[q] * 8;                          \\
                double ry = (double)val[q];                                          \\
                *(fastrec_v4d *)line += c0 + ry * c1;                                \\
                *(fastrec_v4d *)(line + 4) += ry * (c2 + ry * c3);                   \\
            }                                                                        \\
        }                                                                            \\
    }
    static inline void fastrec_clear_line(double *line) {
        *(fastrec_v4d *)line = (fastrec_v4d){0.0, 0.0, 0.0, 0.0};
        *(fastrec_v4d *)(line + 4) = (fastrec_v4d){0.0, 0.0, 0.0, 0.0};
    }
    #else
    #define FASTREC_ACCUMULATE(NAME, T)                                              \\
    static inline void NAME(double *acc, const int *idx, const T *val, long long n,  \\
                            double rx, int masked) {                                 \\
        long long q;                                                                 \\
        for (q = 0; q < n; q++) {                                                    \\
            double *line = acc + (ptrdiff_t)idx[q] * 8;                              \\
            double ry = (double)val[q], f = masked ? line[7] : 1.0;                  \\
            line[0] += f; line[1] += f * rx; line[2] += f * ry;                      \\
            line[3] += f * (rx * rx); line[4] += f * (ry * ry); line[5] += f * (rx * ry); \\
        }                                                                            \\
    }
    static inline void fastrec_clear_line(double *line) {
        int c;
        for (c = 0; c < 8; c++) line[c] = 0.0;
    }
    #endif
    FASTREC_ACCUMULATE(fastrec_accumulate_f32, float)
    FASTREC_ACCUMULATE(fastrec_accumulate_f64, double)
    /* the first 64-byte boundary at or after p (p points at >= 8 doubles of slack) */
    static inline double *fastrec_align_lines(double *p) {
        return (double *)(((size_t)p + 63) & ~(size_t)63);
    }
    """
    void accumulate_f32 "fastrec_accumulate_f32"(
        double* acc, const int* idx, const float* val, long long n, double rx,
        bint masked) noexcept nogil
    void accumulate_f64 "fastrec_accumulate_f64"(
        double* acc, const int* idx, const double* val, long long n, double rx,
        bint masked) noexcept nogil
    void clear_line "fastrec_clear_line"(double* line) noexcept nogil
    double* align_lines "fastrec_align_lines"(double* p) noexcept nogil


def _n_threads():
    return max(1, omp_get_max_threads())


cdef int accumulate_row(int x, const long long[::1] a_indptr, const int[::1] a_indices,
                        const floating[::1] a_data, const long long[::1] b_indptr,
                        const int[::1] b_indices, const floating[::1] b_data,
                        double* acc, int* touched, const unsigned char* allowed,
                        bint filtered) noexcept nogil:
    # Co-rated sums of x against every other x2 (see numba twin); returns #touched.
    # With ``filtered`` only the x2 with allowed[x2] != 0 are accumulated.
    cdef int n_touched = 0, y, x2
    cdef long long p, q
    cdef double rx, rxx, ry
    cdef double* row
    for p in range(a_indptr[x], a_indptr[x + 1]):
        y = a_indices[p]
        rx = a_data[p]
        rxx = rx * rx
        for q in range(b_indptr[y], b_indptr[y + 1]):
            x2 = b_indices[q]
            if x2 == x or (filtered and allowed[x2] == 0):
                continue
            ry = b_data[q]
            row = acc + <Py_ssize_t> x2 * ACC_WIDTH
            # branch-free "append x2 to touched on its first visit"
            touched[n_touched] = x2
            n_touched = n_touched + (row[CNT] == 0.0)
            row[CNT] += 1.0
            row[SX] += rx
            row[SY] += ry
            row[SXX] += rxx
            row[SYY] += ry * ry
            row[SXY] += rx * ry
    return n_touched


cdef inline double pair_similarity(int kind, const double* row, int min_support,
                                   double shrinkage) noexcept nogil:
    # Similarity of the pair whose co-rated sums are ``row``; NaN: none (numba twin).
    cdef double nf = row[CNT], var_x, var_y, sim
    if nf == 0.0 or nf < min_support:
        return NAN
    if kind == KIND_PEARSON:
        var_x = nf * row[SXX] - row[SX] * row[SX]
        var_y = nf * row[SYY] - row[SY] * row[SY]
        if var_x <= VAR_EPS * nf * row[SXX] or var_y <= VAR_EPS * nf * row[SYY]:
            return NAN
        sim = (nf * row[SXY] - row[SX] * row[SY]) / sqrt(var_x * var_y)
    elif kind == KIND_SUPPORT_COSINE:
        if nf < 2.0 or row[SXX] == 0.0 or row[SYY] == 0.0:
            return NAN
        sim = row[SXY] / sqrt(row[SXX] * row[SYY])
        if shrinkage > 0.0:
            sim = sim * ((nf - 1.0) / (nf - 1.0 + shrinkage))
        return sim
    else:
        sim = row[SXY]
    if shrinkage > 0.0:
        sim = sim * (nf / (nf + shrinkage))
    return sim


cdef double kth_largest(const double* vals, int n, int k, double* work,
                        Py_ssize_t stride, int* n_greater) noexcept nogil:
    # t = np.sort(vals[:n])[n - k] for 1 <= k <= n, no NaN (Hoare's "Find",
    # CACM 1961, with a median-of-three pivot and a branch-free three-way
    # partition into two of the three scratch rows work[i * stride:], i < 3);
    # n_greater[0] = (vals[:n] > t).sum()
    cdef const double* src = vals
    cdef int above = 0
    cdef double* lt
    cdef double* gt
    cdef double a, b, c, pivot, v
    cdef int nl, ng, i
    while True:
        if src == work:
            lt = work + stride
            gt = work + 2 * stride
        elif src == work + stride:
            lt = work
            gt = work + 2 * stride
        else:
            lt = work
            gt = work + stride
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
            nl = nl + (v < pivot)
            gt[ng] = v
            ng = ng + (v > pivot)
        if k <= ng:
            src = gt
            n = ng
        elif k <= n - nl:
            n_greater[0] = above + ng
            return pivot
        else:  # t < pivot: the n - nl values >= pivot are all above t
            above = above + (n - nl)
            k = k - (n - nl)
            src = lt
            n = nl


cdef void clear_rows(const int* touched, int n_touched, double* acc) noexcept nogil:
    # acc[touched] = 0
    cdef int t, c
    cdef double* row
    for t in range(n_touched):
        row = acc + <Py_ssize_t> touched[t] * ACC_WIDTH
        for c in range(ACC_WIDTH):
            row[c] = 0.0


def predict_pairs(const long long[::1] a_indptr, const int[::1] a_indices,
                  const floating[::1] a_data, const long long[::1] b_indptr,
                  const int[::1] b_indices, const floating[::1] b_data,
                  const floating[::1] b_ratings, const double[::1] means,
                  const double[::1] scales, int kind, int min_support, double shrinkage,
                  int k, bint centered, const int[::1] group_target,
                  const long long[::1] group_ptr,
                  const int[::1] query_other, double[::1] out_pred, int[::1] out_count):
    """k-NN predictions for queries grouped by target (see the numba twin).

    Per group: (1) flag the candidates (the raters of its query columns) in
    their own accumulator line; (2) add the co-rated sums branch-free with that
    flag as a 0/1 factor (no extra memory stream, no mispredicted branch; one
    64-byte line updated with two 32-byte vector adds per co-rating); (3) turn each flagged line into a
    similarity in a compact (n_x,) array, zeroing the line; (4) per query,
    gather the positive similarities of its column's raters and keep the k
    best with a branch-free quickselect threshold, summed in increasing x2
    order. A group whose columns hold at least n_x entries ("dense": cheaper
    than walking them twice more) skips (1), accumulates every line unmasked
    and walks every line in (3).
    """
    cdef Py_ssize_t n_x = means.shape[0], n_groups = group_target.shape[0]
    cdef int n_threads = _n_threads()
    # + ACC_WIDTH doubles of slack so that each thread's lines start 64-byte aligned
    cdef double[:, ::1] acc_buf = np.zeros((n_threads, ACC_WIDTH * (n_x + 2)))
    cdef double[:, ::1] sim_buf = np.zeros((n_threads, n_x + 1))
    cdef double[:, ::1] cand_val_buf = np.zeros((n_threads, n_x + 1))
    cdef double[:, ::1] work_buf = np.zeros((n_threads, 3 * (n_x + 1)))
    cdef int[:, ::1] cand_pos_buf = np.zeros((n_threads, n_x + 1), dtype=np.int32)
    cdef double* cand_val
    cdef double* work
    cdef int* cand_pos
    cdef double* sim
    cdef int n_cand, c, n_tied, tie, n_list
    cdef double* row
    cdef Py_ssize_t g, x2
    cdef long long q, p, pa, start, end, n_visits
    cdef int x, y, size, tid
    cdef bint dense
    cdef double s, t, num, den, r, pred
    cdef double* acc
    with nogil:
        for g in prange(n_groups, schedule="dynamic"):
            tid = threadid()
            acc = align_lines(&acc_buf[tid, 0])
            sim = &sim_buf[tid, 0]
            cand_val = &cand_val_buf[tid, 0]
            work = &work_buf[tid, 0]
            cand_pos = &cand_pos_buf[tid, 0]
            x = group_target[g]
            n_visits = 0
            for q in range(group_ptr[g], group_ptr[g + 1]):
                y = query_other[q]
                n_visits = n_visits + (b_indptr[y + 1] - b_indptr[y])
            dense = n_visits >= n_x
            # (1) only the raters of the group's query columns can be neighbours (a
            # dense group accumulates every line: flag = 1 everywhere, implicitly)
            if not dense:
                for q in range(group_ptr[g], group_ptr[g + 1]):
                    y = query_other[q]
                    for p in range(b_indptr[y], b_indptr[y + 1]):
                        acc[<Py_ssize_t> b_indices[p] * ACC_WIDTH + FLAG] = 1.0
                acc[<Py_ssize_t> x * ACC_WIDTH + FLAG] = 0.0  # never its own neighbour
            # (2) acc[x2, :6] += FLAG(x2) * [1, rx, ry, rx^2, ry^2, rx ry] over co-ratings
            for pa in range(a_indptr[x], a_indptr[x + 1]):
                y = a_indices[pa]
                start = b_indptr[y]
                if floating is float:
                    accumulate_f32(acc, &b_indices[start], &b_data[start],
                                   b_indptr[y + 1] - start, a_data[pa], not dense)
                else:
                    accumulate_f64(acc, &b_indices[start], &b_data[start],
                                   b_indptr[y + 1] - start, a_data[pa], not dense)
            # (3) sim[x2] = similarity if positive else 0, for every flagged line; the
            # line is zeroed (acc is clean afterwards)
            if dense:
                for x2 in range(n_x):
                    row = acc + x2 * ACC_WIDTH
                    s = pair_similarity(kind, row, min_support, shrinkage)
                    sim[x2] = s if s > 0.0 else 0.0
                    clear_line(row)
            else:
                # list each flagged x2 once (branch-free: its flag is cleared on the
                # first visit), then compute the listed similarities
                n_list = 0
                for q in range(group_ptr[g], group_ptr[g + 1]):
                    y = query_other[q]
                    for p in range(b_indptr[y], b_indptr[y + 1]):
                        x2 = b_indices[p]
                        row = acc + x2 * ACC_WIDTH
                        cand_pos[n_list] = <int> x2
                        n_list = n_list + (row[FLAG] != 0.0)
                        row[FLAG] = 0.0
                for c in range(n_list):
                    x2 = cand_pos[c]
                    row = acc + x2 * ACC_WIDTH
                    s = pair_similarity(kind, row, min_support, shrinkage)
                    sim[x2] = s if s > 0.0 else 0.0
                    clear_line(row)
            sim[x] = 0.0  # stale from an earlier group, if x rated a query column
            acc[<Py_ssize_t> x * ACC_WIDTH + FLAG] = 0.0
            # (4) every sim[x2] read below was written in (3) for this group
            for q in range(group_ptr[g], group_ptr[g + 1]):
                y = query_other[q]
                start = b_indptr[y]
                end = b_indptr[y + 1]
                # positive candidates, in column order (branch-free append)
                n_cand = 0
                for p in range(start, end):
                    s = sim[b_indices[p]]
                    cand_val[n_cand] = s
                    cand_pos[n_cand] = <int> (p - start)
                    n_cand = n_cand + (s > 0.0)
                # the k best: every candidate above the k-th largest value t, then the
                # first ones (lowest x2) equal to t; all of them when there are <= k
                size = n_cand
                t = 0.0
                n_tied = 0
                if n_cand > k:
                    t = kth_largest(cand_val, n_cand, k, work, n_x + 1, &n_tied)
                    n_tied = k - n_tied  # how many of the values equal to t are kept
                if n_cand > k:  # compact the k kept ones in place (branch-free)
                    size = 0
                    for c in range(n_cand):
                        s = cand_val[c]
                        tie = (s == t) & (n_tied > 0)
                        n_tied = n_tied - tie
                        cand_val[size] = s
                        cand_pos[size] = cand_pos[c]
                        size = size + ((s > t) | tie)
                num = 0.0
                den = 0.0
                for c in range(size):
                    s = cand_val[c]
                    p = start + cand_pos[c]
                    r = b_ratings[p]
                    if centered:
                        x2 = b_indices[p]
                        r = (r - means[x2]) / scales[x2]
                    num = num + s * r
                    den = den + s
                pred = means[x] if centered else 0.0
                if size > 0:
                    pred = pred + (scales[x] if centered else 1.0) * (num / den)
                out_pred[q] = pred
                out_count[q] = size


cdef int row_neighbours(int x, const long long[::1] a_indptr, const int[::1] a_indices,
                        const floating[::1] a_data, const long long[::1] b_indptr,
                        const int[::1] b_indices, const floating[::1] b_data, int kind,
                        int min_support, double shrinkage, bint positive_only, double* acc,
                        int* touched, double* heap_val, int* heap_idx,
                        int cap) noexcept nogil:
    # The (at most cap) x' most similar to x, best first, in heap_val/heap_idx;
    # returns how many (see the numba twin). acc is zero again on return.
    cdef int n_touched, size = 0, t, x2
    cdef double s
    cdef bint keep
    n_touched = accumulate_row(x, a_indptr, a_indices, a_data, b_indptr, b_indices, b_data,
                               acc, touched, NULL, False)
    for t in range(n_touched):
        x2 = touched[t]
        s = pair_similarity(kind, acc + <Py_ssize_t> x2 * ACC_WIDTH, min_support, shrinkage)
        if positive_only:
            keep = s > 0.0
        else:
            keep = s == s  # not NaN: the pair has a similarity
        if keep:
            size = heap_offer(heap_val, heap_idx, size, cap, s, x2)
    clear_rows(touched, n_touched, acc)
    heap_sort(heap_val, heap_idx, size)
    return size


def similar_rows(const long long[::1] a_indptr, const int[::1] a_indices,
                 const floating[::1] a_data, const long long[::1] b_indptr,
                 const int[::1] b_indices, const floating[::1] b_data, int kind,
                 int min_support, double shrinkage, const int[::1] rows, bint positive_only,
                 int[:, ::1] out_idx, floating[:, ::1] out_val):
    """The most similar x' of each x in ``rows``, best first (see the numba twin)."""
    cdef Py_ssize_t n_x = a_indptr.shape[0] - 1, m = rows.shape[0]
    cdef int n = out_idx.shape[1]
    cdef int n_threads = _n_threads()
    cdef double[:, ::1] acc_buf = np.zeros((n_threads, ACC_WIDTH * (n_x + 1)))
    cdef int[:, ::1] touched_buf = np.zeros((n_threads, n_x + 1), dtype=np.int32)
    cdef double[:, ::1] heap_val_buf = np.zeros((n_threads, n))
    cdef int[:, ::1] heap_idx_buf = np.zeros((n_threads, n), dtype=np.int32)
    cdef Py_ssize_t row
    cdef int size, j, tid
    cdef double* acc
    cdef int* touched
    cdef double* heap_val
    cdef int* heap_idx
    with nogil:
        for row in prange(m, schedule="dynamic"):
            tid = threadid()
            acc = &acc_buf[tid, 0]
            touched = &touched_buf[tid, 0]
            heap_val = &heap_val_buf[tid, 0]
            heap_idx = &heap_idx_buf[tid, 0]
            size = row_neighbours(rows[row], a_indptr, a_indices, a_data, b_indptr,
                                  b_indices, b_data, kind, min_support, shrinkage,
                                  positive_only, acc, touched, heap_val, heap_idx, n)
            for j in range(size):
                out_idx[row, j] = heap_idx[j]
                out_val[row, j] = <floating> heap_val[j]
            for j in range(size, n):
                out_idx[row, j] = -1
                out_val[row, j] = -INFINITY


def score_user_based(const long long[::1] a_indptr, const int[::1] a_indices,
                     const floating[::1] a_data, const long long[::1] b_indptr,
                     const int[::1] b_indices, const floating[::1] b_data,
                     const floating[::1] a_ratings, const double[::1] means,
                     const double[::1] scales, int kind, int min_support, double shrinkage,
                     int k, int min_k, bint centered, int mode, int max_neighbors,
                     const int[::1] users, const double[::1] fallback,
                     float[:, ::1] out_scores):
    """UserKNN scores of every item for a block of users (see the numba twin)."""
    cdef Py_ssize_t n_users = means.shape[0], n_items = b_indptr.shape[0] - 1
    cdef Py_ssize_t m = users.shape[0], row
    cdef int cap = max(1, min(max_neighbors if mode == RANK_RATING else k, n_users))
    cdef int n_threads = _n_threads()
    cdef double[:, ::1] acc_buf = np.zeros((n_threads, ACC_WIDTH * (n_users + 1)))
    cdef int[:, ::1] touched_buf = np.zeros((n_threads, n_users + 1), dtype=np.int32)
    cdef double[:, ::1] nb_val_buf = np.zeros((n_threads, cap))
    cdef int[:, ::1] nb_idx_buf = np.zeros((n_threads, cap), dtype=np.int32)
    cdef double[:, ::1] num_buf = np.zeros((n_threads, n_items + 1))
    cdef double[:, ::1] den_buf = np.zeros((n_threads, n_items + 1))
    cdef int[:, ::1] used_buf = np.zeros((n_threads, n_items + 1), dtype=np.int32)
    cdef int u, v, i, size, h, tid
    cdef long long p
    cdef double s, r, base, scale
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
            acc = &acc_buf[tid, 0]
            touched = &touched_buf[tid, 0]
            nb_val = &nb_val_buf[tid, 0]
            nb_idx = &nb_idx_buf[tid, 0]
            num = &num_buf[tid, 0]
            den = &den_buf[tid, 0]
            used = &used_buf[tid, 0]
            u = users[row]
            size = row_neighbours(u, a_indptr, a_indices, a_data, b_indptr, b_indices,
                                  b_data, kind, min_support, shrinkage, True, acc, touched,
                                  nb_val, nb_idx, cap)
            if mode != RANK_RATING:
                for h in range(size):
                    v = nb_idx[h]
                    s = nb_val[h]
                    for p in range(a_indptr[v], a_indptr[v + 1]):
                        i = a_indices[p]
                        if mode == RANK_SUM:
                            num[i] += s
                        else:
                            num[i] += s * ((a_ratings[p] - means[v]) / scales[v])
                for i in range(n_items):
                    out_scores[row, i] = <float> num[i]
                    num[i] = 0.0
                continue
            for h in range(size):
                v = nb_idx[h]
                s = nb_val[h]
                for p in range(a_indptr[v], a_indptr[v + 1]):
                    i = a_indices[p]
                    if used[i] < k:
                        r = a_ratings[p]
                        if centered:
                            r = (r - means[v]) / scales[v]
                        num[i] += s * r
                        den[i] += s
                        used[i] += 1
            base = means[u] if centered else 0.0
            scale = scales[u] if centered else 1.0
            for i in range(n_items):
                if used[i] >= min_k and used[i] > 0:
                    out_scores[row, i] = <float> (base + scale * (num[i] / den[i]))
                else:
                    out_scores[row, i] = <float> fallback[row]
                num[i] = 0.0
                den[i] = 0.0
                used[i] = 0


def score_item_based(const long long[::1] r_indptr, const int[::1] r_indices,
                     const floating[::1] r_data, const long long[::1] nbr_indptr,
                     const int[::1] nbr_indices, const floating[::1] nbr_data,
                     const double[::1] means, const double[::1] scales, int k, int min_k,
                     bint centered, const int[::1] users, const double[::1] fallback,
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
                        j = r_indices[p]
                        r = (r - means[j]) / scales[j]
                    num = num + heap_val[i * k + h] * r
                    den = den + heap_val[i * k + h]
                if size[i] >= min_k:
                    if centered:
                        out_scores[row, i] = <float> (means[i] + scales[i] * (num / den))
                    else:
                        out_scores[row, i] = <float> (num / den)
                size[i] = 0


def score_item_topn(const long long[::1] r_indptr, const int[::1] r_indices,
                    const floating[::1] r_weights, const long long[::1] nbr_indptr,
                    const int[::1] nbr_indices, const floating[::1] nbr_data,
                    const int[::1] users, float[:, ::1] out_scores):
    """Item-based top-N scores for a block of users (see the numba twin)."""
    cdef Py_ssize_t n_items = nbr_indptr.shape[0] - 1, m = users.shape[0], row
    cdef int n_threads = _n_threads()
    cdef double[:, ::1] acc_buf = np.zeros((n_threads, n_items + 1))
    cdef int u, j, tid
    cdef Py_ssize_t i
    cdef long long p, q
    cdef double w
    cdef double* acc
    with nogil:
        for row in prange(m, schedule="dynamic"):
            tid = threadid()
            acc = &acc_buf[tid, 0]
            u = users[row]
            for p in range(r_indptr[u], r_indptr[u + 1]):
                j = r_indices[p]
                w = r_weights[p]
                for q in range(nbr_indptr[j], nbr_indptr[j + 1]):
                    acc[nbr_indices[q]] += w * <double> nbr_data[q]
            for i in range(n_items):
                out_scores[row, i] = <float> acc[i]
                acc[i] = 0.0


def recommend_item_topn(const long long[::1] r_indptr, const int[::1] r_indices,
                        const floating[::1] r_weights, const long long[::1] nbr_indptr,
                        const int[::1] nbr_indices, const floating[::1] nbr_data,
                        const int[::1] users, const long long[::1] excl_indptr,
                        const int[::1] excl_indices, int[:, ::1] out_idx,
                        float[:, ::1] out_val):
    """``score_item_topn`` fused with the top-n selection (see the numba twin)."""
    cdef Py_ssize_t n_items = nbr_indptr.shape[0] - 1, m = users.shape[0], row
    cdef int n = <int> out_idx.shape[1]
    cdef int n_threads = _n_threads()
    cdef double[:, ::1] acc_buf = np.zeros((n_threads, n_items + 1))
    cdef unsigned char[:, ::1] flag_buf = np.zeros((n_threads, n_items + 1), dtype=np.uint8)
    cdef int[:, ::1] touched_buf = np.zeros((n_threads, n_items + 1), dtype=np.int32)
    cdef int u, j, tid, size, n_touched, n_positive, t, c
    cdef Py_ssize_t i
    cdef long long p, q, e
    cdef double w
    cdef float s
    cdef double* acc
    cdef unsigned char* flag
    cdef int* touched
    cdef float* vals
    cdef int* idxs
    with nogil:
        for row in prange(m, schedule="dynamic"):
            tid = threadid()
            acc = &acc_buf[tid, 0]
            flag = &flag_buf[tid, 0]
            touched = &touched_buf[tid, 0]
            u = users[row]
            n_touched = 0
            for p in range(r_indptr[u], r_indptr[u + 1]):
                j = r_indices[p]
                w = r_weights[p]
                for q in range(nbr_indptr[j], nbr_indptr[j + 1]):
                    i = nbr_indices[q]
                    if flag[i] == 0:
                        flag[i] = 1
                        touched[n_touched] = <int> i
                        n_touched = n_touched + 1
                    acc[i] += w * <double> nbr_data[q]
            for e in range(excl_indptr[row], excl_indptr[row + 1]):
                flag[excl_indices[e]] = flag[excl_indices[e]] | 2
            vals = &out_val[row, 0]
            idxs = &out_idx[row, 0]
            size = 0
            n_positive = 0
            for t in range(n_touched):
                i = touched[t]
                s = <float> acc[i]
                if flag[i] == 1 and s > 0:
                    n_positive = n_positive + 1
                    size = heap_offer(vals, idxs, size, n, s, <int> i)
            if n_positive < n:  # untouched items (score 0) are in the top n
                size = 0
                for i in range(n_items):
                    if (flag[i] & 2) == 0:
                        size = heap_offer(vals, idxs, size, n, <float> acc[i], <int> i)
            heap_sort(vals, idxs, size)
            for c in range(size, n):
                idxs[c] = -1
                vals[c] = -INFINITY
            for t in range(n_touched):
                i = touched[t]
                acc[i] = 0.0
                flag[i] = 0
            for e in range(excl_indptr[row], excl_indptr[row + 1]):
                flag[excl_indices[e]] = 0


def baseline_sgd(const long long[::1] indptr, const int[::1] indices,
                 const double[::1] ratings, double mu, double lr, double reg, int n_epochs,
                 double[::1] bu, double[::1] bi):
    """User and item biases by SGD, in place (see the numba twin)."""
    cdef Py_ssize_t n_users = indptr.shape[0] - 1, u
    cdef long long p
    cdef int i, epoch
    cdef double err
    with nogil:
        for epoch in range(n_epochs):
            for u in range(n_users):
                for p in range(indptr[u], indptr[u + 1]):
                    i = indices[p]
                    err = ratings[p] - (mu + bu[u] + bi[i])
                    bu[u] += lr * (err - reg * bu[u])
                    bi[i] += lr * (err - reg * bi[i])
