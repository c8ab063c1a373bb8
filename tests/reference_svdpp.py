"""Naive NumPy reference of one SVD++ epoch (float64), with Surprise's update rule.

The model (Koren, "Factorization meets the neighborhood", KDD 2008, eq. 15):

    r_hat(u, i) = mu + b_u + b_i + q_i . (p_u + |N(u)|^-1/2 sum_{j in N(u)} y_j)

Every rating takes one SGD step exactly as Surprise's ``SVDpp.sgd``: the
implicit sum is recomputed from the ``y_j`` before each rating, and every
``y_j`` of the user is updated after each rating. This is the O(n_u^2 k) per
user schedule that the compiled kernels replace by an incremental one; the
tests check that both give the same numbers.
"""

from __future__ import annotations

import numpy as np


def svdpp_epoch(
    indptr, items, ratings, user_order, intercept, learning_rate, regularization, P, Q, Yimp, bu, bi
):
    """One pass over the users in ``user_order``, each user's ratings in CSR order.

    ``items`` index the rows of ``Q``, ``Yimp`` and ``bi``. Returns new float64
    arrays ``(P, Q, Yimp, bu, bi)`` and the sum of the squared errors (each
    taken before its update).
    """
    P, Q, Yimp = (np.array(a, dtype=np.float64) for a in (P, Q, Yimp))
    bu, bi = (np.array(a, dtype=np.float64) for a in (bu, bi))
    lr, reg, mu = float(learning_rate), float(regularization), float(intercept)
    total = 0.0
    for u in user_order:
        start, end = int(indptr[u]), int(indptr[u + 1])
        rated = np.asarray(items[start:end], dtype=np.int64)
        if rated.size == 0:
            continue
        sqrt_n = np.sqrt(rated.size)
        for pos in range(start, end):
            i = int(items[pos])
            implicit = Yimp[rated].sum(axis=0) / sqrt_n
            err = float(ratings[pos]) - (mu + bu[u] + bi[i] + Q[i] @ (P[u] + implicit))
            total += err * err
            bu[u] += lr * (err - reg * bu[u])
            bi[i] += lr * (err - reg * bi[i])
            p_old = P[u].copy()
            q_old = Q[i].copy()
            P[u] += lr * (err * q_old - reg * p_old)
            Q[i] += lr * (err * (p_old + implicit) - reg * q_old)
            Yimp[rated] += lr * (err * q_old / sqrt_n - reg * Yimp[rated])
    return P, Q, Yimp, bu, bi, total


def predict(indptr, items, intercept, P, Q, Yimp, bu, bi, u, i):
    """``r_hat(u, i)`` of the module docstring (no clipping)."""
    rated = np.asarray(items[indptr[u] : indptr[u + 1]], dtype=np.int64)
    implicit = Yimp[rated].sum(axis=0) / np.sqrt(rated.size) if rated.size else 0.0
    return float(intercept + bu[u] + bi[i] + Q[i] @ (P[u] + implicit))
