"""``ALS``: matrix factorisation by alternating least squares, implicit or explicit.

Implicit feedback (the default) follows Hu, Koren and Volinsky, "Collaborative
Filtering for Implicit Feedback Datasets", ICDM 2008, section 4: every
(user, item) cell has a preference ``p = 1`` if the stored value ``r`` is
positive and 0 otherwise (every cell that is not stored: ``p = 0``), weighted
by the confidence ``c = 1 + alpha * r`` (1 for cells that are not stored). The
objective is

    sum_{u, i} c_ui (p_ui - x_u . y_i)^2 + regularization * (|X|^2 + |Y|^2).

Explicit feedback (``implicit=False``) is ALS with weighted-lambda
regularisation (Zhou, Wilkinson, Schreiber and Pan, "Large-scale Parallel
Collaborative Filtering for the Netflix Prize", AAIM 2008, section 3.1): least
squares over the stored ratings only,

    sum_{(u, i) rated} (r_ui - x_u . y_i)^2
        + regularization * (sum_u n_u |x_u|^2 + sum_i n_i |y_i|^2),

with ``n_u`` / ``n_i`` the numbers of ratings of the user / item. Predictions
are ``x_u . y_i``, clipped to the training rating range.

Explicit feedback with biases (``biases=True``, the default for explicit
feedback) predicts ``mu + b_u + c_i + x_u . y_i`` with ``mu`` the training mean
rating, and regularises the biases as the factors (weighted-lambda):

    sum_{(u, i) rated} (r_ui - mu - b_u - c_i - x_u . y_i)^2
        + regularization * (sum_u n_u (|x_u|^2 + b_u^2) + sum_i n_i (|y_i|^2 + c_i^2)).

Each side's bias is solved with its factors: the user half-sweep solves the
``k + 1`` unknowns ``[x_u, b_u]`` against the features ``[y_i, 1]`` and the
targets ``r_ui - mu - c_i`` (the other side's bias moves to the target), which
is the explicit system above in one more dimension, solved by the same
kernels (:func:`biased_half_sweep`); the item half-sweep likewise. Biases make
no sense for implicit feedback (the unobserved cells have preference 0, and
a bias would shift every one of them): ``biases=True`` with ``implicit=True``
is refused.

Each iteration is two half-sweeps: the user factors are solved with the item
factors fixed, then the other way round. Each row's k x k system is solved by
``cg_steps`` conjugate-gradient steps warm-started from the row's current
factors (Takacs, Pilaszy and Tikk, "Applications of the conjugate gradient
method for implicit feedback collaborative filtering", RecSys 2011), or
exactly by a per-row Cholesky factorisation (``solver="cholesky"``). For
implicit feedback ``Y^T Y + regularization * I`` is computed once per
half-sweep (BLAS) and the per-row work only touches the row's nonzeros; the
system matrix is never formed by the CG solver. Kernels:
``kernels/numba/als.py`` and its twin ``kernels/cython/als.pyx``.

Determinism: every row is written by one thread with a fixed sequence of
operations, so a seeded fit gives the same factors for any ``num_threads``.
The two backends agree to rounding (they sum in different orders).

Rows without interactions (users or items with no training data, or no
positive value) get the zero vector: the exact solution of their system.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from .. import _backend
from .._kernels import als as als_kernels
from .._validation import (
    as_float_array,
    check_choice,
    check_csr,
    check_float,
    check_int,
    check_nonnegative,
)
from ..data import IdVocabulary, Interactions
from ..topk import topk_trusted
from ._factors import (
    check_factor_memory,
    cosine_similar,
    factor_scores,
    factor_state,
    fold_in_result,
    restore_factors,
)
from .base import DivergenceError, Recommender, deprecated_error_alias

__all__ = [
    "ALS",
    "DivergenceError",
    "biased_half_sweep",
    "gram_matrix",
    "solve_rows",
    "training_loss",
]

SOLVERS = ("cg", "cholesky")


# the error's earlier name: the same class, so ``except`` clauses keep working
__getattr__ = deprecated_error_alias(__name__, "NonFiniteFactorsError")


class _Training(NamedTuple):
    """The kernel layouts of the data and, with biases, the ``[factors, bias]`` rows."""

    user_items: tuple[np.ndarray, np.ndarray, np.ndarray]
    item_users: tuple[np.ndarray, np.ndarray, np.ndarray]
    users_aug: np.ndarray | None
    items_aug: np.ndarray | None


def _check_nonnegative(matrix: sp.csr_matrix, name: str) -> None:
    """Implicit feedback: a negative value would give a confidence below 1."""
    check_nonnegative(
        matrix,
        name,
        "implicit feedback needs values r >= 0 (confidence c = 1 + alpha * r); use "
        "implicit=False for signed ratings",
    )


def _kernel_csr(matrix: sp.csr_matrix, dtype: type) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(indptr, indices, data)`` in the layout the kernels take."""
    indptr = matrix.indptr
    if indptr.dtype not in (np.int32, np.int64):
        indptr = indptr.astype(np.int64)
    return (
        np.ascontiguousarray(indptr),
        np.ascontiguousarray(matrix.indices, dtype=np.int32),
        np.ascontiguousarray(matrix.data, dtype=dtype),
    )


def _gram(factors: np.ndarray, regularization: float) -> np.ndarray:
    """``factors.T @ factors + regularization * I`` in the factors' dtype (BLAS)."""
    gram = factors.T @ factors
    gram[np.diag_indices_from(gram)] += factors.dtype.type(regularization)
    return np.ascontiguousarray(gram)


def half_sweep(
    matrix: tuple[np.ndarray, np.ndarray, np.ndarray],
    X: np.ndarray,
    Y: np.ndarray,
    regularization: float,
    alpha: float,
    implicit: bool,
    solver: str,
    cg_steps: int,
    backend: str,
    gram: np.ndarray | None = None,
) -> None:
    """Solve every row of ``X`` (in place) with ``Y`` fixed; see the module doc.

    ``matrix`` is ``(indptr, indices, data)`` of the rows of ``X`` against the
    rows of ``Y`` (already checked, ``data`` in the dtype of ``X``). Call it
    inside ``fastrec._backend.threads``. ``gram`` (implicit feedback) is
    ``_gram(Y, regularization)`` when the caller already has it. The trusted
    core of :func:`solve_rows`.
    """
    indptr, indices, data = matrix
    if implicit:
        if gram is None:
            gram = _gram(Y, regularization)
        if solver == "cg":
            kernel = als_kernels.get(backend).cg_implicit
            extra = (gram, float(alpha), int(cg_steps))
        else:
            kernel = als_kernels.get(backend).cholesky_implicit
            extra = (gram, float(alpha))
    elif solver == "cg":
        kernel = als_kernels.get(backend).cg_explicit
        extra = (float(regularization), int(cg_steps))
    else:
        kernel = als_kernels.get(backend).cholesky_explicit
        extra = (float(regularization),)
    # rows are solved independently: row blocks (Ctrl-C is seen between two),
    # each a view of X and of the row pointer (absolute positions into indices)
    n_rows = X.shape[0]
    first = max(1, (n_rows * (1 << 16)) // max(int(indptr[-1]), 1))
    for lo, hi in _backend.slices(n_rows, first, minimum=256):
        kernel(indptr[lo : hi + 1], indices, data, X[lo:hi], Y, *extra)


def gram_matrix(factors: Any, regularization: float, num_threads: int = 1) -> np.ndarray:
    """``factors.T @ factors + regularization * I``: the shared part of the implicit systems.

    One product per half-sweep, passed to every :func:`solve_rows` call of that
    half-sweep (``gram=``). Computed by BLAS on ``num_threads`` threads in the
    factors' dtype; with one thread (the default, and what ``ALS.fit`` uses)
    the result is bitwise the one ``ALS.fit`` computes.

    Parameters
    ----------
    factors : (n, k) float32/float64
        The fixed side's factors (all its rows).
    regularization : float >= 0

    Returns
    -------
    ndarray (k, k), C order, dtype of ``factors``
    """
    Y = as_float_array(factors, "factors", ndim=2)
    regularization = check_float(regularization, "regularization", minimum=0.0)
    n = _backend.resolve_threads(num_threads)
    with _backend._blas_controller().limit(limits=n, user_api="blas"):
        return _gram(Y, regularization)


def solve_rows(
    rows: Any,
    factors: Any,
    other_factors: Any,
    regularization: float = 0.01,
    alpha: float = 1.0,
    implicit: bool = True,
    solver: str = "cg",
    cg_steps: int = 3,
    gram: Any = None,
    backend: str = "auto",
    num_threads: int = 0,
    check_input: bool = True,
    intercept: float | None = None,
) -> np.ndarray:
    """One ALS step for a block of rows of one side, the other side fixed.

    The row-block solver of ALS: ``ALS.fit`` runs its core (``half_sweep``,
    the same kernels) on all the rows of a side at once, in place, and
    ``fastrec.distributed.ALS`` calls it on each row block, on the worker
    that holds the block. Every row is solved
    independently and by a fixed sequence of operations, so solving a side in
    blocks gives bitwise the factors of one call on the whole side, for any
    block boundaries and thread counts (same backend and ``gram``).

    Parameters
    ----------
    rows : scipy.sparse matrix (m, n_other)
        The interactions of the ``m`` rows with the other side: a block of rows
        of the users x items matrix to solve users, or of its transpose to
        solve items. Implicit feedback: values ``r >= 0``.
    factors : (m, k) float32/float64
        The rows' current factors (the conjugate-gradient warm start). Not
        modified.
    other_factors : (n_other, k), same dtype
        The fixed factors of the other side, all its rows.
    regularization, alpha, implicit, solver, cg_steps
        As the parameters of :class:`ALS`.
    gram : (k, k) ndarray, optional
        Implicit feedback: :func:`gram_matrix` of ``other_factors`` (computed
        here when None). Pass it when a half-sweep is split into blocks, so it
        is computed once.
    backend : {"auto", "numba", "cython"}
    num_threads : int
        Kernel threads; 0 means all cores.
    check_input : bool
        Validate the arrays (default). ``False`` is for callers that built
        them with the library's own checked layout (CSR with int32 sorted
        indices, C-ordered factors of one dtype, a finite gram): the compiled
        kernels have no bounds checks.
    intercept : float, optional
        Explicit feedback with biases (``implicit=False``), as ``ALS(biases=True)``:
        ``factors`` and ``other_factors`` then hold ``k`` factors and the bias
        in their last column (``k + 1`` columns), ``intercept`` is ``mu``, and
        each row's factors and bias are solved together
        (:func:`biased_half_sweep`).

    Returns
    -------
    ndarray (m, k) of the factors' dtype
        The new factors of the rows (a new array; with ``intercept``, the
        ``k + 1`` columns of factors and bias). A row without interactions
        gets the zero vector; a singular system (``solver="cholesky"`` with
        ``regularization=0``) leaves NaN in its row for the caller to report.
    """
    if check_input:
        X = as_float_array(factors, "factors", ndim=2)
        Y = as_float_array(other_factors, "other_factors", dtype=X.dtype, ndim=2)
        if X.shape[1] != Y.shape[1]:
            raise ValueError(
                f"factors and other_factors must have as many columns, got {X.shape[1]} "
                f"and {Y.shape[1]}"
            )
        m = check_csr(rows, "rows", dtype=X.dtype, shape=(X.shape[0], Y.shape[0]))
        regularization = check_float(regularization, "regularization", minimum=0.0)
        alpha = check_float(alpha, "alpha", minimum=0.0)
        cg_steps = check_int(cg_steps, "cg_steps", minimum=1)
        solver = check_choice(solver, "solver", SOLVERS)
        if not isinstance(implicit, bool | np.bool_):
            raise ValueError(f"implicit must be True or False, got {implicit!r}")
        if implicit:
            _check_nonnegative(m, "rows")
        if gram is not None:
            gram = as_float_array(gram, "gram", dtype=X.dtype, ndim=2)
            if gram.shape != (X.shape[1], X.shape[1]):
                raise ValueError(f"gram must have shape {(X.shape[1],) * 2}, got {gram.shape}")
            if not np.isfinite(gram).all():
                raise ValueError("gram must be finite")
        backend = _backend.resolve_backend(backend)
        if intercept is not None:
            if implicit:
                raise ValueError("intercept (biases) needs implicit=False")
            intercept = check_float(intercept, "intercept")
            if X.shape[1] < 2:
                raise ValueError(
                    "with intercept, factors hold k factors and a bias: at least 2 columns, "
                    f"got {X.shape[1]}"
                )
    else:
        X, Y, m = factors, other_factors, rows
    out = np.array(X, dtype=X.dtype, order="C", copy=True)  # the kernels write in place
    Y = np.ascontiguousarray(Y)
    if gram is not None:
        gram = np.ascontiguousarray(gram)
    with _backend.threads(num_threads):
        if intercept is not None:
            biased_half_sweep(
                _kernel_csr(m, X.dtype), out, Y, float(intercept), regularization, solver,
                cg_steps, backend,
            )  # fmt: skip
        else:
            half_sweep(
                _kernel_csr(m, X.dtype), out, Y, regularization, alpha, bool(implicit), solver,
                cg_steps, backend, gram=gram,
            )  # fmt: skip
    return out


def biased_half_sweep(
    matrix: tuple[np.ndarray, np.ndarray, np.ndarray],
    X: np.ndarray,
    Y: np.ndarray,
    intercept: float,
    regularization: float,
    solver: str,
    cg_steps: int,
    backend: str,
) -> None:
    """Explicit half-sweep with biases: solve every row of ``X`` (in place), ``Y`` fixed.

    ``X`` (n_rows, k + 1) and ``Y`` (n_cols, k + 1) hold the factors in their
    first ``k`` columns and the biases in the last. Row ``u`` of ``X`` becomes
    the minimiser of ``sum_i (r_ui - intercept - Y[i, k] - X[u] . [Y[i, :k], 1])^2
    + regularization * n_u * |X[u]|^2``: the weighted-lambda explicit system of
    :func:`half_sweep` against the features ``[Y[:, :k], 1]`` and the targets
    ``r - intercept - Y[i, k]`` (one O(nnz) gather and one copy of ``Y`` a
    call). ``matrix`` as for :func:`half_sweep`. An empty row gets zero
    factors and bias.
    """
    indptr, indices, data = matrix
    features = Y.copy()
    features[:, -1] = 1
    # target = r - mu - (bias of the other side)
    target = data - (Y[indices, -1] + Y.dtype.type(intercept))
    half_sweep(
        (indptr, indices, target), X, features, regularization, 1.0, False, solver, cg_steps,
        backend,
    )  # fmt: skip


def training_loss(
    matrix: sp.csr_matrix,
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    regularization: float,
    alpha: float = 1.0,
    implicit: bool = True,
    backend: str = "auto",
    num_threads: int = 0,
    *,
    user_bias: np.ndarray | None = None,
    item_bias: np.ndarray | None = None,
    intercept: float = 0.0,
) -> float:
    """The ALS training objective of the module docstring, normalised.

    Implicit: the objective divided by the total confidence
    ``sum_{u,i} c_ui = n_users * n_items + alpha * sum(r)``. Explicit: divided
    by the number of stored ratings. The sum over all ``n_users * n_items``
    cells uses ``sum_{u,i} (x_u . y_i)^2 = sum((X^T X) * (Y^T Y))`` plus a
    correction over the stored cells, so the cost is O(nnz k + (n + m) k^2).

    Parameters
    ----------
    matrix : scipy.sparse matrix (n_users, n_items)
        The training values ``r`` (implicit: ``r >= 0``).
    user_factors : (n_users, k) float32/float64
    item_factors : (n_items, k), same dtype
    regularization, alpha : float >= 0
    implicit : bool
    backend, num_threads : kernel choice and threads for the stored-cell pass.
    user_bias, item_bias : (n_users,), (n_items,), optional
        Explicit feedback with biases: the objective with biases of the module
        docstring (both or neither; ``intercept`` is ``mu``).

    Returns
    -------
    float (computed in float64 from the given factors)
    """
    X = as_float_array(user_factors, "user_factors", ndim=2)
    Y = as_float_array(item_factors, "item_factors", dtype=X.dtype, ndim=2)
    m = check_csr(matrix, "matrix", dtype=X.dtype, shape=(X.shape[0], Y.shape[0]))
    if X.shape[1] != Y.shape[1]:
        raise ValueError(
            f"user_factors and item_factors must have as many columns, got {X.shape[1]} "
            f"and {Y.shape[1]}"
        )
    regularization = check_float(regularization, "regularization", minimum=0.0)
    alpha = check_float(alpha, "alpha", minimum=0.0)
    biased = user_bias is not None or item_bias is not None
    if biased and (implicit or user_bias is None or item_bias is None):
        raise ValueError("user_bias and item_bias go together, with implicit=False")
    if implicit:
        _check_nonnegative(m, "matrix")
    if biased:
        user_bias = as_float_array(user_bias, "user_bias", dtype=np.float64, ndim=1)
        item_bias = as_float_array(item_bias, "item_bias", dtype=np.float64, ndim=1)
        if user_bias.shape[0] != X.shape[0] or item_bias.shape[0] != Y.shape[0]:
            raise ValueError(
                f"user_bias and item_bias must have {X.shape[0]} and {Y.shape[0]} entries, got "
                f"{user_bias.shape[0]} and {item_bias.shape[0]}"
            )
        # the residual data r - mu - b_u - c_i against x_u . y_i
        rows_of = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
        m = m.copy()
        m.data = m.data - (float(intercept) + user_bias[rows_of] + item_bias[m.indices]).astype(
            m.dtype
        )
    indptr, indices, data = _kernel_csr(m, X.dtype)
    rows = np.empty(X.shape[0], dtype=np.float64)
    kernel = als_kernels.get(backend).loss_rows
    with _backend.threads(num_threads):
        kernel(indptr, indices, data, X, Y, float(alpha), bool(implicit), rows)
    total = float(rows.sum())
    X64 = X.astype(np.float64)
    Y64 = Y.astype(np.float64)
    if implicit:
        total += float(np.sum((X64.T @ X64) * (Y64.T @ Y64)))
        total += regularization * (float(np.sum(X64 * X64)) + float(np.sum(Y64 * Y64)))
        weight = X.shape[0] * Y.shape[0] + alpha * float(np.sum(m.data, dtype=np.float64))
    else:
        n_u = np.diff(m.indptr).astype(np.float64)
        n_i = np.bincount(m.indices, minlength=Y.shape[0]).astype(np.float64)
        total += regularization * (
            float(n_u @ np.sum(X64 * X64, axis=1)) + float(n_i @ np.sum(Y64 * Y64, axis=1))
        )
        if biased:
            total += regularization * (float(n_u @ user_bias**2) + float(n_i @ item_bias**2))
        weight = float(m.nnz)
    return total / weight if weight > 0 else 0.0


class ALS(Recommender):
    """Matrix factorisation by alternating least squares (CG or exact solves).

    Parameters
    ----------
    factors : int >= 1
        Length of the latent vectors.
    regularization : float >= 0
        ``lambda`` of the module docstring (multiplied by the row counts for
        explicit feedback, weighted-lambda).
    alpha : float >= 0
        Implicit feedback: confidence ``c = 1 + alpha * r``. Ignored for
        explicit feedback.
    iterations : int >= 1
        Full sweeps (users then items).
    cg_steps : int >= 1
        Conjugate-gradient steps per row and half-sweep (``solver="cg"``).
    implicit : bool
        Implicit feedback (Hu et al. 2008) or explicit ratings (Zhou et al. 2008).
    solver : {"cg", "cholesky"}
        Warm-started conjugate gradient (fast; the default) or an exact
        per-row Cholesky solve (O(k^3) a row; a reference, fine for small k).
    dtype : {"float32", "float64"}
        Precision of the factors and of the arithmetic.
    random_state : None, int or numpy.random.Generator
        Seeds the initial factors (uniform in ``[0, 0.01)``).
    num_threads : int
        Threads for fitting; 0 means all cores. The result does not depend on it.
    backend : {"auto", "numba", "cython"}
    calculate_training_loss : bool
        Compute :func:`training_loss` after every iteration (one more pass
        over the data) and report it as ``info["loss"]`` to the callback.
    biases : None, True or False
        Explicit feedback: learn ``mu + b_u + c_i`` with the factors (see the
        module docstring). None (the default) means True for explicit
        feedback and False for implicit feedback; True with ``implicit=True``
        raises ``ValueError``. On ml-latest-small biases lower the test RMSE
        (see BENCHMARKS.md).

    Attributes
    ----------
    user_factors_ : (n_users, factors) ndarray of ``dtype``
    item_factors_ : (n_items, factors) ndarray of ``dtype``
    user_bias_, item_bias_ : (n_users,), (n_items,) ndarray of ``dtype``
        The biases (zeros without biases).
    intercept_ : float
        ``mu``: the training mean rating with biases, else 0.
    history_ : list of dict
        The per-iteration ``info`` dicts passed to the callback.

    Notes
    -----
    Fallbacks. Explicit feedback: the baseline means of
    :mod:`fastrec.models.base`. Implicit feedback: ``predict`` returns the
    score ``x_u . y_i``; a pair whose user or item is unknown or has no
    training data scores 0, which is what the model itself gives such a row
    (its factors are the zero vector). ``recommend`` for an unknown or cold
    user returns the most popular items, as for every model; a new user with
    interactions can be scored through :meth:`recalculate_user` /
    :meth:`recommend_new_user` (fold-in) or added by :meth:`partial_fit_users`.
    """

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.01,
        alpha: float = 1.0,
        iterations: int = 15,
        cg_steps: int = 3,
        implicit: bool = True,
        solver: str = "cg",
        dtype: str = "float32",
        random_state: Any = None,
        num_threads: int = 0,
        backend: str = "auto",
        calculate_training_loss: bool = False,
        biases: bool | None = None,
    ):
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.cg_steps = cg_steps
        self.implicit = implicit
        self.solver = solver
        self.dtype = dtype
        self.random_state = random_state
        self.num_threads = num_threads
        self.backend = backend
        self.calculate_training_loss = calculate_training_loss
        self.biases = biases

    # ------------------------------------------------------------------ checks
    def _validated_params(self) -> dict[str, Any]:
        for name in ("implicit", "calculate_training_loss"):
            value = getattr(self, name)
            if not isinstance(value, bool | np.bool_):
                raise ValueError(f"{name} must be True or False, got {value!r}")
        params = {"biases": self._resolved_biases()}
        params.update(self._checked_params("random_state", "factors", "regularization"))
        params["alpha"] = check_float(self.alpha, "alpha", minimum=0.0)
        params.update(self._checked_params("iterations"))
        params["cg_steps"] = check_int(self.cg_steps, "cg_steps", minimum=1)
        params["solver"] = check_choice(self.solver, "solver", SOLVERS)
        params.update(self._checked_params("dtype", "num_threads", "backend"))
        return params

    def _resolved_biases(self) -> bool:
        """``biases`` with None resolved (True for explicit feedback)."""
        if self.biases is None:
            return not self.implicit
        if not isinstance(self.biases, bool | np.bool_):
            raise ValueError(f"biases must be None, True or False, got {self.biases!r}")
        if self.biases and self.implicit:
            raise ValueError(
                "biases=True needs implicit=False: implicit feedback has no biases (every "
                "unobserved cell is a preference 0); leave biases=None or set it to False"
            )
        return bool(self.biases)

    # --------------------------------------------------------------------- fit
    def fit(
        self,
        X: Interactions,
        show_progress: bool = False,
        callback: Callable[[int, dict], Any] | None = None,
    ) -> ALS:
        """Learn the user and item factors from ``X``.

        Parameters
        ----------
        X : Interactions
            Implicit feedback: values ``r >= 0`` (counts, ratings, or 1 for
            plain interactions). Explicit feedback: ratings of any sign.
        show_progress : bool
            A tqdm bar over the iterations (off by default).
        callback : callable(iteration, info), optional
            Called after every iteration with ``info`` holding ``iteration``,
            ``seconds`` (the two half-sweeps) and ``loss`` (the value of
            :func:`training_loss` when ``calculate_training_loss``, else None).

        Raises
        ------
        ValueError
            Invalid parameters, or negative values with implicit feedback
            (before any work).
        DivergenceError
            A half-sweep produced NaN or infinite factors, or the training
            loss is not finite (a ``ValueError``); the model is left unfitted.
        """
        params = self._validated_params()
        self._check_callback(callback)
        self._check_data(X, params)
        self._begin_fit(X)
        check_factor_memory(self, params)
        run = self._start_training(params)
        with _backend.threads(params["num_threads"]):
            self._run_epochs(
                range(params["iterations"]),
                lambda iteration: self._iteration(params, run, iteration),
                "ALS", show_progress, callback,
                lambda info: {} if info["loss"] is None else {"loss": f"{info['loss']:.5f}"},
            )  # fmt: skip
        self._end_fit()
        return self

    def _check_data(self, X: Interactions, params: dict[str, Any]) -> None:
        """Refuse data the model cannot fit: negatives (implicit), no ratings (biases)."""
        if isinstance(X, Interactions) and self.implicit:
            _check_nonnegative(X.matrix, "X.matrix")
        if isinstance(X, Interactions) and params["biases"] and X.implicit:
            raise ValueError(
                "X has no ratings (it was built without a rating column): explicit ALS with "
                "biases models ratings; build X with ratings, or use implicit=True"
            )

    def _start_training(self, params: dict[str, Any]) -> _Training:
        """The kernel layouts and the initial factors (uniform in [0, 0.01)) and biases."""
        dtype, k = params["dtype"], params["factors"]
        rng = np.random.default_rng(self.random_state)
        user_items = _kernel_csr(self._seen, dtype)
        item_users = _kernel_csr(self._seen.T.tocsr(), dtype)
        self.user_factors_ = rng.random((self.n_users_, k), dtype=dtype) * dtype(0.01)
        self.item_factors_ = rng.random((self.n_items_, k), dtype=dtype) * dtype(0.01)
        self.user_bias_ = np.zeros(self.n_users_, dtype=dtype)
        self.item_bias_ = np.zeros(self.n_items_, dtype=dtype)
        self.intercept_ = float(dtype(self.global_mean_)) if params["biases"] else 0.0
        self.history_ = []
        if not params["biases"]:
            return _Training(user_items, item_users, None, None)
        # factors and bias side by side: the rows the biased half-sweeps solve
        users_aug = np.column_stack([self.user_factors_, self.user_bias_])
        items_aug = np.column_stack([self.item_factors_, self.item_bias_])
        return _Training(user_items, item_users, users_aug, items_aug)

    def _iteration(
        self, params: dict[str, Any], run: _Training, iteration: int
    ) -> tuple[dict, bool]:
        """Two half-sweeps (users, then items); the ``history_`` entry."""
        start = time.perf_counter()
        if run.users_aug is not None:
            biased_args = (params["regularization"], params["solver"], params["cg_steps"],
                           params["backend"])  # fmt: skip
            biased_half_sweep(run.user_items, run.users_aug, run.items_aug, self.intercept_,
                              *biased_args)  # fmt: skip
            self._check_finite(run.users_aug, "user", iteration)
            biased_half_sweep(run.item_users, run.items_aug, run.users_aug, self.intercept_,
                              *biased_args)  # fmt: skip
            self._check_finite(run.items_aug, "item", iteration)
            self._publish_biased(run.users_aug, run.items_aug)
        else:
            sweep_args = (
                params["regularization"], params["alpha"], bool(self.implicit), params["solver"],
                params["cg_steps"], params["backend"],
            )  # fmt: skip
            half_sweep(run.user_items, self.user_factors_, self.item_factors_, *sweep_args)
            self._check_finite(self.user_factors_, "user", iteration)
            half_sweep(run.item_users, self.item_factors_, self.user_factors_, *sweep_args)
            self._check_finite(self.item_factors_, "item", iteration)
        seconds = time.perf_counter() - start
        loss = self._loss(params, iteration) if self.calculate_training_loss else None
        return {"iteration": iteration, "loss": loss, "seconds": seconds}, False

    def _loss(self, params: dict[str, Any], iteration: int) -> float:
        """:func:`training_loss` of the current factors (and biases)."""
        bias_args = {}
        if params["biases"]:
            bias_args = {"user_bias": self.user_bias_, "item_bias": self.item_bias_,
                         "intercept": self.intercept_}  # fmt: skip
        loss = training_loss(
            self._seen, self.user_factors_, self.item_factors_,
            params["regularization"], params["alpha"], bool(self.implicit),
            params["backend"], params["num_threads"], **bias_args,
        )  # fmt: skip
        self._check_divergence(
            f"iteration {iteration}", loss, (), f"the training loss ({loss})",
            f"solver={self.solver!r}, regularization={self.regularization!r}",
            "Raise regularization or scale the data.",
        )  # fmt: skip
        return loss

    def _publish_biased(self, users_aug: np.ndarray, items_aug: np.ndarray) -> None:
        """Factors and biases from the augmented ``[factors, bias]`` rows."""
        self.user_factors_ = np.ascontiguousarray(users_aug[:, :-1])
        self.user_bias_ = np.ascontiguousarray(users_aug[:, -1])
        self.item_factors_ = np.ascontiguousarray(items_aug[:, :-1])
        self.item_bias_ = np.ascontiguousarray(items_aug[:, -1])

    def _check_finite(self, factors: np.ndarray, side: str, iteration: int | None) -> None:
        """Raise :class:`DivergenceError` naming the first non-finite row, if any.

        ``iteration`` None: a fold-in solve.
        """
        bad = ~np.isfinite(factors)
        if not bad.any():
            return
        row = int(np.argmax(bad.any(axis=1)))
        raise self._divergence(
            "fold-in" if iteration is None else f"iteration {iteration}",
            f"the {side} factors (first at {side} row {row})",
            f"solver={self.solver!r}, regularization={self.regularization!r}",
            "A singular system (e.g. regularization=0 with the exact solver) or overflowing "
            "values cause this: raise regularization or scale the data.",
        )

    # ------------------------------------------------------------ fold-in
    def _solve_new_rows(self, rows: sp.csr_matrix) -> np.ndarray:
        """Exact user factors (Cholesky) of CSR rows against ``item_factors_``.

        With biases: ``(n, factors + 1)``, each user's bias in the last column.
        """
        dtype = self.item_factors_.dtype.type
        params = self._validated_params()
        if params["biases"]:
            out = np.zeros((rows.shape[0], self.item_factors_.shape[1] + 1), dtype=dtype)
            items_aug = np.column_stack([self.item_factors_, self.item_bias_]).astype(dtype)
            with _backend.threads(params["num_threads"]):
                biased_half_sweep(
                    _kernel_csr(rows, dtype), out, items_aug, self.intercept_,
                    params["regularization"], "cholesky", 1, params["backend"],
                )  # fmt: skip
            self._check_finite(out, "user", None)
            return out
        out = np.zeros((rows.shape[0], self.item_factors_.shape[1]), dtype=dtype)
        with _backend.threads(params["num_threads"]):
            half_sweep(
                _kernel_csr(rows, dtype), out, self.item_factors_, params["regularization"],
                params["alpha"], bool(self.implicit), "cholesky", 1, params["backend"],
            )  # fmt: skip
        self._check_finite(out, "user", None)
        return out

    def _interaction_rows(self, items: Any, ratings: Any, name: str) -> sp.csr_matrix:
        """One CSR row (1, n_items) from raw item ids and optional ratings."""
        items = np.atleast_1d(np.asarray(items))
        if items.ndim != 1:
            raise ValueError(f"{name} must be 1-dimensional, got shape {items.shape}")
        iidx = self._lookup_known(self._items, items, name)
        if ratings is None:
            values = np.ones(iidx.shape[0], dtype=np.float64)
        else:
            values = as_float_array(ratings, "ratings", dtype=np.float64, ndim=1)
            if values.shape != iidx.shape:
                raise ValueError(
                    f"ratings must have one value per item: got {values.shape[0]} for "
                    f"{iidx.shape[0]} items"
                )
        order = np.argsort(iidx, kind="stable")
        dup = np.flatnonzero(np.diff(iidx[order]) == 0)
        if dup.size:
            pos = int(order[dup[0] + 1])
            raise ValueError(f"{name}[{pos}] = {items[pos]!r} repeats an earlier item")
        row = sp.csr_matrix(
            (values[order], iidx[order], np.array([0, iidx.shape[0]])),
            shape=(1, self.n_items_),
        )
        row = check_csr(row, "interactions", dtype=np.float64)
        if self.implicit:
            _check_nonnegative(row, "ratings")
        return row

    def recalculate_user(
        self, items: Any, ratings: Any = None, return_bias: bool = False
    ) -> np.ndarray | tuple[np.ndarray, float]:
        """Factors of a user (e.g. one not in training) from their interactions.

        The user's system is solved exactly (Cholesky) against the trained
        item factors; the model is not changed ("fold-in", Hu et al. 2008,
        section 5).

        Parameters
        ----------
        items : array_like (m,) of raw item ids known to the model, no repeats
        ratings : array_like (m,) of float, optional
            The values ``r`` (default 1.0 each; implicit feedback: ``r >= 0``).
            Needed with biases.
        return_bias : bool, default False
            Also return the user's bias ``b_u``.

        Returns
        -------
        factors : ndarray (factors,) of the model's dtype, the user's ``x_u``
            (the contract of every model's ``recalculate_user``, as implicit's).
            No items: the zero vector.
        (factors, bias) with ``return_bias=True``: ``bias`` the float ``b_u``
            (0.0 for a model without biases), solved with the factors.
        """
        self._check_fitted()
        if self._validated_params()["biases"] and ratings is None:
            raise ValueError("ratings are needed to fold in a user of explicit ALS with biases")
        solved = self._solve_new_rows(self._interaction_rows(items, ratings, "items"))[0]
        k = self.item_factors_.shape[1]
        bias = float(solved[k]) if solved.shape[0] > k else 0.0
        return fold_in_result(solved[:k], bias, solved.dtype, return_bias)

    def recommend_new_user(
        self, items: Any, ratings: Any = None, n: int = 10, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` raw item ids and scores for a user given by their interactions.

        Uses :meth:`recalculate_user`; ``exclude_seen`` skips the given items.
        Returns ``(ids (n,), scores (n,) float32)`` with ``recommend``'s padding.
        """
        self._check_fitted()
        n = check_int(n, "n", minimum=1)
        row = self._interaction_rows(items, ratings, "items")
        factors = self._solve_new_rows(row)
        if factors.shape[1] > self.item_factors_.shape[1]:  # biases: the user's is the same
            scores = factor_scores(factors[:, :-1], self.item_factors_, self.item_bias_)
        else:
            scores = factor_scores(factors, self.item_factors_)
        exclude = None
        if exclude_seen:
            exclude = check_csr(row, "items", dtype=np.float32)
        idx, val = topk_trusted(scores, n, exclude, self.backend, self.num_threads)
        return self._item_ids_of(idx)[0], val[0]

    def partial_fit_users(self, users: Any, interactions: Any) -> ALS:
        """Replace the interactions of some users and re-solve their factors.

        Parameters
        ----------
        users : array_like (m,) of raw user ids, unique
            Known users get their training row replaced; unknown ids are
            appended as new users.
        interactions : scipy.sparse matrix (m, n_items_)
            Row ``j`` holds the full new interactions of ``users[j]``; columns
            are the model's internal item indices (the order of
            ``item_ids_``), as in implicit's ``partial_fit_users``.

        Each listed user's factors are solved exactly (Cholesky) against the
        current item factors; item factors and the other users are unchanged.
        The training matrix and the baseline statistics are updated, so
        ``recommend`` excludes the new items as seen.
        """
        self._check_fitted()
        users = np.atleast_1d(np.asarray(users))
        if users.ndim != 1:
            raise ValueError(f"users must be 1-dimensional, got shape {users.shape}")
        IdVocabulary(users, "users")  # raises ValueError on repeated or missing ids
        rows = check_csr(
            interactions, "interactions", dtype=np.float32, shape=(users.shape[0], self.n_items_)
        )
        if self.implicit:
            _check_nonnegative(rows, "interactions")
        uidx = self._users.lookup(users)
        fresh = uidx < 0
        user_ids = self._users.ids
        if fresh.any():
            user_ids = np.concatenate([user_ids, users[fresh]])
            uidx[fresh] = self.n_users_ + np.arange(int(fresh.sum()))
        n_users = user_ids.shape[0]
        # the old rows of every other user, plus the new rows
        old = self._seen.tocoo()
        keep = np.ones(self.n_users_, dtype=bool)
        keep[uidx[~fresh]] = False
        kept = keep[old.row]
        new = rows.tocoo()
        coo = sp.coo_matrix(
            (
                np.concatenate([old.data[kept], new.data]),
                (np.concatenate([old.row[kept], uidx[new.row]]),
                 np.concatenate([old.col[kept], new.col])),
            ),
            shape=(n_users, self.n_items_),
        )  # fmt: skip
        matrix = check_csr(coo.tocsr(), "interactions", dtype=np.float32)
        data = Interactions(
            matrix, user_ids, self._items.ids, implicit=bool(self._implicit_data), _trusted=True
        )
        solved = self._solve_new_rows(rows)
        k = self.user_factors_.shape[1]
        user_factors = np.zeros((n_users, k), self.user_factors_.dtype)
        user_factors[: self.n_users_] = self.user_factors_
        user_factors[uidx] = solved[:, :k]
        user_bias = np.zeros(n_users, self.user_factors_.dtype)
        user_bias[: self.n_users_] = self.user_bias_
        if solved.shape[1] > k:
            user_bias[uidx] = solved[:, k]
        self._begin_fit(data)
        self.user_factors_ = user_factors
        self.user_bias_ = user_bias
        self._end_fit()
        return self

    # ----------------------------------------------------------------- predict
    def _baseline(self, uidx: np.ndarray, iidx: np.ndarray) -> np.ndarray:
        if not self.implicit:
            return super()._baseline(uidx, iidx)
        # implicit feedback: a row without data has zero factors, so it scores 0
        return np.zeros(uidx.shape, dtype=np.float64)

    def _predict_known(self, uidx: np.ndarray, iidx: np.ndarray) -> np.ndarray:
        dots = np.einsum(
            "ij,ij->i", self.user_factors_[uidx], self.item_factors_[iidx], dtype=np.float64
        )
        if self.implicit:
            return dots
        if self._resolved_biases():
            dots += self.intercept_ + self.user_bias_[uidx] + self.item_bias_[iidx]
        return np.clip(dots, self.rating_min_, self.rating_max_)

    def _score_users(self, uidx: np.ndarray) -> np.ndarray:
        if self._resolved_biases():
            return factor_scores(
                self.user_factors_[uidx], self.item_factors_, item_offset=self.item_bias_,
                row_offset=self.intercept_ + self.user_bias_[uidx].astype(np.float64),
            )  # fmt: skip
        return factor_scores(self.user_factors_[uidx], self.item_factors_)

    def _factor_parts(self):
        if self._resolved_biases():
            # x_u . y_i + c_i by the fused kernel; mu + b_u is added afterwards
            dtype = self.user_factors_.dtype
            return (
                np.ascontiguousarray(self.user_factors_),
                np.ascontiguousarray(self.item_factors_, dtype=dtype),
                np.ascontiguousarray(self.item_bias_, dtype=dtype),
                self.intercept_ + self.user_bias_.astype(np.float64),
            )
        # recommend ranks user_factors_ @ item_factors_.T with the fused kernel
        return (
            np.ascontiguousarray(self.user_factors_),
            np.ascontiguousarray(self.item_factors_, dtype=self.user_factors_.dtype),
            None,
            None,
        )

    def _similar_items_internal(self, iidx: np.ndarray, n: int):
        return cosine_similar(self.item_factors_, iidx, n, self.backend, self.num_threads)

    def _similar_users_internal(self, uidx: np.ndarray, n: int):
        return cosine_similar(self.user_factors_, uidx, n, self.backend, self.num_threads)

    # ------------------------------------------------------------- persistence
    def _get_state(self) -> dict[str, np.ndarray]:
        if self._resolved_biases():
            return factor_state(
                self, "user_factors", "item_factors", "user_bias", "item_bias", "intercept"
            )
        return factor_state(self, "user_factors", "item_factors")

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        params = self._validated_params()
        dtype, k = params["dtype"], params["factors"]
        restore_factors(self, state, k, dtype, "user_factors", "item_factors")
        self.user_bias_ = np.zeros(self.n_users_, dtype=dtype)
        self.item_bias_ = np.zeros(self.n_items_, dtype=dtype)
        self.intercept_ = 0.0
        if params["biases"]:
            if "user_bias" not in state and self.biases is None:
                # written before explicit ALS had biases: a model without them
                self.biases = False
            else:
                restore_factors(self, state, k, dtype, "user_bias", "item_bias", "intercept")
        self.history_ = []
