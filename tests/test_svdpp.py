"""SVDpp: the epoch kernels against the per-rating reference, and the model API."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import fastrec as fr
from fastrec import _backend
from fastrec._kernels import svdpp as svdpp_kernels
from fastrec.models._sgd_layout import training_layout
from fastrec.models._sgd_schedule import epoch_schedule
from fastrec.models.base import DivergenceError
from fastrec.models.svdpp import SVDpp, implicit_sums
from tests.conftest import BACKENDS, DTYPES, tol
from tests.reference_svdpp import predict as reference_predict
from tests.reference_svdpp import svdpp_epoch as reference_epoch

# One epoch chains many dependent updates; float32 rounding grows along them.
CHAIN_SLACK = {np.float32: 50.0, np.float64: 100.0}


def _problem(seed, n_users, n_items, density, k, dtype):
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    rows, cols = np.nonzero(mask)
    csr = sp.csr_matrix(
        (rng.integers(1, 6, rows.shape[0]).astype(np.float64), (rows, cols)),
        shape=(n_users, n_items),
    )
    # a random order within each row (the model relabels the items for this)
    perm = np.concatenate(
        [rng.permutation(np.arange(csr.indptr[u], csr.indptr[u + 1])) for u in range(n_users)]
        + [np.empty(0, dtype=np.int64)]
    ).astype(np.int64)
    items = np.ascontiguousarray(csr.indices[perm], dtype=np.int32)
    ratings = np.ascontiguousarray(csr.data[perm], dtype=dtype)
    params = [
        np.ascontiguousarray(rng.normal(0, 0.3, shape), dtype=dtype)
        for shape in ((n_users, k), (n_items, k), (n_items, k), (n_users,), (n_items,))
    ]
    return csr.indptr.astype(np.int64), items, ratings, params


def _kernel_epoch(backend, indptr, items, ratings, order, bounds, mu, lr, reg, params, threads):
    arrays = [a.copy() for a in params]
    loss = np.zeros(bounds.shape[0] - 1, dtype=np.float64)
    kernel = svdpp_kernels.get(backend).svdpp_epoch
    with _backend.threads(threads):
        kernel(indptr, items, ratings, order, bounds, mu, lr, reg, *arrays, loss)
    return arrays, loss


def _assert_close(got, want, dtype):
    t = tol(dtype)
    slack = CHAIN_SLACK[np.dtype(dtype).type]
    np.testing.assert_allclose(got, want, rtol=slack * t["rtol"], atol=slack * t["atol"])


problems = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**31 - 1),
        "n_users": st.integers(1, 7),
        "n_items": st.integers(1, 8),
        "density": st.sampled_from([0.0, 0.3, 0.7, 1.0]),
        "k": st.integers(1, 5),
        "lr": st.sampled_from([0.005, 0.05]),
        "reg": st.sampled_from([0.0, 0.02, 0.5]),
        "n_chunks": st.integers(1, 3),
    }
)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=15)
@given(p=problems)
def test_epoch_matches_per_rating_reference(backend, dtype, p):
    # one thread: the incremental implicit sum and the y_j batch per user give
    # Surprise's per-rating updates, in any number of chunks
    indptr, items, ratings, params = _problem(
        p["seed"], p["n_users"], p["n_items"], p["density"], p["k"], dtype
    )
    rng = np.random.default_rng(p["seed"])
    order = rng.permutation(p["n_users"]).astype(np.int32)
    bounds = np.sort(rng.integers(0, p["n_users"] + 1, p["n_chunks"] + 1)).astype(np.int64)
    bounds[0], bounds[-1] = 0, p["n_users"]
    mu = 3.0
    got, loss = _kernel_epoch(
        backend, indptr, items, ratings, order, bounds, mu, p["lr"], p["reg"], params, 1
    )
    *want, want_loss = reference_epoch(
        indptr, items, ratings, order, mu, p["lr"], p["reg"], *params
    )
    for g, w in zip(got, want):
        assert g.dtype == dtype
        _assert_close(g, w, dtype)
    assert loss.sum() == pytest.approx(want_loss, rel=CHAIN_SLACK[dtype] * tol(dtype)["rtol"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_threads_on_disjoint_items_equal_the_reference(backend):
    # chunk 0's users rate items 0-5 only, chunk 1's users items 6-11: no row is
    # shared, so two threads must give the one-thread result (per-thread scratch)
    dtype = np.float64
    rng = np.random.default_rng(5)
    dense = np.zeros((20, 12))
    for u in range(20):
        cols = rng.choice(6, 4, replace=False) + (0 if u < 10 else 6)
        dense[u, cols] = rng.integers(1, 6, 4)
    csr = sp.csr_matrix(dense)
    indptr, items = csr.indptr.astype(np.int64), csr.indices.astype(np.int32)
    ratings = csr.data.astype(dtype)
    params = [rng.normal(0, 0.3, s) for s in ((20, 4), (12, 4), (12, 4), (20,), (12,))]
    order = np.concatenate([rng.permutation(10), 10 + rng.permutation(10)]).astype(np.int32)
    bounds = np.array([0, 10, 20], dtype=np.int64)
    got, _ = _kernel_epoch(backend, indptr, items, ratings, order, bounds, 3.0, 0.05, 0.02,
                           params, 2)  # fmt: skip
    *want, _ = reference_epoch(indptr, items, ratings, order, 3.0, 0.05, 0.02, *params)
    for g, w in zip(got, want):
        _assert_close(g, w, dtype)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hogwild_epochs_on_shared_items_stay_close_to_one_thread(backend):
    # every user rates popular items: two threads race on their rows (Hogwild),
    # which may change the numbers a little but not the fit
    data = fr.datasets.synthetic(400, 150, 12_000, seed=7)
    csr = data.matrix
    indptr, items = csr.indptr.astype(np.int64), csr.indices.astype(np.int32)
    ratings = csr.data.astype(np.float32)
    rng = np.random.default_rng(0)
    params = [
        (rng.standard_normal(s) * 0.1).astype(np.float32)
        for s in ((400, 8), (150, 8), (150, 8), (400,), (150,))
    ]
    mu = float(ratings.mean())
    losses = {}
    for threads in (1, 2):
        arrays = [a.copy() for a in params]
        for epoch in range(5):
            order = np.random.default_rng(epoch).permutation(400).astype(np.int32)
            bounds = np.linspace(0, 400, 9).astype(np.int64)
            arrays, loss = _kernel_epoch(backend, indptr, items, ratings, order, bounds, mu,
                                         0.01, 0.02, arrays, threads)  # fmt: skip
        assert all(np.isfinite(a).all() for a in arrays)
        losses[threads] = loss.sum() / csr.nnz
    assert losses[2] == pytest.approx(losses[1], rel=0.02), losses


# ---------------------------------------------------------------- model
def _ratings(seed=0, n_users=60, n_items=40, nnz=700):
    return fr.datasets.synthetic(n_users, n_items, nnz, seed=seed)


def test_fit_is_the_reference_epochs_from_the_same_draws():
    # the model's draws, replayed: layout, initial factors, then one user order
    # per epoch; two reference epochs give the fitted parameters
    data = _ratings(1)
    model = SVDpp(factors=3, epochs=2, dtype="float64", random_state=4, num_threads=1)
    model.fit(data)
    rng = np.random.default_rng(4)
    block_ptr, labels, ratings, item_label = training_layout(data.matrix, rng, np.float64)
    indptr = np.append(block_ptr[:, 0], data.nnz)
    P, Q, Yimp = (rng.standard_normal(s) * 0.1 for s in ((60, 3), (40, 3), (40, 3)))
    bu, bi = np.zeros(60), np.zeros(40)
    mu = float(data.matrix.data.astype(np.float64).mean())
    for _ in range(2):
        order, _, _ = epoch_schedule(np.diff(data.matrix.indptr), rng, 1)
        P, Q, Yimp, bu, bi, _ = reference_epoch(
            indptr, labels, ratings, order, mu, 0.007, 0.02, P, Q, Yimp, bu, bi
        )
    _assert_close(model.user_factors_, P, np.float64)
    _assert_close(model.item_factors_, Q[item_label], np.float64)
    _assert_close(model.implicit_factors_, Yimp[item_label], np.float64)
    _assert_close(model.user_bias_, bu, np.float64)
    _assert_close(model.item_bias_, bi[item_label], np.float64)
    # predict is the model's formula (clipped to the rating range)
    csr = data.matrix
    for u, i in [(0, 0), (3, 7), (10, 39)]:
        want = reference_predict(
            csr.indptr, csr.indices, mu, model.user_factors_, model.item_factors_,
            model.implicit_factors_, model.user_bias_, model.item_bias_, u, i,
        )  # fmt: skip
        got = model.predict([data.user_ids[u]], [data.item_ids[i]])[0]
        assert got == pytest.approx(np.clip(want, 1, 5), rel=1e-9)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_backends_agree_with_one_thread(dtype):
    data = _ratings(2)
    fits = [
        SVDpp(factors=4, epochs=3, dtype=dtype, random_state=1, num_threads=1,
              backend=backend).fit(data)
        for backend in BACKENDS
    ]  # fmt: skip
    assert fits[0].user_factors_.dtype == dtype
    for name in ("user_factors_", "item_factors_", "implicit_factors_", "item_bias_"):
        _assert_close(getattr(fits[0], name), getattr(fits[1], name).astype(np.float64), dtype)


def test_learns_and_beats_the_baseline_on_held_out_ratings():
    X = fr.datasets.synthetic(300, 200, 12_000, seed=3)
    train, test = fr.split.random_split(X, test_size=0.2, seed=0)
    users, items, truth, _ = test.to_arrays()
    uid, iid = test.user_ids[users], test.item_ids[items]
    rmse = {}
    for name, model in {
        "svdpp": SVDpp(random_state=0),
        "popularity_mean": fr.SGDMF(factors=1, epochs=1, learning_rate=1e-9, random_state=0),
    }.items():
        model.fit(train)
        rmse[name] = float(np.sqrt(np.mean((model.predict(uid, iid) - truth) ** 2)))
    assert rmse["svdpp"] < 0.95 * rmse["popularity_mean"], rmse
    hist = SVDpp(random_state=0).fit(train).history_
    assert hist[-1]["train_rmse"] < hist[0]["train_rmse"]


def test_recommend_matches_predict_and_excludes_seen():
    data = _ratings(3)
    model = SVDpp(factors=4, epochs=5, random_state=0).fit(data)
    rows = np.argsort(np.diff(data.matrix.indptr), kind="stable")[:4]  # the least active
    ids, scores = model.recommend(data.user_ids[rows], n=6)
    for pos, row in enumerate(rows):
        seen = set(data.item_ids[data.matrix[row].indices].tolist())
        assert not seen & set(ids[pos].tolist())
        # scores are the unclipped rating estimates
        uidx = np.full(6, row)
        iidx = data.item_index(ids[pos])
        vec = model.user_factors_[uidx] + model.user_implicit_[uidx]
        want = (
            model.intercept_ + model.user_bias_[uidx] + model.item_bias_[iidx]
            + np.einsum("ij,ij->i", vec, model.item_factors_[iidx])
        )  # fmt: skip
        np.testing.assert_allclose(scores[pos], want, rtol=1e-5, atol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 0)
    np.testing.assert_allclose(
        model.user_implicit_[5],
        model.implicit_factors_[data.matrix[5].indices].sum(axis=0) / np.sqrt(data.matrix[5].nnz),
        rtol=1e-5,
    )


def test_unknown_ids_fall_back_and_save_load_round_trip(tmp_path):
    data = _ratings(4)
    model = SVDpp(factors=3, epochs=2, random_state=0).fit(data)
    assert model.predict([-99], [-98])[0] == pytest.approx(model.global_mean_)
    assert model.predict([-99], [data.item_ids[0]])[0] == pytest.approx(model.item_mean_[0])
    ids, _ = model.recommend([-99], n=3)
    top = np.argsort(-model.item_count_, kind="stable")[:3]
    assert ids[0].tolist() == data.item_ids[top].tolist()
    path = tmp_path / "svdpp.npz"
    model.save(path)
    loaded = fr.load(path)
    assert isinstance(loaded, SVDpp) and loaded.get_params() == model.get_params()
    users, items = data.user_ids[:5], data.item_ids[:5]
    np.testing.assert_array_equal(loaded.predict(users, items), model.predict(users, items))
    np.testing.assert_array_equal(loaded.recommend(users)[0], model.recommend(users)[0])
    arrays = dict(np.load(path))
    arrays["model.implicit_factors"] = arrays["model.implicit_factors"][:, :2]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="implicit_factors"):
        fr.load(tmp_path / "bad.npz")


def test_recalculate_user_solves_the_fold_in_least_squares():
    data = _ratings(5)
    model = SVDpp(factors=3, epochs=3, dtype="float64", random_state=0).fit(data)
    iidx = np.array([1, 4, 9, 12])
    ratings = np.array([5.0, 3.0, 4.0, 1.0])
    vec, bias = model.recalculate_user(data.item_ids[iidx], ratings, return_bias=True)
    np.testing.assert_array_equal(model.recalculate_user(data.item_ids[iidx], ratings), vec)
    z = implicit_sums(
        sp.csr_matrix((np.ones(4), iidx, [0, 4]), shape=(1, data.n_items)),
        model.implicit_factors_,
    )[0]
    p = vec - z
    Q = model.item_factors_[iidx]
    err = ratings - (model.intercept_ + bias + model.item_bias_[iidx] + Q @ vec)
    # gradient of the regularised least squares objective is zero at the solution
    n, reg = 4, model.regularization
    np.testing.assert_allclose(Q.T @ err, n * reg * p, atol=1e-10)
    assert err.sum() == pytest.approx(n * reg * bias, abs=1e-10)
    assert model.recalculate_user([], [], return_bias=True)[1] == 0.0
    assert not model.recalculate_user([], []).any()
    with pytest.raises(ValueError, match="repeats"):
        model.recalculate_user(data.item_ids[[1, 1]], [1.0, 2.0])
    with pytest.raises(ValueError, match="not a known id"):
        model.recalculate_user([-5], [1.0])


@pytest.mark.parametrize(
    "params, name",
    [
        ({"factors": 0}, "factors"), ({"epochs": 0}, "epochs"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"regularization": -1.0}, "regularization"), ({"init_std": -0.1}, "init_std"),
        ({"dtype": "int8"}, "dtype"), ({"random_state": -1}, "random_state"),
        ({"num_threads": -2}, "num_threads"), ({"backend": "c"}, "backend"),
    ],
)  # fmt: skip
def test_bad_parameters_raise_naming_them(params, name):
    with pytest.raises(ValueError, match=name):
        SVDpp(**params).fit(_ratings())


def test_data_without_ratings_and_divergence():
    implicit = fr.Interactions.from_arrays([0, 0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="no ratings"):
        SVDpp().fit(implicit)
    model = SVDpp(learning_rate=50.0, epochs=5, random_state=0)
    with pytest.raises(DivergenceError, match="diverged in epoch"):
        model.fit(_ratings())
    with pytest.raises(ValueError, match="not fitted"):
        model.predict([1], [1])


def test_callback_sees_each_epoch():
    seen = []
    model = SVDpp(factors=2, epochs=3, random_state=0)
    model.fit(_ratings(), callback=lambda e, info: seen.append((e, info["train_rmse"])))
    assert [e for e, _ in seen] == [0, 1, 2]
    assert model.history_[-1]["train_rmse"] == seen[-1][1]
    with pytest.raises(ValueError, match="callback"):
        model.fit(_ratings(), callback=3)
