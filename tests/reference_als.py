"""Naive, obviously-correct NumPy references for the ALS kernels (float64).

Each half-sweep forms every row's k x k system densely and solves it with
``numpy.linalg.solve`` (exact) or runs textbook conjugate gradient on the
dense matrix (``cg_steps`` steps from the current row), so the compiled
kernels, which never form the matrix, can be checked against them.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def row_system(
    csr: sp.csr_matrix, row: int, Y: np.ndarray, regularization: float, alpha: float, implicit: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The dense ``(A, b)`` of one row (Hu et al. 2008 / Zhou et al. 2008)."""
    Y = Y.astype(np.float64)
    k = Y.shape[1]
    cols = csr.indices[csr.indptr[row] : csr.indptr[row + 1]]
    vals = csr.data[csr.indptr[row] : csr.indptr[row + 1]].astype(np.float64)
    Yr = Y[cols]
    if implicit:
        conf = 1.0 + alpha * vals
        pref = (vals > 0).astype(np.float64)
        # A = Y^T C_u Y + lambda I over ALL columns, with c = 1 off the row
        A = Y.T @ Y + regularization * np.eye(k) + Yr.T @ ((conf - 1.0)[:, None] * Yr)
        b = Yr.T @ (conf * pref)
    else:
        A = Yr.T @ Yr + regularization * len(cols) * np.eye(k)
        b = Yr.T @ vals
    return A, b


def half_sweep_exact(csr, X, Y, regularization, alpha, implicit):
    """Every row of X solved exactly (empty rows -> 0)."""
    out = np.zeros(X.shape, dtype=np.float64)
    for row in range(X.shape[0]):
        if csr.indptr[row] == csr.indptr[row + 1]:
            continue
        A, b = row_system(csr, row, Y, regularization, alpha, implicit)
        out[row] = np.linalg.solve(A, b)
    return out


def half_sweep_cg(csr, X, Y, regularization, alpha, implicit, cg_steps, eps=1e-20):
    """``cg_steps`` steps of textbook CG per row on the dense system, from X."""
    out = X.astype(np.float64).copy()
    for row in range(X.shape[0]):
        if csr.indptr[row] == csr.indptr[row + 1]:
            out[row] = 0.0
            continue
        A, b = row_system(csr, row, Y, regularization, alpha, implicit)
        x = out[row]
        r = b - A @ x
        p = r.copy()
        rs_old = r @ r
        for _ in range(cg_steps):
            if rs_old < eps:
                break
            ap = A @ p
            pap = p @ ap
            if not pap > 0:
                break
            step = rs_old / pap
            x = x + step * p
            r = r - step * ap
            rs_new = r @ r
            if rs_new < eps:
                break
            p = r + (rs_new / rs_old) * p
            rs_old = rs_new
        out[row] = x
    return out


def loss(csr, X, Y, regularization, alpha, implicit):
    """Training objective over the dense matrix, divided by the total weight.

    Implicit: ``sum_{u,i} c_ui (p_ui - x_u.y_i)^2 + lambda (|X|^2 + |Y|^2)`` over
    ``sum_{u,i} c_ui``. Explicit: ``sum_{(u,i) rated} (r_ui - x_u.y_i)^2 +
    lambda (sum_u n_u |x_u|^2 + sum_i n_i |y_i|^2)`` over the number of ratings.
    """
    X = X.astype(np.float64)
    Y = Y.astype(np.float64)
    dense = csr.toarray().astype(np.float64)
    stored = np.zeros(dense.shape, dtype=bool)
    stored[np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr)), csr.indices] = True
    S = X @ Y.T
    if implicit:
        conf = np.where(stored, 1.0 + alpha * dense, 1.0)
        pref = (stored & (dense > 0)).astype(np.float64)
        total = (conf * (pref - S) ** 2).sum()
        total += regularization * ((X**2).sum() + (Y**2).sum())
        return total / conf.sum()
    total = (((dense - S) ** 2) * stored).sum()
    n_u = stored.sum(axis=1)
    n_i = stored.sum(axis=0)
    total += regularization * ((n_u * (X**2).sum(axis=1)).sum() + (n_i * (Y**2).sum(axis=1)).sum())
    return total / stored.sum()


# ------------------------------------------------ explicit feedback with biases
def row_system_biased(
    csr: sp.csr_matrix, row: int, Y: np.ndarray, intercept: float, regularization: float
) -> tuple[np.ndarray, np.ndarray]:
    """The dense ``(A, b)`` of one row's unknowns ``[x_u, b_u]`` (k + 1 of them).

    ``Y`` is ``(n_cols, k + 1)``: the other side's factors and, last, its
    biases. Minimises ``sum_i (r_ui - mu - c_i - b_u - x_u . y_i)^2 +
    lambda n_u (|x_u|^2 + b_u^2)``: normal equations over the features
    ``[y_i, 1]`` and the targets ``r_ui - mu - c_i``.
    """
    Y = Y.astype(np.float64)
    cols = csr.indices[csr.indptr[row] : csr.indptr[row + 1]]
    vals = csr.data[csr.indptr[row] : csr.indptr[row + 1]].astype(np.float64)
    features = np.hstack([Y[cols, :-1], np.ones((len(cols), 1))])
    target = vals - intercept - Y[cols, -1]
    A = features.T @ features + regularization * len(cols) * np.eye(Y.shape[1])
    return A, features.T @ target


def biased_half_sweep_exact(csr, X, Y, intercept, regularization):
    """Every row of ``X = [factors, bias]`` solved exactly (empty rows -> 0)."""
    out = np.zeros(X.shape, dtype=np.float64)
    for row in range(X.shape[0]):
        if csr.indptr[row] < csr.indptr[row + 1]:
            A, b = row_system_biased(csr, row, Y, intercept, regularization)
            out[row] = np.linalg.solve(A, b)
    return out


def biased_half_sweep_cg(csr, X, Y, intercept, regularization, cg_steps, eps=1e-20):
    """``cg_steps`` steps of textbook CG per row on the dense biased system, from X."""
    out = X.astype(np.float64).copy()
    for row in range(X.shape[0]):
        if csr.indptr[row] == csr.indptr[row + 1]:
            out[row] = 0.0
            continue
        A, b = row_system_biased(csr, row, Y, intercept, regularization)
        x = out[row]
        r = b - A @ x
        p = r.copy()
        rs_old = r @ r
        for _ in range(cg_steps):
            if rs_old < eps:
                break
            ap = A @ p
            pap = p @ ap
            if not pap > 0:
                break
            step = rs_old / pap
            x = x + step * p
            r = r - step * ap
            rs_new = r @ r
            if rs_new < eps:
                break
            p = r + (rs_new / rs_old) * p
            rs_old = rs_new
        out[row] = x
    return out


def loss_biased(csr, X, Y, user_bias, item_bias, intercept, regularization):
    """The explicit objective with biases over the number of ratings (dense)."""
    X, Y = X.astype(np.float64), Y.astype(np.float64)
    bu, bi = np.asarray(user_bias, np.float64), np.asarray(item_bias, np.float64)
    dense = csr.toarray().astype(np.float64)
    stored = np.zeros(dense.shape, dtype=bool)
    stored[np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr)), csr.indices] = True
    pred = intercept + bu[:, None] + bi[None, :] + X @ Y.T
    total = (((dense - pred) ** 2) * stored).sum()
    n_u, n_i = stored.sum(axis=1), stored.sum(axis=0)
    total += regularization * (
        (n_u * ((X**2).sum(axis=1) + bu**2)).sum() + (n_i * ((Y**2).sum(axis=1) + bi**2)).sum()
    )
    return total / stored.sum()
