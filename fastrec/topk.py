"""Top-k selection over dense score rows (the last step of every ``recommend``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from . import _backend
from ._kernels import topk as topk_kernels
from ._validation import check_csr, check_scores, clamp_count

__all__ = ["topk"]


def topk(
    scores: Any,
    k: int,
    exclude: sp.spmatrix | None = None,
    backend: str = "auto",
    num_threads: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the ``k`` largest entries of each row.

    Parameters
    ----------
    scores : array_like, shape (n_rows, n_cols), float32 or float64
        Real scores (integers are converted to float32); ``-inf`` is allowed
        and ranks last. NaN is a ``ValueError`` naming its position; object,
        string and complex arrays are refused (``ValueError``), not converted.
    k : int >= 1
        How many entries to keep per row. ``k`` larger than ``n_cols`` is
        clamped to ``n_cols``: the result has ``min(k, n_cols)`` columns.
    exclude : scipy.sparse matrix, shape (n_rows, n_cols), optional
        Entries (its stored positions, whatever their values) never returned,
        e.g. the items each user has already seen.
    backend : {"auto", "numba", "cython"}
    num_threads : int, 0 means all cores

    Returns
    -------
    idx : ndarray (n_rows, min(k, n_cols)) int32
        Column indices, by descending score, ties by ascending column. When a
        row has fewer candidates (excluded entries), the remaining slots hold -1.
    val : ndarray (n_rows, min(k, n_cols)), dtype of ``scores``
        The matching scores; ``-inf`` in padded slots.
    """
    scores = check_scores(scores, "scores")
    k = clamp_count(k, "k", scores.shape[1])
    _backend.resolve_backend(backend)
    _backend.resolve_threads(num_threads)
    if exclude is not None:
        exclude = check_csr(exclude, "exclude", shape=scores.shape, finite=False)
    if scores.shape[1] == 0:
        return np.empty((scores.shape[0], 0), np.int32), np.empty(
            (scores.shape[0], 0), scores.dtype
        )
    return topk_trusted(scores, k, exclude, backend, num_threads)


def topk_trusted(
    scores: np.ndarray,
    k: int,
    exclude: sp.csr_matrix | tuple[np.ndarray, np.ndarray] | None,
    backend: str = "auto",
    num_threads: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """``topk`` for inputs that the library built itself and already trusts.

    ``scores`` must be C-ordered float32/float64 without NaN; ``exclude`` None,
    a CSR already validated (int32 strictly increasing indices) with
    ``scores.shape``, or such a CSR's ``(indptr, indices)`` pair, where
    ``indptr`` (n_rows + 1,) int32/int64 holds absolute positions into
    ``indices`` (so it may be a slice of a larger matrix's row pointer).
    """
    n_rows = scores.shape[0]
    if exclude is None:
        excl_indptr = np.zeros(n_rows + 1, dtype=np.int32)
        excl_indices = np.zeros(0, dtype=np.int32)
    elif isinstance(exclude, tuple):
        excl_indptr, excl_indices = exclude
    else:
        excl_indptr, excl_indices = exclude.indptr, exclude.indices
    out_idx = np.empty((n_rows, k), dtype=np.int32)
    out_val = np.empty((n_rows, k), dtype=scores.dtype)
    if n_rows == 0:
        return out_idx, out_val
    kernel = topk_kernels.get(backend).topk_dense
    # row blocks (Ctrl-C is seen between two); a slice of the row pointer
    # still holds absolute positions into the indices
    first = max(1, (1 << 20) // max(scores.shape[1], 1))
    with _backend.threads(num_threads):
        for lo, hi in _backend.slices(n_rows, first, minimum=64):
            kernel(
                scores[lo:hi], k, excl_indptr[lo : hi + 1], excl_indices,
                out_idx[lo:hi], out_val[lo:hi],
            )  # fmt: skip
    return out_idx, out_val


def factor_topk_trusted(
    row_vectors: np.ndarray,
    item_factors: np.ndarray,
    rows: np.ndarray,
    k: int,
    item_offset: np.ndarray | None = None,
    exclude: sp.csr_matrix | tuple[np.ndarray, np.ndarray] | None = None,
    backend: str = "auto",
    num_threads: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of ``row_vectors[rows] @ item_factors.T (+ item_offset)``, fused.

    The kernel (``factor_topk``) multiplies and selects tile by tile, so the
    ``(len(rows), n_items)`` score matrix is never built. For inputs the
    library built itself: C-ordered float32/float64 factors of one dtype
    without NaN, ``rows`` int32 in range, ``exclude`` a validated CSR over
    ``row_vectors``' rows (int32 strictly increasing indices), its
    ``(indptr, indices)`` pair, or None.

    Returns ``idx (m, k) int32`` and ``val (m, k)`` in the factors' dtype,
    ordered and padded as :func:`topk`.
    """
    dtype = row_vectors.dtype
    m = rows.shape[0]
    if exclude is None:
        excl_indptr = np.zeros(row_vectors.shape[0] + 1, dtype=np.int32)
        excl_indices = np.zeros(0, dtype=np.int32)
    elif isinstance(exclude, tuple):
        excl_indptr, excl_indices = exclude
    else:
        excl_indptr, excl_indices = exclude.indptr, exclude.indices
    offset = np.zeros(0, dtype=dtype) if item_offset is None else item_offset
    out_idx = np.empty((m, k), dtype=np.int32)
    out_val = np.empty((m, k), dtype=dtype)
    if m == 0:
        return out_idx, out_val
    kernel = topk_kernels.get(backend).factor_topk
    # blocks of query rows (Ctrl-C is seen between two); each row's result
    # does not depend on the others
    first = max(1, (1 << 22) // max(item_factors.shape[0] * item_factors.shape[1], 1))
    with _backend.threads(num_threads):
        for lo, hi in _backend.slices(m, first, minimum=64):
            kernel(
                row_vectors, item_factors, offset, rows[lo:hi], k, excl_indptr, excl_indices,
                out_idx[lo:hi], out_val[lo:hi],
            )  # fmt: skip
    return out_idx, out_val
