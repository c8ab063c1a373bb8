"""``fastrec.similarity`` / ``similarity_rows`` against the dense NumPy oracle."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

import fastrec
from fastrec._kernels import similarity as similarity_kernels
from fastrec.neighbours import (
    KINDS,
    PreparedMatrix,
    prepare,
    rows_to_csr,
    similarity,
    similarity_rows,
)
from tests.conftest import BACKENDS, DTYPES, tol
from tests.reference_similarity import reference_similarity

# the weighting kinds (tfidf, bm25) have their own reference tests in tests/test_knn.py
KINDS = tuple(k for k in KINDS if k not in ("tfidf", "bm25"))

# ---------------------------------------------------------------- helpers


def ratings_matrix(
    n_rows: int,
    n_cols: int,
    density: float,
    seed: int,
    constant_rows: int = 0,
    duplicate_rows: int = 0,
    levels: int = 10,
) -> sp.csr_matrix:
    """Random ratings in {0.5, 1.0, ..., levels / 2}, CSR (n_rows, n_cols).

    Half-integer ratings make every sum exact, like real rating scales. The
    first ``constant_rows`` rows get one repeated rating (zero variance); the
    last ``duplicate_rows`` rows copy earlier rows (exact ties). Empty rows and
    columns occur naturally at low density.
    """
    rng = np.random.default_rng(seed)
    mask = rng.random((n_rows, n_cols)) < density
    values = rng.integers(1, levels + 1, size=(n_rows, n_cols)) / 2.0
    for r in range(min(constant_rows, n_rows)):
        values[r] = values[r, 0]
    for r in range(max(0, n_rows - duplicate_rows), n_rows):
        if r > 0:
            src = int(rng.integers(0, r))
            mask[r] = mask[src]
            values[r] = values[src]
    rows, cols = np.nonzero(mask)
    return sp.csr_matrix((values[rows, cols], (rows, cols)), shape=(n_rows, n_cols))


def assert_topk(idx, val, ref, k, min_similarity, dtype):
    """Check padded top-k output ``(idx, val)`` against the dense oracle ``ref``.

    Robust to rounding: a pair whose true similarity is within the tolerance
    of the k-th value (or of ``min_similarity``) may or may not be chosen, but
    everything returned must be a real candidate with the right value, rows
    must be sorted (exact ties by ascending index), and nothing clearly better
    than the k-th entry may be missing.
    """
    t = tol(dtype)
    slack = t["atol"] + t["rtol"]  # similarities lie in [-1, 1]
    assert idx.shape == val.shape == (ref.shape[0], k)
    assert idx.dtype == np.int32 and val.dtype == np.dtype(dtype)
    for i in range(ref.shape[0]):
        keep = idx[i] >= 0
        m = int(keep.sum())
        # padding only at the end, with -inf
        assert np.all(keep[:m]) and not np.any(keep[m:])
        assert np.all(np.isneginf(val[i, m:]))
        got_idx, got_val = idx[i, :m], val[i, :m].astype(np.float64)
        assert len(set(got_idx.tolist())) == m, "repeated neighbour"
        assert i not in got_idx, "self pair"
        # sorted by descending similarity, exact ties by ascending index
        assert np.all(np.diff(got_val) <= 0)
        tied = np.diff(got_val) == 0
        assert np.all(np.diff(got_idx)[tied] > 0)
        # every entry is a candidate with the right value
        truth = ref[i, got_idx]
        assert not np.any(np.isnan(truth)), f"row {i}: non-candidate returned {got_idx}"
        np.testing.assert_allclose(got_val, truth, **t)
        assert np.all(got_val != 0), "zero similarity stored"
        cand = np.flatnonzero(~np.isnan(ref[i]))
        lo = -np.inf if min_similarity is None else min_similarity
        # optional: rounds to zero or sits on the min_similarity threshold
        optional = (np.abs(ref[i, cand]) <= slack) | (np.abs(ref[i, cand] - lo) <= slack)
        sure = cand[~optional & (ref[i, cand] >= lo)]
        maybe = cand[optional | (ref[i, cand] >= lo)]
        assert min(k, sure.size) <= m <= min(k, maybe.size)
        if m:
            assert got_val[-1] >= lo - slack
        missing = np.setdiff1d(sure, got_idx)
        if m == k and missing.size:
            # nothing left out is clearly better than the k-th kept value
            assert np.all(ref[i, missing] <= got_val[-1] + slack)
        elif m < k:
            assert missing.size == 0


def csr_to_padded(S: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.full((S.shape[0], k), -1, dtype=np.int32)
    val = np.full((S.shape[0], k), -np.inf, dtype=S.dtype)
    for i in range(S.shape[0]):
        lo, hi = S.indptr[i], S.indptr[i + 1]
        idx[i, : hi - lo] = S.indices[lo:hi]
        val[i, : hi - lo] = S.data[lo:hi]
    return idx, val


@st.composite
def problems(draw):
    n_users = draw(st.integers(1, 22))
    n_items = draw(st.integers(1, 18))
    density = draw(st.sampled_from([0.05, 0.2, 0.4, 0.8]))
    seed = draw(st.integers(0, 2**31 - 1))
    X = ratings_matrix(
        n_users,
        n_items,
        density,
        seed,
        constant_rows=draw(st.integers(0, 2)),
        duplicate_rows=draw(st.integers(0, 2)),
        levels=draw(st.sampled_from([2, 5, 10])),
    )
    options = {
        "axis": draw(st.sampled_from(["users", "items"])),
        "k": draw(st.integers(1, 25)),
        "min_support": draw(st.integers(0, 3)),
        "shrinkage": draw(st.sampled_from([0.0, 0.5, 10.0])),
        "min_similarity": draw(st.sampled_from([None, -0.5, 0.0, 0.3])),
    }
    return X, options


# ------------------------------------------------------- against the oracle


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("kind", KINDS)
@given(problem=problems())
def test_similarity_matches_reference(kind, backend, dtype, problem):
    X, opt = problem
    S = similarity(X, kind=kind, backend=backend, dtype=dtype, **opt)
    vectors = X if opt["axis"] == "users" else X.T.tocsr()
    n = vectors.shape[0]
    assert isinstance(S, sp.csr_matrix) and S.shape == (n, n) and S.dtype == dtype
    assert np.all(np.diff(S.indptr) <= opt["k"])
    ref = reference_similarity(
        vectors, kind, opt["min_support"], opt["shrinkage"], opt["min_similarity"]
    )
    idx, val = csr_to_padded(S, opt["k"])
    assert_topk(idx, val, ref, opt["k"], opt["min_similarity"], dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
@given(problem=problems(), data=st.data())
def test_similarity_rows_subset_equals_full(kind, backend, problem, data):
    X, opt = problem
    n = X.shape[0]
    rows = data.draw(st.lists(st.integers(0, n - 1), max_size=2 * n))
    kw = {key: opt[key] for key in ("k", "min_support", "shrinkage", "min_similarity")}
    full_idx, full_val = similarity_rows(X, kind=kind, backend=backend, **kw)
    idx, val = similarity_rows(X, rows, kind=kind, backend=backend, **kw)
    np.testing.assert_array_equal(idx, full_idx[rows])
    np.testing.assert_array_equal(val, full_val[rows])
    # the same through a PreparedMatrix and with the transpose given
    prepared = prepare(X, kind)
    idx2, val2 = similarity_rows(prepared, rows, kind=None, backend=backend, **kw)
    np.testing.assert_array_equal(idx2, idx)
    np.testing.assert_array_equal(val2, val)
    idx3, val3 = similarity_rows(X, rows, kind=kind, matrix_T=X.T, backend=backend, **kw)
    np.testing.assert_array_equal(idx3, idx)
    np.testing.assert_array_equal(val3, val)


# ------------------------------------- all rows at once (each pair computed once)


def _one_sided(X, backend, dtype, kind="pearson", **kw):
    """All rows through the query-rows kernel (rows reversed, so not ``arange(n)``)."""
    n = X.shape[0]
    rows = np.arange(n)[::-1]
    idx, val = similarity_rows(X, rows, kind=kind, backend=backend, dtype=dtype, **kw)
    return idx[::-1], val[::-1]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("kind", KINDS)
@given(problem=problems())
def test_all_rows_equals_query_rows(kind, backend, dtype, problem):
    # the all-rows kernels compute each pair once and offer it to both rows'
    # heaps: the output must be exactly what the query-rows kernels give
    X, opt = problem
    kw = {key: opt[key] for key in ("k", "min_support", "shrinkage", "min_similarity")}
    idx, val = similarity_rows(X, kind=kind, backend=backend, dtype=dtype, **kw)
    idx1, val1 = _one_sided(X, backend, dtype, kind, **kw)
    np.testing.assert_array_equal(idx, idx1)
    np.testing.assert_array_equal(val, val1)


@pytest.mark.parametrize("n_sets", [1, 3, 7])
def test_pearson_all_rows_any_number_of_heap_sets(backend, dtype, n_sets):
    # the per-thread heaps are merged per row: any split of the pairs (over heap
    # sets and over calls on row ranges) gives the same top k (many exact ties:
    # two rating levels, duplicated rows)
    X = ratings_matrix(90, 40, 0.3, seed=4, constant_rows=2, duplicate_rows=8, levels=2)
    a = X.T.tocsr()
    at = X
    n, k = a.shape[0], 5
    args = (
        a.indptr.astype(np.int64),
        a.indices.astype(np.int32),
        a.data.astype(dtype),
        at.indptr.astype(np.int64),
        at.indices.astype(np.int32),
        at.data.astype(dtype),
    )
    kernel = similarity_kernels.get(backend).pearson_topk_all
    out = []
    for sets in (1, n_sets):
        idx = np.empty((n, k), np.int32)
        val = np.empty((n, k), dtype)
        heaps = (
            np.empty((sets, n, k), np.int32),
            np.empty((sets, n, k), dtype),
            np.zeros((sets, n), np.int32),
        )
        own = np.zeros(n, np.int32)
        # one call over every row, or calls over row ranges (the heaps carry over)
        bounds = [0, n] if sets == 1 else [0, 1, 7, 30, 31, n]
        with fastrec._backend.threads(2):
            for lo, hi in zip(bounds[:-1], bounds[1:]):
                kernel(*args, k, 1, 0.0, -np.inf, lo, hi, *heaps, own, idx, val)
            merge = similarity_kernels.get(backend).merge_sets
            merge(*heaps, own, idx, val)
        out.append((idx, val))
    (idx_a, val_a), (idx_b, val_b) = out
    assert (idx_a >= 0).sum() > n  # real neighbours, not just padding
    np.testing.assert_array_equal(idx_a, idx_b)
    np.testing.assert_array_equal(val_a, val_b)
    ref = reference_similarity(a, "pearson")
    assert_topk(idx_a, val_a, ref, k, None, dtype)


@pytest.mark.parametrize("kind", KINDS)
def test_all_rows_arbitrary_float32_values_bit_for_bit(backend, kind):
    # float32 values off any grid: pearson's products are exact in its float64
    # accumulators and a dot product sums the same products in the same order
    # from either side, so computing a pair once (as (i, l), i < l) gives the
    # same bits as computing it from each side
    rng = np.random.default_rng(8)
    X = sp.random(60, 45, density=0.3, random_state=rng, format="csr", dtype=np.float64)
    X.data = rng.standard_normal(X.nnz) * 3.0
    idx, val = similarity_rows(X, kind=kind, k=6, backend=backend, dtype=np.float32)
    idx1, val1 = _one_sided(X, backend, np.float32, kind, k=6)
    assert np.isfinite(val).sum() > 60
    np.testing.assert_array_equal(idx, idx1)
    np.testing.assert_array_equal(val, val1)


@pytest.mark.parametrize("kind", ["pearson", "cosine"])
def test_heap_memory_limit_falls_back(backend, kind, monkeypatch):
    # above HEAP_MEMORY_LIMIT the query-rows kernel runs instead: same output
    import fastrec.neighbours as neighbours

    X = ratings_matrix(50, 30, 0.3, seed=12)
    fast = similarity(X, kind=kind, axis="items", k=4, backend=backend)
    assert neighbours._heap_sets(prepare(X.T.tocsr(), "pearson"), np.arange(30), 4, 2, backend) > 0
    monkeypatch.setattr(neighbours, "HEAP_MEMORY_LIMIT", 0)
    assert neighbours._heap_sets(prepare(X.T.tocsr(), "pearson"), np.arange(30), 4, 2, backend) == 0
    slow = similarity(X, kind=kind, axis="items", k=4, backend=backend)
    assert fast.nnz > 0
    np.testing.assert_array_equal(fast.indptr, slow.indptr)
    np.testing.assert_array_equal(fast.indices, slow.indices)
    np.testing.assert_array_equal(fast.data, slow.data)


# ------------------------------------------------------ threads and backends


@pytest.mark.parametrize("kind", KINDS)
def test_thread_count_invariance(kind, backend, dtype):
    X = ratings_matrix(400, 150, 0.08, seed=3, constant_rows=5, duplicate_rows=10)
    opt = dict(kind=kind, axis="items", k=7, min_support=2, shrinkage=3.0, dtype=dtype)
    one = similarity(X, backend=backend, num_threads=1, **opt)
    two = similarity(X, backend=backend, num_threads=2, **opt)
    assert one.nnz > 0
    np.testing.assert_array_equal(one.indptr, two.indptr)
    np.testing.assert_array_equal(one.indices, two.indices)
    np.testing.assert_array_equal(one.data, two.data)


@pytest.mark.parametrize("kind", KINDS)
def test_backends_agree(kind, dtype):
    X = ratings_matrix(120, 60, 0.15, seed=5, constant_rows=3, duplicate_rows=4)
    k = 6
    results = {
        b: similarity_rows(X, kind=kind, k=k, backend=b, dtype=dtype) for b in ("numba", "cython")
    }
    ref = reference_similarity(X, kind)
    for idx, val in results.values():
        assert_topk(idx, val, ref, k, None, dtype)
    (idx_a, val_a), (idx_b, val_b) = results.values()
    np.testing.assert_allclose(val_a, val_b, **tol(dtype))
    # indices may only differ where the values are tied to rounding
    differ = idx_a != idx_b
    close = np.isclose(val_a, val_b, **tol(dtype))
    assert np.all(close[differ])


# -------------------------------------------------------- named edge cases


def test_single_corating_and_zero_variance_are_not_stored(backend):
    # items 0 and 1 share one user; item 2 has all-equal ratings
    X = sp.csr_matrix(
        np.array(
            [
                [5.0, 4.0, 3.0, 0.0],
                [0.0, 0.0, 3.0, 2.0],
                [1.0, 0.0, 3.0, 4.0],
                [2.0, 0.0, 0.0, 5.0],
            ]
        )
    )
    X.eliminate_zeros()
    S = similarity(X, kind="pearson", axis="items", k=5, backend=backend).toarray()
    assert S[0, 1] == 0 and S[1, 0] == 0  # one common user: zero variance
    assert np.all(S[2] == 0) and np.all(S[:, 2] == 0)  # constant item
    assert S[0, 3] == pytest.approx(1.0)  # users 2 and 3 rate them (1, 2) and (4, 5)
    assert S[0, 2] == 0 and S[3, 2] == 0
    for kind in ("centered_cosine",):
        C = similarity(X, kind=kind, axis="items", k=5, backend=backend).toarray()
        assert np.all(C[2] == 0) and np.all(C[:, 2] == 0)


def test_empty_rows_columns_and_k_beyond_candidates(backend):
    X = sp.lil_matrix((6, 5))
    X[1, 1] = 4.0
    X[1, 3] = 2.0
    X[2, 1] = 3.0
    X[2, 3] = 5.0
    X[4, 3] = 1.0
    X = X.tocsr()
    S = similarity(X, kind="cosine", axis="users", k=50, backend=backend)
    assert S.shape == (6, 6)
    counts = np.diff(S.indptr)
    assert counts.tolist() == [0, 2, 2, 0, 2, 0]  # empty users have no neighbours
    empty = sp.csr_matrix((0, 3))
    assert similarity(empty, axis="users", backend=backend).shape == (0, 0)
    assert similarity(empty, axis="items", backend=backend).nnz == 0


def test_ties_by_ascending_index(backend, dtype):
    # items 1..4 are identical columns: item 0's similarities with them tie exactly
    base = np.array([5.0, 3.0, 4.0, 1.0, 2.0])
    col0 = np.array([4.0, 1.0, 5.0, 2.0, 2.0])
    X = sp.csr_matrix(np.column_stack([col0, base, base, base, base]))
    for kind in KINDS:
        S = similarity(X, kind=kind, axis="items", k=3, backend=backend, dtype=dtype)
        row = S[0]
        assert row.indices.tolist() == [1, 2, 3]
        assert row.data[0] == row.data[1] == row.data[2]
        # identical columns: similarity 1 with each other, neighbours by index
        assert S[4].indices.tolist() == [1, 2, 3]
        np.testing.assert_allclose(S[4].data, 1.0, **tol(dtype))


def test_shrinkage_and_min_support_formula(backend):
    X = ratings_matrix(30, 12, 0.5, seed=11)
    plain = similarity(X, kind="pearson", axis="users", k=100, backend=backend, dtype=np.float64)
    shrunk = similarity(
        X, kind="pearson", axis="users", k=100, shrinkage=4.0, backend=backend, dtype=np.float64
    )
    stored = (X != 0).astype(np.int64)
    support = (stored @ stored.T).toarray()
    dense_plain, dense_shrunk = plain.toarray(), shrunk.toarray()
    expected = dense_plain * support / (support + 4.0)
    np.testing.assert_allclose(dense_shrunk, expected, rtol=1e-12, atol=1e-14)
    strict = similarity(
        X, kind="pearson", axis="users", k=100, min_support=6, backend=backend, dtype=np.float64
    ).toarray()
    assert np.all(strict[support < 6] == 0)
    np.testing.assert_array_equal(strict[support >= 6], dense_plain[support >= 6])


def test_interactions_input_and_public_name():
    X = ratings_matrix(20, 9, 0.4, seed=2)
    inter = fastrec.Interactions.from_csr(X)
    a = similarity(X, kind="adjusted_cosine", axis="items", k=4)
    b = fastrec.similarity(inter, kind="adjusted_cosine", axis="items", k=4)
    assert (a != b).nnz == 0
    # importing the implementation module does not shadow the public function
    importlib.import_module("fastrec.neighbours")
    assert fastrec.similarity is similarity


def test_rows_to_csr_keeps_order():
    idx = np.array([[2, 0, -1], [-1, -1, -1], [1, 0, 2]], dtype=np.int32)
    val = np.array([[0.9, 0.1, -np.inf], [-np.inf] * 3, [0.5, 0.5, -0.2]], dtype=np.float32)
    S = rows_to_csr(idx, val, 3)
    assert S.indptr.tolist() == [0, 2, 2, 5]
    assert S.indices.tolist() == [2, 0, 1, 0, 2]
    np.testing.assert_array_equal(S.data, np.array([0.9, 0.1, 0.5, 0.5, -0.2], np.float32))


def test_matches_scikit_surprise_pearson():
    sims = pytest.importorskip("surprise.similarities")
    X = ratings_matrix(40, 25, 0.35, seed=9, constant_rows=2)
    coo = X.tocoo()
    # Surprise compares the x's (here items) over the y's (users) that rated both
    yr: dict[int, list[tuple[int, float]]] = {}
    for u, i, r in zip(coo.row, coo.col, coo.data):
        yr.setdefault(int(u), []).append((int(i), float(r)))
    full = sims.pearson(X.shape[1], yr, 1)
    np.fill_diagonal(full, 0.0)
    ours = similarity(X, kind="pearson", axis="items", k=X.shape[1], dtype=np.float64).toarray()
    np.testing.assert_allclose(ours, full, rtol=1e-9, atol=1e-12)


def test_large_n_needs_no_dense_matrix(backend):
    # 300k x 300k dense would be 360 GB in float32: the kernel must not go near it
    rng = np.random.default_rng(0)
    n = 300_000
    rows = rng.integers(0, 2_000, size=20_000)
    cols = rng.integers(0, n, size=20_000)
    X = sp.csr_matrix((np.ones(20_000, np.float32) * 3, (rows, cols)), shape=(2_000, n))
    X.sum_duplicates()
    S = similarity(X, kind="cosine", axis="items", k=5, backend=backend)
    assert S.shape == (n, n) and np.all(np.diff(S.indptr) <= 5)
    assert S.nnz > 0


# ------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kind": "jaccard"}, "kind"),
        ({"axis": "rows"}, "axis"),
        ({"k": 0}, "k must be >= 1"),
        ({"k": 2.5}, "k must be an integer"),
        ({"min_support": -1}, "min_support"),
        ({"shrinkage": -1.0}, "shrinkage"),
        ({"min_similarity": float("nan")}, "min_similarity"),
        ({"backend": "fortran"}, "backend"),
        ({"num_threads": -2}, "num_threads"),
        ({"dtype": np.int32}, "dtype"),
    ],
)
def test_bad_options_raise(kwargs, message):
    X = ratings_matrix(5, 4, 0.5, seed=0)
    with pytest.raises(ValueError, match=message):
        similarity(X, **kwargs)


def test_bad_matrices_raise():
    X = ratings_matrix(5, 4, 0.8, seed=0)
    with pytest.raises(ValueError, match="scipy.sparse"):
        similarity(X.toarray())
    bad = X.copy()
    bad.data[3] = np.nan
    with pytest.raises(ValueError, match=r"X.data must be finite.*position 3"):
        similarity(bad)
    unsorted = X.copy()
    unsorted.indices[[0, 1]] = unsorted.indices[[1, 0]]
    with pytest.raises(ValueError, match="sorted"):
        similarity(unsorted)
    with pytest.raises(ValueError, match=r"rows\[1\] = 7 is out of range"):
        similarity_rows(X, [0, 7])
    with pytest.raises(ValueError, match="rows must be integer"):
        similarity_rows(X, [0.5])
    with pytest.raises(ValueError, match="matrix_T must have 4 rows"):
        similarity_rows(X, matrix_T=X)
    wrong_t = sp.csr_matrix(X.T.toarray() * (np.arange(5) != 0))  # user 0 dropped
    assert wrong_t.nnz != X.nnz
    with pytest.raises(ValueError, match="transpose"):
        similarity_rows(X, matrix_T=wrong_t)
    with pytest.raises(ValueError, match="does not match"):
        similarity_rows(prepare(X, "cosine"), kind="pearson")
    assert isinstance(prepare(X, "cosine"), PreparedMatrix)
