# cython: language_level=3
"""Alternating least squares half-sweeps (twin of ``kernels/numba/als.py``).

See ``kernels/numba/als.py`` for the systems solved (Hu, Koren and Volinsky
2008 for implicit feedback; Zhou et al. 2008 weighted-lambda for explicit),
the conjugate-gradient scheme (Takacs, Pilaszy and Tikk 2011), the parameters
and the degenerate cases. Each row is written by one iteration of the parallel
loop with the same arithmetic whatever the schedule, so results do not depend
on the thread count. Scratch memory is allocated once per thread. The row of
``Y`` of a nonzero is prefetched a few nonzeros ahead of its use (a hint that
changes no result; about 30% less CPU time at 128 factors and 15% at 64 on
the ML-20M shape's quarter, where the random rows miss the caches).
"""

from cython cimport floating, integral
from cython.parallel cimport parallel, prange
from libc.math cimport NAN, sqrt
from libc.stdlib cimport free

cdef extern from "<stdlib.h>" nogil:
    void* aligned_alloc(size_t alignment, size_t size)
from libc.string cimport memcpy, memset

cdef inline void* _scratch(size_t size) noexcept nogil:
    # 64-byte aligned, so that vectorised loops run the same in every thread
    return aligned_alloc(64, (size + 63) // 64 * 64)


# CG stops early once the squared residual norm falls below this (as implicit).
cdef double CG_EPS = 1e-20


cdef extern from *:
    """
    /* a @ b. "omp simd reduction" lets the compiler split the sum into vector
       lanes (a fixed order for a given n: independent of threads and data),
       without fast-math flags for the whole module. */
    static inline float fastrec_als_sdot(const float* a, const float* b, int n) {
        float s = 0.0f;
        #pragma omp simd reduction(+:s)
        for (int j = 0; j < n; j++) s += a[j] * b[j];
        return s;
    }
    static inline double fastrec_als_ddot(const double* a, const double* b, int n) {
        double s = 0.0;
        #pragma omp simd reduction(+:s)
        for (int j = 0; j < n; j++) s += a[j] * b[j];
        return s;
    }
    """
    float fastrec_als_sdot(const float* a, const float* b, int n) noexcept nogil
    double fastrec_als_ddot(const double* a, const double* b, int n) noexcept nogil


cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define FR_ALS_PREFETCH(ptr) __builtin_prefetch((const void*)(ptr), 0, 3)
    #else
    #define FR_ALS_PREFETCH(ptr) ((void)0)
    #endif
    """
    void _prefetch "FR_ALS_PREFETCH"(const void* ptr) noexcept nogil

# rows of Y are prefetched this many nonzeros ahead of their use
cdef enum:
    PREFETCH_AHEAD = 4


cdef inline void _prefetch_row(const void* row, Py_ssize_t nbytes) noexcept nogil:
    # a hint for every cache line of the row (no fault, no result)
    cdef Py_ssize_t off
    cdef const char* base = <const char*> row
    for off in range(0, nbytes, 64):
        _prefetch(base + off)


cdef inline floating _dot(const floating* a, const floating* b, int n) noexcept nogil:
    # a @ b
    if floating is float:
        return fastrec_als_sdot(a, b, n)
    else:
        return fastrec_als_ddot(a, b, n)


cdef inline void _axpy(floating alpha, const floating* x, floating* y, int n) noexcept nogil:
    # y += alpha * x
    cdef int j
    for j in range(n):
        y[j] = y[j] + alpha * x[j]


cdef inline void _symv(const floating* A, const floating* x, floating* out, int n) noexcept nogil:
    # out = A @ x for a symmetric A, as a sum of scaled rows (A[j] == A[:, j])
    cdef int j
    memset(out, 0, n * sizeof(floating))
    for j in range(n):
        _axpy(x[j], A + <Py_ssize_t>j * n, out, n)


cdef void _cg_row(const int* indices, const floating* data, Py_ssize_t start, Py_ssize_t end,
                  floating* x, const floating* Y, const floating* YtY, int k,
                  floating alpha, double reg, int cg_steps, bint implicit,
                  floating* r, floating* p, floating* ap) noexcept nogil:
    """``cg_steps`` CG steps on row ``x`` in place (see the Numba twin)."""
    cdef Py_ssize_t pos
    cdef int j, step_i
    cdef const floating* y
    cdef floating rating, c1, cp, coef, w, pap, step, rs_old, rs_new, beta
    # explicit feedback: the weighted-lambda term lambda * n_u
    cdef floating lam = <floating>(reg * (end - start))
    # r = b - A @ x
    if implicit:
        _symv(YtY, x, r, k)
        for j in range(k):
            r[j] = -r[j]
    else:
        for j in range(k):
            r[j] = -lam * x[j]
    for pos in range(start, end):
        if pos + PREFETCH_AHEAD < end:
            _prefetch_row(Y + <Py_ssize_t>indices[pos + PREFETCH_AHEAD] * k, k * sizeof(floating))
        y = Y + <Py_ssize_t>indices[pos] * k
        rating = data[pos]
        if implicit:
            c1 = alpha * rating  # c - 1
            cp = 1 + c1 if rating > 0 else 0  # c * p
            coef = cp - c1 * _dot(y, x, k)
        else:
            coef = rating - _dot(y, x, k)
        _axpy(coef, y, r, k)
    memcpy(p, r, k * sizeof(floating))
    rs_old = _dot(r, r, k)
    for step_i in range(cg_steps):
        if rs_old < CG_EPS:
            break
        # ap = A @ p
        if implicit:
            _symv(YtY, p, ap, k)
        else:
            for j in range(k):
                ap[j] = lam * p[j]
        for pos in range(start, end):
            if pos + PREFETCH_AHEAD < end:
                _prefetch_row(Y + <Py_ssize_t>indices[pos + PREFETCH_AHEAD] * k,
                              k * sizeof(floating))
            y = Y + <Py_ssize_t>indices[pos] * k
            w = alpha * data[pos] if implicit else 1
            _axpy(w * _dot(y, p, k), y, ap, k)
        pap = _dot(p, ap, k)
        if not pap > 0:  # p in the null space of a singular A: nothing to gain
            break
        step = rs_old / pap
        _axpy(step, p, x, k)
        _axpy(-step, ap, r, k)
        rs_new = _dot(r, r, k)
        if rs_new < CG_EPS:
            break
        beta = rs_new / rs_old
        for j in range(k):
            p[j] = r[j] + beta * p[j]
        rs_old = rs_new


cdef void _cg_sweep(const integral[::1] indptr, const int[::1] indices,
                    const floating[::1] data, floating[:, ::1] X, const floating[:, ::1] Y,
                    const floating* YtY, double alpha, double reg, int cg_steps,
                    bint implicit) noexcept nogil:
    cdef Py_ssize_t n_rows = X.shape[0], row
    cdef int k = <int>X.shape[1]
    cdef floating* scratch
    if n_rows == 0:
        return
    with parallel():
        scratch = <floating*>_scratch(3 * k * sizeof(floating))
        for row in prange(n_rows, schedule="dynamic", chunksize=16):
            if indptr[row] == indptr[row + 1]:
                memset(&X[row, 0], 0, k * sizeof(floating))
                continue
            _cg_row(&indices[0], &data[0], indptr[row], indptr[row + 1], &X[row, 0],
                    &Y[0, 0], YtY, k, <floating>alpha, reg, cg_steps, implicit,
                    scratch, scratch + k, scratch + 2 * k)
        free(scratch)


def cg_implicit(const integral[::1] indptr, const int[::1] indices, const floating[::1] data,
                floating[:, ::1] X, const floating[:, ::1] Y, const floating[:, ::1] YtY,
                double alpha, int cg_steps):
    """Implicit-feedback half-sweep by conjugate gradient, in place.

    See ``kernels/numba/als.py`` (``cg_implicit``) for the parameters.
    """
    with nogil:
        _cg_sweep(indptr, indices, data, X, Y, &YtY[0, 0], alpha, 0.0, cg_steps, True)


def cg_explicit(const integral[::1] indptr, const int[::1] indices, const floating[::1] data,
                floating[:, ::1] X, const floating[:, ::1] Y, double regularization,
                int cg_steps):
    """Explicit-feedback (weighted-lambda) half-sweep by conjugate gradient, in place.

    See ``kernels/numba/als.py`` (``cg_explicit``) for the parameters.
    """
    with nogil:
        _cg_sweep(indptr, indices, data, X, Y, <const floating*>NULL, 1.0, regularization,
                  cg_steps, False)


cdef bint _cholesky_solve(floating* A, floating* b, int k) noexcept nogil:
    """Solve ``A x = b`` (k x k symmetric positive definite, C order); ``b`` becomes x.

    Only the lower triangle of ``A`` is read; it is overwritten by the Cholesky
    factor L (``A = L @ L.T``). Returns False, leaving NaN in ``b``, when a
    pivot is not positive.
    """
    cdef int i, j
    cdef floating d, s
    for j in range(k):
        # L[j, j] = sqrt(A[j, j] - L[j, :j] @ L[j, :j])
        d = A[j * k + j] - _dot(A + j * k, A + j * k, j)
        if not d > 0:
            for i in range(k):
                b[i] = NAN
            return False
        d = sqrt(d)
        A[j * k + j] = d
        # L[i, j] = (A[i, j] - L[i, :j] @ L[j, :j]) / L[j, j]
        for i in range(j + 1, k):
            A[i * k + j] = (A[i * k + j] - _dot(A + i * k, A + j * k, j)) / d
    # forward: L z = b
    for i in range(k):
        b[i] = (b[i] - _dot(A + i * k, b, i)) / A[i * k + i]
    # backward: L^T x = z
    for i in range(k - 1, -1, -1):
        s = b[i]
        for j in range(i + 1, k):
            s = s - A[j * k + i] * b[j]
        b[i] = s / A[i * k + i]
    return True


cdef void _cholesky_sweep(const integral[::1] indptr, const int[::1] indices,
                          const floating[::1] data, floating[:, ::1] X,
                          const floating[:, ::1] Y, const floating* YtY, double alpha,
                          double reg, bint implicit) noexcept nogil:
    cdef Py_ssize_t n_rows = X.shape[0], row, pos
    cdef int k = <int>X.shape[1], i, j
    cdef floating* A
    cdef floating* b
    cdef const floating* y
    cdef floating rating, w, cp, lam
    if n_rows == 0:
        return
    with parallel():
        A = <floating*>_scratch((k * k + k) * sizeof(floating))
        b = A + k * k
        for row in prange(n_rows, schedule="dynamic", chunksize=16):
            if indptr[row] == indptr[row + 1]:
                memset(&X[row, 0], 0, k * sizeof(floating))
                continue
            if implicit:
                memcpy(A, YtY, k * k * sizeof(floating))
            else:
                memset(A, 0, k * k * sizeof(floating))
                lam = <floating>(reg * (indptr[row + 1] - indptr[row]))
                for j in range(k):
                    A[j * k + j] = lam
            memset(b, 0, k * sizeof(floating))
            for pos in range(indptr[row], indptr[row + 1]):
                y = &Y[indices[pos], 0]
                rating = data[pos]
                if implicit:
                    w = <floating>alpha * rating  # c - 1
                    cp = 1 + w if rating > 0 else 0  # c * p
                else:
                    w = 1
                    cp = rating
                _axpy(cp, y, b, k)
                # A[i, :i + 1] += w * y[i] * y[:i + 1] (lower triangle)
                for i in range(k):
                    _axpy(w * y[i], y, A + i * k, i + 1)
            _cholesky_solve(A, b, k)
            memcpy(&X[row, 0], b, k * sizeof(floating))
        free(A)


def cholesky_implicit(const integral[::1] indptr, const int[::1] indices,
                      const floating[::1] data, floating[:, ::1] X, const floating[:, ::1] Y,
                      const floating[:, ::1] YtY, double alpha):
    """Implicit-feedback half-sweep solved exactly (per-row Cholesky), in place."""
    with nogil:
        _cholesky_sweep(indptr, indices, data, X, Y, &YtY[0, 0], alpha, 0.0, True)


def cholesky_explicit(const integral[::1] indptr, const int[::1] indices,
                      const floating[::1] data, floating[:, ::1] X, const floating[:, ::1] Y,
                      double regularization):
    """Explicit-feedback (weighted-lambda) half-sweep solved exactly, in place."""
    with nogil:
        _cholesky_sweep(indptr, indices, data, X, Y, <const floating*>NULL, 1.0,
                        regularization, False)


def loss_rows(const integral[::1] indptr, const int[::1] indices, const floating[::1] data,
              const floating[:, ::1] X, const floating[:, ::1] Y, double alpha, bint implicit,
              double[::1] out):
    """Per-row data terms of the training loss (see the Numba twin), into ``out``."""
    cdef Py_ssize_t n_rows = X.shape[0], row, pos
    cdef int k = <int>X.shape[1]
    cdef double total, s, rating, c, pref
    with nogil:
        for row in prange(n_rows, schedule="dynamic", chunksize=64):
            total = 0.0
            for pos in range(indptr[row], indptr[row + 1]):
                s = _dot(&X[row, 0], &Y[indices[pos], 0], k)
                rating = data[pos]
                if implicit:
                    c = 1.0 + alpha * rating
                    pref = 1.0 if rating > 0 else 0.0
                    total = total + c * (pref - s) * (pref - s) - s * s
                else:
                    total = total + (rating - s) * (rating - s)
            out[row] = total
