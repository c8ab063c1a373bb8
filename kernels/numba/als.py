"""Alternating least squares half-sweeps (twin of ``kernels/cython/als.pyx``).

One call updates every row of ``X`` (the factors of one side: users, or items)
with the factors ``Y`` of the other side held fixed. The CSR arrays
``indptr, indices, data`` hold the interactions with one row per row of ``X``
(the users x items matrix for a user half-sweep, its transpose for an item
half-sweep).

Implicit feedback (Hu, Koren and Volinsky 2008, "Collaborative Filtering for
Implicit Feedback Datasets", section 4): confidence ``c = 1 + alpha * r`` and
preference ``p = (r > 0)`` for the stored entries, ``c = 1, p = 0`` for the
rest. Row ``u`` solves ``A x = b`` with

    A = Y^T Y + lambda I + sum_{i in row u} (c_i - 1) y_i y_i^T
    b = sum_{i in row u} c_i p_i y_i

where the caller passes ``YtY = Y^T Y + lambda I`` (computed once per
half-sweep with BLAS). Explicit feedback (ALS with weighted-lambda
regularisation, Zhou et al. 2008, "Large-scale Parallel Collaborative
Filtering for the Netflix Prize", section 3.1): least squares over the stored
ratings only,

    A = sum_{i in row u} y_i y_i^T + lambda n_u I,   b = sum_{i in row u} r_i y_i.

The ``cg_*`` kernels run ``cg_steps`` conjugate-gradient steps warm-started
from the current row (Takacs, Pilaszy and Tikk 2011, "Applications of the
conjugate gradient method for implicit feedback collaborative filtering",
section 3); ``A`` is never formed: ``A v`` is ``YtY @ v`` plus one pass over
the row's nonzeros. The ``cholesky_*`` kernels form ``A`` in per-block scratch
memory and solve it exactly (reference solver, and fine for small factor
counts).

Every row is written by exactly one iteration of the parallel loop and its
arithmetic does not depend on the schedule, so the result is identical for
any thread count. Degenerate cases: an empty row gets the zero vector (the
exact solution for implicit feedback, the minimum-norm one for explicit). A
Cholesky pivot that is not positive (a singular system, e.g. explicit feedback
with ``regularization == 0``) leaves NaN in that row for the caller to report.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ._config import jit

#: Rows per block of the parallel loop; each block allocates its scratch once.
BLOCK = 64
#: CG stops early once the squared residual norm falls below this (as implicit).
CG_EPS = 1e-20


@jit
def _dot(a, b):
    # a @ b
    s = a.dtype.type(0)
    for j in range(a.shape[0]):
        s += a[j] * b[j]
    return s


@jit
def _axpy(alpha, x, y):
    # y += alpha * x
    for j in range(y.shape[0]):
        y[j] += alpha * x[j]


@jit
def _symv(A, x, out):
    # out = A @ x for a symmetric A, as a sum of scaled rows (A[j] == A[:, j])
    out[:] = 0
    for j in range(x.shape[0]):
        _axpy(x[j], A[j], out)


@jit
def _cg_row(indices, data, start, end, x, Y, YtY, alpha, reg, cg_steps, implicit, r, p, ap):
    """``cg_steps`` CG steps on row ``x`` in place (see the module docstring)."""
    zero = x.dtype.type(0)
    one = x.dtype.type(1)
    alpha = x.dtype.type(alpha)
    # explicit feedback: the weighted-lambda term lambda * n_u
    lam = x.dtype.type(reg * (end - start))
    # r = b - A @ x
    if implicit:
        _symv(YtY, x, r)
        for j in range(r.shape[0]):
            r[j] = -r[j]
    else:
        for j in range(r.shape[0]):
            r[j] = -lam * x[j]
    for pos in range(start, end):
        y = Y[indices[pos]]
        rating = data[pos]
        if implicit:
            c1 = alpha * rating  # c - 1
            cp = one + c1 if rating > zero else zero  # c * p
            coef = cp - c1 * _dot(y, x)
        else:
            coef = rating - _dot(y, x)
        _axpy(coef, y, r)
    p[:] = r
    rs_old = _dot(r, r)
    for _step in range(cg_steps):
        if rs_old < CG_EPS:
            break
        # ap = A @ p
        if implicit:
            _symv(YtY, p, ap)
        else:
            for j in range(ap.shape[0]):
                ap[j] = lam * p[j]
        for pos in range(start, end):
            y = Y[indices[pos]]
            w = alpha * data[pos] if implicit else one
            _axpy(w * _dot(y, p), y, ap)
        pap = _dot(p, ap)
        if not pap > zero:  # p in the null space of a singular A: nothing to gain
            break
        step = rs_old / pap
        _axpy(step, p, x)
        _axpy(-step, ap, r)
        rs_new = _dot(r, r)
        if rs_new < CG_EPS:
            break
        beta = rs_new / rs_old
        for j in range(p.shape[0]):
            p[j] = r[j] + beta * p[j]
        rs_old = rs_new


@jit(parallel=True)
def _cg_sweep(indptr, indices, data, X, Y, YtY, alpha, reg, cg_steps, implicit):
    n_rows, k = X.shape
    n_blocks = (n_rows + BLOCK - 1) // BLOCK
    for blk in prange(n_blocks):
        scratch = np.empty((3, k), dtype=X.dtype)
        for row in range(blk * BLOCK, min(n_rows, (blk + 1) * BLOCK)):
            start = indptr[row]
            end = indptr[row + 1]
            if start == end:
                X[row, :] = 0
                continue
            _cg_row(
                indices,
                data,
                start,
                end,
                X[row],
                Y,
                YtY,
                alpha,
                reg,
                cg_steps,
                implicit,
                scratch[0],
                scratch[1],
                scratch[2],
            )


@jit
def cg_implicit(indptr, indices, data, X, Y, YtY, alpha, cg_steps):
    """Implicit-feedback half-sweep by conjugate gradient, in place.

    Parameters
    ----------
    indptr : (n_rows + 1,) int32/int64
    indices : (nnz,) int32, column indices into ``Y``
    data : (nnz,) float32/float64 (dtype of ``X``), raw values ``r >= 0``
    X : (n_rows, k) float32/float64, C order; updated in place (warm start)
    Y : (n_cols, k) same dtype, C order
    YtY : (k, k) same dtype, ``Y.T @ Y + regularization * I``
    alpha : float, confidence scale: ``c = 1 + alpha * r``
    cg_steps : int >= 1
    """
    _cg_sweep(indptr, indices, data, X, Y, YtY, alpha, 0.0, cg_steps, True)


@jit
def cg_explicit(indptr, indices, data, X, Y, regularization, cg_steps):
    """Explicit-feedback (weighted-lambda) half-sweep by conjugate gradient, in place.

    Parameters as :func:`cg_implicit`, with ``data`` the ratings (any sign) and
    ``regularization`` the lambda that multiplies each row's count ``n_u``.
    """
    YtY = np.empty((0, 0), dtype=X.dtype)
    _cg_sweep(indptr, indices, data, X, Y, YtY, 1.0, regularization, cg_steps, False)


@jit
def _cholesky_solve(A, b):
    """Solve ``A x = b`` for symmetric positive definite ``A``; ``b`` becomes x.

    Only the lower triangle of ``A`` is read; it is overwritten by the
    Cholesky factor L (``A = L @ L.T``). Returns False (and leaves NaN in
    ``b``) when a pivot is not positive.
    """
    k = b.shape[0]
    zero = A.dtype.type(0)
    for j in range(k):
        # L[j, j] = sqrt(A[j, j] - L[j, :j] @ L[j, :j])
        d = A[j, j] - _dot(A[j, :j], A[j, :j])
        if not d > zero:
            b[:] = np.nan
            return False
        d = np.sqrt(d)
        A[j, j] = d
        # L[i, j] = (A[i, j] - L[i, :j] @ L[j, :j]) / L[j, j]
        for i in range(j + 1, k):
            A[i, j] = (A[i, j] - _dot(A[i, :j], A[j, :j])) / d
    # forward: L z = b
    for i in range(k):
        b[i] = (b[i] - _dot(A[i, :i], b[:i])) / A[i, i]
    # backward: L^T x = z
    for i in range(k - 1, -1, -1):
        s = b[i]
        for j in range(i + 1, k):
            s -= A[j, i] * b[j]
        b[i] = s / A[i, i]
    return True


@jit(parallel=True)
def _cholesky_sweep(indptr, indices, data, X, Y, YtY, alpha, reg, implicit):
    n_rows, k = X.shape
    n_blocks = (n_rows + BLOCK - 1) // BLOCK
    for blk in prange(n_blocks):
        A = np.empty((k, k), dtype=X.dtype)
        b = np.empty(k, dtype=X.dtype)
        zero = X.dtype.type(0)
        one = X.dtype.type(1)
        alpha_t = X.dtype.type(alpha)
        for row in range(blk * BLOCK, min(n_rows, (blk + 1) * BLOCK)):
            start = indptr[row]
            end = indptr[row + 1]
            if start == end:
                X[row, :] = 0
                continue
            if implicit:
                A[:, :] = YtY
            else:
                A[:, :] = 0
                lam = X.dtype.type(reg * (end - start))
                for j in range(k):
                    A[j, j] = lam
            b[:] = 0
            for pos in range(start, end):
                y = Y[indices[pos]]
                rating = data[pos]
                if implicit:
                    w = alpha_t * rating  # c - 1
                    cp = one + w if rating > zero else zero  # c * p
                else:
                    w = one
                    cp = rating
                _axpy(cp, y, b)
                # A[i, :i + 1] += w * y[i] * y[:i + 1] (lower triangle)
                for i in range(k):
                    _axpy(w * y[i], y[: i + 1], A[i, : i + 1])
            _cholesky_solve(A, b)
            X[row, :] = b


@jit
def cholesky_implicit(indptr, indices, data, X, Y, YtY, alpha):
    """Implicit-feedback half-sweep solved exactly (per-row Cholesky), in place.

    Parameters as :func:`cg_implicit`, without ``cg_steps``.
    """
    _cholesky_sweep(indptr, indices, data, X, Y, YtY, alpha, 0.0, True)


@jit
def cholesky_explicit(indptr, indices, data, X, Y, regularization):
    """Explicit-feedback (weighted-lambda) half-sweep solved exactly, in place.

    Parameters as :func:`cg_explicit`, without ``cg_steps``.
    """
    YtY = np.empty((0, 0), dtype=X.dtype)
    _cholesky_sweep(indptr, indices, data, X, Y, YtY, 1.0, regularization, False)


@jit(parallel=True)
def loss_rows(indptr, indices, data, X, Y, alpha, implicit, out):
    """Per-row data terms of the training loss, written to ``out`` (n_rows,) float64.

    Implicit: ``sum_{i in row u} c_i (p_i - s_i)^2 - s_i^2`` with
    ``s_i = x_u @ y_i`` (the caller adds ``sum_{u, i} s_ui^2`` from the Gram
    matrices). Explicit: ``sum_{i in row u} (r_i - s_i)^2``.
    """
    n_rows = X.shape[0]
    for row in prange(n_rows):
        x = X[row]
        total = 0.0
        for pos in range(indptr[row], indptr[row + 1]):
            s = np.float64(_dot(x, Y[indices[pos]]))
            rating = np.float64(data[pos])
            if implicit:
                c = 1.0 + alpha * rating
                pref = 1.0 if rating > 0 else 0.0
                total += c * (pref - s) * (pref - s) - s * s
            else:
                total += (rating - s) * (rating - s)
        out[row] = total
