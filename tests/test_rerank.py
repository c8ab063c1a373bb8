"""MMR re-ranking (fastrec.rerank.mmr): both backends and dtypes against the
naive reference, ties, raw ids, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import fastrec as fr
from fastrec import _backend
from tests.reference_rerank import mmr_reference

from .conftest import BACKENDS, DTYPES


def _candidates(rng, n_rows, n_cand, n_items, pad_rate):
    """Distinct item indices per row, -1 in about ``pad_rate`` of the slots."""
    ids = np.full((n_rows, n_cand), -1, dtype=np.int64)
    for r in range(n_rows):
        take = min(n_cand, n_items)
        ids[r, :take] = rng.permutation(n_items)[:take]
        rng.shuffle(ids[r])
    ids[rng.random(ids.shape) < pad_rate] = -1
    return ids


def _similarity(rng, n_items, density, values):
    mask = rng.random((n_items, n_items)) < density
    dense = np.where(mask, values(rng, (n_items, n_items)), 0.0)
    return sp.csr_matrix(dense), dense  # a stored diagonal is allowed (never read)


@st.composite
def mmr_cases(draw, exact):
    """Random MMR inputs.

    ``exact``: scores on a grid ``offset + j * 2**e`` with j in 0..8, each row
    holding both 0 and 8, similarities and diversity multiples of 1/8, so every
    quantity the kernel computes is exact in float32: ties are exact ties and
    the output must equal the reference's everywhere. Otherwise: continuous
    values, compared on the rows without a near-tie.
    """
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    n_rows = draw(st.integers(0, 9))
    n_items = draw(st.integers(1, 40))
    n_cand = draw(st.integers(0, 30))
    n = draw(st.integers(1, 35))
    pad_rate = draw(st.sampled_from([0.0, 0.2, 0.7]))
    density = draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    ids = _candidates(rng, n_rows, n_cand, n_items, pad_rate)
    if exact:
        diversity = draw(st.integers(0, 8)) / 8
        sim, dense = _similarity(
            rng, n_items, density, lambda g, shape: g.integers(-8, 9, shape) / 8
        )
        grid = rng.integers(0, 9, ids.shape).astype(np.float64)
        for r in range(n_rows):
            valid = np.flatnonzero(ids[r] >= 0)
            if valid.size >= 2:
                grid[r, valid[:2]] = (0, 8)
        scale = 2.0 ** rng.integers(-2, 4, (n_rows, 1))
        offset = rng.integers(-40, 40, (n_rows, 1)) / 4
        scores = offset + grid * scale
    else:
        diversity = draw(st.floats(0.0, 1.0))
        sim, dense = _similarity(rng, n_items, density, lambda g, shape: g.uniform(-1, 1, shape))
        scores = rng.normal(size=ids.shape) * 10.0 ** rng.integers(-2, 3)
    scores = np.where(ids >= 0, scores, -np.inf)
    return ids, scores, sim, dense, diversity, n


def _check(backend, dtype, case, exact):
    ids, scores, sim, dense, diversity, n = case
    scores = scores.astype(dtype)
    out_ids, out_scores = fr.rerank.mmr(
        ids, scores, sim.astype(dtype), diversity=diversity, n=n, backend=backend
    )
    # the reference sees the values the kernel sees (rounded to dtype)
    ref_dense = dense.astype(dtype).astype(np.float64)
    pos, margins = mmr_reference(
        ids, scores.astype(np.float64), ref_dense, float(dtype(diversity)), n
    )
    assert out_ids.shape == (ids.shape[0], n) and out_scores.shape == (ids.shape[0], n)
    assert out_scores.dtype == dtype
    # (a column of -1 / -inf stands in for the empty slots, also when n_cand == 0)
    padded_ids = np.concatenate([ids, -np.ones((ids.shape[0], 1), dtype=ids.dtype)], axis=1)
    padded_scores = np.concatenate([scores, np.full((ids.shape[0], 1), -np.inf, dtype)], axis=1)
    ref_ids = np.take_along_axis(padded_ids, pos, axis=1)
    ref_scores = np.take_along_axis(padded_scores, pos, axis=1)
    if exact:
        rows = np.ones(ids.shape[0], dtype=bool)
    else:
        rows = margins > (1e-4 if dtype == np.float32 else 1e-10)
    np.testing.assert_array_equal(out_ids[rows], ref_ids[rows])
    np.testing.assert_array_equal(out_scores[rows], ref_scores[rows])
    # on every row: the same set of slots is filled
    np.testing.assert_array_equal(out_ids >= 0, ref_ids >= 0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@settings(max_examples=20)
@given(case=mmr_cases(exact=True))
def test_mmr_matches_reference_exact_ties(backend, dtype, case):
    _check(backend, dtype, case, exact=True)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@settings(max_examples=20)
@given(case=mmr_cases(exact=False))
def test_mmr_matches_reference_continuous(backend, dtype, case):
    _check(backend, dtype, case, exact=False)


def test_mmr_continuous_rows_are_mostly_compared():
    # the near-tie filter above must not hide most rows
    rng = np.random.default_rng(1)
    ids = _candidates(rng, 200, 30, 60, 0.1)
    sim, dense = _similarity(rng, 60, 0.3, lambda g, shape: g.uniform(-1, 1, shape))
    scores = rng.normal(size=ids.shape).astype(np.float32)
    _, margins = mmr_reference(ids, scores.astype(np.float64), dense, 0.4, 10)
    assert (margins > 1e-4).mean() > 0.9


@pytest.mark.parametrize("backend", BACKENDS)
def test_mmr_hand_example(backend):
    # items 0, 1 near duplicates (S = 0.9); item 2 unlike both; scores 1.0, 0.9, 0.5
    S = sp.csr_matrix(np.array([[0, 0.9, 0.1], [0.9, 0, 0.0], [0.1, 0.0, 0]]))
    ids = np.array([[0, 1, 2]])
    scores = np.array([[1.0, 0.9, 0.5]])
    # rel = [1, 0.8, 0]; diversity 0.5: after 0, values 0.5*0.8 - 0.5*0.9 = -0.05 for
    # item 1 and 0.5*0 - 0.5*0.1 = -0.05 for item 2: a tie, won by the higher rel (item 1)
    got, got_scores = fr.rerank.mmr(ids, scores, S, diversity=0.5, n=3, backend=backend)
    np.testing.assert_array_equal(got, [[0, 1, 2]])
    # diversity 0.6: item 1: 0.4*0.8 - 0.6*0.9 = -0.22; item 2: 0 - 0.06 = -0.06: item 2
    got, got_scores = fr.rerank.mmr(ids, scores, S, diversity=0.6, n=2, backend=backend)
    np.testing.assert_array_equal(got, [[0, 2]])
    np.testing.assert_array_equal(got_scores, [[1.0, 0.5]])
    # diversity 0: the scores' order
    got, _ = fr.rerank.mmr(ids[:, ::-1], scores[:, ::-1], S, diversity=0.0, n=3, backend=backend)
    np.testing.assert_array_equal(got, [[0, 1, 2]])


@pytest.mark.parametrize("backend", BACKENDS)
def test_mmr_diversity_zero_is_a_stable_sort(backend):
    rng = np.random.default_rng(3)
    ids = _candidates(rng, 50, 20, 30, 0.2)
    scores = np.where(ids >= 0, rng.integers(0, 5, ids.shape), -np.inf).astype(np.float32)
    S = sp.random(30, 30, density=0.3, random_state=0, format="csr")
    got, got_scores = fr.rerank.mmr(ids, scores, S, diversity=0.0, n=20, backend=backend)
    key = np.where(ids >= 0, -scores, np.inf)
    order = np.argsort(key, axis=1, kind="stable")
    want = np.take_along_axis(ids, order, axis=1)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got_scores, np.take_along_axis(scores, order, axis=1))


@pytest.mark.parametrize("backend", BACKENDS)
def test_mmr_unsorted_rows_and_repeated_entries_add_up(backend):
    rng = np.random.default_rng(7)
    dense = np.where(rng.random((12, 12)) < 0.4, rng.integers(-8, 9, (12, 12)) / 16, 0.0)
    coo = sp.coo_matrix(dense)
    # every entry split in two halves, rows stored in reverse column order
    rows = np.concatenate([coo.row, coo.row])
    cols = np.concatenate([coo.col, coo.col])
    vals = np.concatenate([coo.data / 2, coo.data / 2])
    order = np.lexsort((-cols, rows))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=12))])
    split = sp.csr_matrix((vals[order], cols[order], indptr), shape=(12, 12))
    np.testing.assert_array_equal(split.toarray(), dense)
    ids = _candidates(rng, 40, 10, 12, 0.1)
    scores = np.where(ids >= 0, rng.integers(0, 9, ids.shape) / 8, -np.inf)
    want, _ = fr.rerank.mmr(ids, scores, sp.csr_matrix(dense), 0.5, 6, backend=backend)
    got, _ = fr.rerank.mmr(ids, scores, split, 0.5, 6, backend=backend)
    np.testing.assert_array_equal(got, want)
    assert fr.metrics.intra_list_diversity(want, split) == pytest.approx(
        fr.metrics.intra_list_diversity(want, sp.csr_matrix(dense))
    )


def test_mmr_backends_and_threads_agree():
    rng = np.random.default_rng(5)
    ids = _candidates(rng, 3000, 50, 400, 0.05)
    S = sp.random(400, 400, density=0.05, random_state=1, format="csr", dtype=np.float32)
    scores = np.where(ids >= 0, rng.random(ids.shape), -np.inf).astype(np.float32)
    runs = [
        fr.rerank.mmr(ids, scores, S, 0.4, 10, backend=b, num_threads=t)[0]
        for b in _backend.available_backends()
        for t in (1, 2)
    ]
    for other in runs[1:]:
        np.testing.assert_array_equal(runs[0], other)


def test_mmr_raw_ids_from_recommend():
    X = fr.datasets.synthetic(300, 120, 4000, seed=0)
    model = fr.ALS(factors=8, iterations=3, random_state=0).fit(X)
    S = fr.similarity(X, kind="cosine", axis="items", k=15)  # rows by similarity, unsorted
    ids, scores = model.recommend(X.user_ids[:40], n=30)
    by_train, s1 = fr.rerank.mmr(ids, scores, S, diversity=0.5, n=10, items=X)
    by_model, s2 = fr.rerank.mmr(ids, scores, S, diversity=0.5, n=10, items=model)
    idx = X.item_index(ids)
    by_index, s3 = fr.rerank.mmr(idx, scores, S, diversity=0.5, n=10)
    np.testing.assert_array_equal(by_train, by_model)
    assert (by_index == -1).any()  # a user who has seen (nearly) every item: padded slots
    np.testing.assert_array_equal(by_train, np.where(by_index >= 0, X.item_ids[by_index], -1))
    np.testing.assert_array_equal(s1, s3)
    # every picked item is one of the row's candidates
    for r in range(ids.shape[0]):
        assert set(by_train[r]) <= set(ids[r])


def test_mmr_string_ids_and_padding():
    vocab = np.array(["a", "b", "c", "d"], dtype=object)
    S = sp.csr_matrix(np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0.0]]))
    ids = np.array([["a", "b", None, "c"], [None, None, "d", None]], dtype=object)
    scores = np.array([[3.0, 2.0, -np.inf, 1.0], [-np.inf, -np.inf, 5.0, -np.inf]])
    got, got_scores = fr.rerank.mmr(ids, scores, S, diversity=0.9, n=3, items=vocab)
    assert got.tolist() == [["a", "c", "b"], ["d", None, None]]
    np.testing.assert_array_equal(got_scores, [[3.0, 1.0, 2.0], [5.0, -np.inf, -np.inf]])
    # integer ids: -1 pads, and empty rows / more slots than candidates
    got, got_scores = fr.rerank.mmr(np.array([[-1, -1]]), np.zeros((1, 2)), S, n=3)
    np.testing.assert_array_equal(got, [[-1, -1, -1]])
    assert np.isneginf(got_scores).all()
    got, _ = fr.rerank.mmr(np.zeros((0, 5), dtype=int), np.zeros((0, 5)), S, n=3)
    assert got.shape == (0, 3)
    got, _ = fr.rerank.mmr(np.zeros((2, 0), dtype=int), np.zeros((2, 0)), S, n=3)
    np.testing.assert_array_equal(got, -np.ones((2, 3)))


def test_mmr_bad_input():
    S = sp.csr_matrix(np.eye(5))
    ids = np.array([[0, 1, 2], [3, 4, -1]])
    scores = np.ones((2, 3))
    mmr = fr.rerank.mmr
    with pytest.raises(ValueError, match=r"diversity must be <= 1.0, got 1.5"):
        mmr(ids, scores, S, diversity=1.5)
    with pytest.raises(ValueError, match=r"diversity must be >= 0.0, got -0.1"):
        mmr(ids, scores, S, diversity=-0.1)
    with pytest.raises(ValueError, match=r"diversity must be finite"):
        mmr(ids, scores, S, diversity=float("nan"))
    with pytest.raises(ValueError, match=r"n must be >= 1, got 0"):
        mmr(ids, scores, S, n=0)
    with pytest.raises(
        ValueError, match=r"scores must have the shape of ids \(2, 3\), got \(2, 4\)"
    ):
        mmr(ids, np.ones((2, 4)), S)
    with pytest.raises(ValueError, match=r"ids must be 2-dimensional"):
        mmr(ids[0], scores[0], S)
    with pytest.raises(ValueError, match=r"item_similarity must be square .* got shape \(5, 6\)"):
        mmr(ids, scores, sp.csr_matrix((5, 6)))
    with pytest.raises(ValueError, match=r"item_similarity must be a scipy.sparse matrix"):
        mmr(ids, scores, np.eye(5))
    with pytest.raises(ValueError, match=r"item_similarity has shape \(5, 5\) but items has 4"):
        mmr(ids, scores, S, items=np.arange(4))
    bad = ids.copy()
    bad[1, 1] = 5
    with pytest.raises(ValueError, match=r"ids\[1, 1\] = 5 is out of range: .*\[0, 5\)"):
        mmr(bad, scores, S)
    bad[1, 1] = -2
    with pytest.raises(ValueError, match=r"ids\[1, 1\] = -2 is out of range"):
        mmr(bad, scores, S)
    with pytest.raises(ValueError, match=r"ids\[0, 2\] = 12 is not an item id of items"):
        mmr(np.array([[10, 11, 12]]), np.ones((1, 3)), S, items=np.array([10, 11, 13, 14, 15]))
    with pytest.raises(ValueError, match=r"ids must hold integer item indices"):
        mmr(ids.astype(float), scores, S)
    rep = ids.copy()
    rep[1, 2] = 3
    with pytest.raises(
        ValueError, match=r"item index 3 twice in row 1 \(positions \[1, 0\] and \[1, 2\]\)"
    ):
        mmr(rep, scores, S)
    nan = scores.copy()
    nan[1, 0] = np.nan
    with pytest.raises(
        ValueError, match=r"scores must be finite .* found nan at position \(1, 0\)"
    ):
        mmr(ids, nan, S)
    nan[1, 0] = np.inf
    with pytest.raises(ValueError, match=r"found inf at position \(1, 0\)"):
        mmr(ids, nan, S)
    nan[1, 0] = 1.0
    nan[1, 2] = np.nan  # an empty slot: its score is not read
    assert mmr(ids, nan, S)[0].shape == (2, 10)
    S_nan = S.copy()
    S_nan.data[2] = np.nan
    with pytest.raises(
        ValueError, match=r"item_similarity.data must be finite: found nan at position 2"
    ):
        mmr(ids, scores, S_nan)
    broken = S.copy()
    broken.indices[3] = 7
    with pytest.raises(
        ValueError, match=r"item_similarity.indices has column index 7 at position 3"
    ):
        mmr(ids, scores, broken)
    broken = S.copy()
    broken.indptr[2] = 9
    with pytest.raises(ValueError, match=r"item_similarity.indptr must be non-decreasing"):
        mmr(ids, scores, broken)
    with pytest.raises(ValueError, match=r"backend must be"):
        mmr(ids[:0], scores[:0], S, backend="fortran")
    with pytest.raises(ValueError, match=r"num_threads must be >= 0"):
        mmr(ids, scores, S, num_threads=-1)
    # unsigned indices: padded slots come back as -1 in int64
    got, _ = mmr(np.array([[1, 2]], dtype=np.uint16), np.ones((1, 2)), S, n=3)
    assert got.dtype == np.int64 and got.tolist() == [[1, 2, -1]]
