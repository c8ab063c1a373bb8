"""``BPR``: Bayesian personalised ranking for implicit feedback, by Hogwild SGD.

The model (Rendle, Freudenthaler, Gantner & Schmidt-Thieme, "BPR: Bayesian
personalized ranking from implicit feedback", UAI 2009) scores an item for a
user as ``x_ui = p_u . q_i + b_i`` (factors and an item bias) and is trained
to rank every item the user interacted with above the items they did not:
stochastic gradient ascent on ``ln sigma(x_ui - x_uj)`` minus L2 penalties,
one sampled triple (user ``u``, positive item ``i``, negative item ``j``) at
a time (the paper's LearnBPR, section 4.3). Kernel: ``kernels/numba/bpr.py``
and its twin ``kernels/cython/bpr.pyx``, whose docstring gives the update
rule.

Training data: every stored value ``r > 0`` is a positive (the values are
not used otherwise: the data is binarised); a stored ``r = 0`` is not a
positive; a negative value is an error. An epoch draws as many samples as
there are positives.

Sampling happens in the kernel, from a counter-based generator keyed by the
seed, the epoch and the sample's number (see the kernel), so the triples of a
seeded fit are the same for any thread count and either backend. With one
thread (``num_threads=1``) a seeded fit is reproducible; with several, the
threads update shared rows without locks (Hogwild: Niu et al., NIPS 2011),
the order in which updates land varies with the timing, and so does the
result (statistically the same). The two backends agree to rounding.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from .. import _backend
from .._kernels import bpr as bpr_kernels
from .._validation import (
    check_choice,
    check_float,
    check_int,
    check_nonnegative,
)
from ..data import Interactions
from ._factors import (
    cosine_similar,
    factor_scores,
    factor_state,
    fold_in_result,
    restore_factors,
)
from ._sgd_layout import padded_factors
from .base import Recommender

__all__ = ["BPR", "NEGATIVE_SAMPLERS"]

NEGATIVE_SAMPLERS = ("uniform", "popular")

# Fewer samples than this per thread: use fewer threads (the parts are cheap
# to start, but tiny parts of a small data set only race on the same rows).
MIN_SAMPLES_PER_THREAD = 10_000


def positive_matrix(matrix: sp.csr_matrix, name: str = "X.matrix") -> sp.csr_matrix:
    """The stored entries with value > 0 (a CSR with sorted int32 indices).

    Raises ``ValueError`` naming the first negative value (row, column and
    position): implicit feedback has no negative interactions.
    """
    check_nonnegative(
        matrix, name, "BPR takes implicit feedback, values r >= 0 (r > 0 is a positive)"
    )
    keep = matrix.data > 0
    if keep.all():
        return matrix
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    counts = np.bincount(rows[keep], minlength=matrix.shape[0])
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return sp.csr_matrix((matrix.data[keep], matrix.indices[keep], indptr), shape=matrix.shape)


@dataclass
class _Training:
    """What one fit's epochs share: parts, the sample table, the parameters."""

    threads: int
    indptr: np.ndarray
    indices: np.ndarray
    pairs: np.ndarray
    part_bounds: np.ndarray
    seed: np.uint64
    popular: bool
    arrays: tuple[np.ndarray, np.ndarray, np.ndarray]  # user rows, item rows, item bias


class BPR(Recommender):
    """Bayesian personalised ranking (matrix factorisation with item biases).

    Parameters
    ----------
    factors : int >= 1
        Length of the latent vectors.
    learning_rate : float > 0
        SGD step size.
    regularization : float >= 0
        L2 weight on the factors and biases touched by each sample.
    iterations : int >= 1
        Epochs; each draws as many (user, positive, negative) samples as there
        are positives.
    random_state : None, int or numpy.random.Generator
        Seeds the initial factors and the sampling.
    num_threads : int
        Threads for fitting; 0 means all cores. See the module docstring for
        what depends on it.
    backend : {"auto", "numba", "cython"}
    dtype : {"float32", "float64"}
        Precision of the factors and of the updates.
    negatives : {"uniform", "popular"}
        How the negative item of a sample is drawn: uniformly over the items
        (the paper's sampler) or in proportion to the items' numbers of
        interactions. Either way an item the user interacted with is drawn
        again (up to 8 draws; then the sample is skipped and counted).
    init_std : float >= 0
        Standard deviation of the normal initial factors (biases start at 0).

    Attributes
    ----------
    user_factors_ : (n_users, factors) ndarray of ``dtype``
        Zero for users without positives (they are never sampled).
    item_factors_ : (n_items, factors) ndarray of ``dtype``
    item_bias_ : (n_items,) ndarray of ``dtype``
    history_ : list of dict
        Per epoch: ``epoch``, ``loss`` (mean of ``-ln sigma(x_ui - x_uj)``
        over the epoch's samples, each taken just before its update),
        ``skipped`` (samples without a negative), ``threads``, ``seconds``.

    Notes
    -----
    ``predict`` returns the score ``p_u . q_i + b_i``. A pair with an unknown
    or cold user and a known item scores ``b_i`` (what the model gives a user
    with zero factors); an unknown item scores 0. ``recommend`` for an
    unknown or cold user returns the most popular items, as for every model;
    :meth:`recalculate_user` folds in a new user's interactions.
    """

    _is_rating_model = False  # scores rank items; they are not ratings

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.01,
        regularization: float = 0.01,
        iterations: int = 100,
        random_state: Any = None,
        num_threads: int = 0,
        backend: str = "auto",
        dtype: str = "float32",
        negatives: str = "uniform",
        init_std: float = 0.01,
    ):
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.random_state = random_state
        self.num_threads = num_threads
        self.backend = backend
        self.dtype = dtype
        self.negatives = negatives
        self.init_std = init_std

    # ------------------------------------------------------------------ checks
    def _validated_params(self) -> dict[str, Any]:
        params = self._checked_params(
            "random_state", "factors", "learning_rate", "regularization", "iterations",
            "num_threads", "backend", "dtype",
        )  # fmt: skip
        params["negatives"] = check_choice(self.negatives, "negatives", NEGATIVE_SAMPLERS)
        params["init_std"] = check_float(self.init_std, "init_std", minimum=0.0)
        return params

    # --------------------------------------------------------------------- fit
    def fit(
        self,
        X: Interactions,
        show_progress: bool = False,
        callback: Callable[[int, dict], Any] | None = None,
    ) -> BPR:
        """Learn the factors and item biases from the positives in ``X``.

        Parameters
        ----------
        X : Interactions
            Implicit feedback, values ``r >= 0``; ``r > 0`` is a positive.
        show_progress : bool
            A tqdm bar over the epochs.
        callback : callable(epoch, info), optional
            Called after every epoch with the ``history_`` entry; the model's
            attributes then hold that epoch's factors.

        Raises
        ------
        ValueError
            Invalid parameters, negative values or no positive (before any
            work).
        DivergenceError
            The loss or the factors became NaN or infinite (a ``ValueError``
            and ``FloatingPointError``); the model is left unfitted.
        """
        params = self._validated_params()
        self._check_callback(callback)
        positives = positive_matrix(X.matrix) if isinstance(X, Interactions) else None
        if positives is not None and positives.nnz == 0:
            raise ValueError("X has no positive value (r > 0): BPR has nothing to rank")
        self._begin_fit(X)
        run = self._start_training(params, positives)
        kernel = bpr_kernels.get(params["backend"]).bpr_epoch

        def step(epoch: int) -> tuple[dict, bool]:
            info = self._train_epoch(kernel, params, run, epoch)
            if callback is not None:  # the callback sees this epoch's factors
                self._publish(params["factors"], *run.arrays)
            return info, False

        with _backend.threads(run.threads):
            self._run_epochs(
                range(params["iterations"]), step, "BPR", show_progress, callback,
                lambda info: {"loss": f"{info['loss']:.4f}"},
            )  # fmt: skip
        self._publish(params["factors"], *run.arrays)
        self._end_fit()
        return self

    def _start_training(self, params: dict[str, Any], positives: sp.csr_matrix) -> _Training:
        """The sample table, the parts and the initial parameters (in this order of draws)."""
        dtype, k, backend = params["dtype"], params["factors"], params["backend"]
        rng = np.random.default_rng(self.random_state)
        indptr = np.ascontiguousarray(positives.indptr, dtype=np.int64)
        indices = np.ascontiguousarray(positives.indices, dtype=np.int32)
        # (user << 32) | item of every positive: one load per sampled positive
        pairs = np.repeat(np.arange(self.n_users_, dtype=np.int64) << 32, np.diff(indptr))
        pairs |= indices
        n_samples = int(indices.shape[0])
        threads = max(1, min(params["num_threads"], n_samples // MIN_SAMPLES_PER_THREAD))
        part_bounds = np.linspace(0, n_samples, threads + 1).round().astype(np.int64)
        with _backend.threads(threads):
            user_rows = padded_factors(rng, self.n_users_, k, dtype, params["init_std"], backend)
            item_rows = padded_factors(rng, self.n_items_, k, dtype, params["init_std"], backend)
        user_rows[np.diff(indptr) == 0] = 0  # never sampled: they score b_i
        item_bias = np.zeros(self.n_items_, dtype=dtype)
        seed = np.uint64(int(rng.integers(0, 2**63, dtype=np.int64)))
        self.history_ = []
        self.threads_ = threads
        return _Training(
            threads, indptr, indices, pairs, part_bounds, seed,
            params["negatives"] == "popular", (user_rows, item_rows, item_bias),
        )  # fmt: skip

    def _train_epoch(self, kernel, params: dict[str, Any], run: _Training, epoch: int) -> dict:
        """One epoch of samples (Hogwild over the parts); its ``history_`` entry."""
        start = time.perf_counter()
        part_loss = np.zeros(run.threads, dtype=np.float64)
        part_skipped = np.zeros(run.threads, dtype=np.int64)
        kernel(
            run.indptr, run.indices, run.pairs, run.seed, epoch, run.part_bounds,
            params["learning_rate"], params["regularization"], run.popular, *run.arrays,
            part_loss, part_skipped,
        )  # fmt: skip
        skipped = int(part_skipped.sum())
        done = run.pairs.shape[0] - skipped
        loss = float(part_loss.sum()) / done if done else 0.0
        self._check_finite(epoch, loss, run.arrays)
        return {
            "epoch": epoch,
            "loss": loss,
            "skipped": skipped,
            "threads": run.threads,
            "seconds": time.perf_counter() - start,
        }

    def _publish(self, k, user_rows, item_rows, item_bias) -> None:
        self.user_factors_ = np.ascontiguousarray(user_rows[:, :k])
        self.item_factors_ = np.ascontiguousarray(item_rows[:, :k])
        self.item_bias_ = item_bias.copy()

    def _check_finite(self, epoch: int, loss: float, arrays: tuple[np.ndarray, ...]) -> None:
        self._check_divergence(
            f"epoch {epoch}",
            loss,
            arrays,
            "the loss or the factors",
            f"learning_rate={self.learning_rate!r}, regularization={self.regularization!r}",
            "Lower learning_rate or raise regularization.",
        )

    # ----------------------------------------------------------------- predict
    def _baseline(self, uidx: np.ndarray, iidx: np.ndarray) -> np.ndarray:
        # a user without factors scores b_i; an unknown item scores 0
        out = np.zeros(uidx.shape, dtype=np.float64)
        known = iidx >= 0
        out[known] = self.item_bias_[iidx[known]]
        return out

    def _predict_known(self, uidx: np.ndarray, iidx: np.ndarray) -> np.ndarray:
        dots = np.einsum(
            "ij,ij->i", self.user_factors_[uidx], self.item_factors_[iidx], dtype=np.float64
        )
        return dots + self.item_bias_[iidx]

    def _score_users(self, uidx: np.ndarray) -> np.ndarray:
        return factor_scores(self.user_factors_[uidx], self.item_factors_, self.item_bias_)

    def _factor_parts(self):
        # recommend ranks p_u . q_i + b_i with the fused product + top-k kernel
        return (
            np.ascontiguousarray(self.user_factors_),
            np.ascontiguousarray(self.item_factors_),
            np.ascontiguousarray(self.item_bias_),
            None,
        )

    def _similar_items_internal(self, iidx: np.ndarray, n: int):
        """Cosine similarity of the item factors (the biases are not part of it)."""
        return cosine_similar(self.item_factors_, iidx, n, self.backend, self.num_threads)

    def _similar_users_internal(self, uidx: np.ndarray, n: int):
        return cosine_similar(self.user_factors_, uidx, n, self.backend, self.num_threads)

    # ----------------------------------------------------------------- fold-in
    def recalculate_user(
        self, items: Any, max_iterations: int = 200, return_bias: bool = False
    ) -> np.ndarray | tuple[np.ndarray, float]:
        """Factors of a (new) user from the items they interacted with, items fixed.

        Maximises the user's BPR objective with the item factors and biases
        held fixed: the mean over pairs of a given item ``i`` and an item
        ``j`` not given (weighted as the negative sampler draws them) of
        ``ln sigma(x_ui - x_uj)``, minus ``regularization * |p|^2`` (the
        penalty each sample applies), by L-BFGS from zero. The model is not
        changed.

        Parameters
        ----------
        items : array_like (m,) of raw item ids known to the model (repeats
            count once)
        max_iterations : int >= 1
        return_bias : bool, default False
            Return ``(factors, 0.0)``: BPR has item biases only, so a user's
            bias is 0 (the same contract as the rating models).

        Returns
        -------
        factors : ndarray (factors,) of the model's dtype (the contract of
            every model's ``recalculate_user``). No items, or every item given:
            the zero vector.
        """
        from scipy.optimize import minimize

        self._check_fitted()
        max_iterations = check_int(max_iterations, "max_iterations", minimum=1)
        iidx = np.unique(self._lookup_known(self._items, items, "items"))
        Q = self.item_factors_.astype(np.float64)
        b = self.item_bias_.astype(np.float64)
        k = Q.shape[1]
        negative = np.ones(self.n_items_, dtype=bool)
        negative[iidx] = False
        dtype = self.item_factors_.dtype
        if iidx.size == 0 or not negative.any():
            return fold_in_result(np.zeros(k), 0.0, dtype, return_bias)
        weight = (
            self.item_count_.astype(np.float64)
            if self.negatives == "popular"
            else np.ones(self.n_items_)
        )
        weight = np.where(negative, weight, 0.0)
        if weight.sum() == 0:
            return fold_in_result(np.zeros(k), 0.0, dtype, return_bias)
        weight /= weight.sum() * iidx.size
        reg = float(self.regularization)
        Qi, bi = Q[iidx], b[iidx]

        def objective(p):
            s = Q @ p + b  # every item's score
            x = (Qi @ p + bi)[:, None] - s[None, :]  # (m, n_items)
            loss = np.logaddexp(0.0, -x)  # -ln sigma(x)
            g = -weight[None, :] / (1.0 + np.exp(np.clip(x, -700, 700)))  # d loss / d x
            value = float(np.sum(weight[None, :] * loss)) + reg * float(p @ p)
            grad = Qi.T @ g.sum(axis=1) - Q.T @ g.sum(axis=0) + 2.0 * reg * p
            return value, grad

        result = minimize(
            objective, np.zeros(k), jac=True, method="L-BFGS-B",
            options={"maxiter": max_iterations},
        )  # fmt: skip
        return fold_in_result(result.x, 0.0, dtype, return_bias)

    # ------------------------------------------------------------- persistence
    def _get_state(self) -> dict[str, np.ndarray]:
        return factor_state(self, "user_factors", "item_factors", "item_bias")

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        params = self._validated_params()
        restore_factors(
            self, state, params["factors"], params["dtype"],
            "user_factors", "item_factors", "item_bias",
        )  # fmt: skip
        self.history_ = []
