"""ALS: CG half-sweeps of both backends vs the dense NumPy reference, and one
full iteration vs implicit's conjugate-gradient ALS on the same factors.

Run with ``python -m pytest bench/test_bench_als.py --benchmark-only``;
``FASTREC_BENCH_SCALE=1.0`` gives the ML-20M shape of ``fastrec bench``.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastrec as fr
from fastrec import _backend
from fastrec.models.als import half_sweep
from tests.reference_als import half_sweep_cg

FACTORS = 64
REG = 0.01
ALPHA = 1.0


@pytest.fixture(scope="module")
def setup(bench_scale):
    n_users = max(2000, int(138_000 * bench_scale))
    n_items = max(1000, int(27_000 * bench_scale))
    nnz = max(50_000, int(20_000_000 * bench_scale))
    X = fr.datasets.synthetic(n_users, n_items, nnz, seed=0)
    rng = np.random.default_rng(0)
    U = (rng.random((n_users, FACTORS), dtype=np.float32) * 0.01).astype(np.float32)
    V = (rng.random((n_items, FACTORS), dtype=np.float32) * 0.01).astype(np.float32)
    user_items = X.matrix
    item_users = user_items.T.tocsr()
    return X, user_items, item_users, U, V


def _arrays(csr):
    return csr.indptr, csr.indices.astype(np.int32), csr.data.astype(np.float32)


def _iteration(user_items, item_users, U, V, backend, threads):
    with _backend.threads(threads):
        half_sweep(user_items, U, V, REG, ALPHA, True, "cg", 3, backend)
        half_sweep(item_users, V, U, REG, ALPHA, True, "cg", 3, backend)


@pytest.mark.parametrize("backend", ["numba", "cython"])
def test_als_iteration_fastrec(benchmark, setup, backend, bench_threads):
    X, user_items, item_users, U0, V0 = setup
    ui, iu = _arrays(user_items), _arrays(item_users)
    U, V = U0.copy(), V0.copy()
    _iteration(ui, iu, U, V, backend, bench_threads)  # compile outside the timing
    benchmark.group = f"als implicit iteration, factors {FACTORS}"
    benchmark.pedantic(
        _iteration, args=(ui, iu, U, V, backend, bench_threads), rounds=3, iterations=1
    )
    assert np.isfinite(U).all() and np.isfinite(V).all()


def test_als_iteration_implicit(benchmark, setup, bench_threads):
    als = pytest.importorskip("implicit.cpu._als")
    from threadpoolctl import threadpool_limits

    X, user_items, item_users, U0, V0 = setup
    # implicit takes the confidence itself: c = 1 + alpha * r, as fastrec uses
    cui = user_items.copy()
    cui.data = 1.0 + ALPHA * cui.data
    ciu = item_users.copy()
    ciu.data = 1.0 + ALPHA * ciu.data
    U, V = U0.copy(), V0.copy()

    def iteration():
        with threadpool_limits(1, user_api="blas"):
            als.least_squares_cg(cui, U, V, REG, num_threads=bench_threads, cg_steps=3)
            als.least_squares_cg(ciu, V, U, REG, num_threads=bench_threads, cg_steps=3)

    benchmark.group = f"als implicit iteration, factors {FACTORS}"
    benchmark.pedantic(iteration, rounds=3, iterations=1)


@pytest.fixture(scope="module")
def subset(setup):
    """The first 200 users: small enough for the dense reference."""
    X, user_items, _, U, V = setup
    return user_items[:200], U[:200].copy(), V


@pytest.mark.parametrize("backend", ["numba", "cython"])
def test_half_sweep_subset_fastrec(benchmark, subset, backend, bench_threads):
    rows, U0, V = subset
    arrays = _arrays(rows)
    U = U0.copy()
    with _backend.threads(bench_threads):
        half_sweep(arrays, U, V, REG, ALPHA, True, "cg", 3, backend)
    benchmark.group = "als implicit CG half-sweep, 200 users"

    def run():
        U[:] = U0
        with _backend.threads(bench_threads):
            half_sweep(arrays, U, V, REG, ALPHA, True, "cg", 3, backend)

    benchmark(run)
    want = half_sweep_cg(rows, U0, V, REG, ALPHA, True, 3)
    # a sanity check only (tests/test_als.py holds the exact comparisons): the
    # tiny initial factors make these systems ill-conditioned, so float32 CG
    # and the float64 reference part by ~1% of the largest entry
    np.testing.assert_allclose(U, want, rtol=0, atol=2e-2 * float(np.abs(want).max()))


def test_half_sweep_subset_reference(benchmark, subset):
    rows, U0, V = subset
    benchmark.group = "als implicit CG half-sweep, 200 users"
    benchmark.pedantic(half_sweep_cg, args=(rows, U0, V, REG, ALPHA, True, 3), rounds=1)
