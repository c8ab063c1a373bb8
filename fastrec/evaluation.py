"""``evaluate``: the standard offline protocol, for any model that recommends.

The model protocol
------------------
``fr.evaluate`` needs one method of the model and uses three more when they
exist. Every fastrec model has all four; an object of another library (or
your own) needs only ``recommend``.

``recommend(user_ids, n=n, exclude_seen=exclude_seen) -> (ids, scores)``
    Required. ``user_ids`` is a 1-D NumPy array of raw user ids (train's ids;
    a test user that train lacks comes with its id in test). ``ids`` and
    ``scores`` are array-likes of shape ``(len(user_ids), w)`` with
    ``w <= n``: row ``r`` is the list for ``user_ids[r]``, best first, of raw
    item ids of train. A list shorter than ``w`` is padded with ``None``, or
    with ``-1`` when -1 is not one of train's item ids (fastrec's
    convention); padded slots are empty and their scores are ignored.
    ``scores`` must be real numbers without NaN (``-inf`` is allowed). With
    ``exclude_seen=True`` no list may hold an item the user has in train.
    A model that cannot score a user (a user unknown to train) decides what
    to return; fastrec models return the most popular training items.
``predict(user_ids, item_ids) -> (m,) array``
    Needed for "rmse" and "mae": the predicted rating of each pair of raw
    ids (the test entries, including ids that train lacks).
``score_items(user_ids) -> (m, n_items) array``
    Optional, for "auc": the score of every item of train, columns in the
    order of ``train.item_ids``. Without it, "auc" asks ``recommend`` for
    lists of every item (``n = train.n_items``) and ranks the items missing
    from a list below all listed ones.
``fitted_on(train) -> bool`` and ``fit(train)``
    Optional. With ``fit=None`` (the default) a model is fitted on ``train``
    when ``fitted_on(train)`` is False; an object without ``fitted_on`` is
    taken as already fitted. ``fit=True`` calls ``fit(train)``.

A model that breaks the protocol gets a ``TypeError`` (a missing method, a
result that is not a pair of arrays) or a ``ValueError`` (wrong shapes, NaN,
an id that is not an item of train, a seen item in a list) naming the method,
the user and the position.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from . import metrics as M
from ._validation import check_int
from .data import Interactions

__all__ = ["evaluate", "RANKING_METRICS"]

RANKING_METRICS = ("precision", "recall", "ndcg", "map", "hit_rate", "mrr")
#: Measures of the top-k lists alone (no relevance): see ``fastrec.metrics``.
LIST_METRICS = ("coverage", "diversity", "novelty", "gini")
RATING_METRICS = ("rmse", "mae")
_ALL = RANKING_METRICS + ("auc", "coverage", "rmse", "mae", "diversity", "novelty", "gini")


def evaluate(
    model: Any,
    train: Interactions,
    test: Interactions,
    metrics: Sequence[str] = ("precision", "recall", "ndcg", "map", "hit_rate"),
    k: int = 10,
    fit: bool | None = None,
    relevance_threshold: float | None = None,
    exclude_seen: bool = True,
    batch_size: int = 4096,
    item_similarity: Any = None,
) -> dict[str, float]:
    """Evaluate ``model`` on ``test`` after training on ``train``.

    Full ranking: for every user with test entries the model ranks all items,
    the items the user has in ``train`` excluded (``exclude_seen``), and the
    top ``k`` are compared with the user's test items. Users without training
    data are kept and get the model's fallback (fastrec models: the most
    popular items).

    Parameters
    ----------
    model : a fastrec model, or any object with
        ``recommend(user_ids, n=..., exclude_seen=...) -> (ids, scores)`` on
        raw ids (and ``predict(user_ids, item_ids)`` for "rmse" / "mae"):
        the protocol is in the docstring of :mod:`fastrec.evaluation` and in
        ``docs/api.md``.
    train, test : Interactions
        Ideally from ``fastrec.split`` (shared vocabularies). Otherwise test
        ids are mapped through train's vocabularies; test items unknown to
        train still count in each user's relevant set (they cannot be hit).
    metrics : names among "precision", "recall", "ndcg", "map", "hit_rate",
        "mrr", "auc", "coverage", "rmse", "mae" (these two on the test
        ratings through ``model.predict``), and on the top-k lists alone
        "diversity" (``metrics.intra_list_diversity``), "novelty"
        (``metrics.novelty``, popularity shares from train) and "gini"
        (``metrics.gini`` over train's items). The list measures are over the
        lists of the same test users.
    k : cutoff of the ranking metrics. Lists are asked for
        ``min(k, train.n_items)`` items (precision@k still divides by ``k``).
    fit : None (default) fits ``model`` on ``train`` unless it is already
        fitted on exactly this data (``model.fitted_on(train)``; an object
        without that method is taken as fitted); True always fits
        (``model.fit(train)``); False never does.
    relevance_threshold : only test entries rated at least this are relevant
        for the ranking metrics (None: every test entry is).
    exclude_seen : passed to ``model.recommend``; when True, a list holding
        an item the user has in train is a ``ValueError``.
    batch_size : users per ``recommend`` call.
    item_similarity : the item x item similarity of "diversity": a
        scipy.sparse (n_items, n_items) matrix over train's items, e.g.
        ``fr.similarity(train, kind="cosine", axis="items", k=100)``, or an
        Interactions. Default (None): the exact cosine similarity of train's
        item columns (``intra_list_diversity(recommended, train)``: every
        pair, nothing truncated).

    Returns
    -------
    dict metric name -> float (means over test users), plus "n_users", the
    number of test users ranked.

    Raises
    ------
    TypeError
        ``model`` lacks a method the requested metrics need, or a method
        returns something of the wrong kind.
    ValueError
        Bad arguments, or a model result of the wrong shape, with NaN, or
        with an item id that is not an item of train (the message names the
        user and the position).
    """
    for name, data in (("train", train), ("test", test)):
        if not isinstance(data, Interactions):
            raise ValueError(f"{name} must be a fastrec.Interactions, got {type(data).__name__}")
    metrics = tuple(metrics)
    for pos, m in enumerate(metrics):
        if m not in _ALL:
            raise ValueError(f"metrics[{pos}] = {m!r} is not one of {_ALL}")
    _require(model, "recommend", "(user_ids, n=..., exclude_seen=...) -> (ids, scores)")
    if any(m in RATING_METRICS for m in metrics):
        wanted = ", ".join(repr(m) for m in metrics if m in RATING_METRICS)
        _require(model, "predict", f"(user_ids, item_ids), which {wanted} need")
    k = check_int(k, "k", 1)
    batch_size = check_int(batch_size, "batch_size", 1)
    if fit is None:
        fitted_on = getattr(model, "fitted_on", None)
        fit = callable(fitted_on) and not fitted_on(train)
    if fit:
        _require(model, "fit", "(train), which fit=True needs")
        model.fit(train)

    # test entries in train's index space
    t_users, t_items, t_ratings, _ = test.to_arrays()
    raw_users = test.user_ids[t_users]
    raw_items = test.item_ids[t_items]
    if not test.same_vocabulary(train):
        t_users = train.user_index(raw_users)
        t_items = train.item_index(raw_items)
        if (t_users < 0).any():
            # users unknown to train: indices past the end, one per raw id
            raw = raw_users[t_users < 0]
            _, inv = np.unique(raw, return_inverse=True)
            t_users = t_users.copy()
            t_users[t_users < 0] = -1 - inv.ravel()
    t_users = np.asarray(t_users, dtype=np.int64)
    t_items = np.asarray(t_items, dtype=np.int64)
    n_items = train.n_items
    results: dict[str, float] = {}

    if any(m in RATING_METRICS for m in metrics):
        pred = _checked_predictions(model.predict(raw_users, raw_items), raw_users.shape[0])
        if "rmse" in metrics:
            results["rmse"] = M.rmse(t_ratings, pred)
        if "mae" in metrics:
            results["mae"] = M.mae(t_ratings, pred)

    ranking = [m for m in metrics if m in RANKING_METRICS + ("auc",) + LIST_METRICS]
    if ranking:
        relevant = np.ones(t_users.shape[0], dtype=bool)
        if relevance_threshold is not None:
            relevant = t_ratings >= relevance_threshold
        ru, ri = t_users[relevant], t_items[relevant]
        users, first, inverse = np.unique(ru, return_index=True, return_inverse=True)
        inverse = inverse.ravel()
        query_raw = raw_users[relevant][first]  # the raw id of each ranked user
        n_rel = np.bincount(inverse, minlength=users.shape[0])
        reachable = ri >= 0
        rel = sp.csr_matrix(
            (np.ones(int(reachable.sum())), (inverse[reachable], ri[reachable])),
            shape=(users.shape[0], n_items),
        )
        per_user: dict[str, list[np.ndarray]] = {m: [] for m in RANKING_METRICS}
        recs = []
        n = min(k, max(n_items, 1))  # longer lists could only hold padding
        for start in range(0, users.shape[0], batch_size):
            stop = start + batch_size
            idx, _ = _ranked(
                model, train, users[start:stop], query_raw[start:stop], n, exclude_seen
            )
            values = M._ranking(  # lists may be shorter than k (k > n_items): empty slots
                idx, rel[start:stop], k, n_rel[start:stop], True
            )
            for m in RANKING_METRICS:
                per_user[m].append(values[m])
            recs.append(idx)
        for m in RANKING_METRICS:
            if m in metrics:
                v = np.concatenate(per_user[m]) if per_user[m] else np.zeros(0)
                v = v[~np.isnan(v)]
                results[m] = float(v.mean()) if v.size else float("nan")
        if "coverage" in metrics:
            results["coverage"] = M.coverage(np.concatenate(recs), n_items)
        if "diversity" in metrics:
            sim = train if item_similarity is None else item_similarity
            results["diversity"] = M.intra_list_diversity(np.concatenate(recs), sim)
        if "novelty" in metrics:
            counts = np.bincount(train.matrix.indices, minlength=n_items).astype(np.int64)
            share = np.maximum(counts, 1) / max(train.n_users, 1)
            results["novelty"] = M.novelty(np.concatenate(recs), share)
        if "gini" in metrics:
            results["gini"] = M.gini(np.concatenate(recs), n_items)
        if "auc" in metrics:
            results["auc"] = _auc(model, train, users, query_raw, rel, exclude_seen, 512)
        results["n_users"] = int(users.shape[0])
    return {m: results[m] for m in metrics} | (
        {"n_users": results["n_users"]} if "n_users" in results else {}
    )


# ------------------------------------------------------------------ protocol
def _require(model: Any, method: str, usage: str) -> None:
    if not callable(getattr(model, method, None)):
        raise TypeError(
            f"model must have a method {method}{usage} (the evaluation protocol of "
            f"fastrec.evaluate); {type(model).__name__} has none"
        )


def _real_array(value: Any, what: str) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{what} must be an array of real numbers: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{what} must be an array of real numbers, got dtype {arr.dtype}")
    return arr


def _checked_predictions(pred: Any, n: int) -> np.ndarray:
    pred = _real_array(pred, "model.predict's result").astype(np.float64, copy=False)
    if pred.shape != (n,):
        raise ValueError(
            f"model.predict returned shape {pred.shape} for {n} (user, item) pairs; expected ({n},)"
        )
    bad = np.flatnonzero(~np.isfinite(pred))
    if bad.size:
        raise ValueError(
            f"model.predict returned {pred[bad[0]]} at position {bad[0]}: "
            "predictions must be finite"
        )
    return pred


def _plain(value: Any) -> Any:
    """A numpy scalar as the plain Python value (for readable messages)."""
    return value.item() if isinstance(value, np.generic) else value


def _padding(ids: np.ndarray, train: Interactions) -> np.ndarray:
    """Empty slots: None, or -1 when -1 is not an item id of train."""
    minus_one_free = train.item_index(np.array([-1]))[0] < 0
    if ids.dtype.kind == "O":
        return np.fromiter(
            (
                v is None
                or (
                    minus_one_free
                    and isinstance(v, numbers.Integral)
                    and not isinstance(v, bool)
                    and v == -1
                )
                for v in ids.tolist()
            ),
            dtype=bool,
            count=ids.size,
        )
    if ids.dtype.kind in "iu" and minus_one_free:
        return ids == -1
    return np.zeros(ids.shape, dtype=bool)


def _recommend(
    model: Any, train: Interactions, raw: np.ndarray, n: int, exclude_seen: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``model.recommend`` checked against the protocol: (item indices of train, scores)."""
    out = model.recommend(raw, n=n, exclude_seen=exclude_seen)
    if not isinstance(out, tuple | list) or len(out) != 2:
        raise TypeError(
            f"model.recommend must return a pair (ids, scores), got {type(out).__name__}"
        )
    try:
        ids = np.asarray(out[0])
    except Exception as exc:
        raise TypeError(f"model.recommend's ids must be an array: {exc}") from None
    scores = _real_array(out[1], "model.recommend's scores")
    m = raw.shape[0]
    if ids.ndim != 2 or ids.shape[0] != m or ids.shape[1] > n:
        raise ValueError(
            f"model.recommend returned ids of shape {ids.shape} for {m} users and n={n}; "
            f"expected ({m}, w) with w <= {n}: one row per user, best first"
        )
    if scores.shape != ids.shape:
        raise ValueError(
            f"model.recommend returned scores of shape {scores.shape} beside ids of shape "
            f"{ids.shape}; they must match"
        )
    if scores.dtype.kind == "f" and np.isnan(scores).any():
        r, c = np.argwhere(np.isnan(scores))[0]
        raise ValueError(
            f"model.recommend returned a NaN score for user {_plain(raw[r])!r} at position {c}"
        )
    flat = ids.ravel()
    pad = _padding(flat, train)
    idx = np.full(flat.shape[0], -1, dtype=np.int64)
    if (~pad).any():
        try:
            idx[~pad] = train.item_index(flat[~pad])
        except (TypeError, ValueError):
            idx[~pad] = -1  # ids of a kind train cannot hold: reported below
        unknown = np.flatnonzero((idx < 0) & ~pad)
        if unknown.size:
            r, c = divmod(int(unknown[0]), max(ids.shape[1], 1))
            raise ValueError(
                f"model.recommend returned item id {_plain(flat[unknown[0]])!r} for user "
                f"{_plain(raw[r])!r} "
                f"(row {r}, position {c}), which is not an item of train"
            )
    return idx.reshape(ids.shape), scores


def _check_unseen(idx: np.ndarray, users: np.ndarray, raw: np.ndarray, train: Interactions):
    """With exclude_seen, no list may hold an item its user has in train."""
    known = np.flatnonzero(users >= 0)
    if known.size == 0 or idx.size == 0:
        return
    seen = train.matrix[users[known]]
    width = idx.shape[1]
    rows = np.repeat(known, width)
    cols = idx[known].ravel()
    ok = cols >= 0
    key = rows[ok] * train.n_items + cols[ok]
    # row-major keys of the seen entries: sorted (rows ascending, indices sorted in a row)
    seen_key = (
        np.repeat(known, np.diff(seen.indptr)).astype(np.int64) * train.n_items + seen.indices
    )
    if seen_key.size == 0:
        return
    pos = np.minimum(np.searchsorted(seen_key, key), seen_key.size - 1)
    hit = seen_key[pos] == key
    if hit.any():
        pos = np.flatnonzero(ok)[np.argmax(hit)]
        r, c = divmod(int(pos), width)
        r = int(known[r])
        raise ValueError(
            f"model.recommend(..., exclude_seen=True) returned item "
            f"{_plain(train.item_ids[idx[r, c]])!r} for user {_plain(raw[r])!r} "
            f"(row {r}, position {c}), which the user has in train"
        )


def _ranked(
    model: Any,
    train: Interactions,
    users: np.ndarray,
    raw: np.ndarray,
    n: int,
    exclude_seen: bool,
) -> tuple[np.ndarray, np.ndarray]:
    idx, scores = _recommend(model, train, raw, n, exclude_seen)
    if exclude_seen:
        _check_unseen(idx, users, raw, train)
    return idx, scores


def _auc(
    model: Any,
    train: Interactions,
    users: np.ndarray,
    raw: np.ndarray,
    rel: sp.csr_matrix,
    exclude_seen: bool,
    batch_size: int,
) -> float:
    values = []
    n_items = train.n_items
    score_items = getattr(model, "score_items", None)
    for start in range(0, users.shape[0], batch_size):
        q = users[start : start + batch_size]
        q_raw = raw[start : start + batch_size]
        if callable(score_items):
            scores = _real_array(score_items(q_raw), "model.score_items's result")
            if scores.shape != (q.shape[0], n_items):
                raise ValueError(
                    f"model.score_items returned shape {scores.shape} for {q.shape[0]} users; "
                    f"expected ({q.shape[0]}, {n_items}): a column per item of train"
                )
            if scores.dtype.kind == "f" and np.isnan(scores).any():
                r, c = np.argwhere(np.isnan(scores))[0]
                raise ValueError(
                    f"model.score_items returned NaN for user {_plain(q_raw[r])!r} and item "
                    f"{_plain(train.item_ids[c])!r} (column {c})"
                )
        else:  # every item from recommend; items missing from a list rank last
            idx, val = _ranked(model, train, q, q_raw, max(n_items, 1), exclude_seen)
            scores = np.full((q.shape[0], n_items), -np.inf)
            rows = np.repeat(np.arange(q.shape[0]), idx.shape[1])
            cols, val = idx.ravel(), val.ravel().astype(np.float64)
            ok = cols >= 0
            # reversed, so that an item listed twice keeps its first (best) score
            scores[rows[ok][::-1], cols[ok][::-1]] = val[ok][::-1]
        exclude = None
        if exclude_seen:
            known = q >= 0
            exclude = train.matrix[np.where(known, q, 0)].multiply(known[:, None]).tocsr()
        values.append(M.auc(scores, rel[start : start + batch_size], exclude, per_user=True))
    v = np.concatenate(values) if values else np.zeros(0)
    v = v[~np.isnan(v)]
    return float(v.mean()) if v.size else float("nan")
