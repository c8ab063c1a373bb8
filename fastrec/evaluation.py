"""``evaluate``: the standard offline protocol through the model API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from . import metrics as M
from ._validation import check_int
from .data import Interactions
from .models.base import Recommender, fingerprint

__all__ = ["evaluate", "RANKING_METRICS"]

RANKING_METRICS = ("precision", "recall", "ndcg", "map", "hit_rate", "mrr")
#: Measures of the top-k lists alone (no relevance): see ``fastrec.metrics``.
LIST_METRICS = ("coverage", "diversity", "novelty", "gini")
_ALL = RANKING_METRICS + ("auc", "coverage", "rmse", "mae", "diversity", "novelty", "gini")


def evaluate(
    model: Recommender,
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
    data are kept and get the model's fallback (most popular items).

    Parameters
    ----------
    model : a fastrec model
    train, test : Interactions
        Ideally from ``fastrec.split`` (shared vocabularies). Otherwise test
        ids are mapped through train's vocabularies; test items unknown to
        train still count in each user's relevant set (they cannot be hit).
    metrics : names among "precision", "recall", "ndcg", "map", "hit_rate",
        "mrr", "auc", "coverage", "rmse", "mae" (these two on the test
        ratings through ``predict``), and on the top-k lists alone
        "diversity" (``metrics.intra_list_diversity``), "novelty"
        (``metrics.novelty``, popularity shares from the model's training
        data) and "gini" (``metrics.gini`` over the model's items). The list
        measures are over the lists of the same test users.
    k : cutoff of the ranking metrics.
    fit : None (default) fits ``model`` on ``train`` unless it is already
        fitted on exactly this data; True always fits; False never does.
    relevance_threshold : only test entries rated at least this are relevant
        for the ranking metrics (None: every test entry is).
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
    """
    if not isinstance(model, Recommender):
        raise ValueError(f"model must be a fastrec model, got {type(model).__name__}")
    for name, data in (("train", train), ("test", test)):
        if not isinstance(data, Interactions):
            raise ValueError(f"{name} must be a fastrec.Interactions, got {type(data).__name__}")
    metrics = tuple(metrics)
    for pos, m in enumerate(metrics):
        if m not in _ALL:
            raise ValueError(f"metrics[{pos}] = {m!r} is not one of {_ALL}")
    k = check_int(k, "k", 1)
    if fit is None:
        fit = not getattr(model, "_fitted", False) or model._train_fingerprint != fingerprint(train)
    if fit:
        model.fit(train)

    # test entries in the model's index space
    t_users, t_items, t_ratings, _ = test.to_arrays()
    if not test.same_vocabulary(train):
        t_users = train.user_index(test.user_ids[t_users])
        t_items = train.item_index(test.item_ids[t_items])
        if (t_users < 0).any():
            # users unknown to train: give them indices past the end; the
            # model treats any index it cannot score as a cold user
            raw = test.user_ids[test.entry_users()[t_users < 0]]
            _, inv = np.unique(raw, return_inverse=True)
            t_users = t_users.copy()
            t_users[t_users < 0] = -1 - inv.ravel()
    t_users = np.asarray(t_users, dtype=np.int64)
    t_items = np.asarray(t_items, dtype=np.int64)
    results: dict[str, float] = {}

    if "rmse" in metrics or "mae" in metrics:
        pred = model._predict_indices(np.where(t_users >= 0, t_users, -1), t_items)
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
        users, inverse = np.unique(ru, return_inverse=True)
        n_rel = np.bincount(inverse, minlength=users.shape[0])
        reachable = ri >= 0
        rel = sp.csr_matrix(
            (np.ones(int(reachable.sum())), (inverse[reachable], ri[reachable])),
            shape=(users.shape[0], model.n_items_),
        )
        query = np.where(users >= 0, users, -1)
        per_user: dict[str, list[np.ndarray]] = {m: [] for m in RANKING_METRICS}
        recs = []
        for start in range(0, users.shape[0], batch_size):
            q = query[start : start + batch_size]
            idx, _ = model._recommend_indices(
                q,
                min(k, max(model.n_items_, 1)),  # longer lists could only hold padding
                exclude_seen,
                getattr(model, "backend", "auto"),
                getattr(model, "num_threads", 0),
            )
            values = M._ranking(  # lists may be shorter than k (k > n_items): empty slots
                idx, rel[start : start + batch_size], k, n_rel[start : start + batch_size], True
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
            results["coverage"] = M.coverage(np.concatenate(recs), model.n_items_)
        if "diversity" in metrics:
            sim = train if item_similarity is None else item_similarity
            results["diversity"] = M.intra_list_diversity(np.concatenate(recs), sim)
        if "novelty" in metrics:
            share = np.maximum(model.item_count_, 1) / max(model.n_users_, 1)
            results["novelty"] = M.novelty(np.concatenate(recs), share)
        if "gini" in metrics:
            results["gini"] = M.gini(np.concatenate(recs), model.n_items_)
        if "auc" in metrics:
            results["auc"] = _auc(model, query, rel, exclude_seen, batch_size=512)
        results["n_users"] = int(users.shape[0])
    return {m: results[m] for m in metrics} | (
        {"n_users": results["n_users"]} if "n_users" in results else {}
    )


def _auc(
    model: Recommender, users: np.ndarray, rel: sp.csr_matrix, exclude_seen: bool, batch_size: int
) -> float:
    values = []
    pop = model.item_count_.astype(np.float32)
    for start in range(0, users.shape[0], batch_size):
        q = users[start : start + batch_size]
        warm = q >= 0
        warm[warm] = model.user_count_[q[warm]] > 0
        scores = np.tile(pop, (q.shape[0], 1))
        if warm.any():
            scores[warm] = model._score_users(q[warm].astype(np.int32))
        exclude = None
        if exclude_seen:
            rows = np.where(q >= 0, q, 0)
            exclude = model._seen[rows].multiply(warm[:, None]).tocsr()
        values.append(M.auc(scores, rel[start : start + batch_size], exclude, per_user=True))
    v = np.concatenate(values) if values else np.zeros(0)
    v = v[~np.isnan(v)]
    return float(v.mean()) if v.size else float("nan")
