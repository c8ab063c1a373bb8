"""Naive, obviously-correct NumPy oracles for the Hogwild SGD kernel.

They follow the visiting order the kernel gets (the same ``user_order`` and
CSR rows) one rating at a time, in float64, with the update rule written
exactly as in Koren et al. / Surprise ``SVD``. The kernel runs in its own dtype
with fused multiply-adds, so comparisons use the per-dtype tolerance.
"""

from __future__ import annotations

import math

import numpy as np


def visiting_order(block_ptr, user_order, chunk_bounds, block_order):
    """(user, rating position) pairs in the order one thread visits them.

    Chunk ``c`` is ``user_order[chunk_bounds[c]:chunk_bounds[c + 1]]``. The
    pass is ``n_blocks`` phases; in phase ``s`` chunk ``c`` works in item block
    ``block_order[(c + s) % n_blocks]`` (the cell (c, block)), chunks in order.
    In a cell two lanes take the chunk's users in order (lane a the first user
    with ratings in the block, lane b the next), then alternate one rating at
    a time, a before b; a lane whose run is done takes the next user with
    ratings in the block at once.
    """
    n_blocks = len(block_order)
    out = []
    for s in range(n_blocks):
        for c in range(len(chunk_bounds) - 1):
            users = list(user_order[chunk_bounds[c] : chunk_bounds[c + 1]])
            blk = block_order[(c + s) % n_blocks]
            queue = iter(users)

            def take(queue=queue, blk=blk):
                for u in queue:
                    run = list(range(block_ptr[u][blk], block_ptr[u][blk + 1]))
                    if run:
                        return [u, run]
                return None

            lanes = [take(), None]
            lanes[1] = take()
            while lanes[0] is not None or lanes[1] is not None:
                for j in (0, 1):
                    if lanes[j] is not None:
                        u, run = lanes[j]
                        out.append((u, run.pop(0)))
                        if not run:
                            lanes[j] = take()
    return out


def sgd_epoch_reference(
    block_ptr,
    indices,
    ratings,
    user_order,
    chunk_bounds,
    block_order,
    global_mean,
    learning_rate,
    regularization,
    use_bias,
    user_factors,
    item_factors,
    user_bias,
    item_bias,
):
    """One sequential SGD pass; returns new arrays (float64) and the loss sum.

    Returns
    -------
    (user_factors, item_factors, user_bias, item_bias, loss) where ``loss`` is
    the sum of squared errors, each taken just before its update.
    """
    P = np.array(user_factors, dtype=np.float64)
    Q = np.array(item_factors, dtype=np.float64)
    bu = np.array(user_bias, dtype=np.float64)
    bi = np.array(item_bias, dtype=np.float64)
    mu, lr, reg = float(global_mean), float(learning_rate), float(regularization)
    loss = 0.0
    for u, e in visiting_order(block_ptr, user_order, chunk_bounds, block_order):
        i = indices[e]
        err = float(ratings[e]) - (mu + bu[u] + bi[i] + P[u] @ Q[i])
        loss += err * err
        if use_bias:
            bu[u] += lr * (err - reg * bu[u])
            bi[i] += lr * (err - reg * bi[i])
        p_old = P[u].copy()
        P[u] += lr * (err * Q[i] - reg * P[u])
        Q[i] += lr * (err * p_old - reg * Q[i])
    return P, Q, bu, bi, loss


def sgd_objective(P, Q, bu, bi, mu, users, items, ratings, regularization, use_bias=True):
    """Sum of squared errors plus the per-rating L2 penalty that SGD descends."""
    pred = mu + bu[users] + bi[items] + np.einsum("ij,ij->i", P[users], Q[items])
    err = ratings - pred
    penalty = (P[users] ** 2).sum(1) + (Q[items] ** 2).sum(1)
    if use_bias:
        penalty = penalty + bu[users] ** 2 + bi[items] ** 2
    return float((err**2).sum() + regularization * penalty.sum())


def low_rank_ratings(n_users, n_items, rank, density, noise, seed):
    """Ratings ``3 + u_f . v_f + noise`` on a random subset of the cells.

    Returns users, items, ratings (1-D arrays) for every observed cell; the
    noise is N(0, noise^2), so the best achievable test RMSE is ``noise``.
    """
    rng = np.random.default_rng(seed)
    U = rng.standard_normal((n_users, rank)) / np.sqrt(rank)
    V = rng.standard_normal((n_items, rank)) / np.sqrt(rank)
    mask = rng.random((n_users, n_items)) < density
    users, items = np.nonzero(mask)
    clean = 3.0 + np.einsum("ij,ij->i", U[users], V[items])
    ratings = clean + noise * rng.standard_normal(users.shape[0])
    return users, items, ratings


_MASK64 = (1 << 64) - 1
_GOLDEN64 = 0x9E3779B97F4A7C15
_SLOW_SALT64 = 0xD6E8FEB86659FD93


def mix64_reference(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def normal_fill_reference(n_rows, k, seed, scale, edges, widths, heights):
    """The kernels' ``normal_fill`` in plain Python integers and floats, draw by draw.

    Draw ``j = row * k + f`` takes ``bits = mix64(seed + (j + 1) * golden)``
    (64-bit wrap-around): layer = low 8 bits, sign = bit 8, ``x = (bits >> 12)
    * widths[layer]``, accepted when ``x < edges[layer + 1]``. Otherwise a
    private SplitMix64 stream (state ``mix64(bits ^ SLOW_SALT)``, advanced by
    ``golden`` before each output) gives: for layer 0, pairs of
    exponentials until ``2 b > a^2`` and ``x = r + a``; for other layers, a
    uniform for the wedge test ``y < exp(-x^2 / 2)``, and after a rejection a
    new candidate (layer and ``x``) from the next output. The sign is always
    bit 8 of the first bits. Returns float64 ``(n_rows, k)``.
    """
    out = np.zeros((n_rows, k))
    inv53 = 1.0 / 2.0**53
    r = float(edges[1])
    for j in range(n_rows * k):
        first = mix64_reference((seed + (j + 1) * _GOLDEN64) & _MASK64)
        bits, state = first, mix64_reference(first ^ _SLOW_SALT64)

        def nxt():
            nonlocal state
            state = (state + _GOLDEN64) & _MASK64
            return mix64_reference(state)

        while True:
            layer = bits & 255
            x = float(bits >> 12) * float(widths[layer])
            if x < edges[layer + 1]:
                break
            if layer == 0:
                while True:
                    a = -math.log(float((1 << 53) - (nxt() >> 11)) * inv53) * (1.0 / r)
                    b = -math.log(float((1 << 53) - (nxt() >> 11)) * inv53)
                    if b + b > a * a:
                        break
                x = r + a
                break
            u = float(nxt() >> 11) * inv53
            y = heights[layer] + u * (heights[layer + 1] - heights[layer])
            if y < math.exp(-0.5 * x * x):
                break
            bits = nxt()
        out.flat[j] = x * (-scale if (first >> 8) & 1 else scale)
    return out
