"""Train/test splits of ``Interactions`` (deterministic for a seed).

Every split returns ``Interactions`` that share the vocabularies of the input,
so internal indices agree between train and test. A test entry whose user or
item has no training data is kept in the test set: models answer it with their
documented fallback, and ``evaluate`` counts it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ._validation import check_choice, check_int
from .data import Interactions

__all__ = ["random_split", "leave_one_out", "kfold"]


def _check_data(X: Interactions) -> None:
    if not isinstance(X, Interactions):
        raise ValueError(f"X must be a fastrec.Interactions, got {type(X).__name__}")


def _test_count(test_size: float | int, nnz: int) -> int:
    if isinstance(test_size, bool):
        raise ValueError(f"test_size must be a fraction in (0, 1) or a count, got {test_size!r}")
    if isinstance(test_size, int | np.integer):
        if not 0 < test_size < nnz:
            raise ValueError(f"test_size as a count must be in [1, {nnz - 1}], got {test_size}")
        return int(test_size)
    if isinstance(test_size, float) and 0.0 < test_size < 1.0:
        count = int(round(test_size * nnz))
        if not 0 < count < nnz:
            raise ValueError(
                f"test_size={test_size} leaves an empty train or test set for {nnz} entries"
            )
        return count
    raise ValueError(f"test_size must be a fraction in (0, 1) or a count, got {test_size!r}")


def random_split(
    X: Interactions, test_size: float | int = 0.2, seed: int = 0
) -> tuple[Interactions, Interactions]:
    """Hold out a uniformly random ``test_size`` fraction (or count) of the entries.

    Returns ``(train, test)``; ``round(test_size * nnz)`` entries go to test.
    """
    _check_data(X)
    n_test = _test_count(test_size, X.nnz)
    rng = np.random.default_rng(check_int(seed, "seed", 0))
    in_test = np.zeros(X.nnz, dtype=bool)
    in_test[rng.permutation(X.nnz)[:n_test]] = True
    return X.subset(~in_test), X.subset(in_test)


def leave_one_out(
    X: Interactions, by: str = "time", seed: int = 0
) -> tuple[Interactions, Interactions]:
    """Hold out one entry per user: the latest (``by="time"``) or a random one.

    Users with a single entry keep it in train (they have nothing to hold out
    against) and do not appear in test. With ``by="time"``, equal latest
    timestamps are broken at random (seeded). ``by="time"`` needs timestamps.
    """
    _check_data(X)
    check_choice(by, "by", ("time", "random"))
    rng = np.random.default_rng(check_int(seed, "seed", 0))
    counts = np.diff(X.matrix.indptr)
    users = X.entry_users()
    tiebreak = rng.random(X.nnz)
    if by == "time":
        if X.timestamps is None:
            raise ValueError("leave_one_out(by='time') needs timestamps; this data set has none")
        order = np.lexsort((tiebreak, X.timestamps, users))
    else:
        order = np.lexsort((tiebreak, users))
    ends = np.asarray(X.matrix.indptr[1:], dtype=np.int64) - 1
    eligible = counts >= 2
    in_test = np.zeros(X.nnz, dtype=bool)
    # entries of user u occupy order[indptr[u]:indptr[u+1]]; the last one is held out
    in_test[order[ends[eligible]]] = True
    if not in_test.any():
        raise ValueError("leave_one_out: no user has two or more entries, the test set is empty")
    return X.subset(~in_test), X.subset(in_test)


def kfold(
    X: Interactions, n_splits: int = 5, seed: int = 0
) -> Iterator[tuple[Interactions, Interactions]]:
    """K-fold cross-validation over entries: yields ``(train, test)`` ``n_splits`` times.

    Entries are shuffled once (seeded) and dealt into folds of sizes that differ
    by at most one; every entry is in exactly one test fold.
    """
    _check_data(X)
    n_splits = check_int(n_splits, "n_splits", 2)
    if n_splits > X.nnz:
        raise ValueError(f"n_splits={n_splits} is larger than the number of entries ({X.nnz})")
    rng = np.random.default_rng(check_int(seed, "seed", 0))
    fold = np.empty(X.nnz, dtype=np.int64)
    fold[rng.permutation(X.nnz)] = np.arange(X.nnz) % n_splits
    for f in range(n_splits):
        in_test = fold == f
        yield X.subset(~in_test), X.subset(in_test)
