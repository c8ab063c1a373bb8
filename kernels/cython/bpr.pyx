# cython: language_level=3
"""Bayesian personalised ranking by Hogwild SGD (twin of ``numba/bpr.py``).

See ``kernels/numba/bpr.py`` for the model, the update rule, the
counter-based sampling (the same draws, hence the same triples, in both
twins), the parts and the permitted Hogwild race between them. The two twins
sum the dot product in different orders (LLVM vectorises it with
reassociation, GCC keeps the written order), so they agree to rounding.
"""

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, fabs, log1p

cdef extern from *:
    """
    #include <math.h>
    #if defined(__GNUC__) || defined(__clang__)
    #define FR_BPR_PREFETCH(ptr) __builtin_prefetch((const void*)(ptr), 1, 3)
    #else
    #define FR_BPR_PREFETCH(ptr) ((void)0)
    #endif
    #ifdef _OPENMP
    #define FR_BPR_SIMD_SUM _Pragma("omp simd reduction(+:x)")
    #define FR_BPR_SIMD _Pragma("omp simd")
    #else
    #define FR_BPR_SIMD_SUM
    #define FR_BPR_SIMD
    #endif
    /* One BPR update of the rows p (user), qi (positive), qj (negative) of
       length k and the biases bi, bj; returns x = x_ui - x_uj before it.
       x = bi - bj + p . (qi - qj), summed as a SIMD reduction (the partial
       sums in vector lanes, as LLVM does in the Numba twin); z = sigma(-x)
       in double; then every value from its old one (NumPy):
       p, qi, qj = p + lr (z (qi - qj) - reg p), qi + lr (z p - reg qi),
                   qj + lr (-z p - reg qj). */
    #define FR_BPR_DEFINE_STEP(T, NAME)                                            \\
    static inline T NAME(T* p, T* qi, T* qj, T* bi, T* bj, ptrdiff_t k, T lr,      \\
                         T reg) {                                                  \\
        T x = 0, z, old_bi = bi[0], old_bj = bj[0];                                \\
        ptrdiff_t f;                                                               \\
        FR_BPR_SIMD_SUM                                                            \\
        for (f = 0; f < k; f++) x += p[f] * (qi[f] - qj[f]);                       \\
        x = (old_bi - old_bj) + x;                                                 \\
        z = (T) (1.0 / (1.0 + exp((double) x)));                                   \\
        FR_BPR_SIMD                                                                \\
        for (f = 0; f < k; f++) {                                                  \\
            T pf = p[f], a = qi[f], b = qj[f];                                     \\
            p[f] = pf + lr * (z * (a - b) - reg * pf);                             \\
            qi[f] = a + lr * (z * pf - reg * a);                                   \\
            qj[f] = b + lr * (-z * pf - reg * b);                                  \\
        }                                                                          \\
        bi[0] = old_bi + lr * (z - reg * old_bi);                                  \\
        bj[0] = old_bj + lr * (-z - reg * old_bj);                                 \\
        return x;                                                                  \\
    }
    FR_BPR_DEFINE_STEP(float, fr_bpr_step_f32)
    FR_BPR_DEFINE_STEP(double, fr_bpr_step_f64)
    """
    void prefetch "FR_BPR_PREFETCH"(const void* ptr) noexcept nogil
    float fr_bpr_step_f32(float* p, float* qi, float* qj, float* bi, float* bj, Py_ssize_t k,
                          float lr, float reg) noexcept nogil
    double fr_bpr_step_f64(double* p, double* qi, double* qj, double* bi, double* bj,
                           Py_ssize_t k, double lr, double reg) noexcept nogil

# as MAX_NEGATIVE_DRAWS and LOOKAHEAD in the Numba twin
DEF MAX_NEGATIVE_DRAWS = 8
DEF LOOKAHEAD = 8

cdef unsigned long long GOLDEN = 0x9E3779B97F4A7C15ULL


cdef inline unsigned long long mix64(unsigned long long z) noexcept nogil:
    # SplitMix64's output function (Steele, Lea & Flood, OOPSLA 2014)
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef inline unsigned long long epoch_key(unsigned long long seed, long long epoch) noexcept nogil:
    return mix64(seed + <unsigned long long> (epoch + 1) * GOLDEN)


cdef inline unsigned long long sample_key(unsigned long long key, long long s) noexcept nogil:
    return mix64(key + <unsigned long long> (s + 1) * GOLDEN)


cdef inline unsigned long long draw(unsigned long long key, long long t) noexcept nogil:
    return mix64(key + <unsigned long long> t * GOLDEN)


cdef inline long long uniform_index(unsigned long long bits, long long n) noexcept nogil:
    # min(floor((bits >> 11) 2**-53 n), n - 1)
    cdef long long idx = <long long> (<double> (bits >> 11) * (1.0 / 9007199254740992.0)
                                      * <double> n)
    return idx if idx < n - 1 else n - 1


cdef inline bint has_item(const long long* indptr, const int* indices, int u,
                          int j) noexcept nogil:
    # binary search of item j in user u's sorted row
    cdef long long lo = indptr[u], hi = indptr[u + 1], mid
    cdef int v
    while lo < hi:
        mid = (lo + hi) >> 1
        v = indices[mid]
        if v == j:
            return True
        if v < j:
            lo = mid + 1
        else:
            hi = mid
    return False


cdef inline int draw_triple(const long long* indptr, const int* indices, const long long* pairs,
                            long long nnz, long long n_items, bint popular_negatives,
                            unsigned long long key, int* u, int* i) noexcept nogil:
    # (u, i) of the sample with key `key`; returns j, or -1 when skipped
    cdef long long pos = uniform_index(draw(key, 1), nnz)
    cdef unsigned long long bits
    cdef int t, j
    u[0] = <int> (pairs[pos] >> 32)
    i[0] = <int> (pairs[pos] & 0x7FFFFFFF)
    for t in range(2, 2 + MAX_NEGATIVE_DRAWS):
        bits = draw(key, t)
        if popular_negatives:
            j = indices[uniform_index(bits, nnz)]
        else:
            j = <int> uniform_index(bits, n_items)
        if not has_item(indptr, indices, u[0], j):
            return j
    return -1


cdef inline double softplus(double x) noexcept nogil:
    # log(1 + exp(x)) without overflow
    return (x if x > 0 else 0.0) + log1p(exp(-fabs(x)))


cdef inline floating bpr_step(floating* p, floating* qi, floating* qj, floating* bi,
                              floating* bj, Py_ssize_t k, floating lr,
                              floating reg) noexcept nogil:
    # one update of the triple's rows (the C helpers above); returns x before it
    if floating is float:
        return fr_bpr_step_f32(p, qi, qj, bi, bj, k, lr, reg)
    else:
        return fr_bpr_step_f64(p, qi, qj, bi, bj, k, lr, reg)


cdef inline void prefetch_row(const void* row, Py_ssize_t nbytes) noexcept nogil:
    # touch every cache line of the row (a hint: no fault, no result)
    cdef Py_ssize_t off
    cdef const char* base = <const char*> row
    for off in range(0, nbytes, 64):
        prefetch(base + off)


cdef void run_part(const long long* indptr, const int* indices, const long long* pairs,
                   long long nnz, long long n_items, unsigned long long key, long long first,
                   long long end, floating lr, floating reg, bint popular_negatives,
                   floating* user_factors, floating* item_factors, floating* item_bias,
                   Py_ssize_t k, double* loss_out, long long* skipped_out) noexcept nogil:
    # samples first .. end - 1 in order, with the rows of later samples prefetched
    cdef double loss = 0.0
    cdef long long skipped = 0, s, ahead, pos, lo, width
    cdef unsigned long long akey, bits
    cdef int u = 0, i = 0, j, au, aj
    cdef Py_ssize_t row_bytes = k * sizeof(floating)
    for s in range(first, end):
        ahead = s + 2 * LOOKAHEAD
        if ahead < end:  # the stored entry of a later sample
            pos = uniform_index(draw(sample_key(key, ahead), 1), nnz)
            prefetch(&pairs[pos])
        ahead = s + LOOKAHEAD
        if ahead < end:  # the rows of a nearer one (its entry was prefetched before)
            akey = sample_key(key, ahead)
            pos = uniform_index(draw(akey, 1), nnz)
            au = <int> (pairs[pos] >> 32)
            prefetch_row(&user_factors[au * k], row_bytes)
            prefetch_row(&item_factors[(pairs[pos] & 0x7FFFFFFF) * k], row_bytes)
            bits = draw(akey, 2)
            if popular_negatives:
                aj = indices[uniform_index(bits, nnz)]
            else:
                aj = <int> uniform_index(bits, n_items)
            prefetch_row(&item_factors[aj * k], row_bytes)
            # the first probes of the binary search for the negative in the user's row
            lo = indptr[au]
            width = indptr[au + 1] - lo
            prefetch(&indices[lo + (width >> 1)])
            prefetch(&indices[lo + (width >> 2)])
            prefetch(&indices[lo + ((3 * width) >> 2)])
        j = draw_triple(indptr, indices, pairs, nnz, n_items, popular_negatives,
                        sample_key(key, s), &u, &i)
        if j < 0:
            skipped = skipped + 1
            continue
        loss = loss + softplus(-<double> bpr_step(
            &user_factors[u * k], &item_factors[i * k], &item_factors[j * k],
            &item_bias[i], &item_bias[j], k, lr, reg))
    loss_out[0] = loss
    skipped_out[0] = skipped


def bpr_epoch(const long long[::1] indptr, const int[::1] indices, const long long[::1] pairs,
              unsigned long long seed, long long epoch, const long long[::1] part_bounds,
              double learning_rate, double regularization, bint popular_negatives,
              floating[:, ::1] user_factors, floating[:, ::1] item_factors,
              floating[::1] item_bias, double[::1] part_loss, long long[::1] part_skipped):
    """One epoch of BPR samples, updating the factors in place (Hogwild).

    See ``kernels/numba/bpr.py`` for the parameters, the sampling and the
    race. ``learning_rate`` and ``regularization`` are rounded to the
    factors' dtype before use, as in the Numba twin.
    """
    cdef Py_ssize_t n_parts = part_bounds.shape[0] - 1
    cdef Py_ssize_t k = user_factors.shape[1]
    cdef long long nnz = indices.shape[0]
    cdef long long n_items = item_factors.shape[0]
    cdef unsigned long long key = epoch_key(seed, epoch)
    cdef floating lr = <floating> learning_rate
    cdef floating reg = <floating> regularization
    cdef Py_ssize_t p
    part_loss[:] = 0.0
    part_skipped[:] = 0
    if n_parts <= 0 or nnz == 0:
        return
    with nogil:
        for p in prange(n_parts, schedule="dynamic", chunksize=1):
            run_part(&indptr[0], &indices[0], &pairs[0], nnz, n_items, key, part_bounds[p],
                     part_bounds[p + 1], lr, reg, popular_negatives, &user_factors[0, 0],
                     &item_factors[0, 0], &item_bias[0], k, &part_loss[p], &part_skipped[p])


def bpr_triples(const long long[::1] indptr, const int[::1] indices, const long long[::1] pairs,
                long long n_items, unsigned long long seed, long long epoch, long long first,
                bint popular_negatives, int[:, ::1] out):
    """The triples samples ``first .. first + len(out) - 1`` of an epoch draw.

    ``out`` (m, 3) int32 gets ``(u, i, j)`` per sample (``j = -1``: skipped),
    exactly as ``bpr_epoch`` draws them. For tests and inspection.
    """
    cdef long long nnz = indices.shape[0]
    cdef unsigned long long key = epoch_key(seed, epoch)
    cdef Py_ssize_t r
    if nnz == 0 or out.shape[0] == 0:
        return
    with nogil:
        for r in prange(out.shape[0], schedule="static"):
            out[r, 2] = draw_triple(&indptr[0], &indices[0], &pairs[0], nnz, n_items,
                                    popular_negatives, sample_key(key, first + r),
                                    &out[r, 0], &out[r, 1])
