"""Small helpers shared by the factor models (``SGDMF``, ``ALS``, ``BPR``, ``SVDpp``).

Scoring (:func:`factor_scores`, :func:`cosine_similar`) works on dense factor
matrices already validated by the model: C-ordered float32/float64 arrays
without NaN; it only allocates and calls NumPy / the top-k kernel.
Persistence (:func:`factor_state`, :func:`restore_factors`) and fold-in
(:func:`fold_in_ratings`, :func:`ridge_fold_in`, :func:`fold_in_result`)
are the parts the models' ``_get_state``, ``_set_state`` and
``recalculate_user`` have in common.

The ``recalculate_user`` contract of every factor model: it returns the
user's factor vector, an ndarray ``(factors,)`` of the model's dtype (as
implicit's ``recalculate_user``); with ``return_bias=True`` it returns
``(factors, bias)``, ``bias`` the user's bias ``b_u`` as a float (0.0 for a
model without user biases).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from .._validation import as_float_array, check_memory
from ..topk import topk_trusted
from .base import Recommender, expect_array

__all__ = [
    "check_factor_memory",
    "cosine_similar",
    "factor_scores",
    "factor_state",
    "fold_in_ratings",
    "fold_in_result",
    "restore_factors",
    "ridge_fold_in",
]

# Bytes of dense similarity scores materialised at once (rows x n_rows x 4).
_BLOCK_BYTES = 16 << 20  # under glibc's mmap threshold cap: see models/base.py


def factor_scores(
    row_vectors: np.ndarray,
    item_factors: np.ndarray,
    item_offset: np.ndarray | None = None,
    row_offset: np.ndarray | None = None,
) -> np.ndarray:
    """Scores of every item for a block of rows: ``row_vectors @ item_factors.T``.

    Parameters
    ----------
    row_vectors : (m, k) float32/float64
        User factors (one row per user to score).
    item_factors : (n_items, k) float32/float64
    item_offset : (n_items,), optional
        Added to every row (e.g. item biases).
    row_offset : (m,), optional
        Added to every column of its row (e.g. global mean + user bias).

    Returns
    -------
    ndarray (m, n_items) float32, C order.
        ``row_vectors @ item_factors.T + item_offset[None, :] + row_offset[:, None]``.
        ``m == 0`` gives an empty (0, n_items) array.
    """
    scores = np.asarray(row_vectors @ item_factors.T, dtype=np.float32, order="C")
    if item_offset is not None:
        scores += item_offset.astype(np.float32)[None, :]
    if row_offset is not None:
        scores += np.asarray(row_offset, dtype=np.float32)[:, None]
    return scores


def cosine_similar(
    factors: np.ndarray,
    query: np.ndarray,
    n: int,
    backend: str = "auto",
    num_threads: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` rows of ``factors`` most cosine-similar to each query row.

    Parameters
    ----------
    factors : (n_rows, k) float32/float64
        One latent vector per item (or user).
    query : (m,) int32
        Rows to find neighbours for, each in ``[0, n_rows)``.
    n : int >= 1
    backend, num_threads : passed to the top-k kernel.

    Returns
    -------
    idx : (m, n) int32
        Neighbour rows by descending cosine, ties by ascending index; never the
        query row itself; -1 in padded slots when ``n >= n_rows``.
    val : (m, n) float32
        Cosines (``-inf`` in padded slots). A zero vector has cosine 0 with
        every row (it is not normalised: its norm is taken as 1).
    """
    norms = np.linalg.norm(factors.astype(np.float64), axis=1)
    norms[norms == 0] = 1.0
    unit = (factors / norms[:, None]).astype(np.float32)
    n_rows = unit.shape[0]
    m = query.shape[0]
    out_idx = np.empty((m, n), dtype=np.int32)
    out_val = np.empty((m, n), dtype=np.float32)
    block = max(1, _BLOCK_BYTES // (4 * max(n_rows, 1)))
    for start in range(0, m, block):
        rows = query[start : start + block]
        scores = np.ascontiguousarray(unit[rows] @ unit.T, dtype=np.float32)
        # exclude each query from its own list: one stored entry per row
        self_pairs = sp.csr_matrix(
            (
                np.ones(rows.shape[0], dtype=np.float32),
                rows.astype(np.int32),
                np.arange(rows.shape[0] + 1, dtype=np.int32),
            ),
            shape=scores.shape,
        )
        self_pairs.indices = np.ascontiguousarray(self_pairs.indices, dtype=np.int32)
        self_pairs.indptr = np.ascontiguousarray(self_pairs.indptr, dtype=np.int32)
        idx, val = topk_trusted(scores, n, self_pairs, backend, num_threads)
        out_idx[start : start + rows.shape[0]] = idx
        out_val[start : start + rows.shape[0]] = val
    return out_idx, out_val


def check_factor_memory(model: Recommender, params: dict[str, Any], item_tables: int = 1) -> None:
    """Refuse, before allocating, factor tables this machine cannot hold.

    One ``(n_users, factors)`` table and ``item_tables`` ``(n_items,
    factors)`` ones (SVD++ has two) of ``params["dtype"]``.
    """
    k = params["factors"]
    check_memory(
        (model.n_users_ + item_tables * model.n_items_) * k * np.dtype(params["dtype"]).itemsize,
        f"factors={k} for {model.n_users_} users and {model.n_items_} items",
    )


# ------------------------------------------------------------------ persistence
def factor_state(model: Recommender, *names: str) -> dict[str, np.ndarray]:
    """``_get_state`` of a factor model: ``model.<name>_`` for each name.

    ``"intercept"`` (a float attribute) is saved as a (1,) float64 array.
    """
    state = {name: getattr(model, f"{name}_") for name in names}
    if "intercept" in state:
        state["intercept"] = np.array([model.intercept_], dtype=np.float64)
    return state


def restore_factors(
    model: Recommender, state: dict[str, np.ndarray], k: int, dtype: type, *names: str
) -> None:
    """``_set_state`` of a factor model: check and set ``model.<name>_`` for each name.

    Names: ``user_factors``, ``item_factors``, ``implicit_factors`` (shape
    ``(rows, k)``), ``user_bias``, ``item_bias`` (one value a row) and
    ``intercept`` (one float). Each array is checked by
    :func:`fastrec.models.base.expect_array` (shape, kind, finite) and
    stored C-contiguous in ``dtype``.
    """
    rows = {"user": model.n_users_, "item": model.n_items_, "implicit": model.n_items_}
    for name in names:
        if name == "intercept":
            model.intercept_ = float(expect_array(state, "intercept", (1,))[0])
            continue
        side, kind = name.split("_")
        shape = (rows[side], k) if kind == "factors" else (rows[side],)
        setattr(
            model, f"{name}_", np.ascontiguousarray(expect_array(state, name, shape), dtype=dtype)
        )


# ---------------------------------------------------------------------- fold-in
def fold_in_ratings(
    model: Recommender, items: Any, ratings: Any, unique: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Internal item indices (int32) and float64 ratings of a user to fold in.

    Unknown item ids raise ``ValueError`` naming the position, as do ratings
    that are not finite or not one per item, and (``unique``) a repeated item.
    """
    iidx = model._lookup_known(model._items, items, "items")
    r = as_float_array(np.atleast_1d(np.asarray(ratings)), "ratings", np.float64, ndim=1)
    if r.shape[0] != iidx.shape[0]:
        raise ValueError(f"items has {iidx.shape[0]} entries but ratings has {r.shape[0]}")
    if unique:
        order = np.sort(iidx)
        if order.size > 1 and (np.diff(order) == 0).any():
            dup = int(order[np.flatnonzero(np.diff(order) == 0)[0]])
            pos = int(np.flatnonzero(iidx == dup)[1])
            raise ValueError(f"items[{pos}] = {np.asarray(items)[pos]!r} repeats an earlier item")
    return iidx, r


def ridge_fold_in(
    Q: np.ndarray, target: np.ndarray, regularization: float, bias: bool
) -> tuple[np.ndarray, float]:
    """``argmin |target - Q p - b|^2 + n regularization (|p|^2 + b^2)`` in float64.

    ``n`` is the number of rows of ``Q`` (the SGD penalty is paid once per
    rating); without ``bias``, ``b`` is held at 0. Returns ``(p, b)``.
    """
    n, k = Q.shape
    if bias:
        Q = np.hstack([Q, np.ones((n, 1))])
    system = Q.T @ Q + n * float(regularization) * np.eye(Q.shape[1])
    solution = np.linalg.lstsq(system, Q.T @ target, rcond=None)[0]
    return solution[:k], float(solution[k]) if bias else 0.0


def fold_in_result(
    factors: np.ndarray, bias: float, dtype: Any, return_bias: bool
) -> np.ndarray | tuple[np.ndarray, float]:
    """What ``recalculate_user`` returns (see the module docstring)."""
    factors = np.asarray(factors).astype(dtype)
    if return_bias:
        return factors, float(bias)
    return factors
