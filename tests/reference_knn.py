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
                # the kernels' one-pass sums are exact on the 0.5 grid; the two-pass
                # means leave rounding noise that can break exact ties (two
                # correlations of 1) or make an exact 0 positive: round it away
                s = round(s, 12)
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


# ------------------------------------------------- top-N, centring, baselines
def support_cosine_matrix(V, M, min_support=1, shrinkage=0.0):
    """Dense cosine over the co-rated support of the rows of ``V`` (surprise's
    ``pearson_baseline`` when ``V`` holds baseline residuals), shrunk by
    ``(n - 1) / (n - 1 + shrinkage)``; 0 for no similarity (n < 2 or below
    ``min_support``, or a zero sum of squares on the support)."""
    n = V.shape[0]
    S = np.zeros((n, n))
    for a in range(n):
        for b in range(n):
            if a == b:
                continue
            common = M[a] & M[b]
            c = int(common.sum())
            if c < max(2, min_support):
                continue
            x = V[a, common].astype(np.float64)
            y = V[b, common].astype(np.float64)
            sxx, syy = float(x @ x), float(y @ y)
            if sxx == 0.0 or syy == 0.0:
                continue
            s = float(x @ y) / np.sqrt(sxx * syy)
            if shrinkage > 0:
                s *= (c - 1) / (c - 1 + shrinkage)
            S[a, b] = s
    return S


def predict_scaled(S, R, M, means, scales, x, y, k, centered):
    """(prediction or None, count): KNNWithZScore when ``scales`` are standard
    deviations, KNNWithMeans when they are ones, KNNBasic when not centred."""
    nb = neighbours(S, M, x, y, k)
    if not nb:
        return None, 0
    s = np.array([S[x, x2] for x2 in nb])
    r = np.array([R[x2, y] for x2 in nb], dtype=np.float64)
    if centered:
        z = (r - means[nb]) / scales[nb]
        return means[x] + scales[x] * float(s @ z) / s.sum(), len(nb)
    return float(s @ r) / s.sum(), len(nb)


def top_positive(S, x, k):
    """The k x2 != x with the highest positive S[x, x2] (ties: lower x2)."""
    cands = [x2 for x2 in range(S.shape[0]) if x2 != x and S[x, x2] > 0]
    cands.sort(key=lambda x2: (-S[x, x2], x2))
    return cands[:k]


def user_topn_scores(S, R, M, means, scales, u, k, weighted):
    """score(u, i) = sum over u's k nearest users v (positive similarity) who
    rated i of S[u, v] (plain) or S[u, v] (r_vi - means[v]) / scales[v]."""
    out = np.zeros(R.shape[1])
    for v in top_positive(S, u, k):
        for i in np.flatnonzero(M[v]):
            out[i] += S[u, v] * ((R[v, i] - means[v]) / scales[v] if weighted else 1.0)
    return out


def item_topn_scores(S, W, M, u, k):
    """score(u, i) = sum over i's k nearest items j (positive similarity) that
    u rated of W[u, j] * S[i, j] (Deshpande and Karypis; W = 1 for the plain sum)."""
    n_items = S.shape[0]
    out = np.zeros(n_items)
    for i in range(n_items):
        for j in top_positive(S, i, k):
            if M[u, j]:
                out[i] += W[u, j] * S[i, j]
    return out


def baseline_als(R, M, n_epochs=10, reg_u=15.0, reg_i=10.0):
    """scikit-surprise's ``baseline_als``, loop for loop: (mu, bu, bi)."""
    mu = float(R[M].mean())
    n_users, n_items = R.shape
    bu = np.zeros(n_users)
    bi = np.zeros(n_items)
    for _ in range(n_epochs):
        for i in range(n_items):
            dev = 0.0
            for u in np.flatnonzero(M[:, i]):
                dev += R[u, i] - mu - bu[u]
            bi[i] = dev / (reg_i + M[:, i].sum())
        for u in range(n_users):
            dev = 0.0
            for i in np.flatnonzero(M[u]):
                dev += R[u, i] - mu - bi[i]
            bu[u] = dev / (reg_u + M[u].sum())
    return mu, bu, bi


def baseline_sgd(R, M, n_epochs=20, reg=0.02, lr=0.005):
    """scikit-surprise's ``baseline_sgd`` over the ratings in (user, item) order."""
    mu = float(R[M].mean())
    bu = np.zeros(R.shape[0])
    bi = np.zeros(R.shape[1])
    for _ in range(n_epochs):
        for u in range(R.shape[0]):
            for i in np.flatnonzero(M[u]):
                err = R[u, i] - (mu + bu[u] + bi[i])
                bu[u] += lr * (err - reg * bu[u])
                bi[i] += lr * (err - reg * bi[i])
    return mu, bu, bi


def weighting(R, M, kind, k1=1.2, b=0.75):
    """implicit's ``tfidf_weight`` (then row-normalised) / ``bm25_weight`` of
    the rows of ``R`` (documents) over its columns (terms), dense."""
    n = R.shape[0]
    df = M.sum(axis=0)
    idf = np.log(n) - np.log1p(df)
    V = np.zeros_like(R, dtype=np.float64)
    if kind == "tfidf":
        for a in range(n):
            for c in np.flatnonzero(M[a]):
                V[a, c] = np.sqrt(R[a, c]) * idf[c]
            norm = np.sqrt((V[a] ** 2).sum())
            V[a] = V[a] / norm if norm > 0 else 0.0
    else:
        length = np.array([R[a, M[a]].sum() for a in range(n)])
        avg = length.mean()
        for a in range(n):
            ln = (1 - b) + b * length[a] / avg
            for c in np.flatnonzero(M[a]):
                V[a, c] = R[a, c] * (k1 + 1) / (k1 * ln + R[a, c]) * idf[c]
    return V


def weighted_dot_matrix(V, M, min_support=1, shrinkage=0.0):
    """Dot products of the rows of ``V`` over their common support, shrunk by
    ``n / (n + shrinkage)``, 0 below ``min_support`` (the bm25 / tfidf kinds)."""
    n = V.shape[0]
    S = np.zeros((n, n))
    for a in range(n):
        for c in range(n):
            if a == c:
                continue
            common = M[a] & M[c]
            cnt = int(common.sum())
            if cnt == 0 or cnt < min_support:
                continue
            s = float(V[a, common] @ V[c, common])
            if shrinkage > 0:
                s *= cnt / (cnt + shrinkage)
            S[a, c] = s
    return S
