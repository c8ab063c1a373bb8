"""Small helpers shared by the factor models (``SGDMF``, ``ALS``).

Both work on dense factor matrices already validated by the model: C-ordered
float32/float64 arrays without NaN. They only allocate and call NumPy / the
top-k kernel; nothing here is model specific.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..topk import topk_unchecked

__all__ = ["factor_scores", "cosine_similar"]

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
        idx, val = topk_unchecked(scores, n, self_pairs, backend, num_threads)
        out_idx[start : start + rows.shape[0]] = idx
        out_val[start : start + rows.shape[0]] = val
    return out_idx, out_val
