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

    keys = _draw_pairs(degree, item_w, rng)
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


def _alias_sampler(weights: np.ndarray):
    """O(1)-per-draw sampler of indices in proportion to ``weights`` (Walker's alias method)."""
    n = weights.shape[0]
    prob = weights * (n / weights.sum())
    alias = np.arange(n)
    small = [i for i in range(n) if prob[i] < 1.0]
    large = [i for i in range(n) if prob[i] >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        alias[s] = g
        prob[g] -= 1.0 - prob[s]
        (small if prob[g] < 1.0 else large).append(g)
    for i in small + large:  # numerical leftovers
        prob[i] = 1.0

    def sample(rng: np.random.Generator, size: int) -> np.ndarray:
        column = rng.integers(0, n, size)
        return np.where(rng.random(size) < prob[column], column, alias[column])

    return sample


def _draw_pairs(degree: np.ndarray, item_w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sorted keys ``user * n_items + item``: ``degree[u]`` distinct items per user.

    Items are drawn in proportion to ``item_w`` without replacement. Heavy
    users (at least an eighth of the catalogue) get an exact draw by
    Gumbel-top-k over every item (no collision loop on a near-full row); the
    others draw exactly their missing count with replacement, keep the new
    distinct items, and repeat for what is still missing (geometrically less
    each round). Draws use Walker's alias method, O(1) each.
    """
    n_users = degree.shape[0]
    n_items = item_w.shape[0]
    heavy = degree >= max(1, n_items // 8)
    parts = []
    log_w = np.log(item_w)
    heavy_users = np.flatnonzero(heavy)
    block = max(1, (1 << 23) // n_items)
    for start in range(0, heavy_users.shape[0], block):
        users = heavy_users[start : start + block]
        # Gumbel-top-k: the d largest of log w + Gumbel noise are a weighted
        # draw of d items without replacement (Efraimidis and Spirakis, 2006)
        keys = log_w[None, :] - np.log(-np.log(rng.random((users.shape[0], n_items))))
        for row, u in enumerate(users):
            d = int(degree[u])
            top = np.argpartition(-keys[row], d - 1)[:d] if d < n_items else np.arange(n_items)
            parts.append(u * n_items + np.sort(top).astype(np.int64))

    sample = _alias_sampler(item_w)
    light = np.flatnonzero(~heavy)
    collected = np.zeros(0, dtype=np.int64)
    counts = np.zeros(n_users, dtype=np.int64)
    need = degree[light]
    pending = light
    while pending.shape[0]:
        # exactly the missing count per user, so nobody ever overshoots; a
        # repeat (already held, or drawn twice now) just leaves a gap for the
        # next round, which is much smaller
        users = np.repeat(pending.astype(np.int64), need)
        new = np.sort(users * n_items + sample(rng, users.shape[0]))
        fresh = np.ones(new.shape[0], dtype=bool)
        fresh[1:] = new[1:] != new[:-1]
        if collected.shape[0]:
            pos = np.searchsorted(collected, new)
            fresh &= collected[np.minimum(pos, collected.shape[0] - 1)] != new
            collected = np.insert(collected, pos[fresh], new[fresh])  # sorted merge, O(n)
        else:
            collected = new[fresh]
        counts += np.bincount(new[fresh] // n_items, minlength=n_users)
        need = degree[pending] - counts[pending]
        keep = need > 0
        pending, need = pending[keep], need[keep]
    parts.append(collected)
    return np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)
