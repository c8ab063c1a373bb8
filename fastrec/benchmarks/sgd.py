"""SGDMF against LIBMF (throughput) and Surprise ``SVD`` (speed and test RMSE).

Rows
----
``sgd fit, factors 32`` / ``sgd fit, factors 128``
    Whole ``fit`` (data layout, initialisation and every epoch) of SGDMF and
    of LIBMF's Python binding ``libmf`` (``MF.fit``, which copies, shuffles
    and grids the data in C++ before its epochs) on
    ``synthetic(138_000, 27_000, 20_000_000)`` times ``scale``: same factors,
    same number of epochs, same threads, L2 regularisation 0.02 on both and no
    L1. Throughput is ratings x epochs / seconds; LIBMF's model has no biases
    and uses its own adaptive step (AdaGrad), which does not change the work
    per rating. Quality: RMSE on 200k sampled training ratings.
``fit ml-latest-small``
    ``movielens_small()``, ``random_split(test_size=0.2, seed=0)``; SGDMF and
    Surprise ``SVD`` with the same factors (100), epochs (20), learning rate
    (0.005), regularisation (0.02) and init std (0.1). Only ``fit`` is timed
    (Surprise's trainset is built before), in five interleaved rounds after
    one untimed SGDMF fit; the medians are reported. Quality: test RMSE of both, with
    predictions clipped to the rating scale as Surprise does.
"""

from __future__ import annotations

import contextlib
import io
import math
from functools import lru_cache

import numpy as np

from ..data import Interactions
from ..datasets import movielens_small, synthetic
from ..models.sgd import MIN_RATINGS_PER_THREAD, SGDMF
from ..split import random_split
from . import row, timed

# Interleaved timing rounds of the ml-latest-small fits (fastrec, surprise).
_ROUNDS = 5


@lru_cache(maxsize=2)
def _synthetic(n_users: int, n_items: int, nnz: int) -> Interactions:
    return synthetic(n_users, n_items, nnz, seed=0)


def _warm_up(num_threads: int) -> None:
    """Compile (Numba) and load (Cython) the kernels outside the timed region."""
    tiny = Interactions.from_arrays([0, 0, 1], [0, 1, 1], [1.0, 2.0, 3.0])
    for backend in ("numba", "auto"):
        for dtype in ("float32", "float64"):
            SGDMF(factors=3, epochs=1, dtype=dtype, num_threads=num_threads, backend=backend).fit(
                tiny
            )


def _import_libmf():
    with contextlib.redirect_stdout(io.StringIO()):  # the binding prints its .so path
        from libmf import mf
    return mf


def _rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    return math.sqrt(float(np.mean((np.asarray(pred, np.float64) - truth) ** 2)))


def _throughput_rows(
    X: Interactions, factors_list: tuple[int, ...], epochs: int, num_threads: int, shape: str
) -> list[dict]:
    coo = X.matrix.tocoo()
    rng = np.random.default_rng(0)
    sample = rng.choice(X.nnz, size=min(X.nnz, 200_000), replace=False)
    su, si, sr = coo.row[sample], coo.col[sample], coo.data[sample].astype(np.float64)
    try:
        mf = _import_libmf()
    except (ImportError, OSError) as exc:
        mf, why = None, f"libmf not available ({exc})"
    triples = np.column_stack([coo.row, coo.col, coo.data]).astype(np.float32) if mf else None
    rows = []
    updates = epochs * X.nnz
    for factors in factors_list:
        model = SGDMF(factors=factors, epochs=epochs, random_state=0, num_threads=num_threads)
        t_fast, _ = timed(lambda model=model: model.fit(X))
        kernel_s = sum(h["seconds"] for h in model.history_)
        fast_pred = model._predict_indices(su, si)
        task = f"sgd fit, factors {factors}"
        note = (
            f"{updates / t_fast / 1e6:.1f}M updates/s for fastrec (epochs alone "
            f"{updates / kernel_s / 1e6:.1f}M/s)"
        )
        if mf is None:
            rows.append(row(task, shape, t_fast, "libmf", None, note=why))
            continue
        engine = mf.MF(
            k=factors, nr_threads=num_threads, nr_iters=epochs, quiet=True,
            lambda_p1=0.0, lambda_q1=0.0, lambda_p2=0.02, lambda_q2=0.02,
        )  # fmt: skip
        t_peer, _ = timed(lambda engine=engine: engine.fit(triples))
        peer_pred = np.clip(
            engine.predict(np.column_stack([su, si]).astype(np.float32)),
            model.rating_min_, model.rating_max_,
        )  # fmt: skip
        note += f", {updates / t_peer / 1e6:.1f}M/s for libmf; speed-up {t_peer / t_fast:.2f}x"
        rows.append(
            row(
                task,
                shape,
                t_fast,
                "libmf",
                t_peer,
                quality=f"train rmse {_rmse(fast_pred, sr):.3f} vs {_rmse(peer_pred, sr):.3f}",
                note=note,
            )  # fmt: skip
        )
    return rows


def _surprise_row(num_threads: int, quick: bool) -> dict:
    X = movielens_small()
    train, test = random_split(X, test_size=0.2, seed=0)
    epochs = 5 if quick else 20
    params = dict(factors=100, epochs=epochs, learning_rate=0.005, regularization=0.02)
    shape = (
        f"ml-latest-small 80/20 (train {train.nnz}, test {test.nnz}), 100 factors, {epochs} epochs"
    )
    coo = test.matrix.tocoo()
    tu, ti, tr = test.user_ids[coo.row], test.item_ids[coo.col], coo.data.astype(np.float64)
    model = SGDMF(**params, random_state=0, num_threads=num_threads)
    model.fit(train)  # untimed: first-call costs (page faults, kernel loading) stay out
    task = "fit ml-latest-small"
    try:
        import pandas as pd
        from surprise import SVD, Dataset, Reader
    except ImportError as exc:
        t_fast, _ = timed(lambda: model.fit(train), repeat=_ROUNDS)
        return row(task, shape, t_fast, "surprise SVD", None, note=f"not installed ({exc})")
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
    algo = SVD(n_factors=100, n_epochs=epochs, lr_all=0.005, reg_all=0.02, random_state=0)
    # interleaved rounds (fastrec, then surprise) so that a change of machine
    # load hits both; medians of each
    fast_times, peer_times = [], []
    for _ in range(_ROUNDS):
        fast_times.append(timed(lambda: model.fit(train))[0])
        peer_times.append(timed(lambda: algo.fit(trainset))[0])
    t_fast, t_peer = float(np.median(fast_times)), float(np.median(peer_times))
    fast_rmse = _rmse(model.predict(tu, ti), tr)
    peer_pred = np.array([algo.predict(u, i).est for u, i in zip(tu.tolist(), ti.tolist())])
    peer_rmse = _rmse(peer_pred, tr)
    return row(
        task, shape, t_fast, "surprise SVD", t_peer,
        quality=f"test rmse {fast_rmse:.4f} vs {peer_rmse:.4f}",
        note=f"speed-up {t_peer / t_fast:.1f}x; fastrec num_threads={num_threads}, "
        f"{model.history_[0]['threads']} used (below {MIN_RATINGS_PER_THREAD // 1000}k ratings "
        "per thread it uses fewer), "
        f"medians of {_ROUNDS} interleaved rounds; surprise single-threaded",
    )  # fmt: skip


def compare(scale: float = 1.0, num_threads: int = 2, quick: bool = False) -> list[dict]:
    """SGDMF vs LIBMF (throughput, two factor sizes) and vs Surprise SVD (ml-latest-small).

    ``quick`` uses ``synthetic(5_000, 2_000, 200_000)`` with 3 epochs and a
    5-epoch ml-latest-small fit; ``scale`` shrinks the synthetic shape.
    """
    _warm_up(num_threads)
    if quick:
        n_users, n_items, nnz, epochs = 5_000, 2_000, 200_000, 3
    else:
        n_users = max(1000, int(138_000 * scale))
        n_items = max(500, int(27_000 * scale))
        nnz = max(10_000, int(20_000_000 * scale))
        epochs = 10
    X = _synthetic(n_users, n_items, nnz)
    shape = f"synthetic({n_users}, {n_items}, {nnz}), {epochs} epochs, {num_threads} threads"
    rows = _throughput_rows(X, (32, 128), epochs, num_threads, shape)
    rows.append(_surprise_row(num_threads, quick))
    return rows
