"""Neighbourhood collaborative filtering: :class:`UserKNN` and :class:`ItemKNN`.

Two jobs, two formulas: ``predict`` estimates ratings, ``recommend`` ranks.

Rating prediction (``predict``)
-------------------------------
scikit-surprise's k-NN family (Herlocker et al., "An algorithmic framework for
performing collaborative filtering", SIGIR 1999; Sarwar et al., "Item-based
collaborative filtering recommendation algorithms", WWW 2001; Koren, "Factor
in the neighbors", TKDD 2010). For ItemKNN, with ``m_i`` and ``sigma_i`` the
centring of item ``i`` chosen by ``centering``::

    r_hat(u, i) = m_i + sigma_i * sum_j s(i, j) (r_uj - m_j) / sigma_j / sum_j s(i, j)

over ``N_k(i; u)``: the ``k`` items ``j != i`` rated by ``u`` with the highest
*positive* similarity to ``i`` (ties: lower index first). UserKNN is the mirror
image (users ``v`` who rated ``i``). ``centering``:

- ``"mean"`` (default; surprise's ``KNNWithMeans``): ``m`` the means, ``sigma = 1``;
- ``"zscore"`` (``KNNWithZScore``): ``m`` the means, ``sigma`` the population
  standard deviations (a zero one replaced by that of all ratings, as surprise);
- ``"baseline"`` (``KNNBaseline``): ``r_hat = b_ui + sum s (r_uj - b_uj) / sum s``
  with the baselines ``b_ui = mu + b_u + b_i`` of :func:`fit_baselines`
  (surprise's ``BaselineOnly``: ALS by default, or SGD; ``baseline*``
  parameters); with fewer than ``min_k`` neighbours, and for unknown users or
  items, the prediction is the baseline itself (``mu`` plus the known biases);
- ``"none"`` (``KNNBasic``): ``sum s r_uj / sum s``.

The older ``centered`` flag still works: ``True`` is ``centering="mean"``,
``False`` is ``"none"`` (None, the default, defers to ``centering``).

Top-N ranking (``recommend``, ``ranking``)
------------------------------------------
Ranking items by their predicted rating favours obscure items with one or two
very similar neighbours (on ml-latest-small that scores a precision@10 of
0.007, far below recommending the most popular items). The default ranking
is the neighbourhood *sum* instead:

- ``"sum"`` (default). ItemKNN: ``score(u, i) = sum of s(i, j)`` over the items
  ``j`` that ``u`` rated among ``i``'s ``k`` most similar items (Deshpande and
  Karypis, "Item-based top-N recommendation algorithms", TOIS 2004).
  UserKNN: ``score(u, i) = sum of s(u, v)`` over ``u``'s ``k`` most similar
  users ``v`` who rated ``i``. Items no neighbour reaches score 0.
- ``"weighted"``: the same sums with each term multiplied by the centred
  rating: ItemKNN ``r_uj - mean_u`` (``"zscore"``: divided by the user's
  standard deviation; ``"baseline"``: ``r_uj - b_uj``; ``"none"``: ``r_uj``),
  UserKNN ``(r_vi - m_v) / sigma_v`` as in the prediction formula.
- ``"rating"``: the predicted rating (the formula above, unclipped; items
  with fewer than ``min_k`` neighbours get the fallback of ``predict``).

Why ``"sum"``: measured on ml-latest-small, 80/20 random splits with seeds 0,
1 and 2, relevant items = test ratings >= 4 (``bench/knn_defaults.py``,
``bench/knn_topn.py``, BENCHMARKS.md): with the default similarity the sum
gives precision@10 0.192-0.196 (ItemKNN) and 0.178-0.183 (UserKNN); the
weighted sum scored less with every similarity and shrinkage tried (seed 0,
``bench/knn_topn.py --grid``); ``"rating"`` with Pearson and no shrinkage
(the former defaults) scores 0.007-0.008 (ItemKNN) and 0.001 (UserKNN), and
0.0002-0.0008 with the cosine. implicit's ``CosineRecommender(K=20)`` gets
0.146-0.158 and Popularity 0.115-0.118.

Similarity and shrinkage defaults
---------------------------------
``similarity="cosine"`` (full-vector norms, on the ratings) with Koren's
shrinkage ``s * n / (n + shrinkage)`` over the ``n`` co-ratings of the pair.
``shrinkage=None`` (default) means 100 for ``"pearson"`` and
``"pearson_baseline"`` (Koren's and surprise's value; without it Pearson's
best neighbours are pairs with two co-raters and a correlation of exactly 1)
and 10 for the cosine family, tfidf and bm25 (their full-vector norms already
damp pairs with little support; 10 keeps precision@10 within 2% of no
shrinkage and cuts the weakest-support neighbours). Measured on the splits
above: cosine beats Pearson both for ranking (ItemKNN p@10 0.192 against
0.166 for Pearson with shrinkage 100) and for rating prediction (ItemKNN RMSE
0.869 against 0.880, and 0.900 for unshrunk Pearson). ``"pearson_baseline"``
(the cosine of baseline residuals over the co-rated support, shrunk by
``(n - 1) / (n - 1 + shrinkage)`` as surprise does) needs the baselines and is
computed on them. ``"tfidf"`` and ``"bm25"`` weight the ratings as implicit's
``TFIDFRecommender`` / ``BM25Recommender`` do (:mod:`fastrec.neighbours`).

For rating prediction like surprise's KNNBaseline use ``ItemKNN(k=40,
similarity="pearson_baseline", centering="baseline", shrinkage=100,
fallback="global")`` (its predictions are surprise's, to rounding); for top-N
lists keep the defaults.

Semantics, and where they match scikit-surprise
-----------------------------------------------
- Neighbours are chosen among those who rated the target; only positive
  similarities count. Surprise takes the ``k`` largest similarities among the
  raters and then skips the non-positive ones, which keeps exactly the same
  neighbours (the positive ones come first).
- A pair without a common rating, with fewer than ``min_support`` common
  ratings, or with a zero variance on its common support (Pearson) has no
  similarity (surprise stores 0): it is never a neighbour, and
  ``similar_items`` / ``similar_users`` do not list it (as
  :func:`fastrec.similarity`, whose kinds and options these are).
  ``min_support`` and ``shrinkage`` apply to every similarity, in ``predict``,
  ``recommend`` and ``similar_*`` alike.
- Fewer than ``min_k`` neighbours (including none): the prediction is the
  target's centring ``m`` (the neighbour term is dropped, as surprise), the
  global mean with ``centering="none"`` (surprise's ``KNNBasic`` default
  prediction), the baseline with ``"baseline"``.
- Unknown or cold users/items: with ``fallback="means"`` (the default) the
  base class baseline (global mean, or the item mean for an unknown user with
  a known item, or the user mean for a known user with an unknown item).
  Surprise returns the global mean in all these cases (KNNBaseline: the
  baseline): ``fallback="global"`` does the same, so a model configured like
  surprise predicts like it on every pair. ``centering="baseline"`` always
  uses the baselines.
- Predictions are clipped to the training rating range (surprise clips to the
  reader's rating scale).
- The target is never its own neighbour. (Surprise would count it, with
  similarity 1, when predicting a pair that is in the training set.)
- Ties between equal similarities at the ``k``-th place are broken by lower
  index here and by data order in surprise.

On implicit data (every rating 1) Pearson has zero variance everywhere, so
every prediction falls back; the cosine kinds work there.

Computation and memory
----------------------
Similarities are computed on demand (``kernels/*/knn``): ``predict`` groups the
query pairs by target, computes the target's similarity with the rows that can
be neighbours (the raters of its query columns, flagged in their accumulator
line) in one sparse pass (dense per-thread accumulators; six co-rated sums per
pair, added as two 32-byte vector updates) and picks each query's neighbours
among the raters (a quickselect threshold, not a heap). This is exact for any
``k`` and needs no stored similarity matrix: the memory is the ratings (twice:
by rows and by columns, 8 bytes per rating each) plus about ``108 * n_x``
bytes of scratch per thread (``n_x`` = users for UserKNN, items for ItemKNN).

``recommend`` scores every item for a batch of users:

- UserKNN computes each query user's similarity row on demand (no user-user
  matrix, whatever the number of users). ``"sum"`` / ``"weighted"``: its ``k``
  best users. ``"rating"``: it sorts the positive neighbours and walks them in
  descending similarity, giving each item its first ``k`` raters (the same
  top-k as ``predict``); ``max_neighbors`` bounds that walk to the most
  similar users (None: all of them, exact). Scratch per thread: about
  ``68 * n_users + 20 * n_items + 12 * max_neighbors`` bytes, plus the base
  class's 16 MB score block.
- ItemKNN keeps the most similar items of each item with a positive
  similarity (``similarity_``, CSR, sorted indices; built on first use): its
  ``k`` best for ``"sum"`` / ``"weighted"``, its ``max_neighbors`` best for
  ``"rating"`` (None: all positive pairs, exact), and scores user ``u``
  through the transposed lists (``"sum"``: ``u``'s row times the transposed
  lists; ``"rating"``: item ``i``'s neighbours are the ``k`` best stored
  neighbours that ``u`` rated, ``12 * k * n_items`` bytes of scratch per
  thread). With a cosine-family similarity (also tfidf and bm25) the lists
  come from :func:`fastrec.neighbours.similarity_rows`.

Every long compiled call (the neighbour lists, ``predict``, ``recommend``,
``similar_*``) runs in slices of rows of bounded work (``_SLICE_WORK`` inner
steps, tens of milliseconds), so Ctrl-C stops it within about a second on
either backend; the result does not depend on the slicing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from .. import _backend
from .._kernels import knn as knn_kernels
from .._validation import check_choice, check_float, check_int
from ..data import Interactions
from ..neighbours import (
    KINDS,
    MODEL_ONLY_KINDS,
    check_similarity,
    similarity_rows,
    transpose_csr,
)
from .base import CallbackType, Recommender, expect_csr

__all__ = ["ItemKNN", "UserKNN", "fit_baselines"]

SIMILARITIES = KINDS + MODEL_ONLY_KINDS  # the values of ``similarity`` (check_similarity)
FALLBACKS = ("means", "global")  # see the ``fallback`` parameter
CENTERINGS = ("mean", "baseline", "zscore", "none")
RANKINGS = ("sum", "weighted", "rating")
BASELINE_METHODS = ("als", "sgd")
# kernel code of each similarity; every other kind is a dot product of transformed rows (1)
_KIND_CODE = {"pearson": 0, "pearson_baseline": 2}
_RANK_CODE = {"rating": 0, "sum": 1, "weighted": 2}
#: The shrinkage used when ``shrinkage=None`` (the default), by similarity: Koren's
#: and scikit-surprise's 100 for the correlations, 10 for the cosine family, whose
#: full-vector norms already damp pairs with little support (measured in
#: ``bench/knn_defaults.py``; see BENCHMARKS.md).
DEFAULT_SHRINKAGE = {
    "pearson": 100.0,
    "pearson_baseline": 100.0,
    "centered_cosine": 10.0,
    "cosine": 10.0,
    "adjusted_cosine": 10.0,
    "tfidf": 10.0,
    "bm25": 10.0,
}

# Bytes of padded (rows, max_neighbors) output computed at once by ItemKNN.fit.
_NEIGHBOR_BLOCK_BYTES = 64 << 20
# Work (inner-loop steps: co-rating visits, scored entries) of one compiled
# call in fit / predict / recommend. The calls run in slices of about this
# much work (tens of milliseconds), and Python checks for Ctrl-C between them.
_SLICE_WORK = 1 << 25


def _slices(cost: np.ndarray, budget: int | None = None) -> Iterator[slice]:
    """Consecutive slices of ``range(len(cost))`` of about ``budget`` total cost each."""
    budget = _SLICE_WORK if budget is None else budget
    n = cost.shape[0]
    if n == 0:
        return
    ends = np.cumsum(cost, dtype=np.float64)
    start = 0
    while start < n:
        base = ends[start - 1] if start else 0.0
        stop = int(np.searchsorted(ends, base + budget, side="right"))
        stop = min(max(stop, start + 1), n)
        yield slice(start, stop)
        start = stop


def fit_baselines(
    R: sp.csr_matrix,
    method: str = "als",
    n_epochs: int | None = None,
    reg_u: float = 15.0,
    reg_i: float = 10.0,
    reg: float = 0.02,
    learning_rate: float = 0.005,
    backend: str = "auto",
) -> tuple[float, np.ndarray, np.ndarray]:
    """Baselines ``b_ui = mu + b_u + b_i`` as scikit-surprise's ``BaselineOnly`` fits them.

    Parameters
    ----------
    R : csr_matrix (n_users, n_items), the ratings
    method : {"als", "sgd"}
        ``"als"`` (surprise's default): ``n_epochs`` (default 10) rounds of
        ``b_i = sum_u (r_ui - mu - b_u) / (reg_i + |U_i|)`` for every item, then
        ``b_u = sum_i (r_ui - mu - b_i) / (reg_u + |I_u|)`` for every user,
        starting from zeros. Each half-step is exact and order-free, so the
        result is surprise's up to rounding. ``"sgd"``: ``n_epochs`` (default
        20) passes of ``err = r - (mu + b_u + b_i); b_u += lr (err - reg b_u);
        b_i += lr (err - reg b_i)`` over the ratings in user order (surprise
        walks them in the order users appear in its data set, so the results
        differ slightly).
    reg_u, reg_i : ALS regularisation (surprise: 15 and 10)
    reg, learning_rate : SGD parameters (surprise: 0.02 and 0.005)

    Returns
    -------
    mu : float, bu : (n_users,) float64, bi : (n_items,) float64
    """
    method = check_choice(method, "baseline", BASELINE_METHODS)
    r = np.asarray(R.data, dtype=np.float64)
    n_users, n_items = R.shape
    mu = float(r.mean()) if r.size else 0.0
    bu = np.zeros(n_users)
    bi = np.zeros(n_items)
    if n_epochs is None:
        n_epochs = 10 if method == "als" else 20
    if method == "als":
        rows = np.repeat(np.arange(n_users), np.diff(R.indptr))
        cols = R.indices
        n_u = np.diff(R.indptr).astype(np.float64)
        n_i = np.bincount(cols, minlength=n_items).astype(np.float64)
        for _ in range(n_epochs):
            bi = np.bincount(cols, weights=r - mu - bu[rows], minlength=n_items) / (reg_i + n_i)
            bu = np.bincount(rows, weights=r - mu - bi[cols], minlength=n_users) / (reg_u + n_u)
    else:
        kernel = knn_kernels.get(backend).baseline_sgd
        kernel(
            np.ascontiguousarray(R.indptr, dtype=np.int64),
            np.ascontiguousarray(R.indices, dtype=np.int32),
            np.ascontiguousarray(r),
            mu,
            float(learning_rate),
            float(reg),
            int(n_epochs),
            bu,
            bi,
        )
    return mu, bu, bi


class _Side:
    """One orientation of the ratings for the kernels (A by rows, B = A.T).

    ``a_ratings`` / ``b_ratings`` are the ratings; ``a_sim`` / ``b_sim`` the
    values the similarity is computed on (the ratings for Pearson, baseline
    residuals for pearson_baseline, transformed values for the dot kinds).
    """

    def __init__(
        self,
        A: sp.csr_matrix,
        B: sp.csr_matrix,
        kind: str,
        residual_A: sp.csr_matrix | None = None,
    ) -> None:
        self.a_indptr = np.ascontiguousarray(A.indptr, dtype=np.int64)
        self.a_indices = np.ascontiguousarray(A.indices, dtype=np.int32)
        self.a_ratings = np.ascontiguousarray(A.data, dtype=np.float32)
        self.b_indptr = np.ascontiguousarray(B.indptr, dtype=np.int64)
        self.b_indices = np.ascontiguousarray(B.indices, dtype=np.int32)
        self.b_ratings = np.ascontiguousarray(B.data, dtype=np.float32)
        self.prepared = None  # the dot kinds' transformed matrix (fastrec.neighbours)
        if kind == "pearson":
            self.a_sim = self.a_ratings
            self.b_sim = self.b_ratings
        elif kind == "pearson_baseline":
            assert residual_A is not None
            self.a_sim = np.ascontiguousarray(residual_A.data, dtype=np.float32)
            self.b_sim = np.ascontiguousarray(transpose_csr(residual_A).data, dtype=np.float32)
        else:
            from ..neighbours import prepare

            prepared = prepare(A, kind, matrix_T=B, dtype=np.float32)
            self.prepared = prepared
            self.a_sim = np.ascontiguousarray(prepared.matrix.data, dtype=np.float32)
            self.b_sim = np.ascontiguousarray(prepared.matrix_T.data, dtype=np.float32)
        # work of one target row's similarity pass: its co-rating visits
        col_len = np.diff(self.b_indptr).astype(np.float64)
        self.row_work = (
            np.add.reduceat(
                np.r_[col_len[self.a_indices], 0.0], np.minimum(self.a_indptr[:-1], A.nnz)
            )
            * (np.diff(self.a_indptr) > 0)
            + 1.0
        )

    def csr_args(self) -> tuple[np.ndarray, ...]:
        return (
            self.a_indptr,
            self.a_indices,
            self.a_sim,
            self.b_indptr,
            self.b_indices,
            self.b_sim,
        )


class _NeighborhoodModel(Recommender):
    """Shared machinery of UserKNN and ItemKNN (see the module docstring)."""

    _user_based: ClassVar[bool]

    def __init__(
        self,
        k: int = 40,
        similarity: str = "cosine",
        min_support: int = 1,
        shrinkage: float | None = None,
        min_k: int = 1,
        centered: bool | None = None,
        max_neighbors: int | None = 200,
        fallback: str = "means",
        num_threads: int = 0,
        backend: str = "auto",
        centering: str = "mean",
        ranking: str = "sum",
        baseline: str = "als",
        baseline_epochs: int | None = None,
        baseline_reg_u: float = 15.0,
        baseline_reg_i: float = 10.0,
        baseline_reg: float = 0.02,
        baseline_lr: float = 0.005,
    ) -> None:
        self.k = k
        self.similarity = similarity
        self.min_support = min_support
        self.shrinkage = shrinkage
        self.min_k = min_k
        self.centered = centered
        self.max_neighbors = max_neighbors
        self.fallback = fallback
        self.num_threads = num_threads
        self.backend = backend
        self.centering = centering
        self.ranking = ranking
        self.baseline = baseline
        self.baseline_epochs = baseline_epochs
        self.baseline_reg_u = baseline_reg_u
        self.baseline_reg_i = baseline_reg_i
        self.baseline_reg = baseline_reg
        self.baseline_lr = baseline_lr

    # ----------------------------------------------------------------- params
    def _validated_params(self) -> dict[str, Any]:
        k = check_int(self.k, "k", minimum=1)
        if self.k > np.iinfo(np.int32).max:
            raise ValueError(f"k must fit in int32, got {self.k}")
        similarity = check_similarity(self.similarity, "similarity", model=True)
        min_support = check_int(self.min_support, "min_support", minimum=0)
        if self.min_support > np.iinfo(np.int32).max:
            raise ValueError(f"min_support must fit in int32, got {self.min_support}")
        if self.shrinkage is not None:
            check_float(self.shrinkage, "shrinkage", minimum=0.0)
        min_k = check_int(self.min_k, "min_k", minimum=0)
        if self.min_k > np.iinfo(np.int32).max:
            raise ValueError(f"min_k must fit in int32, got {self.min_k}")
        if self.centered is not None and not isinstance(self.centered, bool | np.bool_):
            raise ValueError(f"centered must be a bool or None, got {self.centered!r}")
        check_choice(self.centering, "centering", CENTERINGS)
        if self.centered is not None and self.centering not in ("mean", "none"):
            raise ValueError(
                f"centered={self.centered!r} conflicts with centering={self.centering!r}: "
                "give centering only"
            )
        check_choice(self.ranking, "ranking", RANKINGS)
        if self.max_neighbors is not None:
            check_int(self.max_neighbors, "max_neighbors", minimum=1)
        check_choice(self.fallback, "fallback", FALLBACKS)
        check_choice(self.baseline, "baseline", BASELINE_METHODS)
        if self.baseline_epochs is not None:
            check_int(self.baseline_epochs, "baseline_epochs", minimum=0)
        check_float(self.baseline_reg_u, "baseline_reg_u", minimum=0.0)
        check_float(self.baseline_reg_i, "baseline_reg_i", minimum=0.0)
        check_float(self.baseline_reg, "baseline_reg", minimum=0.0)
        check_float(self.baseline_lr, "baseline_lr", minimum=0.0)
        return {
            "k": k,
            "similarity": similarity,
            "min_support": min_support,
            "shrinkage": self._shrinkage,
            "min_k": min_k,
            "centering": self._centering,
            "num_threads": _backend.resolve_threads(self.num_threads),
            "backend": _backend.resolve_backend(self.backend),
        }

    @property
    def _shrinkage(self) -> float:
        """``shrinkage``, or its default for the similarity when None."""
        if self.shrinkage is not None:
            return float(self.shrinkage)
        return DEFAULT_SHRINKAGE[self.similarity]

    @property
    def _centering(self) -> str:
        """``centering``, with the older ``centered`` flag mapped onto it."""
        if self.centered is None:
            return self.centering
        return "mean" if self.centered else "none"

    # -------------------------------------------------------------------- fit
    def fit(
        self,
        X: Interactions,
        show_progress: bool = False,
        callback: CallbackType | None = None,
    ) -> _NeighborhoodModel:
        """Learn the means, baselines and rating lookups (and ItemKNN's neighbour lists).

        Parameters
        ----------
        X : Interactions
            Explicit ratings (implicit data is treated as ratings of 1).
        show_progress : bool
            Progress bar over ItemKNN's neighbour-list blocks.
        callback : callable(iteration, info), optional
            Called once per neighbour-list block (ItemKNN) or once (UserKNN).

        Returns
        -------
        self
        """
        self._validated_params()
        self._begin_fit(X)
        self._prepare(X.matrix)
        self._fit_neighbors(show_progress, callback)
        self._end_fit()
        return self

    def _needs_baselines(self) -> bool:
        return self._centering == "baseline" or self.similarity == "pearson_baseline"

    def _prepare(self, R: sp.csr_matrix) -> None:
        R = R.astype(np.float32, copy=False)
        RT = transpose_csr(R)
        residual = None
        self.baseline_mean_ = self.baseline_user_ = self.baseline_item_ = None
        if self._needs_baselines():
            mu, bu, bi = fit_baselines(
                R,
                self.baseline,
                self.baseline_epochs,
                self.baseline_reg_u,
                self.baseline_reg_i,
                self.baseline_reg,
                self.baseline_lr,
                self.backend,
            )
            self.baseline_mean_, self.baseline_user_, self.baseline_item_ = mu, bu, bi
            rows = np.repeat(np.arange(R.shape[0]), np.diff(R.indptr))
            res = R.data.astype(np.float64) - (mu + bu[rows] + bi[R.indices])
            residual = sp.csr_matrix((res, R.indices, R.indptr), shape=R.shape)
        self._ratings = _Side(R, RT, "pearson")  # users x items, for ItemKNN scoring
        if self._user_based:
            same = self.similarity == "pearson"
            self._side = self._ratings if same else _Side(R, RT, self.similarity, residual)
            mean, bias, count = self.user_mean_, self.baseline_user_, self.user_count_
            matrix = R
        else:
            residual_T = None if residual is None else transpose_csr(residual)
            self._side = _Side(RT, R, self.similarity, residual_T)
            mean, bias, count = self.item_mean_, self.baseline_item_, self.item_count_
            matrix = RT
        centering = self._centering
        self._scales = np.ones(mean.shape[0])
        if centering == "baseline":
            self._means = np.ascontiguousarray(self.baseline_mean_ + bias, dtype=np.float64)
        else:
            self._means = np.ascontiguousarray(mean, dtype=np.float64)
        if centering == "zscore":
            # population standard deviation of each row; 0 -> the overall one (surprise)
            rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
            dev = matrix.data.astype(np.float64) - self._means[rows]
            var = np.bincount(rows, weights=dev * dev, minlength=matrix.shape[0])
            var = np.divide(var, count, out=np.zeros_like(var), where=count > 0)
            sigma = np.sqrt(var)
            overall = float(np.std(matrix.data.astype(np.float64))) if matrix.nnz else 1.0
            sigma[sigma == 0.0] = overall if overall > 0 else 1.0
            self._scales = sigma
        self._kernel_centered = centering != "none"

    def _fit_neighbors(self, show_progress: bool, callback: CallbackType | None) -> None:
        if callback is not None:
            callback(0, {})

    def _kernel(self, name: str) -> Any:
        return getattr(knn_kernels.get(self.backend), name)

    def _full_baseline(self, uidx: np.ndarray, iidx: np.ndarray) -> np.ndarray:
        """``mu + b_u + b_i`` (centering="baseline")."""
        return self.baseline_mean_ + self.baseline_user_[uidx] + self.baseline_item_[iidx]

    # ---------------------------------------------------------------- predict
    def _predict_known(self, uidx: np.ndarray, iidx: np.ndarray) -> np.ndarray:
        target, other = (uidx, iidx) if self._user_based else (iidx, uidx)
        target = np.asarray(target, dtype=np.int32)
        # group the queries by target; 16-bit keys get NumPy's O(n) radix sort
        key = target.astype(np.uint16) if self._means.shape[0] <= 1 << 16 else target
        order = np.argsort(key, kind="stable")
        sorted_target = target[order]
        starts = np.flatnonzero(np.r_[True, sorted_target[1:] != sorted_target[:-1]])
        group_target = np.ascontiguousarray(sorted_target[starts], dtype=np.int32)
        group_ptr = np.r_[starts, sorted_target.shape[0]].astype(np.int64)
        query_other = np.ascontiguousarray(np.asarray(other, dtype=np.int32)[order])
        pred = np.empty(order.shape[0], dtype=np.float64)
        count = np.empty(order.shape[0], dtype=np.int32)
        side = self._side
        kernel = self._kernel("predict_pairs")
        # work of a group: its target's similarity pass plus its queries' columns
        col_len = np.diff(side.b_indptr)
        work = side.row_work[group_target] + np.add.reduceat(
            col_len[query_other].astype(np.float64) + 1.0, group_ptr[:-1]
        )
        for sl in _slices(work):
            q0, q1 = int(group_ptr[sl.start]), int(group_ptr[sl.stop])
            with _backend.threads(self.num_threads):
                kernel(
                    *side.csr_args(),
                    side.b_ratings,
                    self._means,
                    self._scales,
                    _KIND_CODE.get(self.similarity, 1),
                    int(self.min_support),
                    self._shrinkage,
                    self._k_eff(),
                    bool(self._kernel_centered),
                    group_target[sl],
                    group_ptr[sl.start : sl.stop + 1] - q0,
                    query_other[q0:q1],
                    pred[q0:q1],
                    count[q0:q1],
                )
        few = count < max(self.min_k, 1)
        if few.any():
            centering = self._centering
            if centering == "baseline":
                u_s, i_s = np.asarray(uidx)[order], np.asarray(iidx)[order]
                pred[few] = self._full_baseline(u_s[few], i_s[few])
            elif centering == "none":
                pred[few] = self.global_mean_
            else:
                pred[few] = self._means[sorted_target[few]]
        out = np.empty_like(pred)
        out[order] = pred
        np.clip(out, self.rating_min_, self.rating_max_, out=out)
        return out

    # -------------------------------------------------------------- recommend
    def _finish_scores(self, uidx: np.ndarray, scores: np.ndarray) -> np.ndarray:
        cold = self.item_count_ == 0
        if cold.any() and self.ranking == "rating":  # (top-N scores: 0, no neighbour)
            if self.fallback == "global":
                scores[:, cold] = np.float32(self.global_mean_)
            else:
                scores[:, cold] = self.user_mean_[uidx].astype(np.float32)[:, None]
        return scores

    def _baseline(self, uidx: np.ndarray, iidx: np.ndarray) -> np.ndarray:
        # pairs whose user or item has no training data (see ``fallback``)
        if self._centering == "baseline":
            # surprise's KNNBaseline: mu plus the biases that are known
            out = np.full(uidx.shape, self.baseline_mean_, dtype=np.float64)
            ku = (uidx >= 0) & (uidx < self.n_users_)
            ku[ku] = self.user_count_[uidx[ku]] > 0
            ki = (iidx >= 0) & (iidx < self.n_items_)
            ki[ki] = self.item_count_[iidx[ki]] > 0
            out[ku] += self.baseline_user_[uidx[ku]]
            out[ki] += self.baseline_item_[iidx[ki]]
            return np.clip(out, self.rating_min_, self.rating_max_)
        if self.fallback == "global":
            return np.full(uidx.shape, self.global_mean_, dtype=np.float64)
        return super()._baseline(uidx, iidx)

    def _k_eff(self) -> int:
        """``k`` capped at the number of possible neighbours (the kernels size buffers by it)."""
        n = self.n_users_ if self._user_based else self.n_items_
        return max(1, min(int(self.k), n))

    def _similar_internal(self, rows: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        side = self._side
        n_x = side.a_indptr.shape[0] - 1
        out_idx = np.empty((rows.shape[0], n), dtype=np.int32)
        out_val = np.empty((rows.shape[0], n), dtype=np.float32)
        if rows.shape[0] == 0 or n_x == 0:
            out_idx.fill(-1)
            out_val.fill(-np.inf)
            return out_idx, out_val
        rows = np.ascontiguousarray(rows, dtype=np.int32)
        for sl in _slices(side.row_work[rows]):
            with _backend.threads(self.num_threads):
                self._kernel("similar_rows")(
                    *side.csr_args(),
                    _KIND_CODE.get(self.similarity, 1),
                    int(self.min_support),
                    self._shrinkage,
                    rows[sl],
                    False,
                    out_idx[sl],
                    out_val[sl],
                )
        return out_idx, out_val

    # ------------------------------------------------------------ persistence
    def _get_state(self) -> dict[str, np.ndarray]:
        return {}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self._validated_params()
        self._prepare(self._seen)


class UserKNN(_NeighborhoodModel):
    """User-based k-NN: top-N lists and rating prediction (surprise's k-NN family).

    Parameters
    ----------
    k : int >= 1, default 40
        Neighbours per prediction (users who rated the item), and, for the
        ``"sum"`` / ``"weighted"`` rankings, the user's neighbours whose items
        are scored. More than the number of users (items for
        ItemKNN) is capped at that number.
    similarity : {"cosine", "pearson", "pearson_baseline", "centered_cosine",
            "adjusted_cosine", "tfidf", "bm25"}, default "cosine"
        See the module docstring and :mod:`fastrec.neighbours`; "pearson" and
        "pearson_baseline" are over the co-rated support. The same option as
        ``fastrec.similarity(kind=...)``: the same values (``neighbours.KINDS``),
        the same definitions and the same validation message
        (:func:`fastrec.neighbours.check_similarity`), plus "pearson_baseline",
        which needs the model's fitted baselines.
    min_support : int >= 0
        Pairs with fewer common ratings have no similarity.
    shrinkage : float >= 0 or None, default None
        Similarity times ``n / (n + shrinkage)``, n the common ratings
        (``(n - 1) / (n - 1 + shrinkage)`` for "pearson_baseline"). None: 100
        for the Pearson kinds, 10 for the others (``DEFAULT_SHRINKAGE``).
    min_k : int >= 0
        Fewer neighbours than this: fall back (module docstring).
    centered : bool or None, default None
        Older spelling of ``centering``: True is "mean", False is "none".
    max_neighbors : int >= 1 or None, default 200
        ``ranking="rating"`` only: ``recommend`` walks at most this many most
        similar users per query user (None: all, exact). ``predict`` is always
        exact.
    fallback : {"means", "global"}, default "means"
        The prediction for a pair whose user or item has no training data:
        the base class's rule (item mean for an unknown user, user mean for an
        unknown item, global mean for both), or always the global mean, as
        scikit-surprise does (``centering="baseline"``: the baselines, both).
    num_threads : int, 0 = all cores
    backend : {"auto", "numba", "cython"}
    centering : {"mean", "baseline", "zscore", "none"}, default "mean"
        The prediction formula (KNNWithMeans, KNNBaseline, KNNWithZScore,
        KNNBasic; module docstring).
    ranking : {"sum", "weighted", "rating"}, default "sum"
        How ``recommend`` scores items (module docstring: "sum" measured best
        for top-N; "rating" ranks by the predicted rating).
    baseline : {"als", "sgd"}, default "als"
        How the baselines are fitted (``centering="baseline"`` or
        ``similarity="pearson_baseline"``), as surprise's ``bsl_options``.
    baseline_epochs : int or None
        None: 10 for ALS, 20 for SGD (surprise's defaults).
    baseline_reg_u, baseline_reg_i : float, default 15 and 10
        ALS regularisation of the user and item biases.
    baseline_reg, baseline_lr : float, default 0.02 and 0.005
        SGD regularisation and learning rate.

    Attributes
    ----------
    baseline_mean_, baseline_user_, baseline_item_ : the fitted baselines
        (``mu``, ``b_u``, ``b_i``; None when the model needs none).

    Notes
    -----
    Nothing user x user is ever stored: every call computes the similarity rows
    of the users it needs. See the module docstring for semantics and memory.
    """

    _user_based = True

    def _score_users(self, uidx: np.ndarray) -> np.ndarray:
        uidx = np.ascontiguousarray(uidx, dtype=np.int32)
        side = self._side
        scores = np.empty((uidx.shape[0], self.n_items_), dtype=np.float32)
        if self._kernel_centered:
            fallback = self._means[uidx] if self._centering != "baseline" else None
        else:
            fallback = np.full(uidx.shape[0], self.global_mean_)
        if fallback is None:  # baseline centering: mu + b_u + b_i varies by item
            fallback = np.full(uidx.shape[0], np.nan)
        max_nb = self.n_users_ if self.max_neighbors is None else self.max_neighbors
        mode = _RANK_CODE[self.ranking]
        # work of a user: its similarity pass plus the ratings of its neighbours
        work = side.row_work[uidx] + self.n_items_
        for sl in _slices(work):
            with _backend.threads(self.num_threads):
                self._kernel("score_user_based")(
                    *side.csr_args(),
                    side.a_ratings,
                    self._means,
                    self._scales,
                    _KIND_CODE.get(self.similarity, 1),
                    int(self.min_support),
                    self._shrinkage,
                    self._k_eff(),
                    int(self.min_k),
                    bool(self._kernel_centered),
                    mode,
                    int(min(max_nb, np.iinfo(np.int32).max)),
                    uidx[sl],
                    np.ascontiguousarray(fallback[sl], dtype=np.float64),
                    scores[sl],
                )
        if mode == 0 and self._centering == "baseline":
            few = np.isnan(scores)
            if few.any():
                r, c = np.nonzero(few)
                scores[r, c] = self._full_baseline(uidx[r], c)
        return self._finish_scores(uidx, scores)

    def _similar_users_internal(self, uidx: np.ndarray, n: int):
        return self._similar_internal(uidx, n)


class ItemKNN(_NeighborhoodModel):
    """Item-based k-NN: top-N lists and rating prediction (surprise's k-NN family).

    Parameters are those of :class:`UserKNN` (``k``: the neighbours of each
    item for the ``"sum"`` / ``"weighted"`` rankings and per prediction),
    except:

    max_neighbors : int >= 1 or None, default 200
        ``ranking="rating"`` only: how many most similar items (positive
        similarity) are kept per item in ``similarity_`` (None: all, exact;
        memory about ``16 * n_items * max_neighbors`` bytes). ``predict`` is
        always exact and does not use them.

    Attributes
    ----------
    similarity_ : csr_matrix (n_items, n_items) float32
        Row i: the kept neighbours of item i (its ``k`` best for the top-N
        rankings, ``max_neighbors`` for "rating") and their (positive)
        similarity, sorted by index. Built on first use (``recommend`` or reading the
        attribute), not in ``fit``: ``predict`` never needs it. Saved with the
        model once built.
    """

    _user_based = False

    def _fit_neighbors(self, show_progress: bool, callback: CallbackType | None) -> None:
        # predict never needs the neighbour lists: they are built on first use
        self._similarity = None
        self._weights = None
        self._show_progress = show_progress
        if callback is not None:
            callback(0, {})

    @property
    def similarity_(self) -> sp.csr_matrix:
        """Kept neighbours of every item (built on first use, see the class doc)."""
        self._check_fitted()
        if self._similarity is None:
            self._build_neighbors()
        return self._similarity

    def _neighbor_cap(self) -> int:
        n = self.n_items_
        if self.ranking == "rating":
            cap = n - 1 if self.max_neighbors is None else self.max_neighbors
        else:
            cap = self.k
        return max(1, min(cap, n - 1))

    def _build_neighbors(self) -> None:
        n = self.n_items_
        cap = self._neighbor_cap()
        block = max(1, _NEIGHBOR_BLOCK_BYTES // (8 * cap))
        side = self._side
        slices = []
        if side.prepared is not None and n <= block:
            # every row in one call: fastrec.similarity's all-rows kernel accumulates
            # each pair once for both of its rows (half the work of query rows) and
            # slices itself for Ctrl-C; the same neighbours and values
            slices.append(slice(0, n))
        for sl in _slices(side.row_work) if not slices else ():
            slices.extend(
                slice(a, min(a + block, sl.stop)) for a in range(sl.start, sl.stop, block)
            )
        pieces_idx, pieces_val, lengths = [], [], []
        progress = tqdm(slices, disable=not self._show_progress, desc="ItemKNN neighbours")
        for sl in progress:
            rows = np.arange(sl.start, sl.stop, dtype=np.int32)
            idx = np.empty((rows.shape[0], cap), dtype=np.int32)
            val = np.empty((rows.shape[0], cap), dtype=np.float32)
            if side.prepared is not None:
                # a dot kind: fastrec.similarity's top-k kernel (one float
                # accumulator per candidate instead of six), same neighbours
                idx, val = similarity_rows(
                    side.prepared,
                    rows,
                    kind=None,
                    k=cap,
                    min_support=int(self.min_support),
                    shrinkage=self._shrinkage,
                    min_similarity=0.0,  # zeros are never kept: positive only
                    backend=self.backend,
                    num_threads=self.num_threads,
                )
                if idx.shape[1] < cap:
                    pad = cap - idx.shape[1]
                    idx = np.pad(idx, ((0, 0), (0, pad)), constant_values=-1)
                    val = np.pad(val, ((0, 0), (0, pad)), constant_values=-np.inf)
                idx[~(val > 0)] = -1
            else:
                with _backend.threads(self.num_threads):
                    self._kernel("similar_rows")(
                        *side.csr_args(),
                        _KIND_CODE.get(self.similarity, 1),
                        int(self.min_support),
                        self._shrinkage,
                        rows,
                        True,
                        idx,
                        val,
                    )
            keep = idx >= 0
            lengths.append(keep.sum(axis=1))
            pieces_idx.append(idx[keep])
            pieces_val.append(val[keep])
        indptr = np.zeros(n + 1, dtype=np.int64)
        if lengths:
            np.cumsum(np.concatenate(lengths), out=indptr[1:])
        S = sp.csr_matrix(
            (
                np.concatenate(pieces_val) if pieces_val else np.zeros(0, np.float32),
                np.concatenate(pieces_idx) if pieces_idx else np.zeros(0, np.int32),
                indptr,
            ),
            shape=(n, n),
        )
        S.sort_indices()
        self._set_similarity(S)

    def _set_similarity(self, S: sp.csr_matrix) -> None:
        self._similarity = S
        ST = transpose_csr(S)
        self._nbr_indptr = np.ascontiguousarray(ST.indptr, dtype=np.int64)
        self._nbr_indices = np.ascontiguousarray(ST.indices, dtype=np.int32)
        self._nbr_data = np.ascontiguousarray(ST.data, dtype=np.float32)
        # work of scoring a user: its ratings' neighbour lists
        r = self._ratings
        lens = np.diff(self._nbr_indptr).astype(np.float64)
        self._user_work = np.add.reduceat(
            np.r_[lens[r.a_indices], 0.0], np.minimum(r.a_indptr[:-1], r.a_indices.shape[0])
        ) * (np.diff(r.a_indptr) > 0)

    def _rating_weights(self) -> np.ndarray:
        """Weight of each training rating in the ``"weighted"`` top-N score.

        The user's centred rating: ``r_uj - b_uj`` (centering="baseline"),
        ``(r_uj - mean_u) / sigma_u`` ("zscore", sigma the user's standard
        deviation), ``r_uj - mean_u`` ("mean"), ``r_uj`` ("none").
        """
        r = self._ratings
        rows = np.repeat(np.arange(self.n_users_), np.diff(r.a_indptr))
        data = r.a_ratings.astype(np.float64)
        centering = self._centering
        if centering == "none":
            return np.ascontiguousarray(data, dtype=np.float32)
        if centering == "baseline":
            base = self._full_baseline(rows, r.a_indices)
            return np.ascontiguousarray(data - base, dtype=np.float32)
        w = data - self.user_mean_[rows]
        if centering == "zscore":
            count = np.maximum(self.user_count_, 1)
            sigma = np.sqrt(np.bincount(rows, weights=w * w, minlength=self.n_users_) / count)
            sigma[sigma == 0.0] = 1.0
            w = w / sigma[rows]
        return np.ascontiguousarray(w, dtype=np.float32)

    def _topn_weights(self) -> np.ndarray:
        # the weight of each rating in the top-N score ("sum": 1, "weighted": centred)
        if self._weights is None:
            if self.ranking == "sum":
                self._weights = np.ones(self._ratings.a_ratings.shape[0], dtype=np.float32)
            else:
                self._weights = self._rating_weights()
        return self._weights

    def _score_topn(self, users, n, exclude):
        # ranking "sum"/"weighted": the scores of score_item_topn and their top n in
        # one pass over the touched items (no dense row of n_items scores a user)
        if self.ranking == "rating":
            return None
        uidx = np.ascontiguousarray(users, dtype=np.int32)
        if self._similarity is None:
            self._build_neighbors()
        r = self._ratings
        weights = self._topn_weights()
        nbr = (self._nbr_indptr, self._nbr_indices, self._nbr_data)
        if exclude is None:
            excl_indptr = np.zeros(uidx.shape[0] + 1, dtype=np.int64)
            excl_indices = np.zeros(0, dtype=np.int32)
        else:
            excl_indptr = np.ascontiguousarray(exclude[0], dtype=np.int64)
            excl_indptr = excl_indptr - excl_indptr[0]
            excl_indices = np.ascontiguousarray(
                exclude[1][int(exclude[0][0]) : int(exclude[0][-1])], dtype=np.int32
            )
        out_idx = np.empty((uidx.shape[0], n), dtype=np.int32)
        out_val = np.empty((uidx.shape[0], n), dtype=np.float32)
        kernel = self._kernel("recommend_item_topn")
        # the dense fallback scans n_items for a user with few candidates
        work = self._user_work[uidx] + 0.05 * self.n_items_
        for sl in _slices(work):
            e0, e1 = int(excl_indptr[sl.start]), int(excl_indptr[sl.stop])
            with _backend.threads(self.num_threads):
                kernel(
                    r.a_indptr,
                    r.a_indices,
                    weights,
                    *nbr,
                    uidx[sl],
                    excl_indptr[sl.start : sl.stop + 1] - e0,
                    excl_indices[e0:e1],
                    out_idx[sl],
                    out_val[sl],
                )
        return out_idx, out_val

    def _score_users(self, uidx: np.ndarray) -> np.ndarray:
        uidx = np.ascontiguousarray(uidx, dtype=np.int32)
        if self._similarity is None:
            self._build_neighbors()
        r = self._ratings
        scores = np.empty((uidx.shape[0], self.n_items_), dtype=np.float32)
        nbr = (self._nbr_indptr, self._nbr_indices, self._nbr_data)
        work = self._user_work[uidx] + self.n_items_
        if self.ranking != "rating":
            weights = self._topn_weights()
            kernel = self._kernel("score_item_topn")
            for sl in _slices(work):
                with _backend.threads(self.num_threads):
                    kernel(r.a_indptr, r.a_indices, weights, *nbr, uidx[sl], scores[sl])
            return scores
        if not self._kernel_centered:
            fallback = np.full(self.n_items_, self.global_mean_)
        elif self._centering == "baseline":
            fallback = np.full(self.n_items_, np.nan)  # mu + b_u + b_i, filled below
        else:
            fallback = self._means
        kernel = self._kernel("score_item_based")
        for sl in _slices(work):
            with _backend.threads(self.num_threads):
                kernel(
                    r.a_indptr,
                    r.a_indices,
                    r.a_ratings,
                    *nbr,
                    self._means,
                    self._scales,
                    self._k_eff(),
                    int(self.min_k),
                    bool(self._kernel_centered),
                    uidx[sl],
                    np.ascontiguousarray(fallback, dtype=np.float64),
                    scores[sl],
                )
        if self._centering == "baseline":
            few = np.isnan(scores)
            if few.any():
                rr, c = np.nonzero(few)
                scores[rr, c] = self._full_baseline(uidx[rr], c)
        return self._finish_scores(uidx, scores)

    def _similar_items_internal(self, iidx: np.ndarray, n: int):
        return self._similar_internal(iidx, n)

    def _get_state(self) -> dict[str, np.ndarray]:
        S = self._similarity
        if S is None:  # not built yet: rebuilt on first use after loading
            return {}
        return {
            "similarity_indptr": S.indptr,
            "similarity_indices": S.indices,
            "similarity_data": S.data,
        }

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        super()._set_state(state)
        self._similarity = None
        self._weights = None
        self._show_progress = False
        if "similarity_indptr" not in state:
            return
        n = self.n_items_
        S = expect_csr(state, "similarity", (n, n), "similarity_", dtype=np.float32)
        if (S.data <= 0).any():
            raise ValueError("model array 'similarity_data' holds non-positive similarities")
        lengths = np.diff(S.indptr)
        if self.max_neighbors is not None and lengths.size and lengths.max() > self.max_neighbors:
            row = int(np.argmax(lengths > self.max_neighbors))
            raise ValueError(
                f"similarity_ row {row} holds {lengths[row]} neighbours, more than "
                f"max_neighbors={self.max_neighbors}"
            )
        if (S.indices == np.repeat(np.arange(n, dtype=np.int32), lengths)).any():
            raise ValueError("similarity_ holds an item's similarity with itself")
        self._set_similarity(S)
