"""Deterministic synthetic rating data with the shape of real interaction logs."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .._validation import check_float, check_int
from ..data import Interactions

__all__ = ["synthetic"]


def _power_law_weights(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    # Zipf-like popularity: weight of the r-th most active is r^-exponent,
    # assigned to ids in random order so that id carries no information.
    w = np.arange(1, n + 1, dtype=np.float64) ** -exponent
    return w[rng.permutation(n)]


def _allocate(total: int, weights: np.ndarray, cap: int) -> np.ndarray:
    """Integer counts summing to ``total``, proportional to ``weights``, each in [1, cap]."""
    n = weights.shape[0]
    counts = np.ones(n, dtype=np.int64)
    remaining = total - n
    free = np.ones(n, dtype=bool)
    while remaining > 0:
        w = np.where(free, weights, 0.0)
        share = remaining * w / w.sum()
        add = np.floor(share).astype(np.int64)
        # hand out the rounding remainder to the largest fractional parts
        short = remaining - int(add.sum())
        if short > 0:
            frac_order = np.argsort(-(share - add), kind="stable")
            add[frac_order[:short]] += 1
        counts += add
        over = np.maximum(counts - cap, 0)
        counts -= over
        remaining = int(over.sum())
        free &= counts < cap
    return counts


def synthetic(
    n_users: int,
    n_items: int,
    nnz: int,
    seed: int = 0,
    rank: int = 8,
    noise: float = 0.5,
    user_exponent: float = 0.7,
    item_exponent: float = 0.9,
    discrete: bool = True,
    return_params: bool = False,
):
    """Deterministic power-law rating data with a low-rank signal.

    Users' and items' activity follow Zipf-like laws (the r-th most active user
    has weight ``r ** -user_exponent``, the same for items), so a few users and
    items hold many of the ratings as in real logs. Each user's count is fixed
    in advance (at least 1, at most ``n_items``); items are drawn for the user
    in proportion to their popularity, without repeats, so there are exactly
    ``nnz`` distinct (user, item) pairs. Ratings are

    ``r = clip(3.5 + b_u + b_i + p_u . q_i + e, 1, 5)``, rounded to whole stars
    when ``discrete``, with ``b_u ~ N(0, 0.35)``, ``b_i ~ N(0, 0.45)``,
    ``p_u, q_i ~ N(0, 0.9 / sqrt(rank))`` per coordinate and ``e ~ N(0, noise)``.

    Parameters
    ----------
    n_users, n_items, nnz : int
        Shape; ``n_users <= nnz <= n_users * n_items``.
    seed : int
        The same seed gives the same data.
    rank, noise : int, float
        Rank of the signal and the standard deviation of the added noise.
    discrete : bool
        Round ratings to the integers 1..5 (default) or keep them continuous.
    return_params : bool
        Also return the generating parameters (``global_mean``, ``user_bias``,
        ``item_bias``, ``user_factors``, ``item_factors``, ``noise``) for tests
        that compare a model with the truth.

    Returns
    -------
    Interactions (ids 0..n-1, ratings, timestamps), and the parameters dict
    when ``return_params``.
    """
    n_users = check_int(n_users, "n_users", 1)
    n_items = check_int(n_items, "n_items", 1)
    nnz = check_int(nnz, "nnz", 1)
    rank = check_int(rank, "rank", 1)
    noise = check_float(noise, "noise", 0.0)
    seed = check_int(seed, "seed", 0)
    if nnz < n_users:
        raise ValueError(
            f"nnz must be >= n_users (each user gets one rating), got {nnz} < {n_users}"
        )
    if nnz > n_users * n_items:
        raise ValueError(f"nnz must be <= n_users * n_items = {n_users * n_items}, got {nnz}")
    rng = np.random.default_rng(seed)
    user_w = _power_law_weights(n_users, user_exponent, rng)
    item_w = _power_law_weights(n_items, item_exponent, rng)
    degree = _allocate(nnz, user_w, n_items)
    item_cdf = np.cumsum(item_w)
    item_cdf /= item_cdf[-1]

    keys = np.zeros(0, dtype=np.int64)
    deficit = degree.copy()
    for _round in range(8):
        if not deficit.any():
            break
        # oversample to absorb repeats, more so for users close to every item
        fill = degree / n_items
        draws = np.ceil(deficit * (1.15 + 2.0 * fill) + 2).astype(np.int64)
        users = np.repeat(np.arange(n_users, dtype=np.int64), draws * (deficit > 0))
        items = np.searchsorted(item_cdf, rng.random(users.shape[0]), side="right")
        np.minimum(items, n_items - 1, out=items)
        new = users * n_items + items
        keys = np.unique(np.concatenate([keys, new]))
        keys = _trim(keys, degree, n_items, rng)
        deficit = degree - np.bincount(keys // n_items, minlength=n_users)
    if deficit.any():  # stragglers that hold most of the catalogue: exact draw
        extra = []
        have = keys // n_items
        for u in np.flatnonzero(deficit):
            taken = keys[have == u] % n_items
            mask = np.ones(n_items, dtype=bool)
            mask[taken] = False
            pool = np.flatnonzero(mask)
            p = item_w[pool] / item_w[pool].sum()
            pick = rng.choice(pool, size=int(deficit[u]), replace=False, p=p)
            extra.append(u * n_items + np.sort(pick))
        keys = np.unique(np.concatenate([keys] + extra))
    rows = (keys // n_items).astype(np.int32)
    cols = (keys % n_items).astype(np.int32)
    del keys

    user_bias = rng.normal(0.0, 0.35, n_users)
    item_bias = rng.normal(0.0, 0.45, n_items)
    scale = 0.9 / np.sqrt(rank)
    user_factors = rng.normal(0.0, scale, (n_users, rank)).astype(np.float32)
    item_factors = rng.normal(0.0, scale, (n_items, rank)).astype(np.float32)
    values = np.empty(rows.shape[0], dtype=np.float32)
    chunk = 1 << 21
    for start in range(0, rows.shape[0], chunk):
        r = rows[start : start + chunk]
        c = cols[start : start + chunk]
        signal = np.einsum("ij,ij->i", user_factors[r], item_factors[c])
        v = 3.5 + user_bias[r] + item_bias[c] + signal
        v += rng.normal(0.0, noise, r.shape[0]) if noise > 0 else 0.0
        if discrete:
            v = np.rint(v)
        values[start : start + chunk] = np.clip(v, 1.0, 5.0)
    timestamps = rng.integers(1_000_000_000, 1_600_000_000, rows.shape[0], dtype=np.int64)

    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_users), out=indptr[1:])
    if indptr[-1] <= np.iinfo(np.int32).max:
        indptr = indptr.astype(np.int32)
    matrix = sp.csr_matrix((values, cols, indptr), shape=(n_users, n_items), copy=False)
    matrix.has_sorted_indices = True
    X = Interactions(matrix, np.arange(n_users), np.arange(n_items), timestamps, _trusted=True)
    if not return_params:
        return X
    params = {
        "global_mean": 3.5,
        "user_bias": user_bias,
        "item_bias": item_bias,
        "user_factors": user_factors,
        "item_factors": item_factors,
        "noise": noise,
    }
    return X, params


def _trim(keys: np.ndarray, degree: np.ndarray, n_items: int, rng: np.random.Generator):
    """Keep at most ``degree[u]`` of each user's (sorted, unique) keys, chosen at random."""
    users = keys // n_items
    counts = np.bincount(users, minlength=degree.shape[0])
    over = counts > degree
    if not over.any():
        return keys
    in_over = over[users]
    sub = keys[in_over]
    sub_users = users[in_over]
    order = np.lexsort((rng.random(sub.shape[0]), sub_users))
    sub = sub[order]
    sub_users = sub_users[order]
    starts = np.concatenate(([0], np.cumsum(counts[over])))[:-1]
    rank_in_user = np.arange(sub.shape[0]) - np.repeat(starts, counts[over])
    keep = rank_in_user < degree[sub_users]
    return np.sort(np.concatenate([keys[~in_over], sub[keep]]))
