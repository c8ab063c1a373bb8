"""Naive, obviously-correct references for the k-NN kernels and models.

Everything is dense NumPy and Python loops over a ratings matrix ``R``
(n_x, n_y) with a boolean mask ``M`` of the stored entries, oriented as the
kernels are: x is the target side (users for UserKNN, items for ItemKNN).
"""

from __future__ import annotations

import numpy as np


def similarity_matrix(R, M, kind="pearson", min_support=1, shrinkage=0.0, defined=False):
    """Dense (n_x, n_x) float64 similarity, 0 on the diagonal and for "no similarity".

    ``kind``: "pearson" (means over the co-rated support, two-pass formula), or
    "cosine" / "centered_cosine" / "adjusted_cosine" (rows transformed as
    ``fastrec.neighbours.prepare`` documents, then a dot product over the
    co-rated support, which is the full dot product since absent entries are 0).
    With ``defined``, also return the boolean (n_x, n_x) mask of the pairs that
    have a similarity (enough support, no zero variance for Pearson).
    """
    R = np.where(M, R, 0.0).astype(np.float64)
    n = R.shape[0]
    if kind != "pearson":
        V = R.copy()
        if kind == "centered_cosine":
            for a in range(n):
                if M[a].any():
                    V[a, M[a]] -= R[a, M[a]].mean()
        elif kind == "adjusted_cosine":
            for y in range(R.shape[1]):
                if M[:, y].any():
                    V[M[:, y], y] -= R[M[:, y], y].mean()
        for a in range(n):
            norm = np.sqrt((V[a, M[a]] ** 2).sum())
            V[a] = V[a] / norm if norm > 0 else 0.0
    S = np.zeros((n, n))
    D = np.zeros((n, n), dtype=bool)
    for a in range(n):
        for b in range(n):
            if a == b:
                continue
            common = M[a] & M[b]
            c = int(common.sum())
            if c == 0 or c < min_support:
                continue
            if kind == "pearson":
                x = R[a, common]
                y = R[b, common]
                if np.all(x == x[0]) or np.all(y == y[0]):
                    continue  # zero variance on the support (includes c == 1)
                xc = x - x.mean()
                yc = y - y.mean()
                s = float(xc @ yc) / np.sqrt(float(xc @ xc) * float(yc @ yc))
            else:
                s = float(V[a, common] @ V[b, common])
            if shrinkage > 0:
                s *= c / (c + shrinkage)
            S[a, b] = s
            D[a, b] = True
    return (S, D) if defined else S


def neighbours(S, M, x, y, k, allowed=None):
    """The k x2 != x that rated y with S[x, x2] > 0, best first (ties: lower x2)."""
    cands = [
        x2
        for x2 in range(S.shape[0])
        if x2 != x and M[x2, y] and S[x, x2] > 0 and (allowed is None or x2 in allowed)
    ]
    cands.sort(key=lambda x2: (-S[x, x2], x2))
    return cands[:k]


def aggregate(S, R, means, x, y, nb, centered):
    """KNNWithMeans (centered) or KNNBasic aggregation over the neighbours ``nb``."""
    s = np.array([S[x, x2] for x2 in nb])
    r = np.array([R[x2, y] for x2 in nb], dtype=np.float64)
    if centered:
        return means[x] + float(s @ (r - means[nb])) / s.sum()
    return float(s @ r) / s.sum()


def predict_one(S, R, M, means, x, y, k, centered):
    """(prediction or None when there is no neighbour, neighbour count)."""
    nb = neighbours(S, M, x, y, k)
    if not nb:
        return None, 0
    return aggregate(S, R, means, x, y, nb, centered), len(nb)


def row_means(R, M, fill):
    out = np.full(R.shape[0], fill, dtype=np.float64)
    for a in range(R.shape[0]):
        if M[a].any():
            out[a] = R[a, M[a]].astype(np.float64).mean()
    return out


class NaiveKNN:
    """Reference UserKNN / ItemKNN on a dense users x items training matrix.

    Fallbacks as documented in ``fastrec.models.knn``: fewer than ``min_k``
    neighbours -> target mean (centered) or global mean; unknown/cold user or
    item -> base class baseline; predictions clipped to the rating range.
    """

    def __init__(
        self,
        R,
        M,
        user_based,
        k=40,
        kind="pearson",
        min_support=1,
        shrinkage=0.0,
        min_k=1,
        centered=True,
        max_neighbors=None,
    ):
        self.R = np.where(M, R, 0.0).astype(np.float64)
        self.M = M.astype(bool)
        self.user_based = user_based
        self.k = k
        self.min_k = min_k
        self.centered = centered
        self.max_neighbors = max_neighbors
        self.global_mean = float(self.R[self.M].mean())
        self.user_mean = row_means(self.R, self.M, self.global_mean)
        self.item_mean = row_means(self.R.T, self.M.T, self.global_mean)
        self.user_count = self.M.sum(axis=1)
        self.item_count = self.M.sum(axis=0)
        self.lo = float(self.R[self.M].min())
        self.hi = float(self.R[self.M].max())
        if user_based:
            self.Rx, self.Mx, self.means = self.R, self.M, self.user_mean
        else:
            self.Rx, self.Mx, self.means = self.R.T, self.M.T, self.item_mean
        self.S = similarity_matrix(self.Rx, self.Mx, kind, min_support, shrinkage)

    def _fallback_known(self, x):
        return self.means[x] if self.centered else self.global_mean

    def predict(self, u, i):
        """Prediction for internal indices (-1 = unknown)."""
        user_ok = u >= 0 and self.user_count[u] > 0
        item_ok = i >= 0 and self.item_count[i] > 0
        if not user_ok and not item_ok:
            return self.global_mean
        if not user_ok:
            return self.item_mean[i]
        if not item_ok:
            return self.user_mean[u]
        x, y = (u, i) if self.user_based else (i, u)
        nb = neighbours(self.S, self.Mx, x, y, self.k)
        if len(nb) < max(self.min_k, 1):
            pred = self._fallback_known(x)
        else:
            pred = aggregate(self.S, self.Rx, self.means, x, y, nb, self.centered)
        return float(np.clip(pred, self.lo, self.hi))

    def _kept(self, x):
        """The max_neighbors most similar positive x2 of x (all when None)."""
        cands = [x2 for x2 in range(self.S.shape[0]) if x2 != x and self.S[x, x2] > 0]
        cands.sort(key=lambda x2: (-self.S[x, x2], x2))
        if self.max_neighbors is not None:
            cands = cands[: self.max_neighbors]
        return set(cands)

    def scores(self, u):
        """Unclipped recommend scores of every item for a warm user ``u``."""
        n_items = self.R.shape[1]
        out = np.empty(n_items)
        kept_u = self._kept(u) if self.user_based else None
        for i in range(n_items):
            if self.item_count[i] == 0:
                out[i] = self.user_mean[u]
                continue
            if self.user_based:
                nb = neighbours(self.S, self.Mx, u, i, self.k, allowed=kept_u)
                x, y = u, i
            else:
                nb = neighbours(self.S, self.Mx, i, u, self.k, allowed=self._kept(i))
                x, y = i, u
            if len(nb) < max(self.min_k, 1):
                out[i] = self._fallback_known(x)
            else:
                out[i] = aggregate(self.S, self.Rx, self.means, x, y, nb, self.centered)
        return out

    def recommend(self, u, n, exclude_seen=True):
        """Top-n (ids, scores) by descending score, ties by lower index."""
        sc = self.scores(u)
        cand = [i for i in range(sc.shape[0]) if not (exclude_seen and self.M[u, i])]
        cand.sort(key=lambda i: (-sc[i], i))
        ids = np.full(n, -1)
        vals = np.full(n, -np.inf)
        for j, i in enumerate(cand[:n]):
            ids[j] = i
            vals[j] = sc[i]
        return ids, vals


def similar_rows_reference(R, M, kind, min_support, shrinkage, x, n, positive_only):
    """(idx, val) of the n best x2 of x, padded with -1 / -inf (kernel contract)."""
    S, D = similarity_matrix(R, M, kind, min_support, shrinkage, defined=True)
    cands = [x2 for x2 in range(R.shape[0]) if (S[x, x2] > 0 if positive_only else D[x, x2])]
    cands.sort(key=lambda x2: (-S[x, x2], x2))
    idx = np.full(n, -1)
    val = np.full(n, -np.inf)
    for j, x2 in enumerate(cands[:n]):
        idx[j] = x2
        val[j] = S[x, x2]
    return idx, val
