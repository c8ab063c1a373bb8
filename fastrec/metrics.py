"""Rating-error and ranking metrics.

Ranking metrics take top-k lists and the held-out relevant items:

``recommended``: int array (n_users, k') of item indices, best first; -1 marks
an empty slot (fewer candidates than k').
``relevant``: the relevant items of each row, as a scipy.sparse matrix
(n_users, n_items) whose stored entries are the relevant items, or a sequence
of integer arrays.

Definitions at cutoff ``k`` for one user with relevant set R (|R| > 0) and
hit indicators h_1..h_k of the top-k list:

- precision@k = sum h / k
- recall@k = sum h / |R|
- hit_rate@k = 1 if any h else 0
- ndcg@k = sum_r h_r / log2(r + 1) / IDCG, IDCG = sum_{r <= min(|R|, k)} 1 / log2(r + 1)
- map@k = sum_r h_r * precision@r / min(|R|, k)
- mrr@k = 1 / (rank of the first hit), 0 without a hit

Each function returns the mean over rows with at least one relevant item (rows
without are skipped, and ``per_user=True`` gives NaN for them).

An item repeated within a list counts once, at its first (best) position: a
later repeat is an empty slot, never a second hit, so no metric exceeds 1.

Beyond accuracy, on the lists alone: ``coverage`` (share of the catalogue
recommended at all), ``intra_list_diversity`` (mean pairwise dissimilarity
within a list), ``novelty`` (mean self-information of the recommended items)
and ``gini`` (concentration of the recommendations on few items); each
docstring gives its formula and degenerate cases.
Everything is vectorised: 100,000 users take well under a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from ._validation import as_float_array, check_int, check_item_similarity, fmt_pos
from .data import Interactions

__all__ = [
    "rmse",
    "mae",
    "precision_at_k",
    "recall_at_k",
    "ndcg_at_k",
    "map_at_k",
    "hit_rate_at_k",
    "mrr_at_k",
    "auc",
    "coverage",
    "intra_list_diversity",
    "novelty",
    "gini",
    "ranking_metrics",
]


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t = as_float_array(y_true, "y_true", dtype=np.float64, ndim=1)
    p = as_float_array(y_pred, "y_pred", dtype=np.float64, ndim=1)
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.shape[0]} entries but y_pred has {p.shape[0]}")
    if t.shape[0] == 0:
        raise ValueError("y_true and y_pred are empty")
    return t, p


def rmse(y_true: Any, y_pred: Any) -> float:
    """Root mean squared error."""
    t, p = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((t - p) ** 2)))


def mae(y_true: Any, y_pred: Any) -> float:
    """Mean absolute error."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))


def _relevant_csr(relevant: Any, n_rows: int, n_items: int | None) -> sp.csr_matrix:
    if sp.issparse(relevant):
        rel = sp.csr_matrix(relevant)
        if rel.shape[0] != n_rows:
            raise ValueError(f"relevant has {rel.shape[0]} rows but recommended has {n_rows}")
        rel = rel.copy()
        rel.sum_duplicates()
        rel.sort_indices()
        return rel
    if not isinstance(relevant, Sequence | np.ndarray):
        raise ValueError("relevant must be a scipy.sparse matrix or a sequence of index arrays")
    if len(relevant) != n_rows:
        raise ValueError(f"relevant has {len(relevant)} rows but recommended has {n_rows}")
    rows = [_index_row(r, f"relevant[{pos}]") for pos, r in enumerate(relevant)]
    lengths = np.array([r.shape[0] for r in rows], dtype=np.int64)
    indices = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    if indices.size and indices.min() < 0:
        raise ValueError("relevant item indices must be >= 0")
    width = int(indices.max()) + 1 if indices.size else 0
    width = max(width, n_items or 0)
    indptr = np.concatenate(([0], np.cumsum(lengths)))
    return sp.csr_matrix((np.ones(indices.shape[0]), indices, indptr), shape=(n_rows, width))


def _index_row(values: Any, name: str) -> np.ndarray:
    """One row of item indices as sorted unique int64 (refusing what would wrap)."""
    try:
        arr = np.asarray(values)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name} must be a 1-D array of item indices: {exc}") from None
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer item indices, got dtype {arr.dtype}")
    if arr.dtype.kind == "u" and arr.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name} holds {arr.max()}, which is not an item index")
    return np.unique(arr.astype(np.int64).ravel())


def _hits(
    recommended: Any, relevant: Any, k: int | None, short_lists: bool = False
) -> tuple[np.ndarray, np.ndarray, int]:
    """(hits (n, min(k, width)) bool, n_relevant (n,), k) for the top-k lists.

    ``short_lists``: lists narrower than ``k`` are allowed, their missing
    slots empty (``evaluate`` with ``k`` above the number of items).
    """
    rec = np.asarray(recommended)
    if rec.ndim != 2:
        raise ValueError(f"recommended must be 2-D (n_users, k), got shape {rec.shape}")
    if rec.dtype.kind not in "iu":
        raise ValueError(f"recommended must hold integer item indices, got dtype {rec.dtype}")
    if k is None:
        k = rec.shape[1]
    k = check_int(k, "k", 1)
    if k > rec.shape[1] and not short_lists:
        raise ValueError(f"k={k} is larger than the lists in recommended ({rec.shape[1]})")
    rec = rec[:, : min(k, rec.shape[1])]
    if rec.dtype.kind == "u" and rec.size and rec.max() > np.iinfo(np.int64).max:
        pos = np.unravel_index(int(np.argmax(rec > np.iinfo(np.int64).max)), rec.shape)
        raise ValueError(f"recommended[{pos[0]}, {pos[1]}] = {rec[pos]} is not an item index")
    rec = _first_occurrences(rec.astype(np.int64))
    n = rec.shape[0]
    rel = _relevant_csr(relevant, n, int(rec.max(initial=-1)) + 1)
    n_items = max(rel.shape[1], int(rec.max(initial=-1)) + 1, 1)
    rel_keys = np.repeat(np.arange(n, dtype=np.int64), np.diff(rel.indptr)) * n_items + rel.indices
    keys = np.arange(n, dtype=np.int64)[:, None] * n_items + rec
    pos = np.searchsorted(rel_keys, keys)
    pos = np.minimum(pos, max(rel_keys.shape[0] - 1, 0))
    hits = (rec >= 0) & (rel_keys.shape[0] > 0)
    if rel_keys.shape[0]:
        hits &= rel_keys[pos] == keys
    return hits, np.diff(rel.indptr).astype(np.int64), k


def _first_occurrences(rec: np.ndarray) -> np.ndarray:
    """``rec`` with every repeat of an item within its row replaced by -1 (empty)."""
    if rec.shape[1] < 2 or rec.size == 0:
        return rec
    order = np.argsort(rec, axis=1, kind="stable")  # equal items: earliest position first
    srt = np.take_along_axis(rec, order, axis=1)
    later = np.zeros(rec.shape, dtype=bool)
    later[:, 1:] = (srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)
    if not later.any():
        return rec
    out = rec.copy()
    rows = np.broadcast_to(np.arange(rec.shape[0])[:, None], rec.shape)
    out[rows[later], order[later]] = -1
    return out


def _average(per_user: np.ndarray, n_rel: np.ndarray, return_per_user: bool):
    per_user = np.where(n_rel > 0, per_user, np.nan)
    if return_per_user:
        return per_user
    valid = n_rel > 0
    return float(per_user[valid].mean()) if valid.any() else float("nan")


def ranking_metrics(
    recommended: Any, relevant: Any, k: int | None = None, n_relevant: Any = None
) -> dict[str, np.ndarray]:
    """Per-user precision, recall, ndcg, map, hit_rate and mrr at ``k`` in one pass.

    ``n_relevant`` overrides the size of each relevant set (e.g. to count
    relevant items that cannot be recommended at all); default: as given.
    """
    return _ranking(recommended, relevant, k, n_relevant)


def _ranking(
    recommended: Any, relevant: Any, k: int | None, n_relevant: Any, short_lists: bool = False
) -> dict[str, np.ndarray]:
    hits, n_rel, kk = _hits(recommended, relevant, k, short_lists)
    if n_relevant is not None:
        n_rel = np.asarray(n_relevant, dtype=np.int64)
        if n_rel.shape != (hits.shape[0],):
            raise ValueError(f"n_relevant must have shape ({hits.shape[0]},), got {n_rel.shape}")
        if n_rel.size and n_rel.min() < 0:
            raise ValueError(f"n_relevant must be >= 0: found {int(n_rel.min())}")
    h = hits.astype(np.float64)
    n_hits = h.sum(axis=1)
    ranks = np.arange(1, h.shape[1] + 1, dtype=np.float64)
    discounts = 1.0 / np.log2(ranks + 1.0)
    # the ideal list has min(|R|, k) hits (k may exceed the lists' width: no allocation of k)
    n_ideal = np.minimum(n_rel, min(kk, 2**62))  # (k may be any Python int)
    ideal_ranks = np.arange(1, int(n_ideal.max(initial=0)) + 1, dtype=np.float64)
    ideal = np.concatenate(([0.0], np.cumsum(1.0 / np.log2(ideal_ranks + 1.0))))[n_ideal]
    cum_hits = np.cumsum(h, axis=1)
    first = np.where(hits.any(axis=1), np.argmax(hits, axis=1) + 1, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {
            "precision": n_hits / kk,
            "recall": n_hits / n_rel,
            "ndcg": (h * discounts).sum(axis=1) / ideal,
            "map": (h * cum_hits / ranks).sum(axis=1) / n_ideal,
            "hit_rate": (n_hits > 0).astype(np.float64),
            "mrr": np.where(first > 0, 1.0 / np.maximum(first, 1), 0.0),
        }
    return {name: np.where(n_rel > 0, v, np.nan) for name, v in out.items()}


def _one(name: str):
    def metric(recommended: Any, relevant: Any, k: int | None = None, per_user: bool = False):
        values = ranking_metrics(recommended, relevant, k)[name]
        if per_user:
            return values
        valid = ~np.isnan(values)
        return float(values[valid].mean()) if valid.any() else float("nan")

    metric.__name__ = f"{name}_at_k"
    metric.__doc__ = (
        f"Mean {name}@k over rows with at least one relevant item (see module docstring).\n\n"
        "Parameters\n----------\nrecommended : int array (n_users, >= k), -1 = empty slot\n"
        "relevant : scipy.sparse (n_users, n_items) or sequence of index arrays\n"
        "k : int, default all columns of ``recommended``\nper_user : bool\n"
        "    Return the per-row values (NaN for rows without relevant items)."
    )
    return metric


precision_at_k = _one("precision")
recall_at_k = _one("recall")
ndcg_at_k = _one("ndcg")
map_at_k = _one("map")
hit_rate_at_k = _one("hit_rate")
mrr_at_k = _one("mrr")


def auc(scores: Any, relevant: Any, exclude: Any = None, per_user: bool = False):
    """Area under the ROC curve of each row's full ranking.

    The probability that a relevant item scores above a non-relevant one, ties
    counting one half, over items not in ``exclude`` (e.g. seen in training).

    Parameters
    ----------
    scores : array (n_users, n_items)
    relevant : scipy.sparse (n_users, n_items) or sequence of index arrays
    exclude : scipy.sparse (n_users, n_items), optional
    """
    from scipy.stats import rankdata

    s = as_float_array(scores, "scores", dtype=np.float64, ndim=2, finite=False)
    if np.isnan(s).any():
        raise ValueError("scores must not contain NaN")
    n, m = s.shape
    rel = _relevant_csr(relevant, n, m)
    if rel.shape[1] > m:
        raise ValueError(f"relevant refers to item {rel.shape[1] - 1} but scores have {m} columns")
    is_rel = np.zeros((n, m), dtype=bool)
    is_rel[np.repeat(np.arange(n), np.diff(rel.indptr)), rel.indices] = True
    keep = np.ones((n, m), dtype=bool)
    if exclude is not None:
        ex = sp.csr_matrix(exclude)
        if ex.shape != (n, m):
            raise ValueError(f"exclude must have shape {(n, m)}, got {ex.shape}")
        keep[np.repeat(np.arange(n), np.diff(ex.indptr)), ex.indices] = False
        keep |= is_rel  # a held-out item is never excluded
    s = np.where(keep, s, -np.inf)
    ranks = rankdata(s, axis=1)  # average ranks: ties count one half
    n_pos = (is_rel & keep).sum(axis=1)
    n_neg = keep.sum(axis=1) - n_pos
    excluded = m - keep.sum(axis=1)  # excluded items take the lowest ranks
    pos_rank_sum = np.where(is_rel & keep, ranks - excluded[:, None], 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = (pos_rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    values = np.where((n_pos > 0) & (n_neg > 0), values, np.nan)
    if per_user:
        return values
    valid = ~np.isnan(values)
    return float(values[valid].mean()) if valid.any() else float("nan")


def coverage(recommended: Any, n_items: int) -> float:
    """Catalogue coverage: distinct recommended items / ``n_items`` (-1 slots ignored).

    ``recommended`` holds item indices in ``[0, n_items)``, -1 for an empty
    slot; any other value raises ``ValueError`` naming its position.
    """
    n_items = check_int(n_items, "n_items", 1)
    rec = _check_recommended(recommended, n_items, ndim=None)
    items = np.unique(rec[rec >= 0])
    return float(items.size / n_items)


# ---------------------------------------------------------------------------
# Beyond accuracy: diversity, novelty, concentration
# ---------------------------------------------------------------------------


def _check_recommended(recommended: Any, n_items: int, ndim: int | None = 2) -> np.ndarray:
    """``recommended`` as int64, checked: integers in [-1, n_items) (-1 = empty slot)."""
    rec = np.asarray(recommended)
    if ndim is not None and rec.ndim != ndim:
        raise ValueError(f"recommended must be 2-D (n_users, k), got shape {rec.shape}")
    if rec.dtype.kind not in "iu":
        raise ValueError(f"recommended must hold integer item indices, got dtype {rec.dtype}")
    bad = (rec < -1) | (rec >= n_items)
    if bad.any():
        flat = int(np.argmax(bad.ravel()))
        raise ValueError(
            f"recommended holds item {rec.ravel()[flat]} at position "
            f"{fmt_pos(rec.shape, flat)}: item indices must be in [0, {n_items}) "
            "(-1 marks an empty slot)"
        )
    return rec.astype(np.int64, copy=False)


def _mean_or_per_user(values: np.ndarray, per_user: bool):
    if per_user:
        return values
    valid = ~np.isnan(values)
    return float(values[valid].mean()) if valid.any() else float("nan")


def _list_indicator(rec: np.ndarray, n_items: int) -> sp.csr_matrix:
    """(n_users, n_items) CSR with a 1 for every item of each list."""
    rows, cols = np.nonzero(rec >= 0)
    return sp.csr_matrix(
        (np.ones(rows.shape[0]), (rows, rec[rows, cols])), shape=(rec.shape[0], n_items)
    )


def intra_list_diversity(recommended: Any, item_similarity: Any, per_user: bool = False):
    """Intra-list diversity: the mean dissimilarity of the pairs of items in each list.

    For a list L of m >= 2 distinct items (its -1 slots left out)::

        ILD(L) = 1 / (m (m - 1)) * sum over i != j in L of (1 - S[i, j])

    the mean of ``1 - S[i, j]`` over the ordered pairs, i.e. over the
    unordered pairs of ``1 - (S[i, j] + S[j, i]) / 2`` (Ziegler et al.,
    "Improving recommendation lists through topic diversification", WWW 2005,
    with similarity turned into dissimilarity). Missing entries
    of ``S`` count 0, so an item pair that a top-k similarity does not keep
    counts as fully dissimilar; repeated entries add up (as in scipy); the
    diagonal is never used. The result is the
    mean over the lists with at least two items.

    Parameters
    ----------
    recommended : int array (n_users, k) of item indices, -1 = empty slot
        No item may appear twice in a list.
    item_similarity : scipy.sparse matrix (n_items, n_items), or Interactions
        ``S``, e.g. ``fr.similarity(train, kind="cosine", axis="items", k=...)``.
        An ``Interactions`` (users x items) stands for the exact cosine
        similarity of its item columns, with nothing truncated: ``x_i . x_j /
        (||x_i|| ||x_j||)`` over the stored values (as ``fr.similarity(...,
        kind="cosine")`` with ``k`` = every item); an item without entries has
        similarity 0 to every other. It is computed for the listed pairs only,
        never as an n_items x n_items matrix.
    per_user : bool
        Return the value of each list; NaN for lists of fewer than two items.

    Degenerate cases: a list with 0 or 1 items has no pair (NaN, left out of
    the mean); the mean over no such list is NaN. Negative similarities give
    dissimilarities above 1 (up to 2).
    """
    rec = np.asarray(recommended)
    if isinstance(item_similarity, Interactions):
        matrix = item_similarity.matrix
        n_items = matrix.shape[1]
        rec = _check_recommended(rec, n_items)
    else:
        sim = check_item_similarity(item_similarity, dtype=np.float64)
        n_items = sim.shape[0]
        rec = _check_recommended(rec, n_items)
    _check_distinct(rec)
    lists = _list_indicator(rec, n_items)
    m = np.diff(lists.indptr).astype(np.float64)
    if isinstance(item_similarity, Interactions):
        pair_sum = _cosine_pair_sums(rec, matrix)
    else:
        # sum_{i, j in L} S[i, j] = sum_{j in L} (1_L @ S)[j], minus the diagonal
        through = lists @ sim
        pair_sum = np.asarray(through.multiply(lists).sum(axis=1)).ravel()
        pair_sum -= lists @ sim.diagonal()
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(m >= 2, 1.0 - pair_sum / (m * (m - 1)), np.nan)
    return _mean_or_per_user(values, per_user)


#: Entries of one dense block of the Gram matrix in ``_cosine_pair_sums`` (32 MiB).
_GRAM_BLOCK = 1 << 22


def _cosine_pair_sums(rec: np.ndarray, matrix: sp.spmatrix) -> np.ndarray:
    """Per list, the sum of cos(i, j) over its ordered pairs i != j.

    Only the items that appear in the lists are compared: their unit columns
    ``U`` (users x distinct items) give the Gram matrix ``U.T @ U``, built a
    block of rows at a time as a dense array of at most ``_GRAM_BLOCK``
    entries, and each list pair is read from it. The cost is that of the products, about
    ``sum over users of (their number of listed items)**2``, never a pass
    over every listed item's full column per list.
    """
    n_rows, k = rec.shape
    pair_sum = np.zeros(n_rows)
    valid = rec >= 0
    items, local_flat = np.unique(rec[valid], return_inverse=True)
    if items.size == 0 or k < 2:
        return pair_sum
    local = np.full(rec.shape, -1, dtype=np.int64)
    local[valid] = local_flat.ravel()
    cols = sp.csc_matrix(matrix, dtype=np.float64)[:, items]
    norms = np.sqrt(np.asarray(cols.multiply(cols).sum(axis=0)).ravel())
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    unit = sp.csc_matrix(cols @ sp.diags(inv))  # users x distinct items, unit columns
    unit_t = sp.csr_matrix(unit.T)
    a_pos, b_pos = np.triu_indices(k, 1)
    first, second = local[:, a_pos], local[:, b_pos]  # (n_rows, pairs): unordered pairs
    both = (first >= 0) & (second >= 0)
    block = max(1, _GRAM_BLOCK // items.size)
    for start in range(0, items.size, block):
        gram = (unit_t[start : start + block] @ unit).toarray()
        sel = both & (first >= start) & (first < start + block)
        rows_sel = np.nonzero(sel)[0]
        if rows_sel.size == 0:
            continue
        values = gram[first[sel] - start, second[sel]]
        # cos is symmetric: each unordered pair counts twice
        pair_sum += 2.0 * np.bincount(rows_sel, weights=values, minlength=n_rows)
    return pair_sum


def _check_distinct(rec: np.ndarray) -> None:
    if rec.shape[1] < 2:
        return
    srt = np.sort(rec, axis=1)
    rep = (srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)
    if rep.any():
        row = int(np.argmax(rep.any(axis=1)))
        item = int(srt[row, 1:][rep[row]][0])
        where = np.flatnonzero(rec[row] == item)[:2]
        raise ValueError(
            f"recommended holds item {item} twice in row {row} (positions ({row}, "
            f"{where[0]}) and ({row}, {where[1]})): a list has distinct items"
        )


def novelty(recommended: Any, popularity: Any, per_user: bool = False):
    """Mean self-information of the recommended items, in bits.

    For a list L (its -1 slots left out)::

        novelty(L) = mean over i in L of -log2 p_i

    with ``p_i`` the popularity share of item ``i``: the fraction of the
    training users who interacted with it (Zhou et al., "Solving the apparent
    diversity-accuracy dilemma of recommender systems", PNAS 2010). A
    list of items every user knows scores 0; an item known to one user of
    ``U`` scores ``log2 U``. The result is the mean over non-empty lists.

    Parameters
    ----------
    recommended : int array (n_users, k) of item indices, -1 = empty slot
    popularity : Interactions or scipy.sparse matrix (n_users, n_items), or 1-D array
        The training data, from which ``p_i = max(n_i, 1) / n_users`` with
        ``n_i`` the number of users with a stored entry for item ``i``
        (whatever its value): an item without training entries counts as
        known to one user, so its novelty is the finite ``log2 n_users``.
        Or the shares ``p_i`` themselves, one per item, each in (0, 1].
    per_user : bool
        Return the value of each list; NaN for an empty list.
    """
    if isinstance(popularity, Interactions):
        popularity = popularity.matrix
    if sp.issparse(popularity):
        if popularity.ndim != 2 or popularity.shape[0] < 1:
            raise ValueError(
                f"popularity must be a (n_users, n_items) matrix with n_users >= 1, "
                f"got shape {popularity.shape}"
            )
        counts = np.diff(sp.csc_matrix(popularity).indptr).astype(np.float64)
        share = np.maximum(counts, 1.0) / popularity.shape[0]
    else:
        share = as_float_array(popularity, "popularity", dtype=np.float64, ndim=1)
        bad = (share <= 0) | (share > 1)
        if bad.any():
            pos = int(np.argmax(bad))
            raise ValueError(
                f"popularity shares must be in (0, 1]: found {share[pos]} at position {pos}"
            )
    rec = _check_recommended(recommended, share.shape[0])
    valid = rec >= 0
    info = np.where(valid, -np.log2(share[np.where(valid, rec, 0)]), 0.0)
    m = valid.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(m > 0, info.sum(axis=1) / m, np.nan)
    return _mean_or_per_user(values, per_user)


def gini(recommended: Any, n_items: int) -> float:
    """Gini index of how often each catalogue item is recommended.

    With ``c_1 <= ... <= c_n`` the number of times each of the ``n =
    n_items`` items appears in all the lists together (-1 slots left out;
    never-recommended items count 0)::

        gini = sum_k (2k - n - 1) c_k / ((n - 1) sum_k c_k)

    0 when every item is recommended equally often, 1 when one item takes
    every slot (the normalised form of Castells, Hurley and Vargas,
    "Novelty and diversity in recommender systems", Recommender Systems
    Handbook, 2nd ed., 2015). NaN when no item is recommended;
    0 for a catalogue of one item.

    Parameters
    ----------
    recommended : int array (n_users, k) of item indices, -1 = empty slot
    n_items : int >= 1
    """
    n_items = check_int(n_items, "n_items", 1)
    rec = _check_recommended(recommended, n_items)
    counts = np.sort(np.bincount(rec[rec >= 0], minlength=n_items)).astype(np.float64)
    total = counts.sum()
    if total == 0:
        return float("nan")
    if n_items == 1:
        return 0.0
    k = np.arange(1, n_items + 1, dtype=np.float64)
    return float(((2 * k - n_items - 1) * counts).sum() / ((n_items - 1) * total))
