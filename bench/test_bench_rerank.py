"""MMR re-ranking, 10,000 users x 100 candidates -> 10: both backends vs a
vectorised NumPy MMR on the same candidates and similarity."""

from __future__ import annotations

import numpy as np
import pytest

import fastrec as fr
from fastrec.benchmarks.rerank import N_CANDIDATES, N_USERS, N, mmr_numpy
from fastrec.benchmarks.topk import _StaticFactors


@pytest.fixture(scope="module")
def candidates(bench_threads):
    n_items = 20_000
    X = fr.datasets.synthetic(N_USERS, n_items, 1_000_000, seed=0)
    S = fr.similarity(X, kind="cosine", axis="items", k=100)
    rng = np.random.default_rng(0)
    U = rng.normal(0, 0.1, (N_USERS, 32)).astype(np.float32)
    V = rng.normal(0, 0.1, (n_items, 32)).astype(np.float32)
    model = _StaticFactors(num_threads=bench_threads).fit(X, U, V)
    ids, scores = model.recommend(X.user_ids, n=N_CANDIDATES)
    return X, S, ids, scores


@pytest.mark.parametrize("backend", ["numba", "cython"])
def test_mmr_kernel(benchmark, candidates, backend, bench_threads):
    X, S, ids, scores = candidates
    idx = X.item_index(ids)
    fr.rerank.mmr(idx[:10], scores[:10], S, 0.3, N, backend=backend)  # compile outside the timing
    benchmark.group = f"mmr {N_USERS}x{N_CANDIDATES} -> {N}"
    got, _ = benchmark.pedantic(
        fr.rerank.mmr,
        args=(idx, scores, S, 0.3, N),
        kwargs={"backend": backend, "num_threads": bench_threads},
        rounds=5,
        iterations=1,
    )
    assert got.shape == (N_USERS, N)


@pytest.mark.parametrize("backend", ["numba", "cython"])
def test_mmr_raw_ids(benchmark, candidates, backend, bench_threads):
    X, S, ids, scores = candidates
    fr.rerank.mmr(ids[:10], scores[:10], S, 0.3, N, items=X, backend=backend)
    benchmark.group = f"mmr {N_USERS}x{N_CANDIDATES} -> {N}"
    benchmark.pedantic(
        fr.rerank.mmr,
        args=(ids, scores, S, 0.3, N),
        kwargs={"items": X, "backend": backend, "num_threads": bench_threads},
        rounds=5,
        iterations=1,
    )


def test_mmr_numpy_reference(benchmark, candidates):
    X, S, ids, scores = candidates
    idx = X.item_index(ids)
    S_sorted = S.sorted_indices()
    benchmark.group = f"mmr {N_USERS}x{N_CANDIDATES} -> {N}"
    benchmark.pedantic(mmr_numpy, args=(idx, scores, S_sorted, 0.3, N), rounds=3, iterations=1)
