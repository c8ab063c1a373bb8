"""SVDpp against Surprise ``SVDpp`` (fit time and test RMSE), ml-latest-small.

Row
---
``SVDpp fit ml-latest-small``
    ``movielens_small()``, ``random_split(test_size=0.2, seed=0)``; fastrec's
    ``SVDpp`` and Surprise's ``SVDpp`` with the same settings (Surprise's
    defaults: 20 factors, 20 epochs, learning rate 0.007, regularisation 0.02,
    init std 0.1), each fitted with ``random_state`` 0, 1 and 2. Quality: the
    mean test RMSE over the three seeds (predictions clipped to the rating
    scale on both sides). Time: only ``fit`` (Surprise's trainset is built
    before); fastrec's median over the three seeded fits plus two more rounds
    (after one untimed fit), Surprise's median over its three seeded fits
    (each takes tens of seconds). The fits alternate (fastrec, Surprise, ...)
    so that a change of machine load hits both.
"""

from __future__ import annotations

import math

import numpy as np

from ..datasets import movielens_small
from ..models.svdpp import MIN_RATINGS_PER_THREAD, SVDpp
from ..split import random_split
from . import row, timed

SEEDS = (0, 1, 2)
_EXTRA_ROUNDS = 2


def _rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    return math.sqrt(float(np.mean((np.asarray(pred, np.float64) - truth) ** 2)))


def compare(scale: float = 1.0, num_threads: int = 2, quick: bool = False) -> list[dict]:
    """fastrec SVDpp vs Surprise SVDpp on ml-latest-small (``scale`` is not used).

    ``quick`` runs 2 epochs and one seed.
    """
    X = movielens_small()
    train, test = random_split(X, test_size=0.2, seed=0)
    epochs = 2 if quick else 20
    seeds = SEEDS[:1] if quick else SEEDS
    params = dict(factors=20, epochs=epochs, learning_rate=0.007, regularization=0.02)
    shape = (
        f"ml-latest-small 80/20 (train {train.nnz}, test {test.nnz}), 20 factors, {epochs} epochs"
    )
    coo = test.matrix.tocoo()
    tu, ti, truth = test.user_ids[coo.row], test.item_ids[coo.col], coo.data.astype(np.float64)
    task = "SVDpp fit ml-latest-small"
    SVDpp(**params, random_state=0, num_threads=num_threads).fit(train)  # untimed warm-up
    try:
        import pandas as pd
        from surprise import Dataset, Reader
        from surprise import SVDpp as SurpriseSVDpp
    except ImportError as exc:
        t_fast, _ = timed(
            lambda: SVDpp(**params, random_state=0, num_threads=num_threads).fit(train), repeat=3
        )
        return [row(task, shape, t_fast, "surprise SVDpp", None, note=f"not installed ({exc})")]
    tcoo = train.matrix.tocoo()
    frame = pd.DataFrame(
        {
            "user": train.user_ids[tcoo.row],
            "item": train.item_ids[tcoo.col],
            "rating": tcoo.data.astype(np.float64),
        }
    )
    reader = Reader(rating_scale=(float(tcoo.data.min()), float(tcoo.data.max())))
    trainset = Dataset.load_from_df(frame, reader).build_full_trainset()
    fast_times, peer_times, fast_rmse, peer_rmse = [], [], [], []
    threads_used = None
    for seed in seeds:
        model = SVDpp(**params, random_state=seed, num_threads=num_threads)
        fast_times.append(timed(lambda: model.fit(train))[0])  # noqa: B023
        threads_used = model.history_[0]["threads"]
        fast_rmse.append(_rmse(model.predict(tu, ti), truth))
        algo = SurpriseSVDpp(
            n_factors=20, n_epochs=epochs, lr_all=0.007, reg_all=0.02, random_state=seed
        )
        peer_times.append(timed(lambda: algo.fit(trainset))[0])  # noqa: B023
        pred = np.array([algo.predict(u, i).est for u, i in zip(tu.tolist(), ti.tolist())])
        peer_rmse.append(_rmse(pred, truth))
    for _ in range(_EXTRA_ROUNDS):
        model = SVDpp(**params, random_state=0, num_threads=num_threads)
        fast_times.append(timed(lambda: model.fit(train))[0])  # noqa: B023
    t_fast, t_peer = float(np.median(fast_times)), float(np.median(peer_times))
    per_seed = ", ".join(f"{a:.4f} vs {b:.4f}" for a, b in zip(fast_rmse, peer_rmse))
    return [
        row(
            task, shape, t_fast, "surprise SVDpp", t_peer,
            quality=(
                f"test rmse, mean of seeds {list(seeds)}: {np.mean(fast_rmse):.4f} vs "
                f"{np.mean(peer_rmse):.4f} (per seed {per_seed})"
            ),
            note=(
                f"speed-up {t_peer / t_fast:.1f}x; fastrec num_threads={num_threads}, "
                f"{threads_used} used (at most one per {MIN_RATINGS_PER_THREAD // 1000}k "
                f"ratings), median of {len(fast_times)} fits (range "
                f"{min(fast_times):.3f}-{max(fast_times):.3f} s); surprise single-threaded, "
                f"median of {len(peer_times)} fits (range {min(peer_times):.1f}-"
                f"{max(peer_times):.1f} s)"
            ),
        )
    ]  # fmt: skip
