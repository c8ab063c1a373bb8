"""List metrics beyond accuracy (intra-list diversity, novelty, gini, coverage):
hand-computed examples, naive references, evaluate, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import fastrec as fr
from fastrec import metrics as M
from tests.reference_rerank import (
    cosine_dense_reference,
    gini_reference,
    intra_list_diversity_reference,
    novelty_reference,
)

# asymmetric on purpose: S[1, 2] = 0.2, S[2, 1] = 0.4
S_HAND = sp.csr_matrix(np.array([[0.0, 0.5, 0.0], [0.5, 0.0, 0.2], [0.0, 0.4, 0.0]]))


def test_intra_list_diversity_hand_example():
    rec = np.array([[0, 1, 2], [2, -1, 0], [1, -1, -1]])
    # ordered pairs of [0, 1, 2]: .5 + 0 + .5 + .2 + 0 + .4 = 1.6 over 6 pairs
    per_user = M.intra_list_diversity(rec, S_HAND, per_user=True)
    np.testing.assert_allclose(per_user[:2], [1 - 1.6 / 6, 1.0])
    assert math.isnan(per_user[2])  # one item: no pair
    assert M.intra_list_diversity(rec, S_HAND) == pytest.approx((1 - 1.6 / 6 + 1.0) / 2)
    assert math.isnan(M.intra_list_diversity(np.array([[1, -1]]), S_HAND))
    # a stored diagonal is never used
    with_diag = S_HAND + sp.eye(3)
    assert M.intra_list_diversity(rec, with_diag) == pytest.approx((1 - 1.6 / 6 + 1.0) / 2)


def test_intra_list_diversity_accepts_similarity_output():
    # fr.similarity returns each row by descending similarity (unsorted CSR indices)
    X = fr.datasets.synthetic(80, 30, 800, seed=1)
    S = fr.similarity(X, kind="cosine", axis="items", k=5)
    assert not S.has_sorted_indices
    rec = np.array([np.random.default_rng(r).permutation(30)[:6] for r in range(20)])
    want = intra_list_diversity_reference(rec, S.toarray().astype(np.float64))
    np.testing.assert_allclose(M.intra_list_diversity(rec, S, per_user=True), want, rtol=1e-6)


@st.composite
def lists_and_similarity(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    n_items = draw(st.integers(1, 25))
    n_rows = draw(st.integers(0, 12))
    k = draw(st.integers(1, 12))
    rec = np.full((n_rows, k), -1, dtype=np.int64)
    for r in range(n_rows):
        take = min(k, n_items)
        rec[r, :take] = rng.permutation(n_items)[:take]
    rec[rng.random(rec.shape) < draw(st.sampled_from([0.0, 0.3]))] = -1
    density = draw(st.sampled_from([0.0, 0.2, 1.0]))
    dense = np.where(
        rng.random((n_items, n_items)) < density, rng.uniform(-1, 1, (n_items,) * 2), 0
    )
    return rec, dense


@settings(max_examples=25)
@given(case=lists_and_similarity())
def test_intra_list_diversity_matches_reference(case):
    rec, dense = case
    want = intra_list_diversity_reference(rec, dense)
    got = M.intra_list_diversity(rec, sp.csr_matrix(dense), per_user=True)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    valid = ~np.isnan(want)
    mean = M.intra_list_diversity(rec, sp.csr_matrix(dense))
    if valid.any():
        assert mean == pytest.approx(want[valid].mean(), rel=1e-12)
    else:
        assert math.isnan(mean)


def test_intra_list_diversity_exact_cosine_of_interactions(monkeypatch):
    X = fr.datasets.synthetic(60, 25, 500, seed=2)
    dense = X.matrix.toarray().astype(np.float64)
    dense[:, 3] = 0  # an item without entries: similarity 0 to every other
    X0 = fr.Interactions.from_csr(sp.csr_matrix(dense), X.user_ids, X.item_ids)
    rng = np.random.default_rng(0)
    rec = np.array([rng.permutation(25)[:8] for _ in range(30)])
    rec[0, 1:] = -1
    rec[1, :3] = [3, 4, 5]
    cos = cosine_dense_reference(dense)
    want = intra_list_diversity_reference(rec, cos)
    got = M.intra_list_diversity(rec, X0, per_user=True)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    # the Gram matrix one row a block (7 entries < 25 listed items), then 2 rows a block
    monkeypatch.setattr(M, "_GRAM_BLOCK", 7)
    np.testing.assert_allclose(M.intra_list_diversity(rec, X0, per_user=True), want, atol=1e-12)
    monkeypatch.setattr(M, "_GRAM_BLOCK", 60)  # 2 rows a block
    np.testing.assert_allclose(M.intra_list_diversity(rec, X0, per_user=True), want, atol=1e-12)
    # the same as fr.similarity's cosine with every neighbour kept (float64)
    S = fr.similarity(X0, kind="cosine", axis="items", k=25, dtype=np.float64)
    np.testing.assert_allclose(M.intra_list_diversity(rec, S, per_user=True), want, atol=1e-12)


def test_novelty_hand_example():
    # 4 users; item 0 seen by all, item 1 by one, item 2 by none, item 3 by two
    train = sp.csr_matrix(
        np.array([[1, 1, 0, 1], [1, 0, 0, 1], [1, 0, 0, 0], [2, 0, 0, 0]], dtype=float)
    )
    rec = np.array([[0, 1], [3, -1], [2, 3], [-1, -1]])
    # bits: item 0: 0, item 1: log2 4 = 2, item 2: counted as seen once: 2, item 3: 1
    per_user = M.novelty(rec, train, per_user=True)
    np.testing.assert_allclose(per_user[:3], [1.0, 1.0, 1.5])
    assert math.isnan(per_user[3])
    assert M.novelty(rec, train) == pytest.approx(3.5 / 3)
    X = fr.Interactions.from_csr(train)
    assert M.novelty(rec, X) == pytest.approx(3.5 / 3)
    assert M.novelty(rec, [1.0, 0.25, 0.25, 0.5]) == pytest.approx(3.5 / 3)


@settings(max_examples=25)
@given(case=lists_and_similarity(), seed=st.integers(0, 1000))
def test_novelty_and_gini_match_reference(case, seed):
    rec, dense = case
    n_items = dense.shape[0]
    rng = np.random.default_rng(seed)
    train = sp.random(7, n_items, density=0.3, random_state=rng, format="csr")
    counts = (train.toarray() != 0).sum(axis=0)
    share = np.maximum(counts, 1) / 7
    want = novelty_reference(rec, share)
    np.testing.assert_allclose(M.novelty(rec, train, per_user=True), want, rtol=1e-12)
    g = M.gini(rec, n_items)
    g_ref = gini_reference(rec, n_items)
    if math.isnan(g_ref):
        assert math.isnan(g)
    else:
        assert g == pytest.approx(g_ref, rel=1e-12, abs=1e-12)


def test_gini_hand_examples():
    # counts [2, 1, 1, 0] -> sorted [0, 1, 1, 2]: (-3*0 - 1*1 + 1*1 + 3*2) / (3 * 4)
    assert M.gini(np.array([[0, 1], [0, 2]]), 4) == pytest.approx(0.5)
    assert M.gini(np.array([[0, 1], [2, 3]]), 4) == 0.0  # every item once
    assert M.gini(np.array([[2, -1], [2, -1]]), 4) == pytest.approx(1.0)  # one item takes all
    assert M.gini(np.array([[0]]), 1) == 0.0
    assert math.isnan(M.gini(np.array([[-1, -1]]), 3))


def test_coverage_keeps_its_behaviour():
    rec = np.array([[0, 1, -1], [1, 5, -1]])
    assert M.coverage(rec, 10) == pytest.approx(3 / 10)
    assert M.coverage(rec.ravel(), 10) == pytest.approx(3 / 10)  # any shape, as before


def test_metrics_bad_input():
    rec = np.array([[0, 1, 2]])
    with pytest.raises(ValueError, match=r"recommended holds item 3 at position \(0, 1\)"):
        M.intra_list_diversity(np.array([[0, 3]]), S_HAND)
    with pytest.raises(ValueError, match=r"recommended holds item -2 at position \(0, 0\)"):
        M.novelty(np.array([[-2, 1]]), S_HAND)
    with pytest.raises(ValueError, match=r"recommended holds item 7 at position \(1, 0\)"):
        M.gini(np.array([[0, 1], [7, 1]]), 4)
    with pytest.raises(ValueError, match=r"recommended holds item 10 at position \(0, 1\)"):
        M.coverage(np.array([[0, 10]]), 10)
    with pytest.raises(ValueError, match=r"recommended holds item -3 at position \(0, 1\)"):
        M.coverage(np.array([[0, -3]]), 10)
    with pytest.raises(ValueError, match=r"item_similarity must be square .* got shape \(3, 4\)"):
        M.intra_list_diversity(rec, sp.csr_matrix((3, 4)))
    with pytest.raises(
        ValueError, match=r"item 1 twice in row 0 \(positions \(0, 0\) and \(0, 2\)\)"
    ):
        M.intra_list_diversity(np.array([[1, 0, 1]]), S_HAND)
    with pytest.raises(ValueError, match=r"recommended must hold integer item indices"):
        M.gini(np.array([[0.0, 1.0]]), 3)
    with pytest.raises(ValueError, match=r"recommended must be 2-D"):
        M.novelty(np.array([0, 1]), S_HAND)
    with pytest.raises(
        ValueError, match=r"popularity shares must be in \(0, 1\]: found 0.0 at position 1"
    ):
        M.novelty(rec, [0.5, 0.0, 1.0])
    with pytest.raises(
        ValueError, match=r"popularity shares must be in \(0, 1\]: found 3.0 at position 2"
    ):
        M.novelty(rec, [0.5, 0.5, 3.0])
    with pytest.raises(ValueError, match=r"n_items must be >= 1, got 0"):
        M.gini(rec, 0)
    bad = S_HAND.copy()
    bad.data[0] = np.nan
    with pytest.raises(ValueError, match=r"item_similarity.data must be finite"):
        M.intra_list_diversity(rec, bad)


def test_evaluate_list_metrics():
    X = fr.datasets.synthetic(150, 60, 3000, seed=3)
    train, test = fr.split.random_split(X, test_size=0.2, seed=0)
    model = fr.ALS(factors=8, iterations=3, random_state=0).fit(train)
    names = ("precision", "coverage", "diversity", "novelty", "gini")
    got = fr.evaluate(model, train, test, metrics=names, k=5)
    assert list(got)[: len(names)] == list(names)
    # the same lists through the metric functions
    users = np.unique(test.entry_users())
    idx, _ = model._recommend_indices(users, 5)
    assert got["coverage"] == pytest.approx(M.coverage(idx, train.n_items))
    assert got["diversity"] == pytest.approx(M.intra_list_diversity(idx, train))
    assert got["novelty"] == pytest.approx(M.novelty(idx, train))
    assert got["gini"] == pytest.approx(M.gini(idx, train.n_items))
    S = fr.similarity(train, kind="cosine", axis="items", k=10)
    with_s = fr.evaluate(model, train, test, metrics=("diversity",), k=5, item_similarity=S)
    assert with_s["diversity"] == pytest.approx(M.intra_list_diversity(idx, S))
    assert with_s["diversity"] != pytest.approx(got["diversity"])
    with pytest.raises(ValueError, match=r"metrics\[1\] = 'serendipity' is not one of"):
        fr.evaluate(model, train, test, metrics=("diversity", "serendipity"))
    with pytest.raises(ValueError, match=r"item_similarity must be square"):
        fr.evaluate(
            model, train, test, metrics=("diversity",), item_similarity=sp.csr_matrix((60, 59))
        )
