"""Item-item top-20 similarity: fastrec (both backends, pearson and cosine) vs a
naive dense NumPy product, implicit's CosineRecommender and sparse_dot_topn.

Run with ``python -m pytest bench/test_bench_similarity.py --benchmark-only``;
``FASTREC_BENCH_SCALE=1.0`` gives the ML-20M shape (the naive
reference is skipped above 5,000 items: it builds the dense items x items
matrix).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import fastrec as fr
from fastrec.neighbours import similarity

K = 20


@pytest.fixture(scope="module")
def ratings(bench_scale):
    n_users = max(2000, int(138_000 * bench_scale))
    n_items = max(1000, int(27_000 * bench_scale))
    nnz = max(50_000, int(20_000_000 * bench_scale))
    return fr.datasets.synthetic(n_users, n_items, nnz, seed=0).matrix


def _normalised_items(X: sp.csr_matrix) -> sp.csr_matrix:
    items = X.T.tocsr().astype(np.float32)
    norms = np.sqrt(np.asarray(items.multiply(items).sum(axis=1)).ravel())
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return (sp.diags(inv) @ items).tocsr()


def naive_cosine_topk(X: sp.csr_matrix, k: int) -> np.ndarray:
    """Dense NumPy: full items x items cosine, then argsort per row."""
    A = _normalised_items(X).toarray()
    S = A @ A.T
    np.fill_diagonal(S, -np.inf)
    return np.argsort(-S, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("kind", ["pearson", "cosine"])
@pytest.mark.parametrize("backend", ["numba", "cython"])
def test_similarity_fastrec(benchmark, ratings, kind, backend, bench_threads):
    similarity(ratings[:50], kind=kind, axis="items", k=K, backend=backend)  # compile
    benchmark.group = "item-item similarity top-20"
    S = benchmark.pedantic(
        similarity,
        args=(ratings,),
        kwargs=dict(kind=kind, axis="items", k=K, backend=backend, num_threads=bench_threads),
        rounds=3,
        iterations=1,
    )
    assert S.shape == (ratings.shape[1], ratings.shape[1])
    assert np.diff(S.indptr).max() <= K


def test_similarity_naive_dense(benchmark, ratings):
    if ratings.shape[1] > 5000:
        pytest.skip("dense items x items reference is too large at this scale")
    benchmark.group = "item-item similarity top-20"
    top = benchmark.pedantic(naive_cosine_topk, args=(ratings, K), rounds=3, iterations=1)
    fast = similarity(ratings, kind="cosine", axis="items", k=K)
    # same neighbours for rows whose k-th neighbour is not tied (almost all)
    agree = np.mean(
        [
            np.intersect1d(top[i], fast.indices[fast.indptr[i] : fast.indptr[i + 1]]).size
            / max(1, fast.indptr[i + 1] - fast.indptr[i])
            for i in range(top.shape[0])
            if fast.indptr[i + 1] - fast.indptr[i] == K
        ]
    )
    assert agree > 0.99


def test_similarity_implicit_cosine(benchmark, ratings, bench_threads):
    nn = pytest.importorskip("implicit.nearest_neighbours")
    X = ratings.astype(np.float64)

    def fit():
        model = nn.CosineRecommender(K=K, num_threads=bench_threads)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X, show_progress=False)  # implicit 0.7: users x items in, items compared
        return model.similarity

    benchmark.group = "item-item similarity top-20"
    S = benchmark.pedantic(fit, rounds=3, iterations=1)
    assert S.shape == (ratings.shape[1], ratings.shape[1])


def test_similarity_sparse_dot_topn(benchmark, ratings, bench_threads):
    sdt = pytest.importorskip("sparse_dot_topn")

    def run():
        A = _normalised_items(ratings)
        return sdt.sp_matmul_topn(A, A.T.tocsr(), top_n=K, sort=True, n_threads=bench_threads)

    benchmark.group = "item-item similarity top-20"
    S = benchmark.pedantic(run, rounds=3, iterations=1)
    assert S.shape == (ratings.shape[1], ratings.shape[1])
