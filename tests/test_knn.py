"""UserKNN / ItemKNN and their kernels (kernels/*/knn) against naive references."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import fastrec as fr
from fastrec._kernels import knn as knn_kernels
from fastrec.models.knn import ItemKNN, UserKNN
from tests.conftest import BACKENDS, DTYPES, tol
from tests.reference_knn import NaiveKNN, row_means, similar_rows_reference, similarity_matrix

MODELS = (UserKNN, ItemKNN)


# ------------------------------------------------------------------ data
def random_ratings(seed, n_x, n_y, density, constant_row=False):
    """Ratings on the 0.5 grid with a mask; empty rows/columns happen at low density."""
    rng = np.random.default_rng(seed)
    M = rng.random((n_x, n_y)) < density
    R = rng.integers(1, 11, size=(n_x, n_y)) * 0.5
    if constant_row and n_x:
        R[0] = 3.0  # zero variance on any support
    return np.where(M, R, 0.0), M


def kernel_csr(R, M, dtype):
    A = sp.csr_matrix(np.where(M, R, 0.0).astype(dtype))
    A.eliminate_zeros()  # ratings are >= 0.5, so only unrated cells are dropped
    B = A.T.tocsr()
    B.sort_indices()
    out = []
    for m in (A, B):
        out += [m.indptr.astype(np.int64), m.indices.astype(np.int32), m.data.astype(dtype)]
    return out


ratings_case = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**31 - 1),
        "n_x": st.integers(1, 12),
        "n_y": st.integers(1, 10),
        "density": st.sampled_from([0.1, 0.3, 0.6, 0.9]),
        "constant_row": st.booleans(),
        "k": st.integers(1, 6),
        "min_support": st.integers(0, 3),
        "shrinkage": st.sampled_from([0.0, 2.5]),
        "centered": st.booleans(),
    }
)


# --------------------------------------------------------------- kernels
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@given(case=ratings_case)
@settings(max_examples=20)
def test_predict_pairs_kernel(backend, dtype, case):
    R, M = random_ratings(
        case["seed"], case["n_x"], case["n_y"], case["density"], case["constant_row"]
    )
    S = similarity_matrix(R, M, "pearson", case["min_support"], case["shrinkage"])
    means = row_means(R, M, 3.0)
    args = kernel_csr(R, M, dtype)
    # every (x, y) pair, grouped by x (several queries per group)
    xs, ys = np.meshgrid(np.arange(case["n_x"]), np.arange(case["n_y"]), indexing="ij")
    xs, ys = xs.ravel().astype(np.int32), ys.ravel().astype(np.int32)
    starts = np.arange(0, xs.shape[0] + 1, case["n_y"], dtype=np.int64)
    pred = np.empty(xs.shape[0])
    count = np.empty(xs.shape[0], dtype=np.int32)
    kernel = knn_kernels.get(backend).predict_pairs
    kernel(
        *args,
        args[5],
        means,
        np.ones_like(means),
        0,
        case["min_support"],
        case["shrinkage"],
        case["k"],
        case["centered"],
        np.arange(case["n_x"], dtype=np.int32),
        starts,
        ys,
        pred,
        count,
    )
    from tests.reference_knn import predict_one

    for q in range(xs.shape[0]):
        want, n = predict_one(S, R, M, means, xs[q], ys[q], case["k"], case["centered"])
        assert count[q] == n, (q, xs[q], ys[q])
        if want is None:
            assert pred[q] == (means[xs[q]] if case["centered"] else 0.0)
        else:
            np.testing.assert_allclose(pred[q], want, **tol(dtype))


def _predict_pairs(backend, args, means, case, targets, ptr, others):
    pred = np.empty(others.shape[0])
    count = np.empty(others.shape[0], dtype=np.int32)
    knn_kernels.get(backend).predict_pairs(
        *args,
        args[5],
        means,
        np.ones_like(means),
        0,
        case["min_support"],
        case["shrinkage"],
        case["k"],
        case["centered"],
        targets.astype(np.int32),
        ptr.astype(np.int64),
        others.astype(np.int32),
        pred,
        count,
    )
    return pred, count


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@given(
    case=ratings_case.map(lambda c: dict(c, n_x=c["n_x"] + 14)),
    n_queries=st.integers(1, 30),
)
@settings(max_examples=15)
def test_predict_pairs_sparse_and_dense_groups_agree(backend, dtype, case, n_queries):
    # One query per group: the group's column holds fewer entries than n_x, so the
    # kernel walks the column ("sparse" group); all queries of a target in one
    # group: usually at least n_x entries, every line is flagged ("dense" group).
    # Both must give the same bits, and the reference's result.
    R, M = random_ratings(
        case["seed"], case["n_x"], case["n_y"], case["density"], case["constant_row"]
    )
    rng = np.random.default_rng(case["seed"])
    xs = np.sort(rng.integers(0, 4, n_queries))  # several queries per target
    ys = rng.integers(0, case["n_y"], n_queries)
    means = row_means(R, M, 3.0)
    args = kernel_csr(R, M, dtype)
    single = _predict_pairs(backend, args, means, case, xs, np.arange(n_queries + 1), ys)
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    grouped = _predict_pairs(backend, args, means, case, xs[starts], np.r_[starts, n_queries], ys)
    np.testing.assert_array_equal(single[0], grouped[0])
    np.testing.assert_array_equal(single[1], grouped[1])
    S = similarity_matrix(R, M, "pearson", case["min_support"], case["shrinkage"])
    from tests.reference_knn import neighbours, predict_one

    for q in range(n_queries):
        x, y, k = xs[q], ys[q], case["k"]
        want, n = predict_one(S, R, M, means, x, y, k, case["centered"])
        assert single[1][q] == n, (q, x, y)
        ranked = [S[x, x2] for x2 in neighbours(S, M, x, y, k + 1)]
        if len(ranked) > k and abs(ranked[k - 1] - ranked[k]) < 1e-9:
            # equal similarities computed in another order by the reference (two-pass)
            # and the kernel (one-pass) can differ in the last bit and rank apart
            continue
        if want is not None:
            np.testing.assert_allclose(single[0][q], want, **tol(dtype))


@pytest.mark.parametrize("n_raters", [3, 4, 9])
def test_predict_pairs_ties_at_kth_place_keep_lowest_index(backend, dtype, n_raters):
    # Users 1..n_raters rate items 0-2 exactly as user 0 does (Pearson 1.0 with
    # each: an n_raters-way tie), and item 3, which user 0 has not rated. With
    # k = 3 the neighbours of (0, 3) must be users 1, 2, 3.
    n_x = n_raters + 1
    R = np.zeros((n_x, 4))
    M = np.zeros((n_x, 4), dtype=bool)
    R[:, :3] = [1.0, 2.0, 3.5]
    M[:, :3] = True
    R[1:, 3] = 0.5 * np.arange(1, n_raters + 1)
    M[1:, 3] = True
    means = row_means(R, M, 3.0)
    args = kernel_csr(R, M, dtype)
    case = {"min_support": 1, "shrinkage": 0.0, "k": 3, "centered": True}
    pred, count = _predict_pairs(
        backend, args, means, case, np.array([0]), np.array([0, 1]), np.array([3])
    )
    nb = np.arange(1, 4)
    assert count[0] == 3
    want = means[0] + np.mean(R[nb, 3] - means[nb])
    np.testing.assert_allclose(pred[0], want, **tol(dtype))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@given(case=ratings_case, n=st.integers(1, 14), positive_only=st.booleans())
@settings(max_examples=15)
def test_similar_rows_kernel(backend, dtype, case, n, positive_only):
    R, M = random_ratings(
        case["seed"], case["n_x"], case["n_y"], case["density"], case["constant_row"]
    )
    args = kernel_csr(R, M, dtype)
    rows = np.arange(case["n_x"], dtype=np.int32)[::-1].copy()
    idx = np.empty((rows.shape[0], n), dtype=np.int32)
    val = np.empty((rows.shape[0], n), dtype=dtype)
    kernel = knn_kernels.get(backend).similar_rows
    kernel(*args, 0, case["min_support"], case["shrinkage"], rows, positive_only, idx, val)
    for r, x in enumerate(rows):
        want_idx, want_val = similar_rows_reference(
            R, M, "pearson", case["min_support"], case["shrinkage"], x, n, positive_only
        )
        np.testing.assert_allclose(val[r], want_val, **tol(dtype))
        # indices must agree except inside groups of (numerically) tied values
        same = np.isclose(want_val, np.roll(want_val, 1), **tol(dtype)) | np.isclose(
            want_val, np.roll(want_val, -1), **tol(dtype)
        )
        assert np.array_equal(idx[r][~same], want_idx[~same])
        assert set(idx[r][idx[r] >= 0]) <= set(range(case["n_x"])) - {x}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@given(case=ratings_case, max_neighbors=st.integers(1, 15), min_k=st.integers(0, 3))
@settings(max_examples=15)
def test_score_user_based_kernel(backend, dtype, case, max_neighbors, min_k):
    R, M = random_ratings(
        case["seed"], case["n_x"], case["n_y"], case["density"], case["constant_row"]
    )
    if not M.any():
        return
    ref = NaiveKNN(
        R,
        M,
        True,
        k=case["k"],
        min_support=case["min_support"],
        shrinkage=case["shrinkage"],
        min_k=min_k,
        centered=case["centered"],
        max_neighbors=max_neighbors,
    )
    args = kernel_csr(R, M, dtype)
    users = np.flatnonzero(M.any(axis=1)).astype(np.int32)
    fallback = ref.user_mean[users] if case["centered"] else np.full(users.size, ref.global_mean)
    out = np.empty((users.size, case["n_y"]), dtype=np.float32)
    kernel = knn_kernels.get(backend).score_user_based
    kernel(
        *args,
        args[2],
        ref.user_mean,
        np.ones_like(ref.user_mean),
        0,
        case["min_support"],
        case["shrinkage"],
        case["k"],
        min_k,
        case["centered"],
        0,
        max_neighbors,
        users,
        fallback,
        out,
    )
    for r, u in enumerate(users):
        want = ref.scores(u)
        # the reference gives cold items the user mean; the kernel the fallback
        cold = ref.item_count == 0
        want[cold] = fallback[r]
        np.testing.assert_allclose(out[r], want, **tol(np.float32))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@given(case=ratings_case, max_neighbors=st.integers(1, 12), min_k=st.integers(0, 3))
@settings(max_examples=15)
def test_score_item_based_kernel(backend, dtype, case, max_neighbors, min_k):
    R, M = random_ratings(
        case["seed"], case["n_x"], case["n_y"], case["density"], case["constant_row"]
    )
    if not M.any():
        return
    # rows = users, columns = items here
    ref = NaiveKNN(
        R,
        M,
        False,
        k=case["k"],
        min_support=case["min_support"],
        shrinkage=case["shrinkage"],
        min_k=min_k,
        centered=case["centered"],
        max_neighbors=max_neighbors,
    )
    n_items = case["n_y"]
    kept = np.zeros((n_items, n_items), dtype=dtype)
    for i in range(n_items):
        for j in ref._kept(i):
            kept[i, j] = ref.S[i, j]
    nbr_T = sp.csr_matrix(kept.T)
    args = kernel_csr(R, M, dtype)
    users = np.flatnonzero(M.any(axis=1)).astype(np.int32)
    fallback = ref.item_mean if case["centered"] else np.full(n_items, ref.global_mean)
    out = np.empty((users.size, n_items), dtype=np.float32)
    kernel = knn_kernels.get(backend).score_item_based
    kernel(
        *args[:3],
        nbr_T.indptr.astype(np.int64),
        nbr_T.indices.astype(np.int32),
        nbr_T.data.astype(dtype),
        ref.item_mean,
        np.ones_like(ref.item_mean),
        case["k"],
        min_k,
        case["centered"],
        users,
        fallback,
        out,
    )
    for r, u in enumerate(users):
        want = ref.scores(u)
        cold = ref.item_count == 0
        want[cold] = fallback[cold]
        np.testing.assert_allclose(out[r], want, **tol(np.float32))


# ---------------------------------------------------------------- models
def make_split(seed, n_users=14, n_items=11, density=0.45):
    """Train Interactions (with a cold user and a cold item) and raw-id test pairs."""
    R, M = random_ratings(seed, n_users, n_items, density)
    u, i = np.nonzero(M)
    X = fr.Interactions.from_arrays(u * 10, i * 100 + 7, R[u, i])
    rng = np.random.default_rng(seed + 1)
    keep = rng.random(X.nnz) < 0.8
    # make the first user and the last item cold in train (they keep their ids)
    users_of = X.entry_users()
    keep &= users_of != 0
    keep &= X.matrix.indices != X.n_items - 1
    train = X.subset(keep)
    dense_R = train.matrix.toarray()
    dense_M = np.zeros_like(dense_R, dtype=bool)
    rows = train.entry_users()
    dense_M[rows, train.matrix.indices] = True
    # every known pair plus unknown raw ids
    uu, ii = np.meshgrid(np.arange(X.n_users), np.arange(X.n_items), indexing="ij")
    raw_u = np.r_[X.user_ids[uu.ravel()], [-5, -5, X.user_ids[1]]]
    raw_i = np.r_[X.item_ids[ii.ravel()], [X.item_ids[0], -9, -9]]
    return train, dense_R, dense_M, raw_u, raw_i


def _ref_index(train, raw, ids):
    idx = train.user_index(raw) if ids == "users" else train.item_index(raw)
    return np.asarray(idx)


model_case = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**31 - 1),
        "k": st.integers(1, 5),
        "min_support": st.integers(0, 3),
        "shrinkage": st.sampled_from([0.0, 1.5]),
        "min_k": st.integers(0, 3),
        "centered": st.booleans(),
        "max_neighbors": st.sampled_from([None, 1, 3]),
    }
)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cls", MODELS)
@given(case=model_case)
@settings(max_examples=10)
def test_model_predict_and_recommend(backend, cls, case):
    train, R, M, raw_u, raw_i = make_split(case["seed"])
    params = {k: v for k, v in case.items() if k != "seed"}
    model = cls(
        backend=backend, num_threads=2, ranking="rating", similarity="pearson", **params
    ).fit(train)
    ref = NaiveKNN(R, M, cls is UserKNN, **params)
    got = model.predict(raw_u, raw_i)
    ui = _ref_index(train, raw_u, "users")
    ii = _ref_index(train, raw_i, "items")
    want = np.array([ref.predict(a, b) for a, b in zip(ui, ii)])
    np.testing.assert_allclose(got, want, **tol(np.float32))
    # recommend: scores at the returned ids equal the reference scores, and the
    # returned values are the reference's top-n values
    users = train.user_ids
    ids, scores = model.recommend(users, n=4)
    for r, raw in enumerate(users):
        u = int(train.user_index([raw])[0])
        if ref.user_count[u] == 0:  # cold user: most popular items
            counts = ref.item_count.astype(np.float32)
            np.testing.assert_allclose(np.sort(scores[r])[::-1], np.sort(counts)[::-1][:4])
            continue
        want_ids, want_vals = ref.recommend(u, 4)
        np.testing.assert_allclose(scores[r], want_vals, **tol(np.float32))
        all_scores = ref.scores(u)
        got_idx = train.item_index(ids[r][want_ids >= 0])
        np.testing.assert_allclose(scores[r][want_ids >= 0], all_scores[got_idx], **tol(np.float32))
        assert not M[u, got_idx].any()  # seen items excluded


def test_fallbacks_named():
    """Unknown user, unknown item, cold user/item and fewer than min_k neighbours."""
    # users 0..2, items 0..2; user 2 rated only item 2, which nobody else rated
    X = fr.Interactions.from_arrays(
        [0, 0, 0, 1, 1, 1, 2], [0, 1, 2, 0, 1, 3, 4], [5.0, 3.0, 4.0, 4.0, 2.0, 1.0, 2.0]
    )
    for cls in MODELS:
        model = cls(min_k=1).fit(X)
        gm = X.matrix.data.mean()
        # unknown user and unknown item: global mean
        assert model.predict([99], [99])[0] == pytest.approx(gm)
        # unknown user, known item: item mean
        assert model.predict([99], [0])[0] == pytest.approx(4.5)
        # known user, unknown item: user mean
        assert model.predict([0], [99])[0] == pytest.approx(4.0)
        # user 2 and item 2 share no co-rater with anything useful -> fallback
        centered_fallback = 2.0 if cls is UserKNN else 4.0
        assert model.predict([2], [2])[0] == pytest.approx(centered_fallback)
        # KNNBasic's fallback is the global mean
        basic = cls(centered=False).fit(X)
        assert basic.predict([2], [2])[0] == pytest.approx(gm)
        # an unknown user in recommend gets the most popular items
        ids, _ = model.recommend([99], n=2)
        assert set(ids[0]) <= {0, 1}
        # fallback="global" (surprise's rule): the global mean for every pair
        # with an unknown user or item; known pairs are untouched
        glob = cls(min_k=1, fallback="global").fit(X)
        np.testing.assert_allclose(glob.predict([99, 99, 0], [99, 0, 99]), [gm, gm, gm])
        assert glob.predict([2], [2])[0] == pytest.approx(centered_fallback)
        assert glob.predict([0], [1])[0] == pytest.approx(model.predict([0], [1])[0])


def test_fallback_validated_and_persisted(tmp_path):
    X = fr.Interactions.from_arrays([0, 0, 1, 1], [0, 1, 0, 1], [5.0, 3.0, 4.0, 2.0])
    with pytest.raises(ValueError, match="fallback"):
        UserKNN(fallback="surprise").fit(X)
    model = ItemKNN(fallback="global").fit(X)
    model.save(tmp_path / "m.npz")
    loaded = fr.load(tmp_path / "m.npz")
    assert loaded.fallback == "global"
    assert loaded.predict([7], [0])[0] == pytest.approx(X.matrix.data.mean())


@pytest.mark.parametrize("cls", MODELS)
def test_min_k_above_available_falls_back(cls):
    """min_k larger than any neighbour count: every warm pair gets the target mean."""
    train, R, M, raw_u, raw_i = make_split(3)
    got = cls(min_k=1000).fit(train).predict(raw_u, raw_i)
    ref = NaiveKNN(R, M, cls is UserKNN, min_k=1000)
    ui = _ref_index(train, raw_u, "users")
    ii = _ref_index(train, raw_i, "items")
    np.testing.assert_allclose(got, [ref.predict(a, b) for a, b in zip(ui, ii)], rtol=1e-6)
    warm = (ui >= 0) & (ii >= 0)
    warm[warm] = (ref.user_count[ui[warm]] > 0) & (ref.item_count[ii[warm]] > 0)
    target_mean = ref.user_mean[ui[warm]] if cls is UserKNN else ref.item_mean[ii[warm]]
    np.testing.assert_allclose(got[warm], target_mean, rtol=1e-6)


@pytest.mark.parametrize("cls", MODELS)
def test_predictions_clipped_to_rating_range(cls):
    train, R, M, raw_u, raw_i = make_split(11)
    got = cls(k=3).fit(train).predict(raw_u, raw_i)
    assert got.min() >= R[M].min() and got.max() <= R[M].max()


@pytest.mark.parametrize("cls", MODELS)
def test_similar_items_users(cls):
    train, R, M, _, _ = make_split(5)
    model = cls(similarity="pearson", min_support=2, shrinkage=0.0).fit(train)
    Rx, Mx = (R, M) if cls is UserKNN else (R.T, M.T)
    ids = train.user_ids if cls is UserKNN else train.item_ids
    call = model.similar_users if cls is UserKNN else model.similar_items
    got_ids, got_val = call(ids, n=5)
    for r in range(len(ids)):
        want_idx, want_val = similar_rows_reference(Rx, Mx, "pearson", 2, 0.0, r, 5, False)
        np.testing.assert_allclose(got_val[r], want_val, **tol(np.float32))
        pad = want_idx < 0
        assert np.all(got_ids[r][pad] == -1)
    with pytest.raises(ValueError, match="not a known id"):
        call([ids[0], "nope"], n=2)
    other, other_ids = (
        (model.similar_items, train.item_ids)
        if cls is UserKNN
        else (model.similar_users, train.user_ids)
    )
    with pytest.raises(NotImplementedError):
        other(other_ids[:1])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cls", MODELS)
def test_thread_count_invariance(cls, backend):
    train, R, M, raw_u, raw_i = make_split(21, n_users=40, n_items=30, density=0.3)
    outs = []
    for threads in (1, 2):
        m = cls(k=4, num_threads=threads, backend=backend).fit(train)
        ids, sc = m.recommend(train.user_ids, n=6)
        sim_ids, sim_val = (m.similar_users if cls is UserKNN else m.similar_items)(
            train.user_ids if cls is UserKNN else train.item_ids, n=5
        )
        outs.append((m.predict(raw_u, raw_i), ids, sc, sim_ids, sim_val))
    for a, b in zip(outs[0][3:], outs[1][3:]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
    np.testing.assert_array_equal(outs[0][2], outs[1][2])


@pytest.mark.parametrize("cls", MODELS)
def test_backends_agree(cls):
    train, R, M, raw_u, raw_i = make_split(8, n_users=30, n_items=25, density=0.35)
    a = cls(k=5, backend="numba").fit(train)
    b = cls(k=5, backend="cython").fit(train)
    np.testing.assert_allclose(a.predict(raw_u, raw_i), b.predict(raw_u, raw_i), rtol=1e-6)
    np.testing.assert_allclose(
        a.recommend(train.user_ids, n=5)[1], b.recommend(train.user_ids, n=5)[1], rtol=1e-6
    )


@pytest.mark.parametrize("kind", ["cosine", "centered_cosine", "adjusted_cosine"])
@pytest.mark.parametrize("cls", MODELS)
def test_other_similarity_kinds(kind, cls):
    pytest.importorskip("fastrec.neighbours")
    train, R, M, raw_u, raw_i = make_split(13)
    model = cls(similarity=kind, k=3, shrinkage=0.0).fit(train)
    ref = NaiveKNN(R, M, cls is UserKNN, k=3, kind=kind)
    ui = _ref_index(train, raw_u, "users")
    ii = _ref_index(train, raw_i, "items")
    want = np.array([ref.predict(a, b) for a, b in zip(ui, ii)])
    np.testing.assert_allclose(model.predict(raw_u, raw_i), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize("use_first", [False, True])
def test_save_load_round_trip(tmp_path, cls, use_first):
    train, R, M, raw_u, raw_i = make_split(17)
    model = cls(k=3, max_neighbors=4).fit(train)
    if use_first:
        model.recommend(train.user_ids[:2], n=3)  # ItemKNN builds its lists here
    path = tmp_path / "knn.npz"
    model.save(path)
    loaded = fr.load(path)
    assert type(loaded) is cls and loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.predict(raw_u, raw_i), model.predict(raw_u, raw_i))
    a, b = model.recommend(train.user_ids, n=3), loaded.recommend(train.user_ids, n=3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_load_rejects_tampered_neighbours(tmp_path):
    train, *_ = make_split(17)
    model = ItemKNN(k=3).fit(train)
    _ = model.similarity_
    path = tmp_path / "knn.npz"
    model.save(path)
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["model.similarity_indices"] = arrays["model.similarity_indices"] + 1000
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    with pytest.raises(ValueError):
        fr.load(path)


@pytest.mark.parametrize(
    "params, field",
    [
        ({"k": 0}, "k"),
        ({"similarity": "msd"}, "similarity"),
        ({"min_support": -1}, "min_support"),
        ({"shrinkage": -1.0}, "shrinkage"),
        ({"min_k": -2}, "min_k"),
        ({"centered": "yes"}, "centered"),
        ({"max_neighbors": 0}, "max_neighbors"),
        ({"num_threads": -1}, "num_threads"),
        ({"backend": "fortran"}, "backend"),
    ],
)
def test_bad_params_raise_before_work(params, field):
    train, *_ = make_split(2)
    with pytest.raises(ValueError, match=field):
        UserKNN(**params).fit(train)


def test_matches_surprise_knnwithmeans():
    """Same settings, k above any candidate count: identical predictions on unseen pairs."""
    surprise = pytest.importorskip("surprise")
    import pandas as pd

    rng = np.random.default_rng(0)
    n_users, n_items = 25, 18
    M = rng.random((n_users, n_items)) < 0.5
    R = rng.integers(1, 11, size=M.shape) * 0.5
    u, i = np.nonzero(M)
    test_mask = rng.random(u.size) < 0.15
    df = pd.DataFrame({"u": u[~test_mask], "i": i[~test_mask], "r": R[u, i][~test_mask]})
    train = fr.Interactions.from_arrays(df.u.to_numpy(), df.i.to_numpy(), df.r.to_numpy())
    reader = surprise.Reader(rating_scale=(0.5, 5.0))
    ts = surprise.Dataset.load_from_df(df[["u", "i", "r"]], reader).build_full_trainset()
    tu, ti = u[test_mask], i[test_mask]
    known = np.isin(tu, df.u) & np.isin(ti, df.i)
    tu, ti = tu[known], ti[known]
    for user_based, cls in ((True, UserKNN), (False, ItemKNN)):
        algo = surprise.KNNWithMeans(
            k=1000,
            sim_options={"name": "pearson", "user_based": user_based, "min_support": 1},
            verbose=False,
        ).fit(ts)
        want = np.array([algo.predict(a, b).est for a, b in zip(tu, ti)])
        got = cls(k=1000, similarity="pearson", shrinkage=0.0).fit(train).predict(tu, ti)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        # configured like surprise (fallback="global"): the same on every pair,
        # unknown users and items included
        au = np.concatenate([u[test_mask], [n_users + 5, 0]])
        ai = np.concatenate([i[test_mask], [0, n_items + 5]])
        want_all = np.array([algo.predict(a, b).est for a, b in zip(au, ai)])
        got_all = (
            cls(k=1000, similarity="pearson", shrinkage=0.0, fallback="global")
            .fit(train)
            .predict(au, ai)
        )
        np.testing.assert_allclose(got_all, want_all, rtol=1e-5, atol=1e-5)


# ------------------------------------------ top-N scoring, centring, baselines
from tests import reference_knn as ref_knn  # noqa: E402

topn_case = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**31 - 1),
        "n_x": st.integers(1, 10),
        "n_y": st.integers(1, 9),
        "density": st.sampled_from([0.2, 0.5, 0.9]),
        "k": st.integers(1, 5),
        "min_support": st.integers(0, 3),
        "shrinkage": st.sampled_from([0.0, 2.5]),
    }
)


def _residuals(R, M, seed):
    """Baseline-like residuals on the mask (any values will do for the kernel)."""
    rng = np.random.default_rng(seed)
    return np.where(M, R - 2.5 + rng.normal(0, 0.3, R.shape), 0.0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@given(case=topn_case, centered=st.booleans(), support_cosine=st.booleans())
@settings(max_examples=15, deadline=None)
def test_predict_pairs_scales_and_support_cosine(backend, dtype, case, centered, support_cosine):
    """predict_pairs with z-score scales, and with kind 2 (pearson_baseline) similarities."""
    R, M = random_ratings(case["seed"], case["n_x"], case["n_y"], case["density"])
    rng = np.random.default_rng(case["seed"] + 1)
    means = rng.uniform(1.0, 4.0, case["n_x"])
    scales = rng.uniform(0.5, 2.0, case["n_x"])
    args = kernel_csr(R, M, dtype)
    if support_cosine:
        V = _residuals(R, M, case["seed"])
        S = ref_knn.support_cosine_matrix(V, M, case["min_support"], case["shrinkage"])
        vargs = kernel_csr(V, M, dtype)
        # the residual structure equals the ratings' (no residual is exactly 0)
        args = args[:2] + [vargs[2]] + args[3:5] + [vargs[5]]
        kind = 2
    else:
        S = similarity_matrix(R, M, "pearson", case["min_support"], case["shrinkage"])
        kind = 0
    xs, ys = np.meshgrid(np.arange(case["n_x"]), np.arange(case["n_y"]), indexing="ij")
    xs, ys = xs.ravel().astype(np.int32), ys.ravel().astype(np.int32)
    starts = np.arange(0, xs.shape[0] + 1, case["n_y"], dtype=np.int64)
    pred = np.empty(xs.shape[0])
    count = np.empty(xs.shape[0], dtype=np.int32)
    ratings = kernel_csr(R, M, dtype)[5]
    knn_kernels.get(backend).predict_pairs(
        *args,
        ratings,
        means,
        scales,
        kind,
        case["min_support"],
        case["shrinkage"],
        case["k"],
        centered,
        np.arange(case["n_x"], dtype=np.int32),
        starts,
        ys,
        pred,
        count,
    )
    for q in range(xs.shape[0]):
        want, n = ref_knn.predict_scaled(S, R, M, means, scales, xs[q], ys[q], case["k"], centered)
        assert count[q] == n
        if want is not None:
            np.testing.assert_allclose(pred[q], want, **tol(dtype))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@given(case=topn_case, weighted=st.booleans())
@settings(max_examples=15, deadline=None)
def test_score_user_based_topn_modes(backend, dtype, case, weighted):
    """Modes 1 (sum of similarities) and 2 (weighted by z-scored ratings)."""
    R, M = random_ratings(case["seed"], case["n_x"], case["n_y"], case["density"])
    rng = np.random.default_rng(case["seed"] + 2)
    means = rng.uniform(1.0, 4.0, case["n_x"])
    scales = rng.uniform(0.5, 2.0, case["n_x"])
    S = similarity_matrix(R, M, "pearson", case["min_support"], case["shrinkage"])
    args = kernel_csr(R, M, dtype)
    users = np.arange(case["n_x"], dtype=np.int32)[::-1].copy()
    out = np.empty((users.size, case["n_y"]), dtype=np.float32)
    knn_kernels.get(backend).score_user_based(
        *args,
        args[2],
        means,
        scales,
        0,
        case["min_support"],
        case["shrinkage"],
        case["k"],
        1,
        True,
        2 if weighted else 1,
        1,  # max_neighbors: ignored by the top-N modes
        users,
        np.zeros(users.size),
        out,
    )
    for r, u in enumerate(users):
        want = ref_knn.user_topn_scores(S, R, M, means, scales, u, case["k"], weighted)
        np.testing.assert_allclose(out[r], want, **tol(np.float32))


def _item_topn_inputs(case, dtype, weighted):
    """Ratings mask M, item similarity S, weights W, the ratings CSR A, the CSR
    order of the weights and the transposed neighbour lists of a top-N case."""
    R, M = random_ratings(case["seed"], case["n_x"], case["n_y"], case["density"])
    # rows users, columns items; item-item similarity from the item side
    S = similarity_matrix(R.T, M.T, "pearson", case["min_support"], case["shrinkage"])
    n_items = case["n_y"]
    kept = np.zeros((n_items, n_items))
    for i in range(n_items):
        for j in ref_knn.top_positive(S, i, case["k"]):
            kept[i, j] = S[i, j]
    nbr_T = sp.csr_matrix(kept.T.astype(dtype))
    rng = np.random.default_rng(case["seed"] + 3)
    W = np.where(M, rng.normal(0, 1, M.shape), 0.0) if weighted else M.astype(np.float64)
    A = sp.csr_matrix(M.astype(np.float64))
    weights = W[M].astype(dtype)  # row-major: the CSR order of A
    return M, S, W, A, weights, nbr_T


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@given(case=topn_case, weighted=st.booleans())
@settings(max_examples=15, deadline=None)
def test_score_item_topn_kernel(backend, dtype, case, weighted):
    M, S, W, A, weights, nbr_T = _item_topn_inputs(case, dtype, weighted)
    n_items = case["n_y"]
    users = np.arange(case["n_x"], dtype=np.int32)
    out = np.empty((users.size, n_items), dtype=np.float32)
    knn_kernels.get(backend).score_item_topn(
        A.indptr.astype(np.int64),
        A.indices.astype(np.int32),
        weights,
        nbr_T.indptr.astype(np.int64),
        nbr_T.indices.astype(np.int32),
        nbr_T.data,
        users,
        out,
    )
    for r, u in enumerate(users):
        want = ref_knn.item_topn_scores(S, W, M, u, case["k"])
        np.testing.assert_allclose(out[r], want, **tol(np.float32))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@given(case=topn_case, weighted=st.booleans(), data=st.data())
@settings(max_examples=15, deadline=None)
def test_recommend_item_topn_kernel(backend, dtype, case, weighted, data):
    """The fused kernel returns exactly the top n of score_item_topn's dense rows."""
    from tests.reference_core import topk_reference

    M, S, W, A, weights, nbr_T = _item_topn_inputs(case, dtype, weighted)
    n_items = case["n_y"]
    users = np.asarray(
        data.draw(st.lists(st.integers(0, case["n_x"] - 1), min_size=1, max_size=12)),
        dtype=np.int32,
    )
    n = data.draw(st.integers(1, n_items + 2))
    excl = [
        sorted(data.draw(st.sets(st.integers(0, n_items - 1), max_size=n_items))) for _ in users
    ]
    excl_indptr = np.r_[0, np.cumsum([len(e) for e in excl])].astype(np.int64)
    excl_indices = np.array([c for e in excl for c in e], dtype=np.int32)
    csr_args = (
        A.indptr.astype(np.int64),
        A.indices.astype(np.int32),
        weights,
        nbr_T.indptr.astype(np.int64),
        nbr_T.indices.astype(np.int32),
        nbr_T.data,
        users,
    )
    dense = np.empty((users.size, n_items), dtype=np.float32)
    knn_kernels.get(backend).score_item_topn(*csr_args, dense)
    want_idx, want_val = topk_reference(dense, n, excl)
    out_idx = np.empty((users.size, n), dtype=np.int32)
    out_val = np.empty((users.size, n), dtype=np.float32)
    knn_kernels.get(backend).recommend_item_topn(
        *csr_args, excl_indptr, excl_indices, out_idx, out_val
    )
    np.testing.assert_array_equal(out_idx, want_idx)
    np.testing.assert_array_equal(out_val, want_val.astype(np.float32))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ranking", ["sum", "weighted"])
def test_item_recommend_fused_equals_dense(backend, ranking):
    """ItemKNN.recommend through the fused kernel equals the dense scores' top n."""
    X = fr.datasets.synthetic(300, 120, 4000, seed=1)
    model = ItemKNN(k=10, ranking=ranking, backend=backend, num_threads=2).fit(X)
    users = np.r_[np.arange(0, 300, 7), [5, 5, 299]]
    uidx = X.user_index(X.user_ids[users])
    ids, scores = model.recommend(X.user_ids[users], n=15)
    dense = model._score_users(uidx.astype(np.int32))
    seen = [X.matrix[u].indices for u in uidx]
    from tests.reference_core import topk_reference

    want_idx, want_val = topk_reference(dense, 15, seen)
    np.testing.assert_array_equal(ids, X.item_ids[want_idx])
    np.testing.assert_array_equal(scores, want_val.astype(np.float32))


@pytest.mark.parametrize("backend", BACKENDS)
@given(case=topn_case)
@settings(max_examples=10, deadline=None)
def test_baselines_match_surprise_loops(backend, case):
    """fit_baselines: ALS (NumPy) and SGD (kernel) against surprise's loops."""
    from fastrec.models.knn import fit_baselines

    R, M = random_ratings(case["seed"], case["n_x"], case["n_y"], case["density"])
    if not M.any():
        return
    A = sp.csr_matrix(np.where(M, R, 0.0))
    mu, bu, bi = fit_baselines(A, "als", backend=backend)
    w_mu, w_bu, w_bi = ref_knn.baseline_als(R, M)
    assert mu == pytest.approx(w_mu)
    np.testing.assert_allclose(bu, w_bu, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(bi, w_bi, rtol=1e-10, atol=1e-12)
    mu, bu, bi = fit_baselines(A, "sgd", n_epochs=7, reg=0.05, learning_rate=0.01, backend=backend)
    w_mu, w_bu, w_bi = ref_knn.baseline_sgd(R, M, n_epochs=7, reg=0.05, lr=0.01)
    np.testing.assert_allclose(bu, w_bu, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(bi, w_bi, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize("ranking", ["sum", "weighted"])
def test_model_topn_scores_match_reference(backend, cls, ranking):
    train, R, M, _, _ = make_split(4, n_users=16, n_items=12, density=0.5)
    model = cls(k=3, similarity="pearson", shrinkage=5.0, ranking=ranking, backend=backend)
    model.fit(train)
    user_based = cls is UserKNN
    Rx, Mx = (R, M) if user_based else (R.T, M.T)
    S = similarity_matrix(Rx, Mx, "pearson", 1, 5.0)
    ref = NaiveKNN(R, M, user_based)
    warm = np.flatnonzero(M.any(axis=1))
    ids, vals = model.recommend(train.user_ids[warm], n=5)
    for r, u in enumerate(warm):
        if user_based:
            want = ref_knn.user_topn_scores(
                S, R, M, ref.user_mean, np.ones(len(ref.user_mean)), u, 3, ranking == "weighted"
            )
        else:
            W = np.where(M, R - ref.user_mean[:, None], 0.0) if ranking == "weighted" else M
            want = ref_knn.item_topn_scores(S, W.astype(np.float64), M, u, 3)
        got_idx = train.item_index(ids[r][ids[r] != -1])
        np.testing.assert_allclose(vals[r][: got_idx.size], want[got_idx], **tol(np.float32))
        unseen = np.sort(want[~M[u]])[::-1][: got_idx.size]
        np.testing.assert_allclose(
            np.sort(vals[r][: got_idx.size])[::-1], unseen, **tol(np.float32)
        )


def _surprise_case(seed=0, n_users=25, n_items=18):
    surprise = pytest.importorskip("surprise")
    import pandas as pd

    rng = np.random.default_rng(seed)
    M = rng.random((n_users, n_items)) < 0.5
    R = rng.integers(1, 11, size=M.shape) * 0.5
    u, i = np.nonzero(M)
    test_mask = rng.random(u.size) < 0.15
    df = pd.DataFrame({"u": u[~test_mask], "i": i[~test_mask], "r": R[u, i][~test_mask]})
    train = fr.Interactions.from_arrays(df.u.to_numpy(), df.i.to_numpy(), df.r.to_numpy())
    reader = surprise.Reader(rating_scale=(0.5, 5.0))
    ts = surprise.Dataset.load_from_df(df[["u", "i", "r"]], reader).build_full_trainset()
    # every test pair plus an unknown user and an unknown item
    au = np.concatenate([u[test_mask], [n_users + 5, 0]])
    ai = np.concatenate([i[test_mask], [0, n_items + 5]])
    return surprise, train, ts, au, ai


@pytest.mark.parametrize("user_based", [True, False])
def test_centering_modes_match_surprise(user_based):
    """centering="none" / "mean" / "zscore" / "baseline" are KNNBasic / KNNWithMeans /
    KNNWithZScore / KNNBaseline (pearson_baseline similarity, shrinkage 100)."""
    surprise, train, ts, au, ai = _surprise_case(1)
    cls = UserKNN if user_based else ItemKNN
    cases = [
        ("none", "pearson", 0.0, surprise.KNNBasic),
        ("mean", "pearson", 0.0, surprise.KNNWithMeans),
        ("zscore", "pearson", 0.0, surprise.KNNWithZScore),
        ("baseline", "pearson_baseline", 100.0, surprise.KNNBaseline),
    ]
    for centering, sim, shrink, algo_cls in cases:
        algo = algo_cls(k=6, sim_options={"name": sim, "user_based": user_based}, verbose=False)
        algo.fit(ts)
        want = np.array([algo.predict(a, b).est for a, b in zip(au, ai)])
        model = cls(
            k=6, similarity=sim, centering=centering, shrinkage=shrink, fallback="global"
        ).fit(train)
        got = model.predict(au, ai)
        known = (au < 25) & (ai < 18)
        if centering == "baseline":
            known[:] = True  # surprise's KNNBaseline falls back to the baselines, as here
        np.testing.assert_allclose(got[known], want[known], rtol=1e-5, atol=1e-5, err_msg=centering)


@pytest.mark.parametrize("backend", BACKENDS)
def test_knnbaseline_configuration_matches_surprise_and_reference(backend):
    surprise, train, ts, au, ai = _surprise_case(2, n_users=30, n_items=22)
    model = ItemKNN(
        k=40,
        similarity="pearson_baseline",
        centering="baseline",
        shrinkage=100,
        fallback="global",
        backend=backend,
    ).fit(train)
    got = model.predict(au, ai)
    algo = surprise.KNNBaseline(
        k=40, sim_options={"name": "pearson_baseline", "user_based": False}, verbose=False
    ).fit(ts)
    want = np.array([algo.predict(a, b).est for a, b in zip(au, ai)])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # and the naive reference, on the known pairs
    R = train.matrix.toarray().astype(np.float64)
    M = np.zeros(R.shape, dtype=bool)
    M[train.entry_users(), train.matrix.indices] = True
    mu, bu, bi = ref_knn.baseline_als(R, M)
    V = np.where(M, R - (mu + bu[:, None] + bi[None, :]), 0.0)
    S = ref_knn.support_cosine_matrix(V.T, M.T, 1, 100.0)
    ui, ii = train.user_index(au), train.item_index(au * 0 + ai)
    for q in np.flatnonzero((ui >= 0) & (ii >= 0)):
        u, i = ui[q], ii[q]
        nb = ref_knn.neighbours(S, M.T, i, u, 40)
        est = mu + bu[u] + bi[i]
        if nb:
            s = S[i, nb]
            est += float(s @ (R[u, nb] - (mu + bu[u] + bi[nb]))) / s.sum()
        assert got[q] == pytest.approx(np.clip(est, 0.5, 5.0), abs=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("kind", ["tfidf", "bm25"])
@given(case=topn_case)
@settings(max_examples=10, deadline=None)
def test_similarity_tfidf_bm25(backend, dtype, kind, case):
    """fr.similarity(kind="tfidf" | "bm25") against implicit's weighting, densely."""
    R, M = random_ratings(case["seed"], case["n_x"], case["n_y"], case["density"])
    X = sp.csr_matrix(np.where(M, R, 0.0))
    got = fr.similarity(
        X,
        kind=kind,
        axis="users",
        k=50,
        min_support=case["min_support"],
        shrinkage=case["shrinkage"],
        backend=backend,
        dtype=dtype,
    ).toarray()
    V = ref_knn.weighting(R, M, kind)
    want = ref_knn.weighted_dot_matrix(V, M, case["min_support"], case["shrinkage"])
    if kind == "tfidf":
        want = np.clip(want, -1, 1)
    np.testing.assert_allclose(got, want, **tol(dtype))


@pytest.mark.parametrize("kind", ["tfidf", "bm25"])
def test_tfidf_bm25_weights_equal_implicits(kind):
    nn = pytest.importorskip("implicit.nearest_neighbours")
    from fastrec.neighbours import prepare

    R, M = random_ratings(5, 12, 9, 0.5)
    X = sp.csr_matrix(np.where(M, R, 0.0))
    mine = prepare(X, kind, dtype=np.float64).matrix.toarray()
    if kind == "tfidf":
        theirs = nn.tfidf_weight(X).toarray()
        norm = np.sqrt((theirs**2).sum(axis=1, keepdims=True))
        theirs = np.divide(theirs, norm, out=np.zeros_like(theirs), where=norm > 0)
    else:
        theirs = nn.bm25_weight(X, K1=1.2, B=0.75).toarray()
    np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-12)


def test_tfidf_bm25_reject_negative_values():
    X = sp.csr_matrix(np.array([[1.0, -2.0], [0.0, 3.0]]))
    for kind in ("tfidf", "bm25"):
        with pytest.raises(ValueError, match="non-negative"):
            fr.similarity(X, kind=kind)


@pytest.mark.parametrize("kind", ["tfidf", "bm25", "pearson_baseline"])
@pytest.mark.parametrize("cls", MODELS)
def test_model_new_similarity_kinds(kind, cls):
    train, R, M, raw_u, raw_i = make_split(13)
    model = cls(similarity=kind, k=3, shrinkage=0.0, ranking="rating").fit(train)
    Rx, Mx = (R, M) if cls is UserKNN else (R.T, M.T)
    if kind == "pearson_baseline":
        mu, bu, bi = ref_knn.baseline_als(R, M)
        V = np.where(M, R - (mu + bu[:, None] + bi[None, :]), 0.0)
        S = ref_knn.support_cosine_matrix(V if cls is UserKNN else V.T, Mx, 1, 0.0)
    else:
        S = ref_knn.weighted_dot_matrix(ref_knn.weighting(Rx, Mx, kind), Mx)
    ref = NaiveKNN(R, M, cls is UserKNN, k=3)
    ref.S = S
    ui = _ref_index(train, raw_u, "users")
    ii = _ref_index(train, raw_i, "items")
    want = np.array([ref.predict(a, b) for a, b in zip(ui, ii)])
    np.testing.assert_allclose(model.predict(raw_u, raw_i), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "cls, ranking",
    # UserKNN's rankings share one kernel; ItemKNN's use two
    [(UserKNN, "sum"), (ItemKNN, "sum"), (ItemKNN, "rating")],
)
def test_sliced_kernel_calls_equal_unsliced(monkeypatch, backend, cls, ranking):
    """fit / predict / recommend / similar_* in one-row slices give the same bits."""
    import fastrec.models.knn as knn_module

    train, R, M, raw_u, raw_i = make_split(9, n_users=30, n_items=20, density=0.4)
    outs = []
    for work in (knn_module._SLICE_WORK, 1):
        monkeypatch.setattr(knn_module, "_SLICE_WORK", work)
        m = cls(k=4, ranking=ranking, backend=backend, centering="zscore").fit(train)
        ids, sc = m.recommend(train.user_ids, n=5)
        call = m.similar_users if cls is UserKNN else m.similar_items
        sim = call(train.user_ids[:5] if cls is UserKNN else train.item_ids[:5], n=4)
        outs.append((m.predict(raw_u, raw_i), ids, sc, *sim))
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


def test_slices_cover_rows_with_bounded_work():
    from fastrec.models.knn import _slices

    cost = np.array([5, 1, 1, 1, 9, 2, 2, 2, 2, 0, 0])
    got = list(_slices(cost, 4))
    assert [(s.start, s.stop) for s in got] == [(0, 1), (1, 4), (4, 5), (5, 7), (7, 11)]
    assert list(_slices(np.zeros(0), 4)) == []


def test_similar_items_supported_by_real_co_ratings():
    """Defaults: for the 50 most-rated MovieLens items, a median of at least 20
    co-ratings behind each returned neighbour (shrinkage on by default)."""
    X = fr.datasets.movielens_small()
    model = ItemKNN().fit(X)
    B = X.matrix.tocsc().astype(bool).astype(np.float64)
    top = np.argsort(-np.diff(B.indptr), kind="stable")[:50]
    ids, _ = model.similar_items(X.item_ids[top], n=10)
    co = []
    for row, i in enumerate(top):
        nb = X.item_index(ids[row][ids[row] != -1])
        co.extend((B[:, nb].T @ B[:, i]).toarray().ravel())
    assert len(co) == 500
    assert np.median(co) >= 20
    # without shrinkage Pearson ranks pairs with a handful of co-ratings first
    raw = (
        ItemKNN(similarity="pearson", shrinkage=0.0)
        .fit(X)
        .similar_items(X.item_ids[top[:5]], n=10)[0]
    )
    few = [(B[:, X.item_index(raw[r])].T @ B[:, top[r]]).toarray().ravel() for r in range(5)]
    assert np.median(np.concatenate(few)) < 20


@pytest.mark.parametrize(
    "params, text",
    [
        ({"ranking": "best"}, "ranking"),
        ({"centering": "median"}, "centering"),
        ({"similarity": "jaccard"}, "similarity"),
        ({"shrinkage": -3.0}, "shrinkage"),
        ({"baseline": "adam"}, "baseline"),
        ({"centered": True, "centering": "zscore"}, "centered"),
    ],
)
def test_bad_new_params_name_parameter_and_value(params, text):
    train, *_ = make_split(2)
    for cls in MODELS:
        with pytest.raises(ValueError, match=text) as info:
            cls(**params).fit(train)
        assert repr(next(iter(params.values())))[:4].strip("'") in str(info.value)


def test_centered_flag_maps_onto_centering():
    train, R, M, raw_u, raw_i = make_split(6)
    for cls in MODELS:
        for flag, mode in ((True, "mean"), (False, "none")):
            a = cls(centered=flag, ranking="rating").fit(train)
            b = cls(centering=mode, ranking="rating").fit(train)
            np.testing.assert_array_equal(a.predict(raw_u, raw_i), b.predict(raw_u, raw_i))
