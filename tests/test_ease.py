"""EASE: the closed form against Steck's algorithm 1 in NumPy, and the model API."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import fastrec as fr
from fastrec.models.ease import EASE, memory_needed

from .conftest import tol


def naive_weights(X: np.ndarray, l2: float) -> np.ndarray:
    """B = I - P / diag(P), P = (X^T X + l2 I)^-1 (Steck 2019, algorithm 1), float64."""
    G = X.T @ X + l2 * np.eye(X.shape[1])
    P = np.linalg.inv(G)
    B = np.eye(X.shape[1]) - P / np.diag(P)[None, :]
    np.fill_diagonal(B, 0.0)
    return B


def _interactions(dense: np.ndarray) -> fr.Interactions:
    return fr.Interactions.from_csr(sp.csr_matrix(dense.astype(np.float32)))


@settings(max_examples=15, deadline=None)
@given(
    n_users=st.integers(1, 12),
    n_items=st.integers(1, 15),
    density=st.floats(0.0, 1.0),
    l2=st.floats(0.5, 50.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_weights_match_numpy_formula(n_users, n_items, density, l2, seed):
    rng = np.random.default_rng(seed)
    values = rng.integers(1, 6, (n_users, n_items)) * (rng.random((n_users, n_items)) < density)
    # every user has an interaction (Interactions with an empty last row trip the
    # baseline statistics in models/base.py, a separate matter)
    values[np.arange(n_users), rng.integers(0, n_items, n_users)] = 3
    binary = (values > 0).astype(np.float64)
    expected = naive_weights(binary, l2)
    for dtype in (np.float64, np.float32):
        model = EASE(l2=l2, dtype=np.dtype(dtype).name).fit(_interactions(values))
        assert model.weights_.dtype == dtype
        # float32 solves in single precision: its error grows with the condition number
        t = tol(dtype) if dtype == np.float64 else {"rtol": 1e-3, "atol": 1e-5}
        np.testing.assert_allclose(model.weights_, expected, **t)
        assert not np.diag(model.weights_).any()


def test_recommend_and_predict_are_x_times_b(tmp_path):
    rng = np.random.default_rng(0)
    dense = (rng.random((40, 30)) < 0.2).astype(np.float32)
    dense[:, 7] = 0  # an item nobody has: zero row and column in B
    dense[np.arange(40), np.arange(40) % 7] = 1  # every user has an interaction
    X = _interactions(dense)
    model = EASE(l2=5.0).fit(X)
    B = naive_weights(dense.astype(np.float64), 5.0)
    B[7, :] = 0
    B[:, 7] = 0
    np.testing.assert_allclose(model.weights_, B, **tol(np.float64))
    scores = dense @ B
    users = X.user_ids[:6]
    ids, got = model.recommend(users, n=5)
    for row, u in enumerate(X.user_index(users)):
        masked = np.where(dense[u] > 0, -np.inf, scores[u])
        order = np.lexsort((np.arange(30), -masked))[:5]
        np.testing.assert_allclose(got[row], masked[order], rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(X.item_index(ids[row]), order)
    pairs_u = np.repeat(X.user_ids[:4], 3)
    pairs_i = np.tile(X.item_ids[[0, 7, 29]], 4)
    expected = scores[X.user_index(pairs_u), X.item_index(pairs_i)]
    np.testing.assert_allclose(model.predict(pairs_u, pairs_i), expected, rtol=1e-9, atol=1e-12)
    assert model.predict(["nobody"], [X.item_ids[0]])[0] == 0.0
    sim, val = model.similar_items(X.item_ids[:2], n=3)
    assert X.item_ids[0] not in sim[0] and (np.diff(val, axis=1) <= 0).all()
    path = tmp_path / "ease.npz"
    model.save(path)
    loaded = fr.load(path)
    np.testing.assert_array_equal(loaded.weights_, model.weights_)
    np.testing.assert_array_equal(loaded.recommend(users, n=5)[0], ids)


def test_memory_limit_is_checked_before_allocating():
    X = _interactions(np.eye(50))
    with pytest.raises(ValueError, match=r"50 x 50 .*max_memory_bytes=1000"):
        EASE(max_memory_bytes=1000).fit(X)
    assert memory_needed(50) == 50 * 50 * 8
    assert memory_needed(138_000, np.float32) == 138_000**2 * 4
    # a catalogue of 100k items would need 80 GB: refused up front with the figure
    big = fr.Interactions.from_csr(sp.csr_matrix(([1.0], ([0], [99_999])), shape=(1, 100_000)))
    with pytest.raises(ValueError, match=r"74\.51 GiB"):
        EASE().fit(big)


@pytest.mark.parametrize(
    "params, field",
    [
        ({"l2": -1.0}, "l2"),
        ({"l2": float("inf")}, "l2"),
        ({"dtype": "float16"}, "dtype"),
        ({"max_memory_bytes": 0}, "max_memory_bytes"),
        ({"num_threads": -2}, "num_threads"),
        ({"backend": "gpu"}, "backend"),
    ],
)
def test_bad_parameters(params, field):
    with pytest.raises(ValueError, match=field):
        EASE(**params).fit(_interactions(np.eye(3)))


def test_bad_data():
    m = sp.csr_matrix(np.array([[1.0, -1.0], [0.0, 1.0]], dtype=np.float32))
    with pytest.raises(ValueError, match=r"X\.matrix.*negative value -1"):
        EASE().fit(fr.Interactions.from_csr(m))
    # l2 = 0 is allowed where X^T X is positive definite
    dense = np.array([[1, 1, 0], [0, 1, 1], [1, 0, 1]], dtype=np.float64)
    model = EASE(l2=0.0).fit(_interactions(dense))
    np.testing.assert_allclose(model.weights_, naive_weights(dense, 0.0), **tol(np.float64))
