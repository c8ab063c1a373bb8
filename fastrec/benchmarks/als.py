"""ALS against implicit's conjugate-gradient ALS (speed, loss, ranking quality)
and, for explicit ratings, against Surprise ``SVD`` and fastrec's ``SGDMF``.

Rows
----
``als implicit iteration, factors 64`` / ``factors 128``
    Seconds per iteration (median over the iterations; each iteration is the
    user and the item half-sweep) on ``synthetic(138_000, 27_000, 20_000_000)``
    times ``scale``, the values taken as implicit feedback, against
    ``implicit.cpu.als.AlternatingLeastSquares(use_cg=True, cg_steps=3)``: same
    factors, regularisation, iterations, threads and the same initial factors;
    BLAS held to one thread for both (threadpoolctl). implicit's CG takes the
    confidence ``c`` itself as the matrix value, so it gets ``1 + alpha * r``
    (with its own ``alpha=1``): both then minimise the same objective (Hu et
    al. 2008, ``c = 1 + alpha * r``). Quality: the training loss after the last
    iteration, both computed by :func:`fastrec.models.als.training_loss` on the
    same data, and their relative difference.
``als implicit ml-latest-small``
    ``movielens_small()``, ratings >= 4 kept as implicit feedback (value 1),
    ``random_split(test_size=0.2, seed=0)``; ALS with factors 64,
    regularisation 0.01, alpha 1, 15 iterations for both libraries.
    precision@10 and ndcg@10 by :func:`fastrec.evaluate` (full ranking, train
    items excluded) for fastrec and for implicit's factors, implicit fitted
    twice: as users call it (its ``alpha=1`` scales the values: c = r) and on
    the equivalent confidences ``1 + alpha * r`` (the same objective).
``als explicit ml-latest-small``
    Explicit ALS (weighted-lambda, factors 64, regularisation 0.1, 15
    iterations, with biases: the default) against Surprise ``SVD`` with its
    defaults (100 factors, 20 epochs), both timed on ``fit``; test RMSE of
    both, of the same ALS without biases and of ``SGDMF`` with Surprise's
    hyper-parameters and 64 or 100 factors.
"""

from __future__ import annotations

import contextlib
import math
import time
from functools import lru_cache
from typing import Any

import numpy as np

from ..data import Interactions
from ..datasets import movielens_small, synthetic
from ..evaluation import evaluate
from ..models.als import ALS, training_loss
from ..split import random_split
from . import row, timed

FULL_SHAPE = (138_000, 27_000, 20_000_000)


@lru_cache(maxsize=2)
def _synthetic(n_users: int, n_items: int, nnz: int) -> Interactions:
    return synthetic(n_users, n_items, nnz, seed=0)


def _blas_one_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a dependency of fastrec
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _warm_up(num_threads: int) -> None:
    """Compile (Numba) and load (Cython) the kernels outside the timed region."""
    tiny = Interactions.from_arrays([0, 0, 1, 2], [0, 1, 1, 2], [1.0, 2.0, 3.0, 1.0])
    for backend in ("numba", "auto"):
        for implicit in (True, False):
            ALS(
                factors=3, iterations=1, implicit=implicit, num_threads=num_threads,
                backend=backend, calculate_training_loss=True,
            ).fit(tiny)  # fmt: skip


def initial_factors(n_users: int, n_items: int, factors: int, seed: int, dtype=np.float32):
    """The initial factors ``ALS(random_state=seed)`` starts from (uniform [0, 0.01))."""
    rng = np.random.default_rng(seed)
    user = rng.random((n_users, factors), dtype=dtype) * dtype(0.01)
    item = rng.random((n_items, factors), dtype=dtype) * dtype(0.01)
    return user, item


def _implicit_model(factors, regularization, iterations, num_threads, user=None, item=None):
    from implicit.cpu.als import AlternatingLeastSquares

    model = AlternatingLeastSquares(
        factors=factors, regularization=regularization, alpha=1.0, iterations=iterations,
        use_cg=True, use_native=True, num_threads=num_threads, random_state=0,
        calculate_training_loss=False,
    )  # fmt: skip
    model.cg_steps = 3
    if user is not None:
        model.user_factors = user.copy()
        model.item_factors = item.copy()
    return model


class _Interleaved:
    """fastrec ``fit`` callback that runs one implicit iteration after each of ours.

    implicit's iteration is the body of its ``fit`` loop: its solver on the
    users x items confidences, then on the transpose (made once, beforehand).
    Both libraries thus run under the same machine load. Wall and CPU seconds
    (``time.process_time``: all threads of the process) are kept per iteration.
    """

    def __init__(self, peer, cui, regularization: float, num_threads: int):
        self.peer = peer
        self.cui = cui
        self.ciu = cui.T.tocsr() if peer is not None else None
        self.regularization = regularization
        self.num_threads = num_threads
        self.fast_cpu: list[float] = []
        self.peer_wall: list[float] = []
        self.peer_cpu: list[float] = []
        self.clock = time.process_time()

    def start(self) -> None:
        self.clock = time.process_time()

    def __call__(self, iteration: int, info: dict) -> None:
        now = time.process_time()
        self.fast_cpu.append(now - self.clock)
        if self.peer is not None:
            peer, solver = self.peer, self.peer.solver
            wall = time.perf_counter()
            with _blas_one_thread():
                solver(self.cui, peer.user_factors, peer.item_factors, self.regularization,
                       num_threads=self.num_threads)  # fmt: skip
                solver(self.ciu, peer.item_factors, peer.user_factors, self.regularization,
                       num_threads=self.num_threads)  # fmt: skip
            self.peer_wall.append(time.perf_counter() - wall)
            after = time.process_time()
            self.peer_cpu.append(after - now)
            now = after
        self.clock = now


def _speed_rows(
    X: Interactions, factors_list, iterations: int, num_threads: int, shape: str, alpha: float
) -> list[dict[str, Any]]:
    regularization = 0.01
    try:
        import implicit  # noqa: F401

        peer_error = None
    except ImportError as exc:
        peer_error = f"implicit not installed ({exc})"
    confidence = X.matrix.copy()
    confidence.data = (1.0 + alpha * confidence.data.astype(np.float64)).astype(np.float32)
    rows = []
    for factors in factors_list:
        task = f"als implicit iteration, factors {factors}"
        model = ALS(
            factors=factors, regularization=regularization, alpha=alpha, iterations=iterations,
            cg_steps=3, random_state=0, num_threads=num_threads,
        )  # fmt: skip
        peer = None
        if peer_error is None:
            user, item = initial_factors(X.n_users, X.n_items, factors, 0)
            with _blas_one_thread():
                peer = _implicit_model(factors, regularization, 1, num_threads, user, item)
        timer = _Interleaved(peer, confidence, regularization, num_threads)
        with _blas_one_thread():
            timer.start()
            model.fit(X, callback=timer)
        fast_wall = [h["seconds"] for h in model.history_]
        fast_s = float(np.median(fast_wall))
        fast_loss = training_loss(
            X.matrix, model.user_factors_, model.item_factors_, regularization, alpha,
            num_threads=num_threads,
        )  # fmt: skip
        if peer is None:
            rows.append(row(task, shape, fast_s, "implicit", None, f"loss {fast_loss:.6f}",
                            peer_error))  # fmt: skip
            continue
        peer_s = float(np.median(timer.peer_wall))
        peer_loss = training_loss(
            X.matrix, peer.user_factors, peer.item_factors, regularization, alpha,
            num_threads=num_threads,
        )  # fmt: skip
        rel = (fast_loss - peer_loss) / peer_loss
        fast_cpu = float(np.median(timer.fast_cpu))
        peer_cpu = float(np.median(timer.peer_cpu))
        rows.append(
            row(
                task,
                shape,
                fast_s,
                "implicit AlternatingLeastSquares(use_cg, cg_steps=3)",
                peer_s,
                f"loss after {iterations} it. {fast_loss:.6f} vs {peer_loss:.6f} ({rel:+.3%})",
                f"median wall s/iteration over {iterations}, interleaved; same init, "
                f"c = 1 + {alpha:g} r for both; {num_threads} threads, BLAS 1 thread; "
                f"wall range fastrec {min(fast_wall):.2f}-{max(fast_wall):.2f}, implicit "
                f"{min(timer.peer_wall):.2f}-{max(timer.peer_wall):.2f}; median CPU "
                f"s/iteration {fast_cpu:.2f} vs {peer_cpu:.2f} (ratio {fast_cpu / peer_cpu:.2f})",
            )  # fmt: skip
        )
    return rows


def _ranking_row(num_threads: int, quick: bool) -> dict[str, Any]:
    X = movielens_small()
    users, items, ratings, _ = X.to_arrays()
    keep = ratings >= 4
    data = Interactions.from_arrays(X.user_ids[users[keep]], X.item_ids[items[keep]])
    train, test = random_split(data, test_size=0.2, seed=0)
    factors, regularization, alpha = 64, 0.01, 1.0
    iterations = 5 if quick else 15
    metrics = ("precision", "ndcg")
    model = ALS(
        factors=factors, regularization=regularization, alpha=alpha, iterations=iterations,
        random_state=0, num_threads=num_threads,
    )  # fmt: skip
    with _blas_one_thread():
        fast_s, _ = timed(lambda: model.fit(train))
    ours = evaluate(model, train, test, metrics=metrics, k=10, fit=False)
    shape = f"{data.n_users}x{data.n_items}, nnz {data.nnz} (ratings >= 4), 80/20 seed 0"
    task = "als implicit ml-latest-small"
    quality = f"fastrec p@10 {ours['precision']:.4f} ndcg@10 {ours['ndcg']:.4f}"
    try:
        import implicit  # noqa: F401
    except ImportError as exc:
        why = f"implicit not installed ({exc})"
        return row(task, shape, fast_s, "implicit", None, quality, why)

    def implicit_scores(matrix, use_alpha):
        with _blas_one_thread():
            peer = _implicit_model(factors, regularization, iterations, num_threads)
            peer.alpha = use_alpha
            seconds, _ = timed(lambda: peer.fit(matrix, show_progress=False))
        wrapped = ALS(factors=factors, num_threads=num_threads)
        wrapped._begin_fit(train)
        wrapped.user_factors_ = np.ascontiguousarray(peer.user_factors)
        wrapped.item_factors_ = np.ascontiguousarray(peer.item_factors)
        wrapped._end_fit()
        return seconds, evaluate(wrapped, train, test, metrics=metrics, k=10, fit=False)

    peer_s, raw = implicit_scores(train.matrix, alpha)
    conf = train.matrix.copy()
    conf.data = (1.0 + alpha * conf.data).astype(np.float32)
    _, same = implicit_scores(conf, 1.0)
    quality += (
        f"; implicit as called (c = {alpha:g} r) p@10 {raw['precision']:.4f} "
        f"ndcg@10 {raw['ndcg']:.4f}; implicit on c = 1 + {alpha:g} r p@10 "
        f"{same['precision']:.4f} ndcg@10 {same['ndcg']:.4f}"
    )
    note = (
        f"factors {factors}, reg {regularization}, alpha {alpha}, {iterations} iterations, "
        "whole fit timed"
    )
    return row(task, shape, fast_s, "implicit AlternatingLeastSquares", peer_s, quality, note)


def _explicit_row(num_threads: int, quick: bool) -> dict[str, Any]:
    X = movielens_small()
    train, test = random_split(X, test_size=0.2, seed=0)
    users, items, truth, _ = test.to_arrays()
    test_users, test_items = test.user_ids[users], test.item_ids[items]
    truth = truth.astype(np.float64)

    def rmse(pred):
        return math.sqrt(float(np.mean((np.asarray(pred, np.float64) - truth) ** 2)))

    iterations = 5 if quick else 15
    model = ALS(
        factors=64, regularization=0.1, iterations=iterations, implicit=False, random_state=0,
        num_threads=num_threads,
    )  # fmt: skip
    with _blas_one_thread():
        fast_s, _ = timed(lambda: model.fit(train))
    quality = f"test RMSE ALS {rmse(model.predict(test_users, test_items)):.4f}"
    unbiased = ALS(**{**model.get_params(), "biases": False}).fit(train)
    quality += f" (without biases {rmse(unbiased.predict(test_users, test_items)):.4f})"
    try:
        from ..models.sgd import SGDMF

        for factors in (64, 100):
            sgd = SGDMF(factors=factors, epochs=5 if quick else 20, random_state=0, num_threads=1)
            sgd.fit(train)
            quality += f", SGDMF {factors} factors {rmse(sgd.predict(test_users, test_items)):.4f}"
    except ImportError:  # pragma: no cover - SGDMF is part of fastrec
        pass
    shape = f"{X.n_users}x{X.n_items}, nnz {X.nnz}, 80/20 seed 0"
    task = "als explicit ml-latest-small"
    note = (
        f"ALS factors 64, weighted-lambda 0.1, {iterations} iterations, biases "
        f"(default for explicit feedback); fit timed"
    )
    try:
        from surprise import SVD, Dataset, Reader
    except ImportError as exc:
        return row(task, shape, fast_s, "surprise SVD", None, quality,
                   f"{note}; surprise not installed ({exc})")  # fmt: skip
    tu, ti, tr, _ = train.to_arrays()
    import pandas as pd

    frame = pd.DataFrame({"u": train.user_ids[tu], "i": train.item_ids[ti], "r": tr})
    trainset = Dataset.load_from_df(frame, Reader(rating_scale=(0.5, 5.0))).build_full_trainset()
    svd = SVD(n_epochs=5 if quick else 20, random_state=0)
    peer_s, _ = timed(lambda: svd.fit(trainset))
    pred = [svd.predict(u, i).est for u, i in zip(test_users.tolist(), test_items.tolist())]
    quality += f", surprise SVD {rmse(pred):.4f}"
    return row(task, shape, fast_s, "surprise SVD (defaults)", peer_s, quality, note)


def compare(scale: float = 1.0, num_threads: int = 2, quick: bool = False) -> list[dict]:
    """Rows for ``fastrec bench`` (see the module docstring).

    ``quick`` uses a 5,000 x 3,000 shape with 200,000 interactions, factors 32
    and 3 iterations; otherwise the full shape times ``scale``, 15 iterations
    and factors 64 and 128.
    """
    _warm_up(num_threads)
    if quick:
        n_users, n_items, nnz = 5_000, 3_000, 200_000
        factors_list, iterations = (32,), 3
    else:
        n_users = max(1000, int(FULL_SHAPE[0] * scale))
        n_items = max(500, int(FULL_SHAPE[1] * scale))
        nnz = max(20_000, int(FULL_SHAPE[2] * scale))
        factors_list, iterations = (64, 128), 15
    X = _synthetic(n_users, n_items, nnz)
    shape = f"{n_users}x{n_items}, nnz {nnz} (synthetic seed 0, implicit)"
    rows = _speed_rows(X, factors_list, iterations, num_threads, shape, alpha=1.0)
    rows.append(_ranking_row(num_threads, quick))
    rows.append(_explicit_row(num_threads, quick))
    return rows
