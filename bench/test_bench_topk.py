"""Top-k selection: both backends vs a NumPy argpartition reference, and batch
recommend vs implicit's, on the same factors."""

from __future__ import annotations

import numpy as np
import pytest

import fastrec as fr
from fastrec.benchmarks.topk import _StaticFactors


@pytest.fixture(scope="module")
def scores():
    rng = np.random.default_rng(0)
    return rng.normal(size=(2000, 20_000)).astype(np.float32)


def numpy_topk(scores, k):
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(vals, order, axis=1)


@pytest.mark.parametrize("backend", ["numba", "cython"])
def test_topk_kernel(benchmark, scores, backend, bench_threads):
    fr.topk(scores[:10], 10, backend=backend)  # compile outside the timing
    benchmark.group = "topk 2000x20000 k=10"
    idx, _ = benchmark(fr.topk, scores, 10, backend=backend, num_threads=bench_threads)
    np.testing.assert_array_equal(np.sort(idx, axis=1), np.sort(numpy_topk(scores, 10)[0], axis=1))


def test_topk_numpy_reference(benchmark, scores):
    benchmark.group = "topk 2000x20000 k=10"
    benchmark(numpy_topk, scores, 10)


@pytest.fixture(scope="module")
def factor_setup(bench_scale):
    n_users = max(2000, int(138_000 * bench_scale))
    n_items = max(1000, int(27_000 * bench_scale))
    X = fr.datasets.synthetic(n_users, n_items, max(50_000, int(20_000_000 * bench_scale)))
    rng = np.random.default_rng(0)
    U = rng.normal(0, 0.1, (n_users, 64)).astype(np.float32)
    V = rng.normal(0, 0.1, (n_items, 64)).astype(np.float32)
    return X, U, V


def test_recommend_all_users_fastrec(benchmark, factor_setup, bench_threads):
    X, U, V = factor_setup
    model = _StaticFactors(num_threads=bench_threads).fit(X, U, V)
    model.recommend(X.user_ids[:10], n=10)
    benchmark.group = "recommend all users, top 10"
    benchmark.pedantic(
        model.recommend, args=(X.user_ids,), kwargs={"n": 10}, rounds=3, iterations=1
    )


@pytest.mark.parametrize("blas_threads", ["1", "bench"])
def test_recommend_all_users_implicit(benchmark, factor_setup, bench_threads, blas_threads):
    # implicit multiplies with NumPy's BLAS, then selects on its own threads:
    # both BLAS settings are timed (its warning asks for one BLAS thread)
    from threadpoolctl import threadpool_limits

    als = pytest.importorskip("implicit.cpu.als")
    X, U, V = factor_setup
    peer = als.AlternatingLeastSquares(factors=64, num_threads=bench_threads)
    peer.user_factors, peer.item_factors = U, V
    users = np.arange(X.n_users)
    benchmark.group = "recommend all users, top 10"
    blas = 1 if blas_threads == "1" else bench_threads
    with threadpool_limits(blas, user_api="blas"):
        benchmark.pedantic(
            peer.recommend, args=(users, X.matrix), kwargs={"N": 10}, rounds=3, iterations=1
        )
