"""``SVDpp``: Koren's SVD++ for explicit ratings, by parallel SGD over users.

The model (Koren, "Factorization meets the neighborhood: a multifaceted
collaborative filtering model", KDD 2008, section 4, eq. 15) adds to biased
matrix factorisation an implicit-feedback term: which items a user rated,
whatever the ratings,

    r_hat(u, i) = mu + b_u + b_i + q_i . (p_u + |N(u)|^-1/2 sum_{j in N(u)} y_j)

with ``N(u)`` the items of user ``u`` in the training data. Training is SGD
with Surprise's update rule (``SVDpp``; learning rate and regularisation
shared by all the parameters, as Surprise's ``lr_all`` and ``reg_all``), so
results are comparable with Surprise's; the defaults are Surprise's.

Schedule (kernels ``kernels/numba/svdpp.py`` and ``kernels/cython/svdpp.pyx``,
where the algebra is written out): each epoch visits the users in a fresh
random order and each user's ratings one after the other. Surprise re-sums the
implicit term ``z_u = |N(u)|^-1/2 sum_j y_j`` before every rating and updates
every ``y_j`` of the user after every rating (O(|N(u)|^2) vector operations per
user and epoch); the kernels keep ``z_u`` up to date incrementally (one
vector operation a rating) and write the user's ``y_j`` in one batch when the
user is done. Because every ``y_j`` of a user gets the same shrink factor and
the same added vector at each of the user's ratings, the batch is exactly the
per-rating rule (in exact arithmetic; rounding differs). What does differ from
Surprise: the visiting order (Surprise takes the users and ratings in the
order of the data, the same every epoch; here a seeded random order, reshuffled
every epoch), the random initial factors (same distribution, N(0, 0.1^2),
another generator), and with several threads the Hogwild races on the item
rows described in the kernel. The tests compare one-thread epochs with a
naive per-rating reference (``tests/reference_svdpp.py``).

Determinism: with ``num_threads=1`` a seeded fit is reproducible and the two
backends agree to rounding; with several threads the shared item rows make
the result vary from run to run (the accuracy does not, see BENCHMARKS.md).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from .. import _backend
from .._kernels import svdpp as svdpp_kernels
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
from ._sgd_layout import training_layout
from ._sgd_schedule import epoch_schedule
from .base import Recommender

__all__ = ["SVDpp"]

# Fewer training ratings than this per thread: use fewer threads (each thread
# runs whole users; chunks are re-cut every epoch). Measured on the shared
# 2-vCPU machine while it was heavily loaded (load average 12-15), 20 factors,
# interleaved fits: ml-latest-small (80k ratings, 20 epochs) took 0.56 s on
# one thread and 1.34 s on two (medians of 7); synthetic(50_000, 10_000, 2M)
# (3 epochs) 2.40 s against 2.70 s (Cython) and 2.49 s against 2.25 s (Numba),
# medians of 3. Popular items' rows (q_i, b_i, y_j) are written by both
# threads all the time, so a second thread pays only on larger data.
MIN_RATINGS_PER_THREAD = 100_000
# Chunks of users per thread in an epoch (dynamic schedule over the chunks).
CHUNKS_PER_THREAD = 4


class _Training(NamedTuple):
    """What one fit trains: the rating layout and the kernel's parameter arrays.

    ``arrays`` is ``(user_factors, item_rows, implicit_rows, user_bias,
    label_bias)``, the item rows and biases in label order.
    """

    threads: int
    n_chunks: int
    indptr: np.ndarray
    labels: np.ndarray
    ratings: np.ndarray
    arrays: tuple[np.ndarray, ...]
    item_label: np.ndarray


def implicit_sums(seen: sp.csr_matrix, implicit_factors: np.ndarray) -> np.ndarray:
    """``z_u = |N(u)|^-1/2 sum_{j in N(u)} y_j`` for every user (rows of ``seen``).

    Users without training items get the zero vector. Returns an
    ``(n_users, k)`` array of the factors' dtype, C order.
    """
    counts = np.diff(seen.indptr)
    scale = np.zeros(seen.shape[0], dtype=np.float64)
    scale[counts > 0] = 1.0 / np.sqrt(counts[counts > 0])
    pattern = sp.csr_matrix(
        (np.repeat(scale, counts).astype(implicit_factors.dtype), seen.indices, seen.indptr),
        shape=seen.shape,
    )
    return np.ascontiguousarray(pattern @ implicit_factors, dtype=implicit_factors.dtype)


class SVDpp(Recommender):
    """Koren's SVD++ (biased MF plus an implicit-feedback term), trained by SGD.

    Parameters
    ----------
    factors : int >= 1
        Length of ``p_u``, ``q_i`` and ``y_j``.
    epochs : int >= 1
        Passes over the training ratings.
    learning_rate : float > 0
        SGD step size of every parameter (Surprise's ``lr_all``).
    regularization : float >= 0
        L2 weight of every parameter, applied at every update (``reg_all``).
    init_std : float >= 0
        Factors start from N(0, init_std^2); biases start at 0.
    dtype : {"float32", "float64"}
        Precision of the parameters and of the arithmetic.
    random_state : None, int or numpy.random.Generator
        Seeds the initial factors and the visiting order.
    num_threads : int
        Threads for fitting; 0 means all cores. At most one thread per
        ``MIN_RATINGS_PER_THREAD`` (100 000) training ratings, so a fit on
        fewer than 200 000 ratings runs on one thread. One thread gives
        reproducible fits; several race on shared item rows (Hogwild).
    backend : {"auto", "numba", "cython"}

    Attributes
    ----------
    user_factors_ : (n_users, factors) ndarray of ``dtype`` (``p_u``)
    item_factors_ : (n_items, factors) ndarray of ``dtype`` (``q_i``)
    implicit_factors_ : (n_items, factors) ndarray of ``dtype`` (``y_j``)
    user_implicit_ : (n_users, factors) ndarray of ``dtype``
        ``|N(u)|^-1/2 sum_{j in N(u)} y_j`` (derived from the above).
    user_bias_, item_bias_ : (n_users,), (n_items,) ndarray of ``dtype``
    intercept_ : float, ``mu``: the training mean rating
    history_ : list of dict, the per-epoch ``info`` passed to the callback

    Notes
    -----
    ``predict`` clips to the training rating range (as Surprise does) and falls
    back to the baseline means for unknown or cold ids (see
    :mod:`fastrec.models.base`). A new user can be folded in with
    :meth:`recalculate_user`.
    """

    def __init__(
        self,
        factors: int = 20,
        epochs: int = 20,
        learning_rate: float = 0.007,
        regularization: float = 0.02,
        init_std: float = 0.1,
        dtype: str = "float32",
        random_state: Any = None,
        num_threads: int = 0,
        backend: str = "auto",
    ):
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.init_std = init_std
        self.dtype = dtype
        self.random_state = random_state
        self.num_threads = num_threads
        self.backend = backend

    # ------------------------------------------------------------------ checks
    def _validated_params(self) -> dict[str, Any]:
        return self._checked_params(
            "random_state", "factors", "epochs", "learning_rate", "regularization", "init_std",
            "dtype", "num_threads", "backend",
        )  # fmt: skip

    # --------------------------------------------------------------------- fit
    def fit(
        self,
        X: Interactions,
        show_progress: bool = False,
        callback: Callable[[int, dict], Any] | None = None,
    ) -> SVDpp:
        """Learn the parameters from the ratings in ``X``.

        Parameters
        ----------
        X : Interactions
            Explicit ratings (data built without ratings is refused).
        show_progress : bool
            A tqdm bar over the epochs.
        callback : callable(epoch, info), optional
            Called after every epoch (the model's attributes then hold that
            epoch's values) with ``info`` holding ``epoch``, ``train_loss``
            (mean squared error of the pass, each error taken just before its
            update), ``train_rmse``, ``threads`` (used) and ``seconds``.

        Raises
        ------
        ValueError
            Invalid parameters, or data without ratings (before any work).
        DivergenceError
            The run produced NaN or infinite parameters or loss (a
            ``ValueError``); the model is left unfitted.
        """
        params = self._validated_params()
        self._check_callback(callback)
        if isinstance(X, Interactions) and X.implicit:
            raise ValueError(
                "X has no ratings (it was built without a rating column): SVDpp is a model "
                "of explicit ratings; build X with ratings, or use an implicit-feedback model "
                "(ALS, BPR)"
            )
        self._begin_fit(X)
        check_factor_memory(self, params, item_tables=2)  # + implicit item factors
        rng = np.random.default_rng(self.random_state)
        run = self._start_training(params, rng)
        kernel = svdpp_kernels.get(params["backend"]).svdpp_epoch

        def step(epoch: int) -> tuple[dict, bool]:
            info = self._train_epoch(kernel, params, rng, run, epoch)
            if callback is not None:  # the callback sees this epoch's values
                self._publish(run.arrays, run.item_label)
            return info, False

        with _backend.threads(run.threads):
            self._run_epochs(
                range(params["epochs"]), step, "SVDpp", show_progress, callback,
                lambda info: {"rmse": f"{info['train_rmse']:.4f}"},
            )  # fmt: skip
        self._publish(run.arrays, run.item_label)
        self._end_fit()
        return self

    def _start_training(self, params: dict[str, Any], rng: np.random.Generator) -> _Training:
        """The rating layout and the initial parameters (in this order of ``rng`` draws)."""
        dtype, k = params["dtype"], params["factors"]
        nnz = self._seen.nnz
        threads = max(1, min(params["num_threads"], nnz // MIN_RATINGS_PER_THREAD))
        n_chunks = 1 if threads == 1 else CHUNKS_PER_THREAD * threads
        # each user's ratings in a random order, the item rows in label order
        block_ptr, labels, ratings, item_label = training_layout(
            self._seen, rng, dtype, 1, params["backend"], _trusted=True
        )
        indptr = np.empty(self.n_users_ + 1, dtype=np.int64)
        indptr[:-1] = block_ptr[:, 0]
        indptr[-1] = nnz
        std = dtype(params["init_std"])
        user_factors = rng.standard_normal((self.n_users_, k), dtype=dtype) * std
        item_rows = rng.standard_normal((self.n_items_, k), dtype=dtype) * std
        implicit_rows = rng.standard_normal((self.n_items_, k), dtype=dtype) * std
        user_bias = np.zeros(self.n_users_, dtype=dtype)
        label_bias = np.zeros(self.n_items_, dtype=dtype)
        self.intercept_ = float(dtype(self.global_mean_))
        self.history_ = []
        arrays = (user_factors, item_rows, implicit_rows, user_bias, label_bias)
        return _Training(threads, n_chunks, indptr, labels, ratings, arrays, item_label)

    def _train_epoch(
        self, kernel, params: dict[str, Any], rng: np.random.Generator, run: _Training, epoch: int
    ) -> dict:
        """One epoch (user order drawn from ``rng``); its ``history_`` entry."""
        start = time.perf_counter()
        user_order, bounds, _ = epoch_schedule(self.user_count_, rng, run.n_chunks)
        chunk_loss = np.zeros(bounds.shape[0] - 1, dtype=np.float64)
        kernel(
            run.indptr, run.labels, run.ratings, user_order, bounds, self.intercept_,
            params["learning_rate"], params["regularization"], *run.arrays, chunk_loss,
        )  # fmt: skip
        loss = float(chunk_loss.sum()) / run.ratings.shape[0]
        self._check_divergence(
            f"epoch {epoch}",
            loss,
            run.arrays,
            "the training loss or the parameters",
            f"learning_rate={self.learning_rate!r}, regularization={self.regularization!r}",
            "Lower learning_rate, raise regularization or lower init_std.",
        )
        return {
            "epoch": epoch,
            "train_loss": loss,
            "train_rmse": math.sqrt(loss),
            "threads": run.threads,
            "seconds": time.perf_counter() - start,
        }

    def _publish(self, arrays: tuple[np.ndarray, ...], item_label: np.ndarray) -> None:
        """Public attributes from the kernel's arrays (item rows back in item order)."""
        user_factors, item_rows, implicit_rows, user_bias, label_bias = arrays
        self.user_factors_ = user_factors.copy()
        self.item_factors_ = item_rows[item_label]
        self.implicit_factors_ = implicit_rows[item_label]
        self.user_bias_ = user_bias.copy()
        self.item_bias_ = label_bias[item_label]
        self.user_implicit_ = implicit_sums(self._seen, self.implicit_factors_)

    # ----------------------------------------------------------------- predict
    def _user_vectors(self, uidx: np.ndarray) -> np.ndarray:
        # p_u + z_u
        return self.user_factors_[uidx] + self.user_implicit_[uidx]

    def _predict_known(self, uidx: np.ndarray, iidx: np.ndarray) -> np.ndarray:
        dots = np.einsum(
            "ij,ij->i", self._user_vectors(uidx), self.item_factors_[iidx], dtype=np.float64
        )
        pred = (
            self.intercept_
            + self.user_bias_[uidx].astype(np.float64)
            + self.item_bias_[iidx].astype(np.float64)
            + dots
        )
        return np.clip(pred, self.rating_min_, self.rating_max_)

    def _score_users(self, uidx: np.ndarray) -> np.ndarray:
        return factor_scores(
            self._user_vectors(uidx),
            self.item_factors_,
            item_offset=self.item_bias_,
            row_offset=self.intercept_ + self.user_bias_[uidx].astype(np.float64),
        )

    def _factor_parts(self):
        # recommend ranks (p_u + z_u) . q_i + b_i with the fused kernel; mu + b_u
        # is the same for all of a user's items and is added to the scores after
        dtype = self.user_factors_.dtype
        return (
            np.ascontiguousarray(self.user_factors_ + self.user_implicit_, dtype=dtype),
            np.ascontiguousarray(self.item_factors_, dtype=dtype),
            np.ascontiguousarray(self.item_bias_, dtype=dtype),
            self.intercept_ + self.user_bias_.astype(np.float64),
        )

    def _similar_items_internal(self, iidx: np.ndarray, n: int):
        """Cosine similarity of the item factors ``q_i``."""
        return cosine_similar(self.item_factors_, iidx, n, self.backend, self.num_threads)

    def _similar_users_internal(self, uidx: np.ndarray, n: int):
        """Cosine similarity of the user vectors ``p_u + z_u``."""
        vectors = np.ascontiguousarray(self.user_factors_ + self.user_implicit_)
        return cosine_similar(vectors, uidx, n, self.backend, self.num_threads)

    # ----------------------------------------------------------------- fold-in
    def recalculate_user(
        self, items: Any, ratings: Any, return_bias: bool = False
    ) -> np.ndarray | tuple[np.ndarray, float]:
        """Factors of a (new) user from their ratings, item side fixed.

        The implicit term ``z`` comes from the given items' ``y_j``; then
        ``p`` and ``b_u`` solve the regularised least squares problem that the
        SGD updates of the user converge to with the item side held fixed:
        ``min sum_j (r_j - mu - b_i(j) - b_u - (p + z) . q_j)^2 + n reg (|p|^2 +
        b_u^2)``, ``n`` the number of ratings (the SGD penalty is paid once
        per rating), as :meth:`fastrec.SGDMF.recalculate_user`.

        Parameters
        ----------
        items : array_like (n,) of raw item ids known to the model, no repeats
        ratings : array_like (n,) finite numbers
        return_bias : bool, default False
            Also return the user's bias ``b_u``.

        Returns
        -------
        factors : (factors,) ndarray of the model dtype, ``p + z`` (the vector
            that scores items: ``mu + b_u + b_i + factors . q_i``; the
            contract of every model's ``recalculate_user``)
        (factors, bias) with ``return_bias=True``: ``bias`` the float ``b_u``

        No ratings: zero factors and bias (the model then predicts ``mu + b_i``).
        """
        self._check_fitted()
        iidx, r = fold_in_ratings(self, items, ratings, unique=True)
        k = self.item_factors_.shape[1]
        dtype = self.item_factors_.dtype
        n = r.shape[0]
        if n == 0:
            return fold_in_result(np.zeros(k), 0.0, dtype, return_bias)
        z = self.implicit_factors_[iidx].astype(np.float64).sum(axis=0) / math.sqrt(n)
        Q = self.item_factors_[iidx].astype(np.float64)
        target = r - self.intercept_ - self.item_bias_[iidx].astype(np.float64) - Q @ z
        p, bias = ridge_fold_in(Q, target, self.regularization, True)
        return fold_in_result(p + z, bias, dtype, return_bias)

    # ------------------------------------------------------------- persistence
    def _get_state(self) -> dict[str, np.ndarray]:
        return factor_state(
            self, "user_factors", "item_factors", "implicit_factors", "user_bias", "item_bias",
            "intercept",
        )  # fmt: skip

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        params = self._validated_params()
        restore_factors(
            self, state, params["factors"], params["dtype"], "user_factors", "item_factors",
            "implicit_factors", "user_bias", "item_bias", "intercept",
        )  # fmt: skip
        self.user_implicit_ = implicit_sums(self._seen, self.implicit_factors_)
        self.history_ = []
