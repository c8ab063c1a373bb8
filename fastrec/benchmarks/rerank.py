"""MMR re-ranking: both backends vs a vectorised NumPy MMR, and what it does to
the lists of a model on ml-latest-small (precision vs intra-list diversity)."""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from .. import _backend
from ..datasets import movielens_small, synthetic
from ..metrics import coverage, gini, intra_list_diversity, novelty, ranking_metrics
from ..neighbours import similarity
from ..rerank import mmr
from ..split import random_split
from . import row, timed

#: The speed target's shape: 10,000 users x 100 candidates re-ranked to 10.
N_USERS, N_CANDIDATES, N = 10_000, 100, 10


def mmr_numpy(ids: np.ndarray, scores: np.ndarray, S: sp.csr_matrix, diversity: float, n: int):
    """MMR in NumPy, vectorised over the rows, one step at a time.

    Same definition as ``fastrec.rerank.mmr`` (rel min-max normalised per row,
    penalty ``max S[picked, i]``, ties to the higher rel, then the earlier
    position); what a user would write without a compiled kernel. Returns the
    picked positions, -1 padded. ``S`` must be CSR with sorted indices.
    """
    n_rows, n_cand = ids.shape
    valid = ids >= 0
    lo = np.where(valid, scores, np.inf).min(axis=1, keepdims=True)
    hi = np.where(valid, scores, -np.inf).max(axis=1, keepdims=True)
    span = hi - lo
    rel = np.where(span > 0, (scores - lo) / np.where(span > 0, span, 1), 1.0)
    alive = valid.copy()
    pen = np.zeros(scores.shape, dtype=np.float64)
    out = np.full((n_rows, n), -1, dtype=np.int64)
    rows = np.arange(n_rows)
    safe_ids = np.where(valid, ids, 0)
    for step in range(n):
        value = (1 - diversity) * rel - diversity * pen
        key = np.where(alive, value, -np.inf)
        best_val = key.max(axis=1, keepdims=True)
        # among the best value: the higher rel, then the earlier position (argmax: the first)
        cand = np.where(alive & (key == best_val), rel, -np.inf)
        best = cand.argmax(axis=1)
        has = alive.any(axis=1)
        out[has, step] = best[has]
        alive[rows, best] = False
        picked_items = safe_ids[rows, best]
        sims = np.asarray(S[np.repeat(picked_items, n_cand), safe_ids.ravel()]).reshape(
            n_rows, n_cand
        )
        pen = sims if step == 0 else np.maximum(pen, sims)
    return out


def _timed_cpu(fn, repeat: int) -> tuple[float, float, object]:
    """Median wall time, median CPU time of the process (all threads), last result."""
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        result = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return float(np.median(walls)), float(np.median(cpus)), result


def _speed_rows(num_threads: int, quick: bool) -> list[dict]:
    n_items = 20_000
    X = synthetic(N_USERS, n_items, 1_000_000, seed=0)
    S = similarity(X, kind="cosine", axis="items", k=100)
    rng = np.random.default_rng(0)
    # candidates: the top 100 of random factor scores, unseen items only
    from .topk import _StaticFactors

    U = rng.normal(0, 0.1, (N_USERS, 32)).astype(np.float32)
    V = rng.normal(0, 0.1, (n_items, 32)).astype(np.float32)
    model = _StaticFactors(num_threads=num_threads).fit(X, U, V)
    ids, scores = model.recommend(X.user_ids, n=N_CANDIDATES)
    idx = X.item_index(ids).astype(np.int32)
    shape = f"{N_USERS} users x {N_CANDIDATES} candidates -> {N}, {n_items} items, S top-100"
    repeat = 5 if quick else 7
    S_sorted = S.sorted_indices()
    t_np, ref = timed(lambda: mmr_numpy(idx, scores, S_sorted, 0.3, N), repeat=1 if quick else 3)
    rows = []
    for backend in _backend.available_backends():
        mmr(idx[:10], scores[:10], S, 0.3, N, backend=backend)  # compile / warm up
        t, cpu, (got, _) = _timed_cpu(
            lambda b=backend: mmr(idx, scores, S, 0.3, N, backend=b, num_threads=num_threads),
            repeat,
        )
        want = np.where(ref >= 0, np.take_along_axis(idx, np.maximum(ref, 0), axis=1), -1)
        same = float(np.mean(np.all(got == want, axis=1)))
        rows.append(
            row(
                f"MMR re-rank, indices ({backend})",
                shape,
                t,
                "NumPy MMR (vectorised over rows)",
                t_np,
                quality=f"same lists as NumPy: {same:.1%}",
                note=f"median of {repeat}; CPU {cpu:.3f} s (all threads); target < 0.5 s",
            )
        )
        t_raw, cpu_raw, _ = _timed_cpu(
            lambda b=backend: mmr(
                ids, scores, S, 0.3, N, items=X, backend=b, num_threads=num_threads
            ),
            repeat,
        )
        rows.append(
            row(
                f"MMR re-rank, raw ids from recommend, items= ({backend})",
                shape,
                t_raw,
                "NumPy MMR (vectorised over rows)",
                t_np,
                note=f"median of {repeat}; CPU {cpu_raw:.3f} s; includes the id lookups",
            )
        )
    return rows


def quality_rows(diversities=(0.0, 0.3, 0.6), num_threads: int = 2, seed: int = 0) -> list[dict]:
    """ALS top-100 re-ranked to 10 on ml-latest-small, 80/20 ``random_split(seed=seed)``.

    Relevant: test ratings >= 4; training items excluded; ``S`` the cosine
    top-100 item similarity of train. Diversity is measured with the exact
    cosine of train's item columns (what ``fr.evaluate`` uses by default).
    """
    from ..models.als import ALS

    X = movielens_small()
    train, test = random_split(X, test_size=0.2, seed=seed)
    model = ALS(factors=64, implicit=True, random_state=seed, num_threads=num_threads).fit(train)
    t_users, t_items, t_ratings, _ = test.to_arrays()
    keep = t_ratings >= 4
    users, inverse = np.unique(t_users[keep], return_inverse=True)
    relevant = sp.csr_matrix(
        (np.ones(int(keep.sum())), (inverse, t_items[keep])), shape=(users.shape[0], train.n_items)
    )
    cand, cand_scores = model._recommend_indices(users, 100)
    S = similarity(train, kind="cosine", axis="items", k=100)
    rows = []
    for d in diversities:
        rec, _ = mmr(cand, cand_scores, S, diversity=d, n=10, num_threads=num_threads)
        m = ranking_metrics(rec, relevant, 10)
        quality = (
            f"p@10 {np.nanmean(m['precision']):.4f}, ndcg@10 {np.nanmean(m['ndcg']):.4f}, "
            f"diversity {intra_list_diversity(rec, train):.4f}, "
            f"novelty {novelty(rec, train):.3f} bits, coverage {coverage(rec, train.n_items):.4f}, "
            f"gini {gini(rec, train.n_items):.4f}"
        )
        rows.append(
            row(
                f"ALS top-100 -> MMR diversity={d}",
                f"ml-latest-small, split seed {seed}, {users.shape[0]} test users",
                None,
                "",
                None,
                quality=quality,
            )
        )
    return rows


def compare(scale: float = 1.0, num_threads: int = 2, quick: bool = False) -> list[dict]:
    return _speed_rows(num_threads, quick) + quality_rows(num_threads=num_threads)
