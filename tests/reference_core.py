"""Naive, obviously-correct references for the foundation kernels and metrics."""

from __future__ import annotations

import numpy as np


def topk_reference(scores, k, exclude_rows=None):
    """Top-k per row by sorting (descending score, ascending index); pads -1/-inf."""
    n, m = scores.shape
    idx = np.full((n, k), -1, dtype=np.int64)
    val = np.full((n, k), -np.inf, dtype=np.float64)
    for r in range(n):
        banned = set() if exclude_rows is None else set(exclude_rows[r])
        cands = [(-float(scores[r, c]), c) for c in range(m) if c not in banned]
        cands.sort()
        for j, (negv, c) in enumerate(cands[:k]):
            idx[r, j] = c
            val[r, j] = -negv
    return idx, val


def csr_check_reference(indptr, indices, n_cols):
    """(code, position) of the first CSR fault, in the order the kernel scans."""
    if indptr[0] != 0:
        return 1, 0
    for r in range(len(indptr) - 1):
        if indptr[r + 1] < indptr[r]:
            return 2, r + 1
    for r in range(len(indptr) - 1):
        for p in range(indptr[r], indptr[r + 1]):
            if indices[p] < 0:
                return 3, p
            if indices[p] >= n_cols:
                return 4, p
            if p > indptr[r] and indices[p] <= indices[p - 1]:
                return 5, p
    return 0, -1


def relabel_rows_reference(indptr, indices, data, label, block_of_label, n_blocks):
    """Per row: new labels sorted by ``np.argsort``, block counts by ``np.bincount``."""
    n_rows = len(indptr) - 1
    out_labels = np.empty(len(indices), dtype=np.int32)
    out_data = np.empty_like(data)
    block_ptr = np.empty((n_rows, n_blocks + 1), dtype=np.int64)
    for u in range(n_rows):
        start, end = int(indptr[u]), int(indptr[u + 1])
        new = label[indices[start:end]]
        order = np.argsort(new, kind="stable")
        out_labels[start:end] = new[order]
        out_data[start:end] = data[start:end][order]
        counts = np.bincount(block_of_label[new], minlength=n_blocks)
        block_ptr[u, 0] = start
        block_ptr[u, 1:] = start + np.cumsum(counts)
    return out_labels, out_data, block_ptr


def ranking_reference(recommended, relevant, k):
    """Per-user metrics by direct loops over each list."""
    out = {m: [] for m in ("precision", "recall", "ndcg", "map", "hit_rate", "mrr")}
    for rec, rel in zip(recommended, relevant):
        rel = set(int(x) for x in rel)
        if not rel:
            for m in out:
                out[m].append(np.nan)
            continue
        rec = [int(x) for x in rec[:k]]
        hits = [1.0 if (x >= 0 and x in rel) else 0.0 for x in rec]
        dcg = sum(h / np.log2(r + 2) for r, h in enumerate(hits))
        idcg = sum(1 / np.log2(r + 2) for r in range(min(len(rel), k)))
        ap, seen = 0.0, 0
        for r, h in enumerate(hits):
            if h:
                seen += 1
                ap += seen / (r + 1)
        first = next((r for r, h in enumerate(hits) if h), None)
        out["precision"].append(sum(hits) / k)
        out["recall"].append(sum(hits) / len(rel))
        out["ndcg"].append(dcg / idcg)
        out["map"].append(ap / min(len(rel), k))
        out["hit_rate"].append(float(any(hits)))
        out["mrr"].append(0.0 if first is None else 1.0 / (first + 1))
    return {m: np.array(v) for m, v in out.items()}


def auc_reference(scores, relevant, excluded):
    vals = []
    for s, rel, ex in zip(scores, relevant, excluded):
        rel = set(rel)
        ex = set(ex) - rel
        pos = [s[i] for i in rel]
        neg = [s[j] for j in range(len(s)) if j not in rel and j not in ex]
        if not pos or not neg:
            vals.append(np.nan)
            continue
        total = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p in pos for q in neg)
        vals.append(total / (len(pos) * len(neg)))
    return np.array(vals)
