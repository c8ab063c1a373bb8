"""``EASE``: the embarrassingly shallow autoencoder (a closed-form item-item model).

Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019,
section 2.2 and algorithm 1: with ``X`` the binary user x item matrix and
``G = X^T X`` the item Gram matrix, the item-item weights

    B = argmin |X - X B|^2 + l2 |B|^2   subject to diag(B) = 0

are ``B = I - P / diag(P)`` (column ``j`` divided by ``P_jj``) with
``P = (G + l2 I)^-1``. A user's scores are ``X_u @ B``.

How it is computed: ``G`` from the sparse data, ``l2`` added to its diagonal,
then LAPACK's Cholesky factorisation and inverse of a symmetric positive
definite matrix (``potrf`` + ``potri``: about ``n^3`` flops against ``2 n^3``
for the LU inverse of ``numpy.linalg.inv``), in place, and the scaling in
place: one dense ``n x n`` matrix. Items without training data have a Gram
row ``l2 e_i``, hence ``B``'s row and column ``i`` are zero exactly: they are
left out of the factorisation (fewer rows, ``n^3`` less work) and get zeros.

The dense matrix needs ``n_items^2 * itemsize`` bytes; ``fit`` raises
``ValueError`` naming that figure when it is above ``max_memory_bytes``,
before allocating anything.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from .. import _backend
from .._validation import check_dtype_arg, check_float, check_int, check_nonnegative
from ..data import Interactions
from ..topk import topk_trusted
from .base import Recommender, expect_array

__all__ = ["EASE"]

# Rows of B materialised at once when symmetrising P (bounded scratch).
_SYMMETRISE_ROWS = 512


def _binary(matrix: sp.csr_matrix, name: str = "X.matrix") -> sp.csr_matrix:
    """The stored entries with value > 0, as ones (float64 CSR); negatives raise."""
    check_nonnegative(
        matrix, name, "EASE takes implicit feedback, values r >= 0 (r > 0 is an interaction)"
    )
    out = sp.csr_matrix(
        ((matrix.data > 0).astype(np.float64), matrix.indices, matrix.indptr), shape=matrix.shape
    )
    out.eliminate_zeros()
    return out


def _fill_upper(P: np.ndarray) -> None:
    """Copy the lower triangle of the C-ordered square ``P`` onto its upper one."""
    n = P.shape[0]
    for start in range(0, n, _SYMMETRISE_ROWS):
        stop = min(n, start + _SYMMETRISE_ROWS)
        block = P[start:stop, start:stop]
        lower = np.tril(block)
        block[...] = lower + np.tril(lower, -1).T
        P[start:stop, stop:] = P[stop:, start:stop].T


class EASE(Recommender):
    """Embarrassingly shallow autoencoder (Steck, WWW 2019): closed-form item weights.

    Parameters
    ----------
    l2 : float >= 0
        L2 weight ``lambda`` of the closed form (``G + l2 I`` must be positive
        definite: ``l2 > 0`` always is).
    dtype : {"float64", "float32"}
        Precision of the Gram matrix, the factorisation and ``weights_``.
    max_memory_bytes : int >= 1
        Largest dense ``n_items x n_items`` matrix ``fit`` may allocate
        (default 8 GiB); above it ``fit`` raises ``ValueError`` with the
        figure it would need.
    num_threads : int
        BLAS/LAPACK threads for ``fit`` (0: the library's default) and threads
        of the top-k kernel.
    backend : {"auto", "numba", "cython"}
        Backend of the top-k kernel used by ``recommend``.

    Attributes
    ----------
    weights_ : (n_items, n_items) ndarray of ``dtype``
        ``B``: a user's scores are ``X_u @ weights_`` (``X_u`` binary); zero
        diagonal; zero rows and columns for items without training data.

    Notes
    -----
    Training values: ``r > 0`` is an interaction (the data is binarised), a
    stored 0 is not, a negative value is an error. ``predict`` returns the
    score ``X_u @ B[:, i]``; an unknown or cold user, or an unknown item,
    scores 0 (what the model gives an empty row). ``recommend`` ranks
    ``X_u @ B`` with the top-k kernel (seen items excluded); an unknown or
    cold user gets the most popular items, as for every model.
    ``similar_items(i)`` ranks row ``i`` of ``B`` (the weight of item ``i``
    in the other items' scores).
    """

    _is_rating_model = False  # scores rank items; they are not ratings

    def __init__(
        self,
        l2: float = 500.0,
        dtype: str = "float64",
        max_memory_bytes: int = 8 << 30,
        num_threads: int = 0,
        backend: str = "auto",
    ):
        self.l2 = l2
        self.dtype = dtype
        self.max_memory_bytes = max_memory_bytes
        self.num_threads = num_threads
        self.backend = backend

    def _validated_params(self) -> dict[str, Any]:
        return {
            "l2": check_float(self.l2, "l2", minimum=0.0),
            "dtype": check_dtype_arg(self.dtype),
            "max_memory_bytes": check_int(self.max_memory_bytes, "max_memory_bytes", minimum=1),
            "num_threads": _backend.resolve_threads(self.num_threads) if self.num_threads else 0,
            "backend": _backend.resolve_backend(self.backend),
        }

    def fit(self, X: Interactions, show_progress: bool = False, callback=None) -> EASE:
        """Compute ``weights_`` from the interactions in ``X``.

        Raises
        ------
        ValueError
            Invalid parameters, negative values, a dense matrix larger than
            ``max_memory_bytes`` (the message gives the bytes needed), or
            ``G + l2 I`` not positive definite (``l2 = 0`` on degenerate data);
            all before the model changes.
        """
        params = self._validated_params()
        dtype = params["dtype"]
        if isinstance(X, Interactions):
            binary = _binary(X.matrix)
            n_items = X.n_items
            active = int((np.bincount(binary.indices, minlength=n_items) > 0).sum())
            needed = memory_needed(n_items, dtype, active)
            if needed > params["max_memory_bytes"]:
                raise ValueError(
                    f"EASE needs a dense {n_items} x {n_items} item matrix: "
                    f"{needed / 2**30:.2f} GiB in {np.dtype(dtype).name} ({n_items}^2 * "
                    f"{np.dtype(dtype).itemsize} bytes, plus {active}^2 for the items with "
                    f"training data when some have none), above "
                    f"max_memory_bytes={params['max_memory_bytes']} "
                    f"({params['max_memory_bytes'] / 2**30:.2f} GiB). Raise max_memory_bytes if "
                    "the machine has the memory, use dtype='float32', or keep fewer items."
                )
        weights = self._solve(binary, params) if isinstance(X, Interactions) else None
        self._begin_fit(X)
        self._binary = binary
        self.weights_ = weights
        self._end_fit()
        return self

    def _solve(self, binary: sp.csr_matrix, params: dict[str, Any]) -> np.ndarray:
        dtype = params["dtype"]
        n = binary.shape[1]
        counts = np.bincount(binary.indices, minlength=n)
        active = np.flatnonzero(counts > 0)
        Xa = binary[:, active] if active.shape[0] < n else binary
        m = active.shape[0]
        limit = params["num_threads"] or None
        with _backend._blas_controller().limit(limits=limit, user_api="blas"):
            # G = Xa^T Xa + l2 I (dense, C order; symmetric, so its transpose is
            # the Fortran-ordered matrix LAPACK takes, without a copy)
            gram = np.asarray((Xa.T @ Xa).toarray(), dtype=dtype, order="C")
            gram[np.diag_indices(m)] += dtype(params["l2"])
            potrf, potri = lapack.get_lapack_funcs(("potrf", "potri"), (gram,))
            factor, info = potrf(gram.T, lower=False, overwrite_a=True, clean=False)
            if info != 0:
                raise ValueError(
                    f"X^T X + l2 I is not positive definite (LAPACK potrf info={info}); "
                    f"raise l2 (got {params['l2']})"
                )
            inverse, info = potri(factor, lower=False, overwrite_c=True)
            if info != 0:
                raise ValueError(f"the inverse of X^T X + l2 I failed (LAPACK potri info={info})")
        P = inverse.T  # C order; its lower triangle holds P (the upper one of the Fortran view)
        if not np.shares_memory(P, gram):  # LAPACK copied after all: keep one matrix
            del gram
        _fill_upper(P)
        diag = P.diagonal().copy()
        if not np.isfinite(diag).all() or (diag <= 0).any():
            raise ValueError(f"the inverse of X^T X + l2 I is not finite; raise l2 (got {self.l2})")
        P /= -diag  # B_ij = -P_ij / P_jj off the diagonal
        P[np.diag_indices(m)] = 0.0
        if m == n:
            return np.ascontiguousarray(P)
        weights = np.zeros((n, n), dtype=dtype)
        weights[np.ix_(active, active)] = P
        return weights

    # ----------------------------------------------------------------- predict
    def _baseline(self, uidx: np.ndarray, iidx: np.ndarray) -> np.ndarray:
        return np.zeros(uidx.shape, dtype=np.float64)

    def _predict_known(self, uidx: np.ndarray, iidx: np.ndarray) -> np.ndarray:
        out = np.empty(uidx.shape[0], dtype=np.float64)
        step = max(1, (16 << 20) // (8 * max(self.n_items_, 1)))
        for start in range(0, uidx.shape[0], step):
            rows = self._binary[uidx[start : start + step]]
            cols = self.weights_[:, iidx[start : start + step]].T  # (m, n_items)
            out[start : start + step] = np.asarray(rows.multiply(cols).sum(axis=1)).ravel()
        return out

    def _score_users(self, uidx: np.ndarray) -> np.ndarray:
        scores = self._binary[uidx] @ self.weights_
        return np.ascontiguousarray(scores, dtype=np.float32)

    def _similar_items_internal(self, iidx: np.ndarray, n: int):
        rows = np.ascontiguousarray(self.weights_[iidx], dtype=np.float32)
        self_pairs = sp.csr_matrix(
            (np.ones(iidx.shape[0], dtype=np.float32), iidx.astype(np.int32),
             np.arange(iidx.shape[0] + 1, dtype=np.int32)),
            shape=rows.shape,
        )  # fmt: skip
        self_pairs.indices = np.ascontiguousarray(self_pairs.indices, dtype=np.int32)
        self_pairs.indptr = np.ascontiguousarray(self_pairs.indptr, dtype=np.int32)
        return topk_trusted(rows, n, self_pairs, self.backend, self.num_threads)

    # ------------------------------------------------------------- persistence
    def _get_state(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights_}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        params = self._validated_params()
        weights = expect_array(state, "weights", (self.n_items_, self.n_items_))
        self.weights_ = np.ascontiguousarray(weights, dtype=params["dtype"])
        self._binary = _binary(self._seen, "saved training matrix")


def memory_needed(n_items: int, dtype: Any = np.float64, active: int | None = None) -> int:
    """Bytes of the dense matrices ``EASE.fit`` allocates for ``n_items`` items.

    ``n_items^2 * itemsize``, plus ``active^2 * itemsize`` for the factorised
    block when only ``active < n_items`` items have training data.
    """
    itemsize = np.dtype(dtype).itemsize
    n = int(n_items)
    a = n if active is None else int(active)
    return itemsize * (n * n + (a * a if a < n else 0))
