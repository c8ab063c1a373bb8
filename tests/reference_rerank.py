"""Naive references for the MMR re-ranker and the list metrics (diversity,
novelty, gini): plain loops over dense arrays, float64, written from the
definitions in ``fastrec/rerank.py`` and ``fastrec/metrics.py``."""

from __future__ import annotations

import math

import numpy as np


def mmr_reference(ids, scores, sim_dense, diversity, n):
    """MMR by the definition, one row at a time.

    Returns ``(positions, margins)``: ``positions`` (n_rows, n) int, the picked
    positions of each row in picking order, -1 padded; ``margins`` (n_rows,)
    the smallest gap, over a row's steps, between the best MMR value and the
    best value of another candidate (inf when no step had a rival): a row whose
    margin is below a dtype's rounding may legitimately be ordered otherwise by
    a float32 kernel.
    """
    n_rows, n_cand = ids.shape
    positions = np.full((n_rows, n), -1, dtype=np.int64)
    margins = np.full(n_rows, np.inf)
    for r in range(n_rows):
        valid = [c for c in range(n_cand) if ids[r, c] >= 0]
        if not valid:
            continue
        s = {c: float(scores[r, c]) for c in valid}
        lo, hi = min(s.values()), max(s.values())
        rel = {c: (s[c] - lo) / (hi - lo) if hi > lo else 1.0 for c in valid}
        picked = []
        for step in range(min(n, len(valid))):
            values = {}
            for c in valid:
                if c in picked:
                    continue
                penalty = max(sim_dense[ids[r, p], ids[r, c]] for p in picked) if picked else 0.0
                values[c] = (1 - diversity) * rel[c] - diversity * penalty
            # best value, then higher rel, then earlier position
            best = min(values, key=lambda c: (-values[c], -rel[c], c))
            others = [values[c] for c in values if c != best]
            if others:
                margins[r] = min(margins[r], values[best] - max(others))
            picked.append(best)
            positions[r, step] = best
    return positions, margins


def intra_list_diversity_reference(recommended, sim_dense):
    """Per-list mean of 1 - S[i, j] over ordered pairs of distinct list items."""
    out = []
    for row in recommended:
        items = [int(i) for i in row if i >= 0]
        m = len(items)
        if m < 2:
            out.append(math.nan)
            continue
        total = 0.0
        for a in range(m):
            for b in range(m):
                if a != b:
                    total += 1.0 - sim_dense[items[a], items[b]]
        out.append(total / (m * (m - 1)))
    return np.array(out)


def cosine_dense_reference(matrix_dense):
    """Item x item cosine of the columns of a dense users x items array (0 for empty columns)."""
    n_items = matrix_dense.shape[1]
    out = np.zeros((n_items, n_items))
    for i in range(n_items):
        for j in range(n_items):
            a, b = matrix_dense[:, i], matrix_dense[:, j]
            na, nb = math.sqrt(float(a @ a)), math.sqrt(float(b @ b))
            if na > 0 and nb > 0:
                out[i, j] = float(a @ b) / (na * nb)
    return out


def novelty_reference(recommended, share):
    """Per-list mean of -log2(share[i]) over the list's items."""
    out = []
    for row in recommended:
        items = [int(i) for i in row if i >= 0]
        out.append(sum(-math.log2(share[i]) for i in items) / len(items) if items else math.nan)
    return np.array(out)


def gini_reference(recommended, n_items):
    """Gini by its mean-absolute-difference form, normalised to reach 1.

    ``G = sum_{a, b} |c_a - c_b| / (2 n sum c)`` is the Gini index of the
    counts; one item taking everything gives ``(n - 1) / n``, so the
    normalised index is ``G * n / (n - 1)``.
    """
    counts = [0] * n_items
    for row in recommended:
        for i in row:
            if i >= 0:
                counts[int(i)] += 1
    total = sum(counts)
    if total == 0:
        return math.nan
    if n_items == 1:
        return 0.0
    mad = sum(abs(a - b) for a in counts for b in counts)
    return mad / (2 * n_items * total) * n_items / (n_items - 1)
