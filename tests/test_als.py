"""ALS: kernels against dense NumPy references, solver properties, the model API."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import fastrec as fr
from fastrec import _backend
from fastrec._kernels import als as als_kernels
from fastrec.models import als as als_module
from fastrec.models.als import ALS, training_loss
from fastrec.models.base import DivergenceError
from tests.conftest import BACKENDS, DTYPES, tol
from tests.reference_als import (
    biased_half_sweep_cg,
    biased_half_sweep_exact,
    half_sweep_cg,
    half_sweep_exact,
    loss,
    loss_biased,
    row_system,
    row_system_biased,
)

# A solve amplifies the rounding of its inputs by the condition number of the
# system; the inputs below keep that small (regularisation >= 0.1, unit-scale
# factors), and the elementwise tolerance of conftest is scaled by this.
SOLVE_SLACK = 20.0


def _csr_from_mask(values, mask):
    rows, cols = np.nonzero(mask)
    return sp.csr_matrix((values[rows, cols], (rows, cols)), shape=mask.shape)


def _problem(seed, n_rows, n_cols, density, k, explicit):
    rng = np.random.default_rng(seed)
    mask = rng.random((n_rows, n_cols)) < density
    values = rng.integers(1, 6, (n_rows, n_cols)).astype(np.float64)
    if explicit:
        values -= 3.0
    else:
        values[rng.random((n_rows, n_cols)) < 0.1] = 0.0
    csr = _csr_from_mask(values, mask)
    csr.sort_indices()
    X = rng.normal(size=(n_rows, k))
    Y = rng.normal(size=(n_cols, k))
    return csr, X, Y


def _run_kernel(backend, dtype, csr, X, Y, reg, alpha, implicit, solver, cg_steps):
    Xd = np.array(X, dtype=dtype, order="C")  # a copy: the kernel writes it
    Yd = np.ascontiguousarray(Y, dtype=dtype)
    matrix = (
        csr.indptr.astype(np.int32),
        csr.indices.astype(np.int32),
        csr.data.astype(dtype),
    )
    with _backend.threads(2):
        als_module.half_sweep(matrix, Xd, Yd, reg, alpha, implicit, solver, cg_steps, backend)
    return Xd


def _assert_close(got, want, dtype):
    t = tol(dtype)
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(
        got, want, rtol=SOLVE_SLACK * t["rtol"], atol=SOLVE_SLACK * t["atol"] * scale
    )


# ---------------------------------------------------------------- kernels
problems = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**31 - 1),
        "n_rows": st.integers(1, 12),
        "n_cols": st.integers(1, 10),
        "density": st.sampled_from([0.0, 0.1, 0.4, 1.0]),
        "k": st.integers(1, 6),
        "alpha": st.sampled_from([0.0, 0.5, 1.0, 4.0]),
        "reg": st.sampled_from([0.1, 0.5, 2.0]),
        "cg_steps": st.integers(1, 4),
    }
)


@pytest.mark.parametrize("implicit", [True, False], ids=["implicit", "explicit"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("backend", BACKENDS)
@given(p=problems)
def test_cg_half_sweep_matches_dense_reference(backend, dtype, implicit, p):
    csr, X, Y = _problem(p["seed"], p["n_rows"], p["n_cols"], p["density"], p["k"], not implicit)
    X = np.asarray(X, dtype=dtype).astype(np.float64)  # the reference sees the same inputs
    Y = np.asarray(Y, dtype=dtype).astype(np.float64)
    got = _run_kernel(
        backend, dtype, csr, X, Y, p["reg"], p["alpha"], implicit, "cg", p["cg_steps"]
    )
    want = half_sweep_cg(csr, X, Y, p["reg"], p["alpha"], implicit, p["cg_steps"])
    assert got.dtype == dtype
    _assert_close(got, want, dtype)


@pytest.mark.parametrize("implicit", [True, False], ids=["implicit", "explicit"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("backend", BACKENDS)
@given(p=problems)
def test_cholesky_half_sweep_matches_dense_solve(backend, dtype, implicit, p):
    csr, X, Y = _problem(p["seed"], p["n_rows"], p["n_cols"], p["density"], p["k"], not implicit)
    X = np.asarray(X, dtype=dtype).astype(np.float64)
    Y = np.asarray(Y, dtype=dtype).astype(np.float64)
    got = _run_kernel(backend, dtype, csr, X, Y, p["reg"], p["alpha"], implicit, "cholesky", 1)
    want = half_sweep_exact(csr, X, Y, p["reg"], p["alpha"], implicit)
    _assert_close(got, want, dtype)


def test_empty_rows_get_zero_factors(backend, dtype):
    csr = sp.csr_matrix(np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 2.0]]))
    X = np.full((2, 3), 7.0)
    Y = np.eye(3)
    for solver in ("cg", "cholesky"):
        for implicit in (True, False):
            got = _run_kernel(backend, dtype, csr, X, Y, 0.1, 1.0, implicit, solver, 3)
            assert np.all(got[0] == 0)
            assert np.all(got[1] != 7.0)


def test_int64_indptr_accepted(backend):
    csr, X, Y = _problem(3, 6, 5, 0.5, 3, False)
    want = half_sweep_cg(csr, X, Y, 0.3, 2.0, True, 3)
    Xd = X.copy()
    gram = Y.T @ Y + 0.3 * np.eye(3)
    kernel = als_kernels.get(backend).cg_implicit
    kernel(csr.indptr.astype(np.int64), csr.indices.astype(np.int32), csr.data, Xd, Y, gram, 2.0, 3)
    _assert_close(Xd, want, np.float64)


def test_cg_converges_to_cholesky_as_steps_grow(backend):
    # Hestenes & Stiefel: the Euclidean error of CG decreases monotonically and
    # vanishes after k steps in exact arithmetic (float64 here, from x = 0).
    k = 8
    csr, _, Y = _problem(11, 20, 30, 0.3, k, False)
    exact = half_sweep_exact(csr, np.zeros((20, k)), Y, 0.05, 3.0, True)
    errors = []
    for steps in (1, 2, 4, 6, k):
        got = _run_kernel(
            backend, np.float64, csr, np.zeros((20, k)), Y, 0.05, 3.0, True, "cg", steps
        )
        errors.append(float(np.abs(got - exact).max()))
    assert all(b <= a * (1 + 1e-9) for a, b in zip(errors, errors[1:])), errors
    assert errors[0] > 1e-3  # one step is far from the solution
    assert errors[-1] < 1e-8


def test_training_loss_matches_reference(backend, dtype):
    for implicit in (True, False):
        csr, X, Y = _problem(5, 9, 7, 0.4, 3, not implicit)
        got = training_loss(csr, X.astype(dtype), Y.astype(dtype), 0.3, 2.0, implicit, backend, 2)
        want = loss(csr, X.astype(dtype), Y.astype(dtype), 0.3, 2.0, implicit)
        assert got == pytest.approx(want, rel=SOLVE_SLACK * tol(dtype)["rtol"])


# ---------------------------------------------------------------- model
def _implicit_data(seed=0, n_users=40, n_items=30, density=0.15):
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    mask[:, 0] = True  # no empty column
    mask[np.arange(n_users), rng.integers(0, n_items, n_users)] = True  # no empty row
    rows, cols = np.nonzero(mask)
    counts = rng.integers(1, 5, rows.shape[0]).astype(np.float64)
    return fr.Interactions.from_arrays(rows * 3 + 1, cols * 2 + 5, counts)


def _explicit_data(seed=0):
    X, _ = fr.datasets.synthetic(60, 40, 600, seed=seed, return_params=True)
    return X


@pytest.mark.parametrize("implicit", [True, False], ids=["implicit", "explicit"])
def test_exact_solver_loss_never_increases(backend, implicit):
    data = _implicit_data() if implicit else _explicit_data()
    losses = []
    model = ALS(
        factors=5, regularization=0.2, alpha=2.0, iterations=8, implicit=implicit,
        solver="cholesky", dtype="float64", random_state=0, backend=backend,
        calculate_training_loss=True,
    )  # fmt: skip
    model.fit(data, callback=lambda it, info: losses.append(info["loss"]))
    assert len(losses) == 8
    assert all(b <= a * (1 + 1e-10) for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("solver", ["cg", "cholesky"])
@pytest.mark.parametrize("implicit", [True, False], ids=["implicit", "explicit"])
def test_thread_count_does_not_change_result(backend, solver, implicit):
    data = _implicit_data(1, 120, 50) if implicit else _explicit_data(1)
    fits = [
        ALS(
            factors=6, iterations=3, implicit=implicit, solver=solver, random_state=3,
            num_threads=threads, backend=backend,
        ).fit(data)
        for threads in (1, 2)
    ]  # fmt: skip
    assert np.array_equal(fits[0].user_factors_, fits[1].user_factors_)
    assert np.array_equal(fits[0].item_factors_, fits[1].item_factors_)


@pytest.mark.parametrize("implicit", [True, False], ids=["implicit", "explicit"])
def test_backends_agree_from_same_initialisation(dtype, implicit):
    data = _implicit_data(2) if implicit else _explicit_data(2)
    fits = [
        ALS(
            factors=4, iterations=2, implicit=implicit, dtype=dtype, random_state=7,
            regularization=0.5, backend=backend,
        ).fit(data)
        for backend in ("numba", "cython")
    ]  # fmt: skip
    _assert_close(fits[0].user_factors_, fits[1].user_factors_.astype(np.float64), dtype)
    _assert_close(fits[0].item_factors_, fits[1].item_factors_.astype(np.float64), dtype)


def test_fit_matches_reference_iterations():
    # two full sweeps of the model equal two reference sweeps from its initial factors
    data = _implicit_data(4)
    model = ALS(factors=3, iterations=2, regularization=0.3, alpha=1.5, dtype="float64",
                random_state=5, cg_steps=2)  # fmt: skip
    rng = np.random.default_rng(5)
    X = rng.random((data.n_users, 3)) * 0.01
    Y = rng.random((data.n_items, 3)) * 0.01
    csr = data.matrix
    for _ in range(2):
        X = half_sweep_cg(csr, X, Y, 0.3, 1.5, True, 2)
        Y = half_sweep_cg(csr.T.tocsr(), Y, X, 0.3, 1.5, True, 2)
    model.fit(data)
    _assert_close(model.user_factors_, X, np.float64)
    _assert_close(model.item_factors_, Y, np.float64)


def test_float32_default_and_float64_supported():
    data = _implicit_data()
    assert ALS(factors=3, iterations=1).fit(data).user_factors_.dtype == np.float32
    m64 = ALS(factors=3, iterations=1, dtype=np.float64).fit(data)
    assert m64.item_factors_.dtype == np.float64
    assert m64.get_params()["dtype"] is np.float64  # stored verbatim, as scikit-learn does


def test_float64_model_round_trips_through_save(tmp_path):
    m64 = ALS(factors=3, iterations=1, dtype=np.float64, random_state=0).fit(_implicit_data())
    m64.save(tmp_path / "als64.npz")
    loaded = fr.load(tmp_path / "als64.npz")
    assert np.dtype(loaded.dtype) == np.float64 and loaded.item_factors_.dtype == np.float64
    np.testing.assert_array_equal(loaded.item_factors_, m64.item_factors_)


@pytest.mark.parametrize(
    "params",
    [
        {"factors": 0}, {"factors": -2}, {"factors": 2.5}, {"iterations": 0},
        {"regularization": -0.1}, {"alpha": -1.0}, {"cg_steps": 0}, {"solver": "lu"},
        {"dtype": "int32"}, {"implicit": "yes"}, {"backend": "fortran"},
        {"num_threads": -1}, {"random_state": -3}, {"regularization": float("nan")},
    ],
)  # fmt: skip
def test_bad_parameters_raise_before_work(params):
    with pytest.raises(ValueError):
        ALS(**params).fit(_implicit_data())


def test_negative_confidence_rejected_for_implicit_only():
    data = fr.Interactions.from_arrays([0, 0, 1], [0, 1, 1], [1.0, -2.0, 3.0])
    with pytest.raises(ValueError, match="negative value -2.0 at position 1"):
        ALS(factors=2).fit(data)
    ALS(factors=2, implicit=False, iterations=2).fit(data)  # signed ratings are fine


def test_nan_in_factors_detected(monkeypatch):
    real = als_module.half_sweep
    calls = []

    def poisoned(matrix, X, *args):
        real(matrix, X, *args)
        calls.append(1)
        if len(calls) == 3:  # second iteration, user side
            X[1, 0] = np.nan

    monkeypatch.setattr(als_module, "half_sweep", poisoned)
    model = ALS(factors=2, iterations=4)
    with pytest.raises(DivergenceError, match="diverged in iteration 1: .*user row 1"):
        model.fit(_implicit_data())
    with pytest.raises(ValueError, match="not fitted"):
        model.recommend([1])


def test_callback_progress_and_history(capsys):
    seen = []
    model = ALS(factors=3, iterations=3, calculate_training_loss=False)
    model.fit(_implicit_data(), callback=lambda it, info: seen.append((it, info)))
    assert capsys.readouterr().err == ""
    assert [it for it, _ in seen] == [0, 1, 2]
    assert all(info["loss"] is None and info["seconds"] >= 0 for _, info in seen)
    assert model.history_ == [info for _, info in seen]
    # the progress bar is off by default and can be switched on
    model = ALS(factors=3, iterations=2, calculate_training_loss=True)
    model.fit(_implicit_data(), show_progress=True)
    assert capsys.readouterr().err.count("ALS") >= 1
    assert all(h["loss"] > 0 for h in model.history_)
    with pytest.raises(ValueError, match="callback"):
        model.fit(_implicit_data(), callback=42)


def test_recommend_excludes_seen_and_predict_is_the_score():
    data = _implicit_data()
    model = ALS(factors=4, iterations=5, random_state=0).fit(data)
    users = data.user_ids[:5]
    ids, scores = model.recommend(users, n=5)
    for row, user in enumerate(users):
        seen = set(data.item_ids[data.matrix[row].indices])
        assert not seen & set(ids[row].tolist())
        np.testing.assert_allclose(
            model.predict([user] * 5, ids[row]), scores[row], rtol=1e-5, atol=1e-6
        )
    assert np.all(np.diff(scores, axis=1) <= 0)
    pred = model.predict([data.user_ids[0]], [data.item_ids[3]])
    want = model.user_factors_[0].astype(np.float64) @ model.item_factors_[3]
    assert pred[0] == pytest.approx(want, rel=1e-5)


def test_unknown_ids_fallbacks():
    data = _implicit_data()
    model = ALS(factors=3, iterations=2).fit(data)
    # implicit: unknown user or item scores 0 (a row without data has zero factors)
    assert np.array_equal(model.predict([-99, data.user_ids[0]], [data.item_ids[0], -5]), [0, 0])
    ids, scores = model.recommend([-99], n=3)
    top = np.argsort(-model.item_count_, kind="stable")[:3]
    assert ids[0].tolist() == data.item_ids[top].tolist()
    # explicit: the baseline means of the base class
    ex = _explicit_data()
    model = ALS(factors=3, iterations=2, implicit=False).fit(ex)
    assert model.predict([-99], [-98])[0] == pytest.approx(model.global_mean_)
    assert model.predict([-99], [ex.item_ids[0]])[0] == pytest.approx(model.item_mean_[0])


def test_explicit_predictions_clipped_and_learn_something():
    data = _explicit_data(3)
    model = ALS(factors=4, iterations=10, implicit=False, regularization=0.1, random_state=0)
    model.fit(data)
    users, items, ratings, _ = data.to_arrays()
    pred = model.predict(data.user_ids[users], data.item_ids[items])
    assert pred.min() >= model.rating_min_ and pred.max() <= model.rating_max_
    rmse = np.sqrt(np.mean((pred - ratings) ** 2))
    assert rmse < 0.8 * np.std(ratings)  # much better than the global mean


def test_similar_items_and_users_by_cosine():
    data = _implicit_data()
    model = ALS(factors=4, iterations=3, random_state=1).fit(data)
    ids, scores = model.similar_items([data.item_ids[2]], n=4)
    assert data.item_ids[2] not in ids[0]
    unit = model.item_factors_ / np.linalg.norm(model.item_factors_, axis=1, keepdims=True)
    cos = unit @ unit[2]
    cos[2] = -np.inf
    assert ids[0][0] == data.item_ids[int(np.argmax(cos))]
    assert scores[0][0] == pytest.approx(cos.max(), rel=1e-5)
    uids, _ = model.similar_users([data.user_ids[0]], n=3)
    assert data.user_ids[0] not in uids[0]
    with pytest.raises(ValueError, match="not a known id"):
        model.similar_items([-1])


@pytest.mark.parametrize("implicit", [True, False], ids=["implicit", "explicit"])
def test_recalculate_user_is_the_exact_fold_in(implicit):
    data = _implicit_data() if implicit else _explicit_data()
    model = ALS(factors=3, iterations=3, implicit=implicit, dtype="float64", random_state=0,
                regularization=0.2, alpha=2.0, biases=False).fit(data)  # fmt: skip
    items = data.item_ids[[0, 3, 4]]
    ratings = [2.0, 1.0, 3.0]
    got = model.recalculate_user(items, ratings)
    row = sp.csr_matrix((ratings, ([0, 0, 0], [0, 3, 4])), shape=(1, data.n_items))
    A, b = row_system(row, 0, model.item_factors_, 0.2, 2.0, implicit)
    np.testing.assert_allclose(got, np.linalg.solve(A, b), rtol=1e-8, atol=1e-10)
    ids, _ = model.recommend_new_user(items, ratings, n=5)
    assert not set(items.tolist()) & set(ids.tolist())
    assert np.all(model.recalculate_user([]) == 0)
    with pytest.raises(ValueError, match="repeats"):
        model.recalculate_user(items[[0, 0]])
    with pytest.raises(ValueError, match="not a known id"):
        model.recalculate_user([-12345])


def test_partial_fit_users_updates_and_appends():
    data = _implicit_data()
    model = ALS(factors=3, iterations=3, dtype="float64", random_state=0).fit(data)
    before = model.user_factors_.copy()
    items_before = model.item_factors_.copy()
    new_rows = sp.csr_matrix(([1.0, 2.0, 1.0], ([0, 0, 1], [1, 2, 5])), shape=(2, data.n_items))
    user = data.user_ids[3]
    model.partial_fit_users([user, 10_000], new_rows)
    assert model.n_users_ == data.n_users + 1
    assert np.array_equal(model.item_factors_, items_before)
    assert np.array_equal(model.user_factors_[:3], before[:3])
    np.testing.assert_allclose(
        model.user_factors_[3], model.recalculate_user(data.item_ids[[1, 2]], [1.0, 2.0])
    )
    np.testing.assert_allclose(model.user_factors_[-1], model.recalculate_user(data.item_ids[[5]]))
    ids, _ = model.recommend([10_000], n=3)
    assert data.item_ids[5] not in ids[0]  # the new interaction counts as seen
    with pytest.raises(ValueError):
        model.partial_fit_users([1, 1], new_rows)


def test_save_load_round_trip(tmp_path):
    data = _implicit_data()
    model = ALS(factors=3, iterations=2, random_state=0).fit(data)
    path = tmp_path / "als.npz"
    model.save(path)
    loaded = fr.load(path)
    assert isinstance(loaded, ALS) and loaded.get_params() == model.get_params()
    assert np.array_equal(loaded.user_factors_, model.user_factors_)
    users = data.user_ids[:4]
    assert np.array_equal(loaded.recommend(users, n=4)[0], model.recommend(users, n=4)[0])
    np.testing.assert_array_equal(
        loaded.predict(users, data.item_ids[:4]), model.predict(users, data.item_ids[:4])
    )
    # a tampered file cannot reach a kernel
    arrays = dict(np.load(path))
    arrays["model.user_factors"] = arrays["model.user_factors"][:, :2]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="user_factors"):
        fr.load(tmp_path / "bad.npz")


# ------------------------------------------------ explicit feedback with biases
@pytest.mark.parametrize("solver", ["cg", "cholesky"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=12)
@given(p=problems)
def test_biased_half_sweep_matches_dense_reference(backend, dtype, solver, p):
    # [x_u, b_u] against [y_i, 1] with targets r - mu - c_i, both solvers
    csr, X, Y = _problem(p["seed"], p["n_rows"], p["n_cols"], p["density"], p["k"], True)
    rng = np.random.default_rng(p["seed"] + 1)
    X = np.column_stack([X, rng.normal(size=X.shape[0])]).astype(dtype)
    Y = np.column_stack([Y, rng.normal(size=Y.shape[0])]).astype(dtype)
    mu = 0.5
    Xd = X.copy()
    matrix = (csr.indptr.astype(np.int32), csr.indices.astype(np.int32), csr.data.astype(dtype))
    with _backend.threads(2):
        als_module.biased_half_sweep(matrix, Xd, Y, mu, p["reg"], solver, p["cg_steps"], backend)
    X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
    if solver == "cg":
        want = biased_half_sweep_cg(csr, X64, Y64, mu, p["reg"], p["cg_steps"])
    else:
        want = biased_half_sweep_exact(csr, X64, Y64, mu, p["reg"])
    assert Xd.dtype == dtype
    _assert_close(Xd, want, dtype)


def test_biased_training_loss_matches_reference(backend, dtype):
    csr, X, Y = _problem(6, 9, 7, 0.5, 3, True)
    rng = np.random.default_rng(0)
    bu, bi = rng.normal(size=9), rng.normal(size=7)
    got = training_loss(csr, X.astype(dtype), Y.astype(dtype), 0.3, implicit=False,
                        backend=backend, user_bias=bu, item_bias=bi, intercept=0.7)  # fmt: skip
    want = loss_biased(csr, X.astype(dtype), Y.astype(dtype), bu, bi, 0.7, 0.3)
    assert got == pytest.approx(want, rel=SOLVE_SLACK * tol(dtype)["rtol"])
    with pytest.raises(ValueError, match="user_bias"):
        training_loss(csr, X, Y, 0.3, implicit=True, user_bias=bu, item_bias=bi)


@pytest.mark.parametrize("solver", ["cg", "cholesky"])
def test_biased_fit_matches_reference_iterations(solver):
    data = _explicit_data(4)
    model = ALS(factors=3, iterations=2, regularization=0.3, implicit=False, biases=True,
                solver=solver, dtype="float64", random_state=5, cg_steps=2)  # fmt: skip
    model.fit(data)
    rng = np.random.default_rng(5)
    X = np.column_stack([rng.random((data.n_users, 3)) * 0.01, np.zeros(data.n_users)])
    Y = np.column_stack([rng.random((data.n_items, 3)) * 0.01, np.zeros(data.n_items)])
    csr, mu = data.matrix, float(data.matrix.data.astype(np.float64).mean())
    for _ in range(2):
        if solver == "cg":
            X = biased_half_sweep_cg(csr, X, Y, mu, 0.3, 2)
            Y = biased_half_sweep_cg(csr.T.tocsr(), Y, X, mu, 0.3, 2)
        else:
            X = biased_half_sweep_exact(csr, X, Y, mu, 0.3)
            Y = biased_half_sweep_exact(csr.T.tocsr(), Y, X, mu, 0.3)
    assert model.intercept_ == pytest.approx(mu)
    _assert_close(model.user_factors_, X[:, :3], np.float64)
    _assert_close(model.user_bias_, X[:, 3], np.float64)
    _assert_close(model.item_factors_, Y[:, :3], np.float64)
    _assert_close(model.item_bias_, Y[:, 3], np.float64)
    # predict, recommend and the fold-in use the biases
    pred = model.predict([data.user_ids[2]], [data.item_ids[5]])[0]
    want = mu + X[2, 3] + Y[5, 3] + X[2, :3] @ Y[5, :3]
    assert pred == pytest.approx(np.clip(want, model.rating_min_, model.rating_max_))
    ids, scores = model.recommend([data.user_ids[2]], n=3)
    iidx = data.item_index(ids[0])
    np.testing.assert_allclose(scores[0], mu + X[2, 3] + Y[iidx, 3] + Y[iidx, :3] @ X[2, :3],
                               rtol=1e-5)  # fmt: skip
    items, ratings = data.item_ids[[0, 3, 4]], [2.0, 1.0, 3.0]
    factors, bias = model.recalculate_user(items, ratings, return_bias=True)
    np.testing.assert_array_equal(model.recalculate_user(items, ratings), factors)
    row = sp.csr_matrix((ratings, ([0, 0, 0], [0, 3, 4])), shape=(1, data.n_items))
    A, b = row_system_biased(row, 0, np.column_stack([model.item_factors_, model.item_bias_]),
                             mu, 0.3)  # fmt: skip
    np.testing.assert_allclose(np.append(factors, bias), np.linalg.solve(A, b), rtol=1e-8)
    with pytest.raises(ValueError, match="ratings are needed"):
        model.recalculate_user(items)
    new_ids, _ = model.recommend_new_user(items, ratings, n=4)
    assert not set(items.tolist()) & set(new_ids.tolist())


def test_biases_default_and_refusals():
    ex, im = _explicit_data(), _implicit_data()
    assert ALS(factors=2, iterations=1, implicit=False).fit(ex).item_bias_.any()
    model = ALS(factors=2, iterations=1).fit(im)  # implicit: no biases by default
    assert model.intercept_ == 0.0 and not model.item_bias_.any()
    with pytest.raises(ValueError, match="biases=True needs implicit=False"):
        ALS(biases=True).fit(im)
    with pytest.raises(ValueError, match="biases must be"):
        ALS(biases="yes", implicit=False).fit(ex)
    no_ratings = fr.Interactions.from_arrays([0, 0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="no ratings"):
        ALS(implicit=False).fit(no_ratings)
    ALS(implicit=False, biases=False, iterations=1).fit(no_ratings)  # as before


def test_biased_save_load_and_partial_fit(tmp_path):
    data = _explicit_data(5)
    model = ALS(factors=3, iterations=3, implicit=False, random_state=0).fit(data)
    model.save(tmp_path / "b.npz")
    loaded = fr.load(tmp_path / "b.npz")
    users, items = data.user_ids[:5], data.item_ids[:5]
    np.testing.assert_array_equal(loaded.predict(users, items), model.predict(users, items))
    np.testing.assert_array_equal(loaded.item_bias_, model.item_bias_)
    # a file without biases (written before they existed) loads as an unbiased model
    arrays = {k: v for k, v in np.load(tmp_path / "b.npz").items() if "bias" not in k
              and "intercept" not in k}  # fmt: skip
    np.savez(tmp_path / "old.npz", **arrays)
    old = fr.load(tmp_path / "old.npz")
    assert old.biases is False and old.intercept_ == 0.0
    dots = np.sum(model.user_factors_[:5] * model.item_factors_[:5], axis=1)
    want = np.clip(dots, model.rating_min_, model.rating_max_)
    np.testing.assert_allclose(old.predict(users, items), want, rtol=1e-5)
    # partial_fit_users re-solves the user's factors and bias
    new = sp.csr_matrix(([4.0, 2.0], ([0, 0], [1, 2])), shape=(1, data.n_items))
    model.partial_fit_users([data.user_ids[0]], new)
    factors, bias = model.recalculate_user(data.item_ids[[1, 2]], [4.0, 2.0], return_bias=True)
    np.testing.assert_allclose(model.user_factors_[0], factors, rtol=1e-5)
    assert model.user_bias_[0] == pytest.approx(bias, rel=1e-5)
