"""Splits, metrics (hand-worked and against naive loops) and evaluate()."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

import fastrec as fr
from fastrec import metrics as M
from tests.reference_core import auc_reference, ranking_reference


@pytest.fixture(scope="module")
def ml():
    return fr.datasets.movielens_small()


def _pairs(X):
    u, i, r, _ = X.to_arrays()
    return set(zip(u.tolist(), i.tolist()))


def test_random_split_partitions_deterministically(ml):
    tr, te = fr.split.random_split(ml, test_size=0.2, seed=0)
    tr2, te2 = fr.split.random_split(ml, test_size=0.2, seed=0)
    assert te.nnz == round(0.2 * ml.nnz) and tr.nnz + te.nnz == ml.nnz
    assert _pairs(tr) | _pairs(te) == _pairs(ml) and not (_pairs(tr) & _pairs(te))
    assert (te.matrix != te2.matrix).nnz == 0
    assert tr.same_vocabulary(ml) and te.same_vocabulary(ml)
    # test rows whose user has no training data are kept, not dropped
    tr3, te3 = fr.split.random_split(fr.Interactions.from_arrays([1, 2, 2], [1, 1, 2]), 1, seed=1)
    assert tr3.nnz + te3.nnz == 3


def test_leave_one_out_by_time_and_random(ml):
    tr, te = fr.split.leave_one_out(ml, by="time", seed=0)
    assert te.nnz == ml.n_users  # every user has >= 20 ratings
    m = ml.matrix
    for u, ts in zip(te.entry_users()[:100], te.timestamps[:100]):
        assert ts == ml.timestamps[m.indptr[u] : m.indptr[u + 1]].max()
    trr, ter = fr.split.leave_one_out(ml, by="random", seed=0)
    assert ter.nnz == ml.n_users and (ter.matrix != te.matrix).nnz > 0
    single = fr.Interactions.from_arrays([1, 2, 2], [1, 1, 2], timestamps=[5, 1, 2])
    tr1, te1 = fr.split.leave_one_out(single)
    assert te1.nnz == 1 and te1.matrix[1, 1] == 1 and tr1.matrix[0, 0] == 1
    with pytest.raises(ValueError, match="needs timestamps"):
        fr.split.leave_one_out(fr.Interactions.from_arrays([1, 1], [1, 2]))
    with pytest.raises(ValueError, match="by must be one of"):
        fr.split.leave_one_out(ml, by="date")


def test_kfold_covers_each_entry_once(ml):
    folds = list(fr.split.kfold(ml, n_splits=4, seed=2))
    assert len(folds) == 4
    counts = np.zeros(ml.nnz)
    for tr, te in folds:
        assert tr.nnz + te.nnz == ml.nnz
        counts += np.isin(np.arange(ml.nnz), np.flatnonzero(_mask_in(ml, te)))
    assert (counts == 1).all()
    with pytest.raises(ValueError, match="n_splits must be >= 2"):
        next(fr.split.kfold(ml, n_splits=1))


def _mask_in(X, sub):
    keys = X.entry_users().astype(np.int64) * X.n_items + X.matrix.indices
    sk = sub.entry_users().astype(np.int64) * X.n_items + sub.matrix.indices
    return np.isin(keys, sk)


def test_split_bad_sizes(ml):
    for bad in (0.0, 1.0, -1, ml.nnz, True, "0.2"):
        with pytest.raises(ValueError, match="test_size"):
            fr.split.random_split(ml, test_size=bad)


def test_rating_errors_hand_worked():
    assert M.rmse([1, 2, 3], [1, 2, 5]) == pytest.approx(np.sqrt(4 / 3))
    assert M.mae([1, 2, 3], [2, 2, 5]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="y_true has 2 entries but y_pred has 1"):
        M.rmse([1, 2], [1])
    with pytest.raises(ValueError, match="y_pred must be finite: found nan at position 1"):
        M.mae([1, 2], [1, np.nan])


def test_ranking_hand_worked():
    rec = np.array([[1, 2, 3], [4, 5, -1], [0, 1, 2]])
    rel = [[2, 9], [7], []]
    v = M.ranking_metrics(rec, rel, k=3)
    assert v["precision"][0] == pytest.approx(1 / 3)
    assert v["recall"][0] == pytest.approx(0.5)
    assert v["ndcg"][0] == pytest.approx((1 / np.log2(3)) / (1 + 1 / np.log2(3)))
    assert v["map"][0] == pytest.approx(0.25)
    assert v["mrr"][0] == pytest.approx(0.5) and v["hit_rate"][0] == 1
    assert v["precision"][1] == 0 and np.isnan(v["precision"][2])
    assert M.precision_at_k(rec, rel, k=3) == pytest.approx(1 / 6)  # mean over 2 users
    assert M.hit_rate_at_k(rec, rel, k=1) == 0.0
    assert M.coverage(rec, 10) == pytest.approx(6 / 10)
    with pytest.raises(ValueError, match="k=4 is larger"):
        M.recall_at_k(rec, rel, k=4)
    assert M.auc(np.array([[0.1, 0.9, 0.5, 0.2]]), [[2]]) == pytest.approx(2 / 3)


@given(seed=st.integers(0, 10_000), n=st.integers(1, 30), m=st.integers(1, 25), k=st.integers(1, 8))
def test_ranking_metrics_match_naive_loops(seed, n, m, k):
    rng = np.random.default_rng(seed)
    rec = np.array(
        [rng.permutation(m)[: min(k, m)].tolist() + [-1] * max(0, k - m) for _ in range(n)]
    )
    rel = [rng.choice(m, size=rng.integers(0, m + 1), replace=False) for _ in range(n)]
    fast = M.ranking_metrics(rec, rel, k)
    ref = ranking_reference(rec, rel, k)
    for name in ref:
        np.testing.assert_allclose(fast[name], ref[name], rtol=1e-12, equal_nan=True)
    scores = rng.integers(0, 4, (n, m)).astype(float)
    excl = [rng.choice(m, size=rng.integers(0, m), replace=False) for _ in range(n)]
    ex = sp.lil_matrix((n, m))
    for r, cols in enumerate(excl):
        ex[r, cols] = 1
    np.testing.assert_allclose(
        M.auc(scores, rel, ex.tocsr(), per_user=True),
        auc_reference(scores, rel, excl),
        rtol=1e-12,
        equal_nan=True,
    )


def test_ranking_metrics_are_vectorised_fast():
    import time

    rng = np.random.default_rng(0)
    n, k = 100_000, 10
    rec = rng.integers(0, 5000, (n, k))
    rows = rng.integers(0, n, 1_000_000)
    cols = rng.integers(0, 5000, 1_000_000)
    rel = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n, 5000))
    t0 = time.perf_counter()
    M.ranking_metrics(rec, rel, k)
    assert time.perf_counter() - t0 < 10  # seconds, not minutes, on a shared 2-core box


def test_evaluate_with_popularity(ml):
    tr, te = fr.split.random_split(ml, seed=0)
    model = fr.Popularity()
    res = fr.evaluate(
        model,
        tr,
        te,
        metrics=(
            "precision",
            "recall",
            "ndcg",
            "map",
            "hit_rate",
            "mrr",
            "auc",
            "coverage",
            "rmse",
            "mae",
        ),
        k=10,
    )
    assert 0 < res["precision"] < 1 and 0 < res["ndcg"] < 1 and 0.5 < res["auc"] < 1
    assert res["n_users"] == np.unique(te.entry_users()).size
    # naive check of precision: recommend, exclude seen, compare with test sets
    users = np.unique(te.entry_users())
    ids, _ = model.recommend(ml.user_ids[users], n=10)
    idx = ml.item_index(ids.ravel()).reshape(ids.shape)
    rel = [te.matrix.indices[te.matrix.indptr[u] : te.matrix.indptr[u + 1]] for u in users]
    assert res["precision"] == pytest.approx(ranking_reference(idx, rel, 10)["precision"].mean())
    pred = model.predict(ml.user_ids[te.entry_users()], ml.item_ids[te.matrix.indices])
    assert res["rmse"] == pytest.approx(M.rmse(te.matrix.data, pred))
    with pytest.raises(ValueError, match=r"metrics\[1\] = 'f1'"):
        fr.evaluate(model, tr, te, metrics=("precision", "f1"))
