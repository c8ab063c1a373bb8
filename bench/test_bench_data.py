"""Building the CSR of Interactions from raw triples vs scipy's COO -> CSR.

scipy sums duplicates silently and keeps no id vocabularies, so it does less
work than ``Interactions.from_arrays`` (which also checks for duplicates and
maps raw ids); it is the floor a user would otherwise reach for.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import fastrec as fr


@pytest.fixture(scope="module")
def triples(bench_scale):
    n = max(100_000, int(20_000_000 * bench_scale))
    X = fr.datasets.synthetic(
        max(1000, int(138_000 * bench_scale)), max(500, int(27_000 * bench_scale)), n, seed=0
    )
    u, i, r, _ = X.to_arrays()
    perm = np.random.default_rng(0).permutation(X.nnz)
    return u[perm].astype(np.int64), i[perm].astype(np.int64), r[perm].astype(np.float64)


def test_from_arrays(benchmark, triples):
    benchmark.group = "triples -> CSR"
    X = benchmark(fr.Interactions.from_arrays, *triples)
    assert X.nnz == triples[0].shape[0]


def test_scipy_coo_to_csr(benchmark, triples):
    users, items, ratings = triples
    benchmark.group = "triples -> CSR"
    shape = (int(users.max()) + 1, int(items.max()) + 1)
    benchmark(lambda: sp.coo_matrix((ratings, (users, items)), shape=shape).tocsr())


def test_synthetic_generation(benchmark, bench_scale):
    benchmark.group = "synthetic data"
    shape = (
        max(1000, int(138_000 * bench_scale)),
        max(500, int(27_000 * bench_scale)),
        max(100_000, int(20_000_000 * bench_scale)),
    )
    benchmark.pedantic(fr.datasets.synthetic, args=shape, rounds=3, iterations=1)
