"""Interactions: construction, id mapping, duplicates and every bad-input message."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

import fastrec as fr
from fastrec import Interactions
from fastrec.data import IdVocabulary


def test_from_arrays_builds_sorted_float32_csr():
    X = Interactions.from_arrays([3, 1, 3, 2], [10, 30, 20, 10], [5, 4, 3, 2], [4, 3, 2, 1])
    m = X.matrix
    assert m.dtype == np.float32 and m.indices.dtype == np.int32
    assert X.user_ids.tolist() == [1, 2, 3] and X.item_ids.tolist() == [10, 20, 30]
    assert m.toarray().tolist() == [[0, 0, 4], [2, 0, 0], [5, 3, 0]]
    # timestamps follow the entries into CSR order
    assert X.timestamps.tolist() == [3, 1, 4, 2]
    assert (X.n_users, X.n_items, X.nnz) == (3, 3, 4)
    assert not X.implicit


def test_string_ids_and_vectorised_lookup():
    X = Interactions.from_arrays(["bob", "amy", "bob"], ["x", "y", "y"])
    assert X.implicit and X.matrix.data.tolist() == [1.0, 1.0, 1.0]
    assert X.user_ids.tolist() == ["amy", "bob"]
    assert X.user_index(["bob", "nobody", "amy"]).tolist() == [1, -1, 0]
    assert X.item_index(np.array(["y", "x"])).tolist() == [1, 0]
    assert X.user_index(12345).tolist() == -1  # another kind of id: unknown, not an error


def test_mixed_kind_ids_keep_first_appearance():
    users = np.array([5, "a", 5], dtype=object)
    X = Interactions.from_arrays(users, [1, 1, 2])
    assert X.user_ids.tolist() == [5, "a"]
    assert X.user_index(np.array(["a", 5, 7], dtype=object)).tolist() == [1, 0, -1]


@pytest.mark.parametrize(
    "policy, expected, ts",
    [("last", 1.0, 30), ("mean", 3.0, 30), ("sum", 9.0, 30)],
)
def test_duplicate_policies(policy, expected, ts):
    X = Interactions.from_arrays(
        [1, 1, 2, 1], [7, 7, 7, 7], [5, 3, 2, 1], [10, 20, 5, 30], duplicates=policy
    )
    assert X.nnz == 2
    assert X.matrix[0, 0] == pytest.approx(expected)
    assert X.timestamps[0] == ts


def test_duplicates_raise_names_position():
    with pytest.raises(
        ValueError,
        match=r"duplicate \(user, item\) pair \(1, 7\) at position 3 \(first at position 0\)",
    ):
        Interactions.from_arrays([1, 2, 3, 1], [7, 7, 7, 7], [1, 2, 3, 4])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            dict(users=[1, 2], items=[1], ratings=None),
            r"users has 2 entries but items has shape \(1,\)",
        ),
        (dict(users=[1, 2], items=[1, 2], ratings=[1.0]), r"ratings has shape \(1,\)"),
        (dict(users=[], items=[], ratings=[]), "empty data set"),
        (
            dict(users=[1, 2, 3], items=[1, 2, 3], ratings=[1, np.nan, 2]),
            r"ratings must be finite: found nan at position 1",
        ),
        (
            dict(users=[1, 2, 3], items=[1, 2, 3], ratings=[1, 2, np.inf]),
            "ratings must be finite: found inf at position 2",
        ),
        (
            dict(users=[1, 2], items=[1, 2], ratings=[1, 1e39]),
            r"ratings \(as float32\) must be finite: found inf at position 1",
        ),
        (
            dict(users=[1, 2], items=[1, 2], ratings=["4", "good"]),
            "ratings must be numeric: found 'good' at position 1",
        ),
        (
            dict(users=[1.0, np.nan], items=[1, 2], ratings=[1, 2]),
            "users must not be NaN or infinite: found nan at position 1",
        ),
        (
            dict(users=np.array([1, None], dtype=object), items=[1, 2], ratings=[1, 2]),
            "users must not be missing .* position 1",
        ),
        (
            dict(users=[1, 2], items=[1, 2], ratings=[1, 2], timestamps=[1.0, np.nan]),
            "timestamps must be finite: found nan at position 1",
        ),
        (
            dict(users=[1, 2], items=[1, 2], ratings=[1, 2], duplicates="first"),
            "duplicates must be one of",
        ),
    ],
)
def test_from_arrays_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Interactions.from_arrays(**kwargs)


def test_from_dataframe():
    df = pd.DataFrame({"u": ["a", "b", "a"], "i": [1, 2, 2], "r": [4.0, 3.5, 1.0], "t": [3, 2, 1]})
    X = Interactions.from_dataframe(
        df, user_col="u", item_col="i", rating_col="r", timestamp_col="t"
    )
    assert X.matrix.toarray().tolist() == [[4.0, 1.0], [0.0, 3.5]]
    assert X.timestamps.tolist() == [3, 1, 2]
    with pytest.raises(ValueError, match="user_col='user' is not a column"):
        Interactions.from_dataframe(df)
    with pytest.raises(ValueError, match="rating_col='score' is not a column"):
        Interactions.from_dataframe(df, user_col="u", item_col="i", rating_col="score")
    # the default rating column missing: implicit data
    Y = Interactions.from_dataframe(df, user_col="u", item_col="i")
    assert Y.implicit


def test_datetime_timestamps_become_int64():
    ts = np.array(["2020-01-01", "2021-01-01"], dtype="datetime64[D]")
    X = Interactions.from_arrays([1, 2], [1, 1], [1, 2], ts)
    assert X.timestamps.dtype == np.int64 and X.timestamps[1] > X.timestamps[0]


def test_from_csr_accepts_valid_and_names_faults():
    m = sp.csr_matrix(np.array([[1, 0, 2], [0, 0, 0], [0, 3, 0]], dtype=np.float64))
    X = Interactions.from_csr(m, user_ids=["a", "b", "c"])
    assert (
        X.matrix.dtype == np.float32 and X.user_index("c") == 2 and X.item_ids.tolist() == [0, 1, 2]
    )

    def raw(data, indices, indptr, shape=(2, 3)):
        out = sp.csr_matrix(shape, dtype=np.float64)
        out.data, out.indices, out.indptr = (
            np.asarray(data, float),
            np.asarray(indices, np.int32),
            np.asarray(indptr, np.int32),
        )
        return out

    cases = [
        (
            raw([1, 2], [2, 0], [0, 2, 2]),
            r"matrix.indices must be sorted and unique within each row: not so at position 1",
        ),
        (raw([1, 2], [1, 1], [0, 2, 2]), "not so at position 1"),
        (raw([1, 2], [0, 3], [0, 1, 2]), r"column index >= 3 .* at position 1"),
        (raw([1, 2], [0, -1], [0, 1, 2]), "negative column index at position 1"),
        (
            raw([1, 2, 3], [0, 1, 2], [0, 2, 1, 3], (3, 3)),
            "indptr must be non-decreasing: it decreases at position 2",
        ),
        (raw([1, 2], [0, 1], [1, 1, 2]), r"indptr\[0\] must be 0"),
        (
            raw([1, np.nan], [0, 1], [0, 1, 2]),
            "matrix.data must be finite: found nan at position 1",
        ),
        (raw([], [], [0, 0, 0]), "empty data set"),
    ]
    for bad, message in cases:
        with pytest.raises(ValueError, match=message):
            Interactions.from_csr(bad)
    bad_len = raw([1, 2], [0, 1], [0, 1, 2])
    bad_len.indptr = np.array([0, 1, 2, 2], dtype=np.int32)
    with pytest.raises(ValueError, match=r"indptr must have n_rows \+ 1 = 3 entries"):
        Interactions.from_csr(bad_len)
    with pytest.raises(ValueError, match="user_ids has 2 entries but the matrix has 3 rows"):
        Interactions.from_csr(m, user_ids=[1, 2])
    with pytest.raises(ValueError, match="user_ids must be unique: 1 at position 2 repeats"):
        Interactions.from_csr(m, user_ids=[1, 2, 1])
    with pytest.raises(ValueError, match="must be a scipy.sparse matrix"):
        Interactions.from_csr(np.eye(3))
    coo = sp.coo_matrix((np.ones(2), ([0, 0], [1, 1])), shape=(2, 2))
    with pytest.raises(ValueError, match="duplicate coordinates"):
        Interactions.from_csr(coo)


def test_subset_keeps_vocabulary_and_alignment():
    X = Interactions.from_arrays([1, 1, 2, 3], [1, 2, 2, 3], [1, 2, 3, 4], [10, 20, 30, 40])
    sub = X.subset(np.array([True, False, True, False]))
    assert sub.same_vocabulary(X) and sub.n_users == 3 and sub.nnz == 2
    assert sub.timestamps.tolist() == [10, 30]
    assert sub.matrix.toarray()[1].tolist() == [0, 3, 0]
    with pytest.raises(ValueError, match="mask must have shape"):
        X.subset(np.ones(3, dtype=bool))


def test_large_build_is_linear_enough():
    rng = np.random.default_rng(0)
    n = 200_000
    users = rng.integers(0, 5000, n)
    items = rng.integers(0, 2000, n)
    X = Interactions.from_arrays(users, items, rng.random(n), duplicates="sum")
    dense_sum = np.zeros((users.max() + 1, items.max() + 1))
    np.add.at(dense_sum, (users, items), 0)  # shape check only
    assert X.matrix.sum() == pytest.approx(X.matrix.data.astype(np.float64).sum())
    assert X.nnz == np.unique(users * 2000 + items).size
    assert fr.Interactions is Interactions


@given(
    data=st.data(),
    dtype=st.sampled_from(["int64", "int32", "uint32", "uint64"]),
    width=st.sampled_from([10, 1000, 2**40]),
)
def test_integer_id_lookup_matches_a_dict(data, dtype, width):
    """Integer vocabularies (dense table or binary search) against a plain dict."""
    info = np.iinfo(dtype)
    base = data.draw(st.integers(max(int(info.min), -(2**40)), min(int(info.max), 2**40) - 10))
    top = min(int(info.max), base + width)
    ids = data.draw(st.lists(st.integers(base, top), min_size=1, max_size=60, unique=True))
    vocab_ids = np.array(ids, dtype=dtype)
    vocab = IdVocabulary(vocab_ids, "user_ids")
    index = {v: pos for pos, v in enumerate(ids)}
    extra = data.draw(st.lists(st.integers(base - 20, top + 20), max_size=30))
    for qdtype in ("int64", dtype):
        qinfo = np.iinfo(qdtype)
        q = [v for v in ids + extra if qinfo.min <= v <= qinfo.max]
        got = vocab.lookup(np.array(q, dtype=qdtype)).tolist()
        assert got == [index.get(v, -1) for v in q]
    assert int(vocab.lookup(vocab_ids[0])) == 0  # a scalar


def test_dense_integer_table_is_bounded():
    # a few ids spread over a huge range: binary search, no giant table
    vocab = IdVocabulary(np.array([0, 10**15, 5], dtype=np.int64), "item_ids")
    assert vocab.lookup([10**15, 5, 4]).tolist() == [1, 2, -1]
    assert vocab._dense_table() is None
    compact = IdVocabulary(np.array([105, 101, 103], dtype=np.int64), "item_ids")
    assert compact.lookup(np.array([101, 102, 103, 105, 99, 106])).tolist() == [1, -1, 2, 0, -1, -1]
    assert compact._dense_table() is not None
