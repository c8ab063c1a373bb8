"""pytest-benchmark suite of the KNN models: fastrec vs naive reference vs scikit-surprise.

Run: ``pytest bench/test_bench_knn.py --benchmark-only``. Each case times
``fit`` + ``predict`` of Pearson KNNWithMeans (k=40, min_support=1) on the same
80/20 split; kernels are compiled before the timed closures. The naive
reference (tests/reference_knn.py) runs on a small slice only. The full
comparison with peak memory is ``fastrec.benchmarks.knn.compare()``.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastrec as fr
from fastrec import _backend
from fastrec.models.knn import ItemKNN, UserKNN

BACKENDS = _backend.available_backends()
MODELS = {"user": UserKNN, "item": ItemKNN}


@pytest.fixture(scope="module")
def split():
    X = fr.datasets.movielens_small()
    train, test = fr.split.random_split(X, test_size=0.2, seed=0)
    u, i, y, _ = test.to_arrays()
    return train, test.user_ids[u], test.item_ids[i], y


@pytest.fixture(scope="module")
def small():
    X = fr.datasets.synthetic(60, 80, 1_500, seed=0)
    train, test = fr.split.random_split(X, test_size=0.2, seed=0)
    u, i, y, _ = test.to_arrays()
    return train, test, u, i, y


def _fit_predict(cls, backend, train, raw_u, raw_i):
    model = cls(k=40, similarity="pearson", shrinkage=0.0, num_threads=2, backend=backend)
    model.fit(train)
    return model.predict(raw_u, raw_i)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("based", sorted(MODELS))
def test_fastrec_fit_predict(benchmark, split, based, backend):
    train, raw_u, raw_i, y = split
    _fit_predict(MODELS[based], backend, train, raw_u[:100], raw_i[:100])  # compile
    pred = benchmark(_fit_predict, MODELS[based], backend, train, raw_u, raw_i)
    assert np.sqrt(np.mean((pred - y) ** 2)) < 1.0


@pytest.mark.parametrize("based", sorted(MODELS))
def test_surprise_fit_predict(benchmark, split, based):
    pd = pytest.importorskip("pandas")
    surprise = pytest.importorskip("surprise")
    train, raw_u, raw_i, y = split
    tu, ti, ty, _ = train.to_arrays()
    df = pd.DataFrame({"u": train.user_ids[tu], "i": train.item_ids[ti], "r": ty})
    reader = surprise.Reader(rating_scale=(float(ty.min()), float(ty.max())))
    trainset = surprise.Dataset.load_from_df(df, reader).build_full_trainset()
    pairs = list(zip(raw_u, raw_i, y))

    def run():
        algo = surprise.KNNWithMeans(
            k=40,
            sim_options={"name": "pearson", "user_based": based == "user", "min_support": 1},
            verbose=False,
        ).fit(trainset)
        return np.array([p.est for p in algo.test(pairs)])

    pred = benchmark.pedantic(run, rounds=1, iterations=1)
    assert np.sqrt(np.mean((pred - y) ** 2)) < 1.0


@pytest.mark.parametrize("based", sorted(MODELS))
def test_naive_reference_small(benchmark, small, based):
    from tests.reference_knn import NaiveKNN

    train, test, u, i, y = small
    R = train.matrix.toarray()
    M = np.zeros(R.shape, dtype=bool)
    M[train.entry_users(), train.matrix.indices] = True

    def run():
        ref = NaiveKNN(R, M, based == "user", k=40)
        return np.array([ref.predict(a, b) for a, b in zip(u, i)])

    want = benchmark.pedantic(run, rounds=1, iterations=1)
    got = _fit_predict(MODELS[based], "auto", train, test.user_ids[u], test.item_ids[i])
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("based", sorted(MODELS))
def test_fastrec_small(benchmark, small, based, backend):
    train, test, u, i, y = small
    raw_u, raw_i = test.user_ids[u], test.item_ids[i]
    _fit_predict(MODELS[based], backend, train, raw_u, raw_i)
    benchmark(_fit_predict, MODELS[based], backend, train, raw_u, raw_i)


@pytest.mark.parametrize("backend", BACKENDS)
def test_userknn_recommend_batch(benchmark, split, backend):
    train = split[0]
    model = UserKNN(num_threads=2, backend=backend).fit(train)
    model.recommend(train.user_ids[:2], n=10)
    ids, _ = benchmark(model.recommend, train.user_ids, 10)
    assert ids.shape == (train.n_users, 10)
