"""Naive, obviously-correct oracles for the BPR kernel.

The counter-based generator is rewritten with Python integers (mod 2**64),
the triples are drawn one by one as the kernel's docstring describes them,
and the updates are taken one triple at a time in float64 from the formulas
of Rendle et al. (UAI 2009): gradient ascent on

    ln sigma(x_ui - x_uj) - reg / 2 * (|p_u|^2 + |q_i|^2 + |q_j|^2 + b_i^2 + b_j^2)

with ``x_ui = p_u . q_i + b_i`` (so the step is ``lr`` times that gradient).
"""

from __future__ import annotations

import math

import numpy as np

MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
MAX_NEGATIVE_DRAWS = 8


def mix64(z: int) -> int:
    z &= MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def epoch_key(seed: int, epoch: int) -> int:
    return mix64(seed + (epoch + 1) * GOLDEN)


def sample_key(key: int, s: int) -> int:
    return mix64(key + (s + 1) * GOLDEN)


def draw(key: int, t: int) -> int:
    return mix64(key + t * GOLDEN)


def uniform_index(bits: int, n: int) -> int:
    return min(int(float(bits >> 11) * 2.0**-53 * float(n)), n - 1)


def triples(indptr, indices, n_items, seed, epoch, first, count, popular=False):
    """(u, i, j) of samples ``first .. first + count - 1``; j = -1 when skipped."""
    indptr = [int(v) for v in indptr]
    indices = [int(v) for v in indices]
    nnz = len(indices)
    row_of = []
    for u in range(len(indptr) - 1):
        row_of += [u] * (indptr[u + 1] - indptr[u])
    key = epoch_key(int(seed), epoch)
    out = []
    for s in range(first, first + count):
        skey = sample_key(key, s)
        pos = uniform_index(draw(skey, 1), nnz)
        u, i = row_of[pos], indices[pos]
        liked = set(indices[indptr[u] : indptr[u + 1]])
        j = -1
        for t in range(2, 2 + MAX_NEGATIVE_DRAWS):
            bits = draw(skey, t)
            cand = indices[uniform_index(bits, nnz)] if popular else uniform_index(bits, n_items)
            if cand not in liked:
                j = cand
                break
        out.append((u, i, j))
    return out


def objective(p, qi, qj, bi, bj, reg):
    """The per-sample BPR objective (maximised) of one triple's parameters."""
    x = float(p @ (qi - qj)) + bi - bj
    log_sigma = -math.log1p(math.exp(-x)) if x > -30 else x
    return log_sigma - reg / 2 * (p @ p + qi @ qi + qj @ qj + bi * bi + bj * bj)


def step(P, Q, b, u, i, j, lr, reg):
    """One update (in place, float64); returns ``x = x_ui - x_uj`` before it."""
    p, qi, qj = P[u].copy(), Q[i].copy(), Q[j].copy()
    x = float(p @ (qi - qj)) + b[i] - b[j]
    z = 1.0 / (1.0 + math.exp(x))  # d ln sigma(x) / dx
    P[u] = p + lr * (z * (qi - qj) - reg * p)
    Q[i] = qi + lr * (z * p - reg * qi)
    Q[j] = qj + lr * (-z * p - reg * qj)
    bi, bj = b[i], b[j]
    b[i] = bi + lr * (z - reg * bi)
    b[j] = bj + lr * (-z - reg * bj)
    return x


def bpr_epoch(triple_list, P, Q, b, lr, reg):
    """The triples in order on float64 copies; returns (P, Q, b, loss sum, skipped)."""
    P = np.array(P, dtype=np.float64)
    Q = np.array(Q, dtype=np.float64)
    b = np.array(b, dtype=np.float64)
    loss = 0.0
    skipped = 0
    for u, i, j in triple_list:
        if j < 0:
            skipped += 1
            continue
        x = step(P, Q, b, u, i, j, lr, reg)
        loss += math.log1p(math.exp(-x)) if x > -30 else -x
    return P, Q, b, loss, skipped
