"""BPR and EASE against their peers: quality on ml-latest-small, fit time.

Usage::

    python bench/compare_bpr_ease.py quality            # p@10 / ndcg@10, seeds 0 1 2
    python bench/compare_bpr_ease.py negatives          # fastrec.BPR with negatives="popular"
    python bench/compare_bpr_ease.py bpr-epoch          # one epoch, kernels only, 20M entries
    python bench/compare_bpr_ease.py bpr-speed [iters]  # synthetic ML-20M shape, 2 threads
    python bench/compare_bpr_ease.py ease-speed         # EASE vs NumPy inv on ml-latest-small

Protocol (quality): ml-latest-small, 80/20 ``random_split(seed=0)``, training
binarised (every stored rating is 1), relevant = test ratings >= 4, seen items
excluded. The speed parts alternate the contenders three times in one process
and print every time and the medians.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np
import scipy.sparse as sp

import fastrec as fr
from fastrec._kernels import bpr as bpr_kernels
from fastrec.models.bpr import BPR
from fastrec.models.ease import EASE


def binarised(X: fr.Interactions) -> fr.Interactions:
    m = X.matrix.copy()
    m.data[:] = 1.0
    return fr.Interactions.from_csr(m, X.user_ids, X.item_ids)


def split_small():
    X = fr.datasets.movielens_small()
    train, test = fr.split.random_split(X, test_size=0.2, seed=0)
    return binarised(train), test


def evaluate(model, train, test) -> tuple[float, float]:
    r = fr.evaluate(
        model, train, test, metrics=("precision", "ndcg"), k=10, relevance_threshold=4, fit=False
    )
    return r["precision"], r["ndcg"]


def implicit_as_fastrec(peer, train, factors: int) -> BPR:
    """implicit's BPR factors in a fastrec BPR (its last column is the item bias,
    the users' last column is 1), so both are ranked by the same code."""
    model = BPR(factors=factors)
    model._begin_fit(train)
    model.user_factors_ = np.ascontiguousarray(peer.user_factors[:, :factors])
    model.item_factors_ = np.ascontiguousarray(peer.item_factors[:, :factors])
    model.item_bias_ = np.ascontiguousarray(peer.item_factors[:, factors])
    model._end_fit()
    return model


def quality(seeds=(0, 1, 2)) -> None:
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    train, test = split_small()
    settings = dict(factors=64, learning_rate=0.01, regularization=0.01, iterations=100)
    print("model seed p@10 ndcg@10")
    for seed in seeds:
        ours = BPR(**settings, random_state=seed, num_threads=2).fit(train)
        peer = BayesianPersonalizedRanking(**settings, random_state=seed, num_threads=2)
        peer.fit(train.matrix, show_progress=False)
        for name, model in (
            ("fastrec.BPR", ours),
            ("implicit BPR", implicit_as_fastrec(peer, train, 64)),
        ):
            p, n = evaluate(model, train, test)
            print(f"{name} {seed} {p:.4f} {n:.4f}", flush=True)
    for name, model in (
        ("fastrec.EASE (defaults)", EASE()),
        ("fastrec.ALS (defaults, seed 0)", fr.ALS(random_state=0)),
        ("fastrec.BPR (defaults, seed 0)", BPR(random_state=0)),
        ("fastrec.Popularity", fr.Popularity()),
    ):
        p, n = evaluate(model.fit(train), train, test)
        print(f"{name} - {p:.4f} {n:.4f}", flush=True)


def popular_negatives(seeds=(0, 1, 2)) -> None:
    train, test = split_small()
    print("model seed p@10 ndcg@10")
    for seed in seeds:
        model = BPR(negatives="popular", random_state=seed, num_threads=2).fit(train)
        p, n = evaluate(model, train, test)
        print(f"fastrec.BPR negatives=popular {seed} {p:.4f} {n:.4f}", flush=True)


def bpr_epoch(repeats: int = 3) -> None:
    """One epoch (20M samples) of each kernel on the same arrays, without the fit's set-up:
    implicit's ``bpr_update`` and fastrec's ``bpr_epoch`` (both backends), 2 threads."""
    from implicit.cpu import bpr as peer

    from fastrec._backend import threads

    matrix = binarised(fr.datasets.synthetic(138_000, 27_000, 20_000_000)).matrix
    n_users, n_items = matrix.shape
    nnz = matrix.nnz
    indptr = matrix.indptr.astype(np.int64)
    indices = matrix.indices.astype(np.int32)
    rows = np.repeat(np.arange(n_users, dtype=np.int32), np.diff(indptr))
    pairs = (rows.astype(np.int64) << 32) | indices
    rng = np.random.default_rng(0)
    k = 64
    P = (rng.random((n_users, k), dtype=np.float32) - 0.5) / k
    Q = (rng.random((n_items, k), dtype=np.float32) - 0.5) / k
    bias = np.zeros(n_items, np.float32)
    PX = np.hstack([P, np.ones((n_users, 1), np.float32)])
    QY = np.hstack([Q, bias[:, None]])
    bounds = np.linspace(0, nnz, 3).round().astype(np.int64)
    loss, skipped = np.zeros(2), np.zeros(2, np.int64)
    times: dict[str, list[float]] = {"fastrec cython": [], "implicit": [], "fastrec numba": []}
    with threads(2):
        bpr_kernels.get("numba").bpr_epoch(  # compile outside the timing
            indptr, indices, pairs, np.uint64(1), 0, np.array([0, 10], np.int64), 0.01, 0.01,
            False, P.copy(), Q.copy(), bias.copy(), loss[:1], skipped[:1],
        )  # fmt: skip
    for rep in range(repeats):
        for name in times:
            start = time.perf_counter()
            if name == "implicit":
                rngs = peer.RNGVector(2, nnz - 1, rng.integers(0, 2**31, size=2))
                peer.bpr_update(rngs, rows, indices, matrix.indptr, PX, QY, 0.01, 0.01, 2, True)
            else:
                with threads(2):
                    bpr_kernels.get(name.split()[1]).bpr_epoch(
                        indptr, indices, pairs, np.uint64(5), rep, bounds, 0.01, 0.01, False,
                        P, Q, bias, loss, skipped,
                    )  # fmt: skip
            times[name].append(time.perf_counter() - start)
        print({k: round(v[-1], 2) for k, v in times.items()}, flush=True)
    print("one epoch of 20M samples, factors 64, float32, 2 threads")
    for name, values in times.items():
        print(f"{name}: median {statistics.median(values):.2f} s")
    print(
        "implicit / fastrec cython (medians): "
        f"{statistics.median(times['implicit']) / statistics.median(times['fastrec cython']):.2f}"
    )


def _report(times: dict[str, list[float]]) -> None:
    for name, values in times.items():
        print(
            f"{name}: "
            + ", ".join(f"{v:.2f}" for v in values)
            + f"  median {statistics.median(values):.2f} s"
        )
    names = list(times)
    print(
        f"ratio {names[1]} / {names[0]} (medians): "
        f"{statistics.median(times[names[1]]) / statistics.median(times[names[0]]):.2f}"
    )


def bpr_speed(iterations: int = 3, repeats: int = 3) -> None:
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    X = binarised(fr.datasets.synthetic(138_000, 27_000, 20_000_000))
    matrix = X.matrix
    BPR(iterations=1, num_threads=2).fit(binarised(fr.datasets.movielens_small()))  # warm up
    times: dict[str, list[float]] = {"fastrec.BPR": [], "implicit BPR": []}
    for _ in range(repeats):
        start = time.perf_counter()
        BPR(factors=64, iterations=iterations, random_state=0, num_threads=2).fit(X)
        times["fastrec.BPR"].append(time.perf_counter() - start)
        peer = BayesianPersonalizedRanking(
            factors=64, iterations=iterations, num_threads=2, random_state=0
        )
        start = time.perf_counter()
        peer.fit(matrix, show_progress=False)
        times["implicit BPR"].append(time.perf_counter() - start)
        print({k: round(v[-1], 2) for k, v in times.items()}, flush=True)
    print(
        "synthetic(138_000, 27_000, 20_000_000) binarised, factors 64, "
        f"{iterations} iterations, 2 threads"
    )
    _report(times)


def naive_ease(matrix: sp.csr_matrix, l2: float) -> np.ndarray:
    """Steck's algorithm 1 as written, in NumPy/SciPy."""
    G = (matrix.T @ matrix).toarray().astype(np.float64)
    G[np.diag_indices(G.shape[0])] += l2
    P = np.linalg.inv(G)
    B = P / (-np.diag(P))
    B[np.diag_indices(G.shape[0])] = 0.0
    return B


def ease_speed(repeats: int = 3) -> None:
    train, _ = split_small()
    matrix = train.matrix.astype(np.float64)
    times: dict[str, list[float]] = {"fastrec.EASE": [], "NumPy inv": []}
    for _ in range(repeats):
        start = time.perf_counter()
        model = EASE(l2=500.0).fit(train)
        times["fastrec.EASE"].append(time.perf_counter() - start)
        start = time.perf_counter()
        B = naive_ease(matrix, 500.0)
        times["NumPy inv"].append(time.perf_counter() - start)
        diff = float(np.abs(B - model.weights_).max())
        del B
        print(
            {k: round(v[-1], 2) for k, v in times.items()},
            f"max |B - B_numpy| {diff:.2e}",
            flush=True,
        )
    print(f"ml-latest-small training split binarised: {train.n_items} items, l2 500, float64")
    _report(times)


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "quality"
    if what == "quality":
        quality()
    elif what == "negatives":
        popular_negatives()
    elif what == "bpr-epoch":
        bpr_epoch()
    elif what == "bpr-speed":
        bpr_speed(int(sys.argv[2]) if len(sys.argv) > 2 else 3)
    elif what == "ease-speed":
        ease_speed()
    else:
        raise SystemExit(__doc__)
