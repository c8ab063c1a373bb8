"""BPR: the kernel (both backends, both dtypes) against the naive reference, and the model."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import fastrec as fr
from fastrec._backend import threads
from fastrec._kernels import bpr as bpr_kernels
from fastrec.models.base import DivergenceError
from fastrec.models.bpr import BPR
from tests import reference_bpr as ref

from .conftest import BACKENDS, DTYPES, tol


def _random_csr(rng, n_users, n_items, density):
    dense = rng.random((n_users, n_items)) < density
    dense[rng.integers(0, n_users), rng.integers(0, n_items)] = True  # never empty
    return sp.csr_matrix(dense.astype(np.float32))


def _kernel_inputs(m):
    indptr = m.indptr.astype(np.int64)
    indices = m.indices.astype(np.int32)
    pairs = (np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(indptr)) << 32) | indices
    return indptr, indices, pairs


@settings(max_examples=12, deadline=None)
@given(
    n_users=st.integers(1, 7),
    n_items=st.integers(2, 12),
    density=st.floats(0.05, 0.9),
    k=st.integers(1, 20),
    seed=st.integers(0, 2**63 - 1),
    epoch=st.integers(0, 3),
    popular=st.booleans(),
    data_seed=st.integers(0, 2**32 - 1),
)
def test_epoch_matches_reference_step_by_step(
    n_users, n_items, density, k, seed, epoch, popular, data_seed
):
    """One-thread epoch = the reference's triples applied one by one in float64."""
    rng = np.random.default_rng(data_seed)
    m = _random_csr(rng, n_users, n_items, density)
    indptr, indices, pairs = _kernel_inputs(m)
    n = int(indices.shape[0])
    triples = ref.triples(indptr, indices, n_items, seed, epoch, 0, n, popular)
    P0 = rng.normal(0, 0.3, (n_users, k))
    Q0 = rng.normal(0, 0.3, (n_items, k))
    b0 = rng.normal(0, 0.3, n_items)
    lr, reg = 0.05, 0.02
    for dtype in DTYPES:
        P_ref, Q_ref, b_ref, loss_ref, skipped_ref = ref.bpr_epoch(
            triples, P0.astype(dtype), Q0.astype(dtype), b0.astype(dtype), lr, reg
        )
        for backend in BACKENDS:
            P, Q, b = P0.astype(dtype), Q0.astype(dtype), b0.astype(dtype)
            loss = np.zeros(1)
            skipped = np.zeros(1, dtype=np.int64)
            out = np.zeros((n, 3), dtype=np.int32)
            with threads(1):
                bpr_kernels.get(backend).bpr_triples(
                    indptr, indices, pairs, n_items, np.uint64(seed), epoch, 0, popular, out
                )
                bpr_kernels.get(backend).bpr_epoch(
                    indptr, indices, pairs, np.uint64(seed), epoch,
                    np.array([0, n], dtype=np.int64), lr, reg, popular, P, Q, b, loss, skipped,
                )  # fmt: skip
            assert [tuple(t) for t in out.tolist()] == triples, backend
            assert int(skipped[0]) == skipped_ref
            t = tol(dtype)
            np.testing.assert_allclose(P, P_ref, **t, err_msg=f"{backend} {dtype}")
            np.testing.assert_allclose(Q, Q_ref, **t, err_msg=f"{backend} {dtype}")
            np.testing.assert_allclose(b, b_ref, **t, err_msg=f"{backend} {dtype}")
            np.testing.assert_allclose(loss[0], loss_ref, rtol=t["rtol"] * 10, atol=t["atol"])


def test_reference_step_is_the_gradient_of_the_objective():
    """The update is lr times the gradient of ln sigma(x_uij) - reg/2 |theta|^2 (finite
    differences in float64), so the reference (hence the kernel) ascends the BPR criterion."""
    rng = np.random.default_rng(3)
    k, lr, reg, h = 5, 1e-3, 0.07, 1e-6
    P, Q, b = rng.normal(0, 0.5, (2, k)), rng.normal(0, 0.5, (3, k)), rng.normal(0, 0.5, 3)
    theta = np.concatenate([P[1], Q[0], Q[2], [b[0], b[2]]])

    def f(t):
        return ref.objective(t[:k], t[k : 2 * k], t[2 * k : 3 * k], t[3 * k], t[3 * k + 1], reg)

    grad = np.array(
        [(f(theta + h * e) - f(theta - h * e)) / (2 * h) for e in np.eye(theta.shape[0])]
    )
    P2, Q2, b2 = P.copy(), Q.copy(), b.copy()
    x = ref.step(P2, Q2, b2, 1, 0, 2, lr, reg)
    after = np.concatenate([P2[1], Q2[0], Q2[2], [b2[0], b2[2]]])
    np.testing.assert_allclose((after - theta) / lr, grad, rtol=1e-6, atol=1e-8)
    assert x == pytest.approx(P[1] @ (Q[0] - Q[2]) + b[0] - b[2])
    assert f(after) > f(theta)  # a small step increases the objective


@pytest.mark.parametrize("backend", BACKENDS)
def test_parts_on_one_thread_equal_one_part(backend):
    """The samples depend on (seed, epoch, index) only: cut into parts and run on one
    thread, an epoch gives the one-part result bit for bit."""
    rng = np.random.default_rng(5)
    m = _random_csr(rng, 30, 40, 0.2)
    indptr, indices, pairs = _kernel_inputs(m)
    n = int(indices.shape[0])
    start = (rng.normal(0, 0.1, (30, 16)), rng.normal(0, 0.1, (40, 16)), np.zeros(40))
    results = []
    for bounds in ([0, n], [0, n // 3, n // 2, n]):
        P, Q, b = (a.astype(np.float32) for a in start)
        parts = len(bounds) - 1
        with threads(1):
            bpr_kernels.get(backend).bpr_epoch(
                indptr, indices, pairs, np.uint64(11), 2, np.array(bounds, dtype=np.int64),
                0.05, 0.01, False, P, Q, b, np.zeros(parts), np.zeros(parts, dtype=np.int64),
            )  # fmt: skip
        results.append((P, Q, b))
    for a, c in zip(*results):
        np.testing.assert_array_equal(a, c)


def test_user_who_liked_everything_is_skipped():
    m = sp.csr_matrix(np.array([[1, 1, 1], [1, 0, 0]], dtype=np.float32))
    indptr, indices, pairs = _kernel_inputs(m)
    out = np.zeros((200, 3), dtype=np.int32)
    for backend in BACKENDS:
        bpr_kernels.get(backend).bpr_triples(
            indptr, indices, pairs, 3, np.uint64(1), 0, 0, False, out
        )
        assert (out[out[:, 0] == 0, 2] == -1).all()
        user1 = out[out[:, 0] == 1]
        assert len(user1) and set(user1[:, 2].tolist()) <= {1, 2}


# ------------------------------------------------------------------ the model
def _data(seed=0, n_users=60, n_items=40):
    rng = np.random.default_rng(seed)
    taste = rng.normal(size=(n_users, 3)) @ rng.normal(size=(3, n_items))
    m = sp.csr_matrix((taste > 1.0).astype(np.float32))
    return fr.Interactions.from_csr(m)


def test_fit_recommend_predict_save_load(tmp_path):
    X = _data()
    model = BPR(factors=8, iterations=30, learning_rate=0.05, random_state=0, num_threads=1)
    model.fit(X)
    assert model.user_factors_.shape == (X.n_users, 8)
    assert model.item_factors_.shape == (X.n_items, 8)
    assert len(model.history_) == 30
    assert model.history_[-1]["loss"] < model.history_[0]["loss"]
    users = X.user_ids[:5]
    ids, scores = model.recommend(users, n=5)
    assert ids.shape == (5, 5) and (np.diff(scores, axis=1) <= 0).all()
    seen = X.matrix[:5].toarray() > 0
    for row, items in enumerate(ids):
        assert not seen[row, X.item_index(items)].any()
    u = np.repeat(X.user_ids[:3], 4)
    it = np.tile(X.item_ids[:4], 3)
    expected = (
        np.einsum(
            "ij,ij->i",
            model.user_factors_[X.user_index(u)].astype(np.float64),
            model.item_factors_[X.item_index(it)],
        )
        + model.item_bias_[X.item_index(it)]
    )
    np.testing.assert_allclose(model.predict(u, it), expected, rtol=1e-5)
    # scores of recommend are the model's scores
    np.testing.assert_allclose(
        scores[0], model.predict([users[0]] * 5, ids[0]), rtol=1e-4, atol=1e-5
    )
    path = tmp_path / "bpr.npz"
    model.save(path)
    loaded = fr.load(path)
    np.testing.assert_array_equal(loaded.recommend(users, n=5)[0], ids)
    sim, _ = model.similar_items(X.item_ids[:2], n=3)
    assert sim.shape == (2, 3) and X.item_ids[0] not in sim[0]
    # unknown user: most popular items; unknown item: 0
    assert model.predict(["nobody"], [X.item_ids[0]])[0] == pytest.approx(model.item_bias_[0])


def test_seeded_one_thread_fit_is_reproducible_and_backends_agree():
    X = _data(1)
    kw = dict(factors=8, iterations=5, random_state=3, num_threads=1, dtype="float64")
    a = BPR(backend="numba", **kw).fit(X)
    b = BPR(backend="numba", **kw).fit(X)
    c = BPR(backend="cython", **kw).fit(X)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_allclose(a.user_factors_, c.user_factors_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(a.item_bias_, c.item_bias_, rtol=1e-9, atol=1e-12)


def test_recalculate_user_ranks_the_given_items_high():
    X = _data(2)
    model = BPR(factors=8, iterations=40, learning_rate=0.05, random_state=0).fit(X)
    row = X.matrix[0]
    given_items = X.item_ids[row.indices]
    p = model.recalculate_user(given_items)
    assert p.shape == (8,) and np.isfinite(p).all()
    scores = model.item_factors_ @ p + model.item_bias_
    others = np.setdiff1d(np.arange(X.n_items), row.indices)
    assert scores[row.indices].mean() > scores[others].mean()
    assert not model.recalculate_user([]).any()


@pytest.mark.parametrize(
    "params, field",
    [
        ({"factors": 0}, "factors"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"regularization": -1.0}, "regularization"),
        ({"iterations": 0}, "iterations"),
        ({"negatives": "hard"}, "negatives"),
        ({"dtype": "int8"}, "dtype"),
        ({"random_state": -1}, "random_state"),
        ({"num_threads": -1}, "num_threads"),
        ({"backend": "gpu"}, "backend"),
    ],
)
def test_bad_parameters(params, field):
    with pytest.raises(ValueError, match=field):
        BPR(**params).fit(_data())


def test_bad_data():
    m = sp.csr_matrix(np.array([[1.0, -2.0], [0.0, 1.0]], dtype=np.float32))
    with pytest.raises(ValueError, match=r"X\.matrix.*negative value -2"):
        BPR().fit(fr.Interactions.from_csr(m))
    zeros = sp.csr_matrix((np.zeros(2, np.float32), [0, 1], [0, 1, 2]), shape=(2, 2))
    with pytest.raises(ValueError, match="no positive"):
        BPR().fit(fr.Interactions.from_csr(zeros))
    with pytest.raises(ValueError, match="Interactions"):
        BPR().fit(m)


def test_divergence_raises():
    with pytest.raises(DivergenceError, match="diverged"):
        BPR(learning_rate=1e30, iterations=3, random_state=0, init_std=1.0).fit(_data())


def test_stored_zeros_are_not_positives():
    from fastrec.models.bpr import positive_matrix

    m = sp.csr_matrix(
        (np.array([1.0, 0.0, 1.0, 1.0], np.float32), [0, 1, 1, 2], [0, 2, 2, 4]), shape=(3, 3)
    )
    pos = positive_matrix(m)
    assert pos.nnz == 3 and pos.indptr.tolist() == [0, 1, 1, 3]
    assert pos.indices.tolist() == [0, 1, 2]
