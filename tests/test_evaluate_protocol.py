"""fr.evaluate's model protocol: fastrec models, foreign models and broken objects.

Every figure is checked against a direct computation from the model's public
methods (one user at a time), so the protocol gives the same numbers for a
fastrec model as for any other object that recommends the same lists.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastrec as fr

from .reference_core import ranking_reference

RANKING = ("precision", "recall", "ndcg", "map", "hit_rate", "mrr")


@pytest.fixture(scope="module")
def ml_split():
    """ml-latest-small 80/20; the test set cut to 77 users."""
    X = fr.datasets.movielens_small()
    train, test = fr.split.random_split(X, test_size=0.2, seed=0)
    users = test.entry_users()
    picked = np.isin(users, np.unique(users)[::8])
    return train, test.subset(picked)


def _test_sets(train, test, threshold=None):
    """Raw test users (sorted by train index) and each one's relevant train item indices."""
    users, items, ratings, _ = test.to_arrays()
    keep = np.ones(users.shape[0], bool) if threshold is None else ratings >= threshold
    order = np.unique(users[keep])
    rel = [items[keep][users[keep] == u] for u in order]
    return train.user_ids[order], rel


def _naive(model, train, test, k, threshold=None, auc_scores=None):
    """Metrics from model.recommend / model.predict, user by user."""
    raw_users, rel = _test_sets(train, test, threshold)
    lists, auc = [], []
    for user, r in zip(raw_users, rel):
        ids, _ = model.recommend(np.array([user]), n=k, exclude_seen=True)
        idx = [int(train.item_index(np.array([i]))[0]) if i is not None else -1 for i in ids[0]]
        lists.append(idx)
        if auc_scores is not None:
            s = auc_scores(user)
            neg = np.ones(train.n_items, bool)
            neg[train.matrix[train.user_index(np.array([user]))[0]].indices] = False
            neg[r] = False
            p, q = s[np.asarray(r)][:, None], s[neg][None, :]
            auc.append(((p > q).sum() + 0.5 * (p == q).sum()) / (p.size * q.size))
    ref = ranking_reference(lists, rel, k)
    out = {m: float(np.nanmean(ref[m])) for m in RANKING}
    if auc_scores is not None:
        out["auc"] = float(np.mean(auc))
    u, i, r, _ = test.to_arrays()
    pred = model.predict(test.user_ids[u], test.item_ids[i]) if hasattr(model, "predict") else None
    if pred is not None:
        out["rmse"] = float(np.sqrt(np.mean((r - pred) ** 2)))
        out["mae"] = float(np.mean(np.abs(r - pred)))
    return out


@pytest.mark.parametrize(
    "make",
    [
        lambda: fr.Popularity(),
        lambda: fr.ItemKNN(k=20),
        lambda: fr.ALS(factors=16, iterations=3, random_state=0),
    ],
    ids=["popularity", "itemknn", "als"],
)
def test_fastrec_models_match_a_direct_computation(ml_split, make):
    train, test = ml_split
    model = make().fit(train)

    def full_scores(user):  # the scores a fastrec model ranks, through its private hook
        uidx = train.user_index(np.array([user]))
        return model._score_users(uidx.astype(np.int32))[0].astype(np.float64)

    names = RANKING + ("auc", "rmse", "mae")
    got = fr.evaluate(model, train, test, metrics=names, k=10)
    want = _naive(model, train, test, 10, auc_scores=full_scores)
    for name in RANKING + ("rmse", "mae"):
        assert got[name] == pytest.approx(want[name], rel=1e-12, abs=1e-12), name
    # one user's scores here against blocks of users there: rounding may break a tie
    assert got["auc"] == pytest.approx(want["auc"], rel=1e-7)
    # score_items (the optional protocol method) is that hook, cold users aside
    some = train.user_ids[:7]
    np.testing.assert_array_equal(
        model.score_items(some), model._score_users(np.arange(7, dtype=np.int32))
    )
    assert model.fitted_on(train) and not model.fitted_on(test)


class PopularityRanker:
    """Another library's model: ranks by training count, raw ids in and out."""

    def __init__(self, pad_with=None):
        self.pad_with = pad_with

    def fit(self, X):
        self.items = X.item_ids
        counts = np.bincount(X.matrix.indices, minlength=X.n_items)
        self.order = np.argsort(-counts, kind="stable")
        self.counts = counts.astype(np.float64)
        self.seen = {u: set(X.matrix[i].indices) for i, u in enumerate(X.user_ids)}
        self.item_mean = np.asarray(X.matrix.sum(axis=0)).ravel() / np.maximum(counts, 1)
        self.position = {v: i for i, v in enumerate(X.item_ids.tolist())}
        return self

    def recommend(self, user_ids, n=10, exclude_seen=True):
        ids = np.empty((len(user_ids), n), dtype=object)
        scores = np.full((len(user_ids), n), -np.inf)
        for r, user in enumerate(user_ids):
            seen = self.seen.get(user, set()) if exclude_seen else set()
            picked = [i for i in self.order[: n + len(seen)] if i not in seen][:n]
            ids[r, : len(picked)] = self.items[picked]
            ids[r, len(picked) :] = self.pad_with
            scores[r, : len(picked)] = self.counts[picked]
        return ids, scores

    def predict(self, user_ids, item_ids):
        return np.array(
            [self.item_mean[self.position[i]] if i in self.position else 3.5 for i in item_ids]
        )


def test_a_foreign_model_is_evaluated_like_fastrec_popularity(ml_split):
    train, test = ml_split
    names = RANKING + ("auc", "coverage", "rmse", "mae")
    foreign = PopularityRanker().fit(train)
    got = fr.evaluate(foreign, train, test, metrics=names, k=10)  # not fitted again
    counts = foreign.counts
    want = _naive(foreign, train, test, 10, auc_scores=lambda user: counts)
    for name in RANKING + ("auc", "rmse", "mae"):
        assert got[name] == pytest.approx(want[name], rel=1e-12, abs=1e-12), name
    # the same lists as fr.Popularity (ties by index): the same ranking figures
    ours = fr.evaluate(fr.Popularity(), train, test, metrics=names[:-2], k=10)
    for name in names[:-2]:
        assert got[name] == pytest.approx(ours[name], rel=1e-12), name
    # lists longer than the catalogue's unseen items: padding (None or -1) is empty
    k = train.n_items
    few = fr.evaluate(foreign, train, test, metrics=("recall",), k=k)
    assert few["recall"] == pytest.approx(1.0)
    minus = PopularityRanker(pad_with=-1).fit(train)
    assert fr.evaluate(minus, train, test, metrics=("recall",), k=k) == few


def test_implicit_als_through_the_protocol(ml_split):
    implicit_als = pytest.importorskip(
        "implicit.cpu.als", reason="implicit (a [bench] extra) is not installed"
    )
    train, test = ml_split

    class ImplicitALS:
        def __init__(self, X):
            self.X = X
            self.model = implicit_als.AlternatingLeastSquares(
                factors=16, iterations=3, random_state=0, num_threads=1
            )
            self.model.fit(X.matrix.astype(np.float32), show_progress=False)

        def recommend(self, user_ids, n=10, exclude_seen=True):
            rows = self.X.user_index(user_ids)
            assert (rows >= 0).all()
            idx, scores = self.model.recommend(
                rows, self.X.matrix[rows], N=n, filter_already_liked_items=exclude_seen
            )
            ids = self.X.item_ids[idx].astype(object)
            ids[scores <= np.finfo(np.float32).min] = None  # filtered by implicit: empty slots
            return ids, scores

    foreign = ImplicitALS(train)
    got = fr.evaluate(foreign, train, test, metrics=RANKING + ("auc",), k=10)
    factors = (foreign.model.user_factors, foreign.model.item_factors)

    def scores(user):
        u = train.user_index(np.array([user]))[0]
        return (factors[1] @ factors[0][u]).astype(np.float64)

    want = _naive(foreign, train, test, 10, auc_scores=scores)
    for name in RANKING:
        assert got[name] == pytest.approx(want[name], rel=1e-12), name
    assert got["auc"] == pytest.approx(want["auc"], abs=1e-4)  # float32 ties aside
    assert got["precision"] > 0.1  # a real model, well above chance


# ------------------------------------------------------------- broken objects
@pytest.fixture(scope="module")
def tiny():
    X = fr.datasets.synthetic(40, 30, 400, seed=1)
    return fr.split.random_split(X, test_size=0.25, seed=0)


class Fixed:
    """Returns whatever it was given, to break the protocol in one way at a time."""

    def __init__(self, make):
        self.make = make

    def recommend(self, user_ids, n=10, exclude_seen=True):
        return self.make(user_ids, n)


def _good(train):
    def make(users, n):
        ids = np.tile(train.item_ids[:n], (len(users), 1))
        return ids, np.ones(ids.shape)

    return make


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda tr: lambda u, n: np.zeros((len(u), n)), TypeError, r"pair \(ids, scores\)"),
        (
            lambda tr: lambda u, n: (tr.item_ids[:n], np.ones(n)),
            ValueError,
            r"ids of shape \(\d+,\) for \d+ users and n=",
        ),
        (
            lambda tr: (
                lambda u, n: (
                    np.tile(tr.item_ids[: n + 1], (len(u), 1)),
                    np.ones((len(u), n + 1)),
                )
            ),
            ValueError,
            r"expected \(\d+, w\) with w <= ",
        ),
        (
            lambda tr: lambda u, n: (np.tile(tr.item_ids[:n], (len(u), 1)), np.ones((len(u), 1))),
            ValueError,
            "scores of shape",
        ),
        (
            lambda tr: (
                lambda u, n: (
                    np.tile(tr.item_ids[:n], (len(u), 1)),
                    np.full((len(u), n), "x"),
                )
            ),
            TypeError,
            "scores must be an array of real numbers",
        ),
        (
            lambda tr: (
                lambda u, n: (
                    np.tile(tr.item_ids[:n], (len(u), 1)),
                    np.full((len(u), n), np.nan),
                )
            ),
            ValueError,
            "NaN score for user",
        ),
        (
            lambda tr: lambda u, n: (np.full((len(u), n), 10**9), np.ones((len(u), n))),
            ValueError,
            r"item id 1000000000 for user .* \(row 0, position 0\), which is not an item of train",
        ),
        (
            lambda tr: lambda u, n: (np.full((len(u), n), "movie"), np.ones((len(u), n))),
            ValueError,
            "item id 'movie' for user",
        ),
    ],
    ids=["not-a-pair", "1-d", "too-long", "score-shape", "str-scores", "nan", "unknown", "str"],
)
def test_a_broken_recommend_is_named(tiny, make, error, message):
    train, test = tiny
    with pytest.raises(error, match=message):
        fr.evaluate(Fixed(make(train)), train, test, metrics=("precision",), k=5)


def test_missing_methods_and_seen_items_are_named(tiny):
    train, test = tiny
    with pytest.raises(TypeError, match=r"method recommend\(user_ids, n=.*object has none"):
        fr.evaluate(object(), train, test)
    model = Fixed(_good(train))
    with pytest.raises(TypeError, match=r"method predict\(user_ids, item_ids\), which 'rmse'"):
        fr.evaluate(model, train, test, metrics=("precision", "rmse"))
    with pytest.raises(TypeError, match=r"method fit\(train\), which fit=True needs"):
        fr.evaluate(model, train, test, fit=True)
    # the same first items for everyone: some user has one of them in train
    with pytest.raises(ValueError, match=r"exclude_seen=True\) returned item .* has in train"):
        fr.evaluate(model, train, test, metrics=("precision",), k=5)
    res = fr.evaluate(model, train, test, metrics=("precision",), k=5, exclude_seen=False)
    assert 0 <= res["precision"] <= 1

    class BadPredict(Fixed):
        def predict(self, users, items):
            return np.zeros(len(users) + 1)

    with pytest.raises(ValueError, match=r"model.predict returned shape \(\d+,\) for \d+"):
        fr.evaluate(BadPredict(_good(train)), train, test, metrics=("rmse",))


def test_score_items_is_checked(tiny):
    train, test = tiny

    class Scores(Fixed):
        def score_items(self, users):
            return np.zeros((len(users), train.n_items - 1))

    with pytest.raises(ValueError, match=r"score_items returned shape .* a column per item"):
        fr.evaluate(Scores(_good(train)), train, test, metrics=("auc",), exclude_seen=False)
