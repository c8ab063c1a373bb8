"""``SGDMF``: biased matrix factorisation for explicit ratings, by Hogwild SGD.

The model is Funk's SVD with biases (Koren, Bell & Volinsky, "Matrix
factorization techniques for recommender systems", IEEE Computer 42(8), 2009,
eq. 5), the same model and update rule as Surprise's ``SVD``::

    r_hat(u, i) = mu + b_u + b_i + p_u . q_i

Each epoch visits every training rating once and takes one stochastic gradient
step on its squared error plus L2 penalties on the factors and biases (kernel:
``kernels/numba/sgd.py``, twin ``kernels/cython/sgd.pyx``). Threads update
without locks (Hogwild: Niu, Recht, Re & Wright, NIPS 2011).

Visiting order
--------------
Everything random is drawn in Python from one ``numpy.random.Generator`` seeded
by ``random_state``:

1. once per fit, the items are relabelled by a random permutation and each
   user's ratings are visited in ascending new label (LIBMF's random shuffle
   followed by sorting, Chin et al., ACM TIST 2015, section 4): a random order
   within every row. The kernel keeps the item rows and biases in label
   order (so one block's rows are contiguous) and :meth:`SGDMF.fit` puts
   them back in item order at the end. The label range is cut into item
   blocks of about equal rating counts. Then one seed each for the user and
   the item factors, which the compiled ziggurat ``normal_fill`` turns into
   N(0, init_std^2) draws
   (:func:`fastrec.models._sgd_layout.padded_factors`);
2. every epoch, the users are visited in a fresh random permutation, cut into
   contiguous chunks of about equal rating counts, and the blocks in a fresh
   random order. The epoch is one phase per block: in phase ``s`` chunk ``c``
   works in block ``block_order[(c + s) % n_blocks]``, the chunks of a phase
   side by side, and the next phase starts when they are all done. Within a
   (chunk, block) cell, two lanes take the chunk's users in order, one
   user's run at a time, and alternate one rating each (two independent
   update chains per thread; a lane that finishes takes the next user at
   once; see the kernel's docstring).

How many chunks and blocks (:func:`fastrec.models._sgd_layout.cache_blocks`):
with one thread, as the caches suggest (one of each on small data); with
several, a square grid of ``g x g`` cells, ``g`` a multiple of the threads.
The cells of a phase then share no user and no item, so no two threads ever write the same row: the
result does not depend on the timing, and a seeded fit is reproducible for a
given thread count (the grid, and so the visiting order, depends on it). Only
when there are fewer items than ``g`` do two cells of a phase share item
rows (the Hogwild race, permitted; then a multi-threaded result varies from
run to run).

The layout (step 1) is in :mod:`fastrec.models._sgd_layout`, the epoch schedule
(step 2) in :mod:`fastrec.models._sgd_schedule`; this module holds the estimator.

Without a callback, validation data or a progress bar, the schedules of all the
epochs are drawn first (the same draws in the same order) and the epochs run in
one kernel call (``sgd_epochs``): the result is the same as epoch by epoch.

With ``num_threads=1`` a seeded fit is bit-for-bit reproducible, and the Numba
and Cython backends give identical factors.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from .. import _backend
from .._kernels import sgd as sgd_kernels
from .._validation import (
    check_choice,
    check_float,
    check_int,
)
from ..data import Interactions
from ._factors import (
    check_factor_memory,
    cosine_similar,
    factor_scores,
    factor_state,
    fold_in_ratings,
    fold_in_result,
    restore_factors,
    ridge_fold_in,
)
from ._sgd_layout import cache_blocks, padded_factors, training_layout
from ._sgd_schedule import LR_SCHEDULES, epoch_rate, epoch_schedule, stacked_schedules
from .base import DivergenceError, Recommender

__all__ = ["SGDMF", "DivergenceError"]

# Fewer ratings than this per thread: use fewer threads (ml-latest-small's 80k
# training ratings use two). The kernel's threads take cells from one queue
# and a phase waits only for the previous phase's cells, not for every thread,
# so a descheduled thread on a loaded machine delays a phase only while it
# holds a cell (the earlier barrier waited for every thread at each of the 40
# phases of a 20-epoch fit; at load average 14 on two vCPUs a two-thread fit
# then slept about 540 times, and now about 30: medians of 5 fits).
MIN_RATINGS_PER_THREAD = 20_000


class _Training(NamedTuple):
    """The arrays one fit trains (kernel layout: padded rows, items in label order)."""

    k: int
    threads: int
    block_ptr: np.ndarray
    labels: np.ndarray
    ratings: np.ndarray
    user_rows: np.ndarray
    item_rows: np.ndarray
    label_bias: np.ndarray
    item_label: np.ndarray


class SGDMF(Recommender):
    """Biased matrix factorisation trained by Hogwild stochastic gradient descent.

    Parameters
    ----------
    factors : int >= 1
        Length of the latent vectors ``p_u`` and ``q_i``.
    epochs : int >= 1
        Passes over the training ratings (fewer with early stopping).
    learning_rate : float > 0
        SGD step size (epoch 0 for the decaying schedule).
    regularization : float >= 0
        L2 weight on the factors and the biases, applied at every update.
    biases : bool
        Learn ``mu + b_u + b_i``. When False the model is ``p_u . q_i`` alone
        (no global mean either), as Surprise's ``SVD(biased=False)``.
    init_std : float >= 0
        Factors start from N(0, init_std^2); biases start at 0.
    lr_schedule : {"constant", "decay"}
        The rate of epoch ``t``: ``learning_rate``, or
        ``learning_rate * lr_decay ** t``.
    lr_decay : float in (0, 1]
        Factor per epoch of the decaying schedule.
    dtype : {"float32", "float64"}
        Precision of the factors and of the arithmetic.
    random_state : None, int or numpy.random.Generator
        Seeds the initial factors and the visiting order.
    num_threads : int
        Threads for fitting; 0 means all cores. A seed gives bit-identical
        runs for a given number of threads used (the threads work on disjoint
        rows; see the module docstring for the one exception). Small data
        sets use fewer threads: at most one per ``MIN_RATINGS_PER_THREAD``
        (20 000) training ratings, so a fit on fewer than 40 000 ratings is
        single-threaded.
    backend : {"auto", "numba", "cython"}

    Attributes
    ----------
    user_factors_ : (n_users, factors) ndarray of ``dtype``
    item_factors_ : (n_items, factors) ndarray of ``dtype``
    user_bias_, item_bias_ : (n_users,), (n_items,) ndarray (zeros without biases)
    intercept_ : float
        ``mu``: the training mean rating (0 without biases).
    history_ : list of dict
        The per-epoch ``info`` dicts passed to the callback. When the epochs
        ran in one kernel call (no callback, validation or progress bar),
        ``seconds`` is that call's time divided evenly over the epochs.
    best_epoch_ : int or None
        With validation data: the epoch whose factors were kept.

    Notes
    -----
    ``predict`` clips to the training rating range (as Surprise does) and falls
    back to the baseline means for unknown or cold ids (see
    :mod:`fastrec.models.base`). A user or item without training ratings keeps
    its random initial factors and is never scored by them.
    """

    def __init__(
        self,
        factors: int = 100,
        epochs: int = 20,
        learning_rate: float = 0.005,
        regularization: float = 0.02,
        biases: bool = True,
        init_std: float = 0.1,
        lr_schedule: str = "constant",
        lr_decay: float = 0.9,
        dtype: str = "float32",
        random_state: Any = None,
        num_threads: int = 0,
        backend: str = "auto",
    ):
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.biases = biases
        self.init_std = init_std
        self.lr_schedule = lr_schedule
        self.lr_decay = lr_decay
        self.dtype = dtype
        self.random_state = random_state
        self.num_threads = num_threads
        self.backend = backend

    # ------------------------------------------------------------------ checks
    def _validated_params(self) -> dict[str, Any]:
        params = self._checked_params(
            "factors", "epochs", "learning_rate", "regularization", "init_std"
        )
        if not isinstance(self.biases, bool | np.bool_):
            raise ValueError(f"biases must be True or False, got {self.biases!r}")
        params["lr_schedule"] = check_choice(self.lr_schedule, "lr_schedule", LR_SCHEDULES)
        params["lr_decay"] = check_float(
            self.lr_decay, "lr_decay", minimum=0.0, strict=True, maximum=1.0
        )
        params.update(self._checked_params("dtype", "random_state", "num_threads", "backend"))
        return params

    @staticmethod
    def _checked_fit_options(
        validation: Interactions | None, patience: int | None, callback: Any
    ) -> int | None:
        """``patience`` checked against ``validation``; ``callback`` checked."""
        if validation is not None and not isinstance(validation, Interactions):
            raise ValueError(
                "validation must be a fastrec.Interactions or None, got "
                f"{type(validation).__name__}"
            )
        if patience is not None:
            patience = check_int(patience, "patience", minimum=1)
            if validation is None:
                raise ValueError("patience (early stopping) needs validation data")
        Recommender._check_callback(callback)
        return patience

    def _epoch_rate(self, epoch: int, params: dict[str, Any]) -> float:
        return epoch_rate(params["lr_schedule"], epoch, params["learning_rate"], params["lr_decay"])

    # --------------------------------------------------------------------- fit
    def fit(
        self,
        X: Interactions,
        validation: Interactions | None = None,
        patience: int | None = None,
        show_progress: bool = False,
        callback: Callable[[int, dict], Any] | None = None,
    ) -> SGDMF:
        """Learn the factors from the ratings in ``X``.

        Parameters
        ----------
        X : Interactions
            Explicit ratings (implicit data is accepted: every rating is 1).
        validation : Interactions, optional
            Held-out ratings; their RMSE (through ``predict``, so unknown ids
            get the baseline) is reported every epoch as ``val_rmse``.
        patience : int >= 1, optional
            Early stopping (needs ``validation``): stop when ``val_rmse`` has
            not improved for ``patience`` epochs and keep the best epoch's
            factors. Without it every epoch runs and the last factors are kept.
        show_progress : bool
            A tqdm bar over the epochs.
        callback : callable(epoch, info), optional
            Called after every epoch (the model's factor and bias attributes
            then hold that epoch's values) with ``info`` holding ``epoch``,
            ``train_loss`` (mean squared error of the pass, each error taken
            just before its update), ``train_rmse``, ``learning_rate``,
            ``threads`` (used), ``seconds`` and, with validation data,
            ``val_rmse``.

        Raises
        ------
        ValueError
            Invalid parameters or data (before any work).
        DivergenceError
            The run produced NaN or infinite factors or loss (a ``ValueError``
            and ``FloatingPointError``); the model is left unfitted.
        """
        params = self._validated_params()
        patience = self._checked_fit_options(validation, patience, callback)
        self._begin_fit(X)
        check_factor_memory(self, params)
        rng = np.random.default_rng(self.random_state)
        run = self._start_training(params, rng)
        if validation is None and callback is None and not show_progress:
            # nothing to do between epochs: every epoch in one kernel call
            self._fit_all_epochs(params, rng, run)
            self._publish(run)
        else:
            self._fit_epoch_by_epoch(
                params, rng, run, validation, patience, show_progress, callback
            )
        self._end_fit()
        return self

    def _start_training(self, params: dict[str, Any], rng: np.random.Generator) -> _Training:
        """The layout, the initial factors and biases (in this order of ``rng`` draws).

        The kernel works on padded, cache-line aligned rows, the item rows
        (and item biases) in label order; :meth:`_publish` sets the public
        attributes from them.
        """
        dtype, k = params["dtype"], params["factors"]
        threads = max(1, min(params["num_threads"], self._seen.nnz // MIN_RATINGS_PER_THREAD))
        n_chunks, n_blocks = cache_blocks(
            self.n_users_, self.n_items_, k, np.dtype(dtype).itemsize, threads
        )
        block_ptr, labels, ratings, item_label = training_layout(
            self._seen, rng, dtype, n_blocks, params["backend"], _trusted=True
        )
        with _backend.threads(threads):
            user_rows = padded_factors(
                rng, self.n_users_, k, dtype, params["init_std"], params["backend"]
            )
            item_rows = padded_factors(
                rng, self.n_items_, k, dtype, params["init_std"], params["backend"]
            )
        self.user_bias_ = np.zeros(self.n_users_, dtype=dtype)
        self.intercept_ = float(dtype(self.global_mean_)) if self.biases else 0.0
        self.history_ = []
        self.best_epoch_ = None
        self.n_chunks_, self.n_blocks_ = n_chunks, n_blocks
        return _Training(
            k, threads, block_ptr, labels, ratings,
            user_rows, item_rows, np.zeros(self.n_items_, dtype=dtype), item_label,
        )  # fmt: skip

    def _fit_epoch_by_epoch(
        self,
        params: dict[str, Any],
        rng: np.random.Generator,
        run: _Training,
        validation: Interactions | None,
        patience: int | None,
        show_progress: bool,
        callback: Callable[[int, dict], Any] | None,
    ) -> None:
        """One kernel call per epoch, with validation, early stopping, bar and callback.

        Validation and the callback see the current factors (published after
        every epoch); with ``patience`` the best epoch's factors are kept.
        """
        kernel = sgd_kernels.get(params["backend"]).sgd_epoch
        val_pairs = None if validation is None else self._validation_pairs(validation)
        best: dict[str, Any] = {"rmse": math.inf, "snapshot": None}

        def step(epoch: int) -> tuple[dict, bool]:
            info = self._train_epoch(kernel, params, rng, run, epoch)
            self._publish(run)
            stop = False
            if val_pairs is not None:
                stop = self._validate_epoch(epoch, info, val_pairs, patience, best)
            return info, stop

        with _backend.threads(run.threads):
            self._run_epochs(
                range(params["epochs"]), step, "SGDMF", show_progress, callback,
                lambda info: {"rmse": f"{info['train_rmse']:.4f}"},
            )  # fmt: skip
        if best["snapshot"] is not None:
            (self.user_factors_, self.item_factors_, self.user_bias_, self.item_bias_) = best[
                "snapshot"
            ]

    def _validation_pairs(self, validation: Interactions) -> tuple[np.ndarray, ...]:
        """``(user indices, item indices, ratings)`` of the validation data."""
        vm = validation.matrix.tocoo()
        return (
            self._users.lookup(validation.user_ids)[vm.row],
            self._items.lookup(validation.item_ids)[vm.col],
            vm.data.astype(np.float64),
        )

    def _train_epoch(
        self, kernel, params: dict[str, Any], rng: np.random.Generator, run: _Training, epoch: int
    ) -> dict:
        """One epoch (schedule drawn from ``rng``); its ``history_`` entry."""
        dtype = params["dtype"]
        start = time.perf_counter()
        rate = self._epoch_rate(epoch, params)
        user_order, bounds, block_order = epoch_schedule(
            self.user_count_, rng, self.n_chunks_, self.n_blocks_
        )
        chunk_loss = np.zeros(bounds.shape[0] - 1, dtype=np.float64)
        kernel(
            run.block_ptr, run.labels, run.ratings, user_order, bounds, block_order,
            dtype(self.intercept_), dtype(rate), dtype(params["regularization"]),
            bool(self.biases),
            run.user_rows, run.item_rows, self.user_bias_, run.label_bias,
            chunk_loss,
        )  # fmt: skip
        loss = float(chunk_loss.sum()) / run.ratings.shape[0]
        self._check_finite(epoch, loss, rate, run)
        return {
            "epoch": epoch,
            "train_loss": loss,
            "train_rmse": math.sqrt(loss),
            "learning_rate": rate,
            "threads": run.threads,
            "seconds": time.perf_counter() - start,
        }

    def _validate_epoch(
        self,
        epoch: int,
        info: dict,
        val_pairs: tuple[np.ndarray, ...],
        patience: int | None,
        best: dict[str, Any],
    ) -> bool:
        """Record ``val_rmse`` in ``info`` and track the best epoch; True to stop."""
        uidx, iidx, truth = val_pairs
        pred = self._predict_indices(uidx, iidx)
        val_rmse = float(np.sqrt(np.mean((pred - truth) ** 2)))
        info["val_rmse"] = val_rmse
        if val_rmse < best["rmse"]:
            best["rmse"] = val_rmse
            self.best_epoch_ = epoch
            if patience is not None:
                best["snapshot"] = self._snapshot()
            return False
        return patience is not None and epoch - self.best_epoch_ >= patience

    def _publish(self, run: _Training) -> None:
        """The public attributes from the kernel's arrays: the first ``k`` columns,
        item rows and biases back in item order (new C-contiguous arrays)."""
        self.user_factors_ = np.ascontiguousarray(run.user_rows[:, : run.k])
        self.item_factors_ = run.item_rows[run.item_label, : run.k]
        self.item_bias_ = run.label_bias[run.item_label]

    def _snapshot(self) -> tuple[np.ndarray, ...]:
        return (
            self.user_factors_.copy(),
            self.item_factors_.copy(),
            self.user_bias_.copy(),
            self.item_bias_.copy(),
        )

    def _fit_all_epochs(
        self, params: dict[str, Any], rng: np.random.Generator, run: _Training
    ) -> None:
        """Every epoch in one ``sgd_epochs`` call (no callback, validation or bar).

        The schedules of all the epochs are drawn first (the same draws in the
        same order as epoch by epoch). The factors are checked once, after the
        last epoch; the loss of every epoch is known afterwards, so a
        divergence still names the first epoch whose loss was not finite.
        ``seconds`` in ``history_`` is the whole run's time divided evenly
        over the epochs.
        """
        dtype = params["dtype"]
        n_epochs = params["epochs"]
        user_orders, bounds, block_orders = stacked_schedules(
            self.user_count_, rng, n_epochs, self.n_chunks_, self.n_blocks_
        )
        rates = [self._epoch_rate(e, params) for e in range(n_epochs)]
        chunk_loss = np.zeros((n_epochs, bounds.shape[1] - 1), dtype=np.float64)
        kernel = sgd_kernels.get(params["backend"]).sgd_epochs
        rate_array = np.array(rates, dtype=dtype)
        start = time.perf_counter()
        with _backend.threads(run.threads):
            # epoch ranges (Ctrl-C is seen between two): the kernel runs its
            # epochs one after the other, so any split gives the same factors
            for e0, e1 in _backend.slices(n_epochs):
                kernel(
                    run.block_ptr, run.labels, run.ratings, user_orders[e0:e1], bounds[e0:e1],
                    block_orders[e0:e1], dtype(self.intercept_), rate_array[e0:e1],
                    dtype(params["regularization"]), bool(self.biases),
                    run.user_rows, run.item_rows, self.user_bias_, run.label_bias,
                    chunk_loss[e0:e1],
                )  # fmt: skip
        seconds = (time.perf_counter() - start) / n_epochs
        losses = chunk_loss.sum(axis=1) / run.ratings.shape[0]
        bad = np.flatnonzero(~np.isfinite(losses))
        if bad.size:
            self._check_finite(int(bad[0]), math.nan, rates[bad[0]], run)
        self._check_finite(n_epochs - 1, 0.0, rates[-1], run)
        self.history_ = [
            {
                "epoch": e,
                "train_loss": float(losses[e]),
                "train_rmse": math.sqrt(losses[e]),
                "learning_rate": rates[e],
                "threads": run.threads,
                "seconds": seconds,
            }
            for e in range(n_epochs)
        ]

    def _check_finite(self, epoch: int, loss: float, rate: float, run: _Training) -> None:
        # the padded rows are contiguous (one pass each); their padding stays 0
        self._check_divergence(
            f"epoch {epoch}",
            loss,
            (run.user_rows, run.item_rows, self.user_bias_, run.label_bias),
            "the training loss or the factors",
            f"learning_rate={rate:g}, regularization={self.regularization!r}",
            "Lower learning_rate, raise regularization or lower init_std.",
        )

    # ----------------------------------------------------------------- predict
    def _predict_known(self, uidx: np.ndarray, iidx: np.ndarray) -> np.ndarray:
        dots = np.einsum("ij,ij->i", self.user_factors_[uidx], self.item_factors_[iidx])
        pred = self.intercept_ + (self.user_bias_[uidx] + self.item_bias_[iidx] + dots).astype(
            np.float64
        )
        return np.clip(pred, self.rating_min_, self.rating_max_)

    def _score_users(self, uidx: np.ndarray) -> np.ndarray:
        return factor_scores(
            self.user_factors_[uidx],
            self.item_factors_,
            item_offset=self.item_bias_,
            row_offset=self.intercept_ + self.user_bias_[uidx],
        )

    def _factor_parts(self):
        # recommend ranks p_u . q_i + b_i with the fused kernel; mu + b_u is
        # the same for all of a user's items and is added to the scores after
        dtype = self.user_factors_.dtype
        return (
            np.ascontiguousarray(self.user_factors_),
            np.ascontiguousarray(self.item_factors_, dtype=dtype),
            np.ascontiguousarray(self.item_bias_, dtype=dtype),
            self.intercept_ + self.user_bias_.astype(np.float64),
        )

    def _similar_items_internal(self, iidx: np.ndarray, n: int):
        """Cosine similarity of the item factors (biases are not part of it)."""
        return cosine_similar(self.item_factors_, iidx, n, self.backend, self.num_threads)

    def _similar_users_internal(self, uidx: np.ndarray, n: int):
        """Cosine similarity of the user factors."""
        return cosine_similar(self.user_factors_, uidx, n, self.backend, self.num_threads)

    # ----------------------------------------------------------------- fold-in
    def recalculate_user(
        self, items: Any, ratings: Any, return_bias: bool = False
    ) -> np.ndarray | tuple[np.ndarray, float]:
        """Factors of a (new) user from their ratings, item side fixed.

        Solves the regularised least squares problem that the SGD updates of
        one user converge to when the item factors and biases are held fixed:
        ``min sum_j (r_j - mu - b_i(j) - b_u - p . q_j)^2 + n reg (|p|^2 + b_u^2)``
        over ``p`` (and ``b_u`` when the model has biases), with ``n`` the
        number of ratings (the SGD penalty is paid once per rating).

        Parameters
        ----------
        items : array_like (n,) of raw item ids known to the model
        ratings : array_like (n,) finite numbers
        return_bias : bool, default False
            Also return the user's bias ``b_u``.

        Returns
        -------
        factors : (factors,) ndarray of the model dtype, the user's ``p``
            (the contract of every model's ``recalculate_user``)
        (factors, bias) with ``return_bias=True``: ``bias`` the float ``b_u``
            (0.0 for a model without biases); the model predicts
            ``mu + bias + b_i + factors . q_i``.

        An empty rating list gives zero factors and bias (the model then
        predicts ``mu + b_i``). Unknown item ids raise ``ValueError`` naming the
        position.
        """
        self._check_fitted()
        iidx, r = fold_in_ratings(self, items, ratings)
        k = self.item_factors_.shape[1]
        dtype = self.item_factors_.dtype
        if r.shape[0] == 0:
            return fold_in_result(np.zeros(k), 0.0, dtype, return_bias)
        Q = self.item_factors_[iidx].astype(np.float64)
        target = r - self.intercept_ - self.item_bias_[iidx].astype(np.float64)
        p, bias = ridge_fold_in(Q, target, self.regularization, bool(self.biases))
        return fold_in_result(p, bias, dtype, return_bias)

    # ------------------------------------------------------------- persistence
    def _get_state(self) -> dict[str, np.ndarray]:
        return factor_state(
            self, "user_factors", "item_factors", "user_bias", "item_bias", "intercept"
        )

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        params = self._validated_params()
        restore_factors(
            self, state, params["factors"], params["dtype"],
            "user_factors", "item_factors", "user_bias", "item_bias", "intercept",
        )  # fmt: skip
        self.history_ = []
        self.best_epoch_ = None
