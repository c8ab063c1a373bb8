"""pytest-benchmark suite for SVDpp: fastrec vs its naive reference vs Surprise.

Run: ``python -m pytest bench/test_bench_svdpp.py --benchmark-only``. The
kernels are compiled/loaded by a warm-up call before their timed rounds.
Surprise's ``SVDpp`` is timed on a 20,000-rating sample of ml-latest-small
(its per-rating re-summing of the implicit term makes a full fit take tens of
seconds or more); the side-by-side figures for BENCHMARKS.md come from
``fastrec.benchmarks.svdpp.compare``.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import fastrec as fr
from fastrec._backend import threads
from fastrec.models.svdpp import SVDpp

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from fastrec._kernels import svdpp as svdpp_kernels
from tests.reference_svdpp import svdpp_epoch as svdpp_epoch_reference  # noqa: E402

FACTORS = 20


@pytest.fixture(scope="module")
def movielens_train():
    return fr.split.random_split(fr.datasets.movielens_small(), test_size=0.2, seed=0)[0]


@pytest.fixture(scope="module")
def sample(movielens_train):
    """The first 20,000 training ratings (whole users) of ml-latest-small."""
    m = movielens_train.matrix
    n_users = int(np.searchsorted(m.indptr, 20_000))
    sub = m[:n_users].tocsr()
    return fr.Interactions.from_csr(sub)


def _epoch_inputs(X):
    rng = np.random.default_rng(0)
    csr = X.matrix
    params = [
        (rng.standard_normal(s) * 0.1).astype(np.float32)
        for s in ((X.n_users, FACTORS), (X.n_items, FACTORS), (X.n_items, FACTORS))
    ] + [np.zeros(X.n_users, np.float32), np.zeros(X.n_items, np.float32)]
    order = rng.permutation(X.n_users).astype(np.int32)
    layout = (
        csr.indptr.astype(np.int64),
        csr.indices.astype(np.int32),
        csr.data.astype(np.float32),
        order,
    )
    return layout, params


@pytest.mark.parametrize("backend", ["numba", "cython"])
def test_fastrec_fit_movielens_small(benchmark, movielens_train, backend):
    model = SVDpp(factors=FACTORS, random_state=0, backend=backend)
    model.fit(movielens_train)  # warm-up
    benchmark(model.fit, movielens_train)
    assert model.history_[-1]["train_rmse"] < model.history_[0]["train_rmse"]


@pytest.mark.parametrize("backend", ["numba", "cython"])
def test_fastrec_one_epoch_sample(benchmark, sample, backend):
    layout, params = _epoch_inputs(sample)
    kernel = svdpp_kernels.get(backend).svdpp_epoch
    bounds = np.array([0, sample.n_users], dtype=np.int64)
    loss = np.zeros(1)

    def run():
        with threads(1):
            kernel(*layout, bounds, 3.5, 0.007, 0.02, *[a.copy() for a in params], loss)

    run()
    benchmark(run)


def test_naive_reference_one_epoch_sample(benchmark, sample):
    layout, params = _epoch_inputs(sample)
    benchmark.pedantic(svdpp_epoch_reference, args=(*layout, 3.5, 0.007, 0.02, *params), rounds=1)


def test_surprise_svdpp_fit_sample(benchmark, sample):
    pytest.importorskip("surprise")
    pd = pytest.importorskip("pandas")
    from surprise import Dataset, Reader
    from surprise import SVDpp as SurpriseSVDpp

    coo = sample.matrix.tocoo()
    frame = pd.DataFrame({"u": coo.row, "i": coo.col, "r": coo.data.astype(np.float64)})
    trainset = Dataset.load_from_df(frame, Reader(rating_scale=(0.5, 5))).build_full_trainset()
    algo = SurpriseSVDpp(n_factors=FACTORS, n_epochs=1, random_state=0)
    benchmark.pedantic(algo.fit, args=(trainset,), rounds=1)
