"""SVD++ epochs by SGD, parallel over users (twin of ``kernels/cython/svdpp.pyx``).

The model (Koren, "Factorization meets the neighborhood: a multifaceted
collaborative filtering model", KDD 2008, section 4, eq. 15) is

    r_hat(u, i) = mu + b_u + b_i + q_i . (p_u + z_u),
    z_u = |N(u)|^-1/2 sum_{j in N(u)} y_j

with ``N(u)`` the items user ``u`` rated in training. Each rating takes the
SGD step of Surprise's ``SVDpp`` (all right-hand sides from the old values,
``err = r - r_hat``, ``n = |N(u)|``, ``lr`` the learning rate and ``reg`` the
regularisation):

    b_u += lr (err - reg b_u)                 b_i += lr (err - reg b_i)
    p_u += lr (err q_i - reg p_u)             q_i += lr (err (p_u + z_u) - reg q_i)
    y_j += lr (err q_i / sqrt(n) - reg y_j)   for every j in N(u)

Schedule. Surprise recomputes ``z_u`` from the ``y_j`` before every rating
and updates all ``n`` of them after every rating: O(n^2 k) work per user and
epoch. Here a user's ratings are taken one after the other and the ``y_j``
are written once per user. The per-rating step multiplies every ``y_j`` by
``d = 1 - lr reg`` and adds the same vector ``lr err q_i / sqrt(n)`` to each,
so after the user's ``t``-th rating

    z_u <- d z_u + lr err_t q_t                   (exact, O(k) a rating)
    y_j  = d^t y_j(start) + lr / sqrt(n) G_t,     G_t = d G_{t-1} + err_t q_t

and the kernel keeps ``z_u``, ``G`` and ``d^t``, and at the end of the user
sets ``y_j <- d^n y_j + lr / sqrt(n) G_n`` for every ``j`` in ``N(u)`` (one
batch). In exact arithmetic this is the per-rating rule of Surprise (every
``y_j`` of a user is touched only by that user's ratings, and the user's
ratings are consecutive in both schedules), at O(n k) a user: only the
rounding differs (``z_u`` is updated, not re-summed).
``tests/reference_svdpp.py`` holds the per-rating rule, which the kernels
match with one thread.

Visiting order: users in ``user_order`` (a permutation drawn by the caller
every epoch), each user's ratings in CSR order (the caller relabels the items
at random once per fit, so that order is random within the row and the item
rows are stored in label order). Surprise visits the users and ratings in the
order of the data file, every epoch the same.

Parallelism (Hogwild: Niu, Recht, Re & Wright, NIPS 2011): ``user_order``
is cut into chunks (``chunk_bounds``), and the chunks run in parallel, one
thread each, a chunk's users one after the other. ``p_u`` and ``b_u`` are
written by the one thread that runs the user. ``q_i``, ``b_i`` and ``y_j``
are shared: two threads running users who rated the same item read and
update them without locks, and an update of one can be lost or read half
done by the other (the only race fastrec permits). The batch update of the
``y_j`` at the end of a user is such a read-modify-write. With one chunk (or
one thread) the result is deterministic and the two backends agree to
rounding; with several threads it varies from run to run.

Degenerate cases: a user without ratings is skipped. ``chunk_loss[c]`` gets
the sum of the squared errors of chunk ``c`` (each taken before its update),
in float64; a NaN or infinity there (or in the factors) is the caller's
divergence signal.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ._config import jit


@jit
def _user_pass(u, start, end, items, ratings, mu, lr, reg, P, Q, Yimp, bu, bi, z, G):
    """The ratings of user ``u`` (positions ``start:end``), then its y_j batch."""
    one = P.dtype.type(1)
    k = P.shape[1]
    inv_sqrt = one / np.sqrt(P.dtype.type(end - start))
    # z = |N(u)|^-1/2 * Yimp[N(u)].sum(axis=0)
    z[:] = 0
    for pos in range(start, end):
        y = Yimp[items[pos]]
        for f in range(k):
            z[f] += y[f]
    for f in range(k):
        z[f] *= inv_sqrt
    G[:] = 0
    decay = one - lr * reg
    decay_t = one
    p = P[u]
    loss = 0.0
    for pos in range(start, end):
        i = items[pos]
        q = Q[i]
        # dot = q_i @ (p_u + z_u)
        dot = P.dtype.type(0)
        for f in range(k):
            dot += q[f] * (p[f] + z[f])
        err = ratings[pos] - (mu + bu[u] + bi[i] + dot)
        loss += np.float64(err) * np.float64(err)
        bu[u] += lr * (err - reg * bu[u])
        bi[i] += lr * (err - reg * bi[i])
        step = lr * err
        for f in range(k):
            pf = p[f]
            qf = q[f]
            p[f] = pf + lr * (err * qf - reg * pf)
            q[f] = qf + lr * (err * (pf + z[f]) - reg * qf)
            G[f] = decay * G[f] + err * qf
            z[f] = decay * z[f] + step * qf
        decay_t *= decay
    # y_j = d^n y_j + lr / sqrt(n) * G for every j in N(u)
    scale = lr * inv_sqrt
    for pos in range(start, end):
        y = Yimp[items[pos]]
        for f in range(k):
            y[f] = decay_t * y[f] + scale * G[f]
    return loss


@jit(parallel=True)
def svdpp_epoch(
    indptr,
    items,
    ratings,
    user_order,
    chunk_bounds,
    intercept,
    learning_rate,
    regularization,
    user_factors,
    item_factors,
    implicit_factors,
    user_bias,
    item_bias,
    chunk_loss,
):
    """One SVD++ epoch in place (see the module docstring).

    Parameters
    ----------
    indptr : (n_users + 1,) int64, row pointer of the ratings
    items : (nnz,) int32, item rows (of ``item_factors``, ``implicit_factors``
        and ``item_bias``) in visiting order within each user
    ratings : (nnz,) float32/float64 (the factors' dtype)
    user_order : (n_users,) int32, the users in visiting order (a permutation)
    chunk_bounds : (n_chunks + 1,) int64, non-decreasing from 0 to n_users:
        chunk ``c`` is ``user_order[chunk_bounds[c]:chunk_bounds[c + 1]]``
    intercept, learning_rate, regularization : float (``mu``, ``lr``, ``reg``)
    user_factors : (n_users, k), C order; updated in place (``p_u``)
    item_factors : (n_items, k), C order; updated in place (``q_i``)
    implicit_factors : (n_items, k), C order; updated in place (``y_j``)
    user_bias : (n_users,), item_bias : (n_items,); updated in place
    chunk_loss : (n_chunks,) float64, output: squared errors per chunk
    """
    dtype = user_factors.dtype.type
    mu = dtype(intercept)
    lr = dtype(learning_rate)
    reg = dtype(regularization)
    k = user_factors.shape[1]
    n_chunks = chunk_bounds.shape[0] - 1
    for c in prange(n_chunks):
        scratch = np.empty((2, k), dtype=user_factors.dtype)
        total = 0.0
        for t in range(chunk_bounds[c], chunk_bounds[c + 1]):
            u = user_order[t]
            start = indptr[u]
            end = indptr[u + 1]
            if start == end:
                continue
            total += _user_pass(
                u, start, end, items, ratings, mu, lr, reg, user_factors, item_factors,
                implicit_factors, user_bias, item_bias, scratch[0], scratch[1],
            )  # fmt: skip
        chunk_loss[c] = total
