"""Batch recommendation (factor scores + top-k, seen items excluded) vs implicit."""

from __future__ import annotations

import numpy as np

from ..datasets import synthetic
from ..models.base import Recommender
from . import row, timed


class _StaticFactors(Recommender):
    """A fitted factor model with given factors: exercises the real recommend path."""

    def __init__(self, num_threads: int = 0, backend: str = "auto"):
        self.num_threads = num_threads
        self.backend = backend

    def fit(self, X, user_factors=None, item_factors=None):
        self._begin_fit(X)
        self.user_factors_ = user_factors
        self.item_factors_ = item_factors
        self._end_fit()
        return self

    def _score_users(self, uidx):
        return self.user_factors_[uidx] @ self.item_factors_.T

    def _factor_parts(self):  # as ALS and SGDMF: the fused product + top-k path
        return self.user_factors_, self.item_factors_, None, None


def compare(scale: float = 1.0, num_threads: int = 2, quick: bool = False) -> list[dict]:
    from threadpoolctl import threadpool_limits

    if quick:
        n_users, n_items, nnz = 5_000, 3_000, 200_000
    else:
        n_users, n_items, nnz = (
            max(1000, int(138_000 * scale)),
            max(500, int(27_000 * scale)),
            max(10_000, int(20_000_000 * scale)),
        )
    factors = 64
    X = synthetic(n_users, n_items, nnz, seed=0)
    rng = np.random.default_rng(0)
    U = rng.normal(0, 0.1, (n_users, factors)).astype(np.float32)
    V = rng.normal(0, 0.1, (n_items, factors)).astype(np.float32)
    shape = f"{n_users}x{n_items}, nnz {nnz}, {factors} factors, top 10"
    users = np.arange(n_users)
    model = _StaticFactors(num_threads=num_threads).fit(X, U, V)
    model.recommend(X.user_ids[:100], n=10)  # warm-up
    # the public call, raw ids in and out (synthetic ids are 0..n-1, so the
    # returned item ids are comparable with implicit's indices)
    with threadpool_limits(num_threads, user_api="blas"):
        t_fast, (idx, _) = timed(
            lambda: model.recommend(X.user_ids, n=10), repeat=3 if quick else 1
        )
    rows = []
    try:
        from implicit.cpu.als import AlternatingLeastSquares
    except ImportError:
        return [
            row(
                "recommend all users",
                shape,
                t_fast,
                "implicit",
                None,
                note="implicit not installed",
            )
        ]
    peer = AlternatingLeastSquares(factors=factors, num_threads=num_threads, random_state=0)
    peer.user_factors = U
    peer.item_factors = V
    user_items = X.matrix
    peer.recommend(users[:100], user_items[:100], N=10)
    # implicit multiplies each batch with NumPy's BLAS, then selects on its own
    # threads: time it with BLAS on one thread (what implicit's warning asks
    # for) and on num_threads, and keep its better time
    t_peer = None
    peer_blas = 1
    for blas in sorted({1, num_threads}):
        with threadpool_limits(blas, user_api="blas"):
            t, (pidx, _) = timed(
                lambda: peer.recommend(users, user_items, N=10), repeat=3 if quick else 1
            )
        if t_peer is None or t < t_peer:
            t_peer, peer_blas = t, blas
    agree = float(np.mean(np.sort(idx, axis=1) == np.sort(pidx, axis=1)))
    rows.append(
        row(
            "recommend all users",
            shape,
            t_fast,
            "implicit",
            t_peer,
            quality=f"same top-10 sets: {agree:.1%}",
            note=f"implicit's best of BLAS on 1 and {num_threads} threads ({peer_blas})",
        )
    )
    return rows
