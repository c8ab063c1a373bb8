"""Naive dense NumPy oracles for ``fastrec.similarity`` (slow, obviously correct).

Everything is float64 and pair by pair, straight from the textbook formulas,
with a dense ``(n, m)`` matrix and a boolean mask of stored entries.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def dense_with_mask(matrix: sp.spmatrix) -> tuple[np.ndarray, np.ndarray]:
    """``(values, stored)``: dense float64 values and the mask of stored entries."""
    coo = sp.coo_matrix(matrix)
    values = np.zeros(coo.shape, dtype=np.float64)
    stored = np.zeros(coo.shape, dtype=bool)
    values[coo.row, coo.col] = coo.data
    stored[coo.row, coo.col] = True
    return values, stored


def _cosine_of(vectors: np.ndarray, stored: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Full-vector cosine for every pair, and whether each vector has a nonzero norm."""
    norms = np.sqrt((vectors**2).sum(axis=1))
    n = vectors.shape[0]
    sims = np.zeros((n, n))
    for i in range(n):
        for l in range(n):
            if norms[i] > 0 and norms[l] > 0:
                sims[i, l] = vectors[i] @ vectors[l] / (norms[i] * norms[l])
    return sims, norms > 0


def reference_similarity(
    matrix: sp.spmatrix,
    kind: str,
    min_support: int = 1,
    shrinkage: float = 0.0,
    min_similarity: float | None = None,
) -> np.ndarray:
    """Dense (n, n) similarity between the rows of ``matrix``; NaN = no similarity.

    NaN marks a pair that must not appear in the output: no common column,
    fewer than ``min_support`` common columns, a degenerate vector (zero
    variance / zero norm), the diagonal, or a similarity below
    ``min_similarity`` (after shrinkage). A pair whose similarity is exactly
    0 is returned as 0.0: fastrec does not store it, but in float32 rounding
    can turn it into a tiny nonzero that is stored, so tests treat it as
    optional.
    """
    values, stored = dense_with_mask(matrix)
    n = values.shape[0]
    common = stored.astype(np.int64) @ stored.T.astype(np.int64)
    out = np.full((n, n), np.nan)
    if kind == "pearson":
        for i in range(n):
            for l in range(n):
                both = stored[i] & stored[l]
                if not both.any():
                    continue
                x, y = values[i, both], values[l, both]
                if np.all(x == x[0]) or np.all(y == y[0]):
                    continue  # zero variance on the common support
                dx, dy = x - x.mean(), y - y.mean()
                out[i, l] = (dx @ dy) / np.sqrt((dx @ dx) * (dy @ dy))
    else:
        centred = np.zeros_like(values)
        if kind == "cosine":
            centred = values.copy()
        elif kind == "centered_cosine":
            for i in range(n):
                if stored[i].any():
                    centred[i, stored[i]] = values[i, stored[i]] - values[i, stored[i]].mean()
        elif kind == "adjusted_cosine":
            for j in range(values.shape[1]):
                col = stored[:, j]
                if col.any():
                    centred[col, j] = values[col, j] - values[col, j].mean()
        else:
            raise ValueError(kind)
        sims, ok = _cosine_of(centred, stored)
        for i in range(n):
            for l in range(n):
                if common[i, l] > 0 and ok[i] and ok[l]:
                    out[i, l] = sims[i, l]
    out = np.clip(out, -1.0, 1.0)
    out[common < max(1, min_support)] = np.nan
    if shrinkage > 0:
        out = out * common / (common + shrinkage)
    if min_similarity is not None:
        out[out < min_similarity] = np.nan
    np.fill_diagonal(out, np.nan)
    return out


def reference_topk(sims: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
    """Per row: the ``k`` best ``(index, similarity)`` by descending value, ties by index."""
    result = []
    for row in sims:
        cand = [(int(l), float(v)) for l, v in enumerate(row) if not np.isnan(v)]
        cand.sort(key=lambda t: (-t[1], t[0]))
        result.append(cand[:k])
    return result
