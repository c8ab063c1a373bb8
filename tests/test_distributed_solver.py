"""The public row-block ALS solver (``fastrec.models.als.solve_rows``) that the
single-process fit and ``fastrec.distributed.ALS`` share: solving a side in
blocks gives the factors of ``ALS.fit`` bit for bit. No Dask needed."""

from __future__ import annotations

import numpy as np
import pytest

import fastrec as fr
from fastrec import _backend
from fastrec.models.als import gram_matrix, solve_rows


def _blocked_fit(X, k, iterations, bounds_u, bounds_i, implicit, solver, backend, dtype):
    rng = np.random.default_rng(0)
    U = rng.random((X.n_users, k), dtype=dtype) * dtype(0.01)
    V = rng.random((X.n_items, k), dtype=dtype) * dtype(0.01)
    M = X.matrix
    MT = M.T.tocsr()
    kw = dict(regularization=0.05, alpha=2.0, implicit=implicit, solver=solver, backend=backend)
    for _ in range(iterations):
        g = gram_matrix(V, 0.05) if implicit else None
        U = np.vstack(
            [
                solve_rows(M[a:b], U[a:b], V, gram=g, num_threads=1 + (a > 0), **kw)
                for a, b in zip(bounds_u[:-1], bounds_u[1:])
            ]
        )
        g = gram_matrix(U, 0.05) if implicit else None
        V = np.vstack(
            [
                solve_rows(MT[a:b], V[a:b], U, gram=g, **kw)
                for a, b in zip(bounds_i[:-1], bounds_i[1:])
            ]
        )
    return U, V


@pytest.mark.parametrize("backend", _backend.available_backends())
@pytest.mark.parametrize(
    "implicit,solver,dtype",
    [(True, "cg", np.float32), (False, "cg", np.float64), (True, "cholesky", np.float64)],
)
def test_blocks_give_the_fit_bit_for_bit(backend, implicit, solver, dtype):
    X = fr.datasets.synthetic(700, 300, 9000, seed=3)
    model = fr.ALS(
        factors=8, iterations=2, regularization=0.05, alpha=2.0, implicit=implicit,
        solver=solver, dtype=dtype.__name__, random_state=0, backend=backend, num_threads=2,
        biases=False,
    )  # fmt: skip
    model.fit(X)
    U, V = _blocked_fit(
        X, 8, 2, [0, 1, 250, X.n_users], [0, 170, X.n_items], implicit, solver, backend, dtype
    )
    assert U.dtype == dtype
    np.testing.assert_array_equal(U, model.user_factors_)
    np.testing.assert_array_equal(V, model.item_factors_)


def test_inputs_are_not_modified_and_gram_is_optional():
    X = fr.datasets.synthetic(200, 80, 1500, seed=1)
    rng = np.random.default_rng(1)
    U = rng.random((X.n_users, 4), dtype=np.float32)
    V = rng.random((X.n_items, 4), dtype=np.float32)
    U0, V0 = U.copy(), V.copy()
    out = solve_rows(X.matrix, U, V)
    np.testing.assert_array_equal(U, U0)
    np.testing.assert_array_equal(V, V0)
    assert not np.array_equal(out, U0)
    np.testing.assert_array_equal(out, solve_rows(X.matrix, U, V, gram=gram_matrix(V, 0.01)))


def test_bad_input_names_the_argument():
    X = fr.datasets.synthetic(50, 30, 300, seed=1)
    U = np.zeros((X.n_users, 4), np.float32)
    V = np.zeros((X.n_items, 4), np.float32)
    with pytest.raises(ValueError, match="rows"):
        solve_rows(X.matrix[:10], U, V)
    with pytest.raises(ValueError, match="columns"):
        solve_rows(X.matrix, U, V[:, :3])
    with pytest.raises(ValueError, match="gram"):
        solve_rows(X.matrix, U, V, gram=np.eye(3, dtype=np.float32))
    with pytest.raises(ValueError, match="gram must be finite"):
        solve_rows(X.matrix, U, V, gram=np.full((4, 4), np.nan, np.float32))
    with pytest.raises(ValueError, match="cg_steps"):
        solve_rows(X.matrix, U, V, cg_steps=0)
    negative = X.matrix.copy()
    negative.data[3] = -1.0
    with pytest.raises(ValueError, match="negative value"):
        solve_rows(negative, U, V)
    with pytest.raises(ValueError, match="factors"):
        solve_rows(X.matrix, np.full_like(U, np.nan), V)
