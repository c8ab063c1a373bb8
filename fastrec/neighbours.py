"""Sparse similarity with fused top-k selection (neighbourhood CF).

This module is ``fastrec.neighbours``; its main function is exported as
``fastrec.similarity`` (a module of that name would shadow the function).

Two public entry points:

:func:`similarity`
    The ``k`` most similar users (or items) of every user (or item), as an
    ``(n, n)`` CSR matrix. This is the public ``fastrec.similarity``.
:func:`similarity_rows`
    The lower-level call the KNN models use: the ``k`` most similar rows of a
    CSR matrix for a chosen set of query rows only (e.g. the 1,000 users of a
    ``recommend`` batch), returned as padded ``(len(rows), k)`` arrays. Its
    memory is the two CSR matrices, one accumulator row per thread and the
    ``(len(rows), k)`` output; nothing of size ``n x n`` is ever built.
    :func:`prepare` does the per-kind transform once, so that repeated
    ``similarity_rows`` calls on the same matrix skip it, and
    :func:`rows_to_csr` turns padded output into a CSR.

Kinds
-----
Let ``x`` and ``y`` be two vectors (rows of ``A``; users for ``axis="users"``,
items for ``axis="items"``) and ``C`` their common support (the columns stored
in both, whatever their values; ``count = |C|``).

``"pearson"``
    Pearson correlation over ``C``, means taken over ``C``:
    ``sum_C (x - mx)(y - my) / sqrt(sum_C (x - mx)^2 sum_C (y - my)^2)``,
    as scikit-surprise's ``pearson`` (Herlocker et al., "An algorithmic
    framework for performing collaborative filtering", SIGIR 1999), computed in
    one pass from six accumulators per pair (count, sums of x, y, x^2, y^2, xy).
    Like every kind here it is symmetric, so when every row is asked for
    each unordered pair is accumulated once (by its lower row) and offered to
    both rows' top-k.
``"centered_cosine"``
    Each vector centred on its own mean over all its entries, then cosine over
    the full vectors (the textbook formula with the user's overall mean; Aggarwal,
    *Recommender Systems*, 2016, section 2.3.1).
``"cosine"``
    ``x . y / (||x|| ||y||)`` with full-vector norms (as implicit's
    ``CosineRecommender`` and scikit-learn; note that scikit-surprise's
    ``cosine`` takes the norms over ``C`` only, which is a different measure).
``"adjusted_cosine"``
    Cosine after centring every entry on the mean of its *column* of ``A``,
    i.e. item similarity on user-mean-centred ratings (Sarwar et al.,
    "Item-based collaborative filtering recommendation algorithms", WWW 2001,
    section 3.1.3). With ``axis="users"`` it is the mirror image (ratings
    centred on item means).

``"tfidf"``
    The weighting of implicit's ``TFIDFRecommender``: each vector is a
    document, each column a term; an entry becomes ``sqrt(x) * idf`` with
    ``idf = log(n) - log(1 + df)`` (``n`` the number of rows, ``df`` the
    column's number of stored entries), then cosine of the weighted vectors.
    Rarely shared columns (users who rated few items, for ``axis="items"``)
    weigh more. Needs non-negative values.
``"bm25"``
    The weighting of implicit's ``BM25Recommender`` (``K1 = 1.2``,
    ``B = 0.75``, :data:`BM25_K1`, :data:`BM25_B`): an entry becomes
    ``x (K1 + 1) / (K1 ((1 - B) + B len / avg_len) + x) * idf``, ``len`` the
    sum of its vector's values and ``avg_len`` its mean over the vectors, then
    the plain dot product of the weighted vectors (not normalised, as implicit).
    Needs non-negative values.

The cosine kinds, tfidf and bm25 are a transform of the data done once in
Python (centre or weight, scale to unit norm), then a sparse dot product.

Options and degenerate cases
----------------------------
- Only pairs with a common support are candidates; ``count < min_support``
  gives no similarity. No self pairs.
- ``shrinkage``: ``sim * count / (count + shrinkage)`` (Koren, "Factor in the
  neighbors", TKDD 2010, eq. 2, with ``count`` the support).
- ``min_similarity``: similarities (after shrinkage) below it are dropped
  (``None``: keep every candidate, negative ones included).
- Zero variance: a vector that is constant on the common support (pearson;
  this includes a support of one) or constant / all-zero over its entries
  (centred cosines / cosine) has similarity 0 with everything. A similarity of
  exactly 0 (degenerate or not) is **never stored**: the implicit zeros of the
  sparse output mean "similarity 0 or no common support". This costs nothing
  for neighbourhood models, where a zero weight contributes nothing.
- Values are clipped to [-1, 1] (except bm25's, which are not normalised);
  the cosine kinds accumulate in ``dtype``,
  pearson in float64 (then rounded to ``dtype``).
- Each row of the output holds at most ``k`` entries sorted by descending
  similarity, ties by ascending index (so its column indices are *not*
  sorted: ``S.has_sorted_indices`` is False and ``S.sort_indices()`` would
  lose that order). Fewer than ``k`` candidates give a shorter row.
- The result does not depend on ``num_threads`` or on the backend beyond the
  last bits of floating-point rounding (bitwise identical across thread
  counts for a given backend).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from . import _backend
from ._kernels import similarity as similarity_kernels
from ._validation import check_choice, check_csr, check_dtype_arg, check_float, check_int

__all__ = [
    "KINDS",
    "MODEL_ONLY_KINDS",
    "PreparedMatrix",
    "check_similarity",
    "prepare",
    "rows_to_csr",
    "similarity",
    "similarity_rows",
]

#: The similarity kinds: ``fastrec.similarity(kind=...)`` and the k-NN models'
#: ``similarity=...`` are the same option, with these values (see
#: :func:`check_similarity`).
KINDS = ("pearson", "centered_cosine", "cosine", "adjusted_cosine", "tfidf", "bm25")
#: Kinds only the k-NN models take: they need the model's fitted baselines.
MODEL_ONLY_KINDS = ("pearson_baseline",)
#: BM25 parameters of ``kind="bm25"`` (implicit's ``BM25Recommender`` defaults).
BM25_K1 = 1.2
BM25_B = 0.75
AXES = ("users", "items")


def check_similarity(value: Any, name: str = "kind", model: bool = False) -> str:
    """Validate a similarity kind, one rule for ``kind=`` and for the models' ``similarity=``.

    ``fastrec.similarity(kind=)`` and ``UserKNN`` / ``ItemKNN(similarity=)``
    name the same option: both take :data:`KINDS`, and the models (``model``)
    also :data:`MODEL_ONLY_KINDS`. Any other value raises the same
    ``ValueError`` for both, naming the parameter and the allowed values.
    """
    if value in KINDS or (model and value in MODEL_ONLY_KINDS):
        return value
    raise ValueError(
        f"{name} must be one of {KINDS} (the k-NN models' similarity= also takes "
        f"{MODEL_ONLY_KINDS[0]!r}, which needs their fitted baselines), got {value!r}"
    )


@dataclass(frozen=True)
class PreparedMatrix:
    """A matrix ready for the similarity kernels (made by :func:`prepare`).

    Attributes
    ----------
    kind : str
    matrix : csr_matrix (n, m), ``dtype``
        The vectors to compare are its rows; for the cosine kinds its values
        are already centred and scaled to unit row norm.
    matrix_T : csr_matrix (m, n), ``dtype``
        Its transpose, same values.
    valid : ndarray (n,) uint8
        0 for a row that is degenerate for the cosine kinds (zero norm after
        centring); all ones for pearson (degeneracy is per pair there).
    """

    kind: str
    matrix: sp.csr_matrix
    matrix_T: sp.csr_matrix
    valid: np.ndarray

    @property
    def n(self) -> int:
        return self.matrix.shape[0]

    @property
    def dtype(self) -> type:
        return self.matrix.dtype.type


def transpose_csr(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """CSR of ``matrix.T`` with sorted int32 indices, explicit zeros kept (the kernels' layout)."""
    out = matrix.T.tocsr()
    out.sort_indices()
    out.indices = np.ascontiguousarray(out.indices, dtype=np.int32)
    return out


def _row_reduce(ufunc: np.ufunc, indptr: np.ndarray, values: np.ndarray, empty: float) -> Any:
    """``[ufunc.reduce(values[indptr[r]:indptr[r+1]]) for r]``, ``empty`` for empty rows."""
    n = indptr.shape[0] - 1
    out = np.full(n, empty, dtype=np.float64)
    counts = np.diff(indptr)
    nonempty = counts > 0
    if values.size:
        # reduceat over the starts of the non-empty rows only: with the empty
        # rows removed each segment ends exactly where its row ends
        out[nonempty] = ufunc.reduceat(values, indptr[:-1][nonempty])
    return out


def _row_means(indptr: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Mean of each row; a constant row gets its value exactly, so it centres to 0."""
    counts = np.diff(indptr)
    sums = _row_reduce(np.add, indptr, values, 0.0)
    means = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
    lo = _row_reduce(np.minimum, indptr, values, 0.0)
    hi = _row_reduce(np.maximum, indptr, values, 0.0)
    constant = lo == hi
    means[constant] = lo[constant]
    return means


def _row_ids(indptr: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(indptr.shape[0] - 1, dtype=np.int32), np.diff(indptr))


def _with_data(matrix: sp.csr_matrix, data: np.ndarray, dtype: type) -> sp.csr_matrix:
    out = sp.csr_matrix(matrix.shape, dtype=dtype)
    out.data = np.ascontiguousarray(data, dtype=dtype)
    out.indices = matrix.indices
    out.indptr = matrix.indptr
    out.has_sorted_indices = True
    return out


def _check_transpose(matrix: sp.csr_matrix, matrix_T: Any, dtype: type) -> sp.csr_matrix:
    n, m = matrix.shape
    matrix_T = check_csr(matrix_T, "matrix_T", dtype=dtype, shape=(m, n))
    if matrix_T.nnz != matrix.nnz or not np.array_equal(
        np.bincount(matrix.indices, minlength=m), np.diff(matrix_T.indptr)
    ):
        raise ValueError(
            "matrix_T must be the transpose of matrix: its row lengths differ from the "
            "column counts of matrix"
        )
    return matrix_T


def prepare(
    matrix: Any,
    kind: str = "pearson",
    matrix_T: Any = None,
    dtype: Any = np.float32,
) -> PreparedMatrix:
    """Validate ``matrix`` and apply the per-kind transform once.

    Parameters
    ----------
    matrix : scipy.sparse matrix (n, m)
        The vectors to compare are its **rows** (pass ``X.T`` for items of a
        users x items matrix ``X``). Finite values; sorted, unique indices.
    kind : {"pearson", "centered_cosine", "cosine", "adjusted_cosine", "tfidf", "bm25"}
    matrix_T : scipy.sparse matrix (m, n), optional
        ``matrix.T`` as CSR, if the caller already has it (for example the
        users x items matrix when comparing items); computed otherwise. Only
        its shape and per-row counts are checked against ``matrix``.
    dtype : float32 or float64
        Precision of the stored values and of the output similarities.

    Returns
    -------
    PreparedMatrix
    """
    kind = check_similarity(kind, "kind")
    dtype = check_dtype_arg(dtype)
    matrix = check_csr(matrix, "matrix", dtype=dtype)
    if matrix_T is None:
        matrix_T = transpose_csr(matrix)
    else:
        matrix_T = _check_transpose(matrix, matrix_T, dtype)
    return _prepare_trusted(matrix, matrix_T, kind, dtype)


def _prepare_trusted(
    matrix: sp.csr_matrix, matrix_T: sp.csr_matrix, kind: str, dtype: type
) -> PreparedMatrix:
    n = matrix.shape[0]
    if kind == "pearson":
        return PreparedMatrix(kind, matrix, matrix_T, np.ones(n, dtype=np.uint8))
    a = matrix.data.astype(np.float64)
    at = matrix_T.data.astype(np.float64)
    a_rows = _row_ids(matrix.indptr)
    at_rows = _row_ids(matrix_T.indptr)
    if kind == "centered_cosine":
        # x - mean(x) over each row's own entries
        mean = _row_means(matrix.indptr, a)
        a = a - mean[a_rows]
        at = at - mean[matrix_T.indices]
    elif kind == "adjusted_cosine":
        # x[l, j] - mean of column j (= row j of matrix_T)
        col_mean = _row_means(matrix_T.indptr, at)
        a = a - col_mean[matrix.indices]
        at = at - col_mean[at_rows]
    elif kind in ("tfidf", "bm25"):
        if a.size and a.min() < 0:
            pos = int(np.argmin(a))
            raise ValueError(
                f"kind={kind!r} needs non-negative values, got {a[pos]} in row "
                f"{int(a_rows[pos])}, column {int(matrix.indices[pos])}"
            )
        # rows are documents, columns terms: idf per column
        idf = np.log(float(n)) - np.log1p(np.diff(matrix_T.indptr).astype(np.float64))
        if kind == "tfidf":
            a = np.sqrt(a) * idf[matrix.indices]
            at = np.sqrt(at) * idf[at_rows]
        else:
            length = _row_reduce(np.add, matrix.indptr, a, 0.0)
            avg = length.mean() if n else 0.0
            norm = (1.0 - BM25_B) + BM25_B * np.divide(
                length, avg, out=np.zeros_like(length), where=avg > 0
            )
            a = a * (BM25_K1 + 1.0) / (BM25_K1 * norm[a_rows] + a) * idf[matrix.indices]
            at = at * (BM25_K1 + 1.0) / (BM25_K1 * norm[matrix_T.indices] + at) * idf[at_rows]
            a[~np.isfinite(a)] = 0.0  # 0 / 0 for a zero value in an all-zero row
            at[~np.isfinite(at)] = 0.0
            valid = _row_reduce(np.add, matrix.indptr, a * a, 0.0) > 0
            return PreparedMatrix(
                kind,
                _with_data(matrix, a, dtype),
                _with_data(matrix_T, at, dtype),
                valid.astype(np.uint8),
            )
    # scale every row to unit norm: the similarity becomes a dot product
    norm = np.sqrt(_row_reduce(np.add, matrix.indptr, a * a, 0.0))
    valid = norm > 0
    scale = np.divide(1.0, norm, out=np.zeros_like(norm), where=valid)
    a *= scale[a_rows]
    at *= scale[matrix_T.indices]
    return PreparedMatrix(
        kind,
        _with_data(matrix, a, dtype),
        _with_data(matrix_T, at, dtype),
        valid.astype(np.uint8),
    )


def _check_rows(rows: Any, n: int) -> np.ndarray:
    if rows is None:
        return np.arange(n, dtype=np.int32)
    arr = np.asarray(rows)
    if arr.ndim != 1:
        raise ValueError(f"rows must be 1-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int32)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"rows must be integer indices, got dtype {arr.dtype}")
    bad = (arr < 0) | (arr >= n)
    if bad.any():
        pos = int(np.argmax(bad))
        raise ValueError(f"rows[{pos}] = {arr[pos]} is out of range [0, {n})")
    return np.ascontiguousarray(arr, dtype=np.int32)


def _check_options(
    k: Any, min_support: Any, shrinkage: Any, min_similarity: Any
) -> tuple[int, int, float, float]:
    k = check_int(k, "k", minimum=1)
    if k > np.iinfo(np.int32).max:
        raise ValueError(f"k must fit in int32, got {k}")
    min_support = max(1, check_int(min_support, "min_support", minimum=0))
    shrinkage = check_float(shrinkage, "shrinkage", minimum=0.0)
    if min_similarity is None:
        min_similarity = -np.inf
    else:
        min_similarity = check_float(min_similarity, "min_similarity")
    return k, min_support, shrinkage, min_similarity


@contextmanager
def _dynamic_chunks(backend: str) -> Iterator[None]:
    """Numba: hand out the kernel's row stripes one at a time (rows are skewed).

    The Cython kernels use ``schedule="dynamic"`` themselves.
    """
    if _backend.resolve_backend(backend) != "numba":
        yield
        return
    import numba

    old = numba.set_parallel_chunksize(1)
    try:
        yield
    finally:
        numba.set_parallel_chunksize(old)


#: Upper bound on the memory of the per-thread heaps of the all-rows kernels
#: (``n_sets * n * k * (4 + itemsize)`` bytes); above it the query-rows kernels
#: run instead (each pair then computed twice).
HEAP_MEMORY_LIMIT = 256 * 2**20

#: Numba hands out heap sets as stripes of rows (round-robin), this many per
#: thread, so that the skewed row costs even out; Cython schedules rows
#: dynamically and needs one set per thread.
NUMBA_SETS_PER_THREAD = 4


def _heap_sets(
    prepared: PreparedMatrix, rows: np.ndarray, k: int, n_threads: int, backend: str
) -> int:
    """Number of per-thread heap sets for the all-rows kernel; 0: use the query-rows one."""
    n = prepared.n
    if rows.shape[0] != n or n < 2:
        return 0
    if not np.array_equal(rows, np.arange(n, dtype=np.int32)):
        return 0
    n_sets = n_threads
    if _backend.resolve_backend(backend) == "numba":
        n_sets = min(n_threads * NUMBA_SETS_PER_THREAD, n)
    per_set = n * (k * (4 + prepared.matrix.dtype.itemsize) + 4)
    n_sets = min(n_sets, HEAP_MEMORY_LIMIT // per_set)
    return max(n_sets, 0)


def _heaps(n_sets: int, n: int, k: int, dtype: np.dtype) -> tuple[np.ndarray, ...]:
    """Empty per-thread heaps: indices (sets, n, k), values (sets, n, k), sizes (sets, n)."""
    return (
        np.empty((n_sets, n, k), dtype=np.int32),
        np.empty((n_sets, n, k), dtype=dtype),
        np.zeros((n_sets, n), dtype=np.int32),
    )


def _run(
    prepared: PreparedMatrix,
    rows: np.ndarray,
    k: int,
    min_support: int,
    shrinkage: float,
    min_similarity: float,
    backend: str,
    num_threads: int,
) -> tuple[np.ndarray, np.ndarray]:
    a, at = prepared.matrix, prepared.matrix_T
    out_idx = np.empty((rows.shape[0], k), dtype=np.int32)
    out_val = np.empty((rows.shape[0], k), dtype=a.dtype)
    if rows.shape[0] == 0:
        return out_idx, out_val
    # int64 row pointers: one signature per dtype, whatever the input's index width
    args = (
        a.indptr.astype(np.int64),
        a.indices,
        a.data,
        at.indptr.astype(np.int64),
        at.indices,
        at.data,
    )
    # Every kernel runs in slices of rows (Ctrl-C is seen between two, see
    # _backend.slices); the all-rows kernels carry their heaps over from slice
    # to slice and merge them at the end. Any split gives the same output.
    n = prepared.n
    with _backend.threads(num_threads) as n_threads, _dynamic_chunks(backend):
        n_sets = _heap_sets(prepared, rows, k, n_threads, backend)
        # the first rows are the heaviest (each pairs with every later row):
        # at least 4 rows per thread and per heap set, so that none idles
        minimum = 4 * max(n_threads, n_sets)
        if n_sets:
            name = "pearson_topk_all" if prepared.kind == "pearson" else "dot_topk_all"
            kernel = getattr(similarity_kernels.get(backend), name)
            valid = () if prepared.kind == "pearson" else (prepared.valid,)
            clip = () if prepared.kind == "pearson" else (prepared.kind != "bm25",)
            heaps = _heaps(n_sets, n, k, a.dtype)
            own_size = np.zeros(n, dtype=np.int32)
            for lo, hi in _backend.slices(n, minimum, minimum=minimum):
                kernel(
                    *args, *valid, k, min_support, shrinkage, min_similarity, lo, hi,
                    *heaps, own_size, out_idx, out_val, *clip,
                )  # fmt: skip
            merge = similarity_kernels.get(backend).merge_sets
            merge(*heaps, own_size, out_idx, out_val)
        else:
            name = "pearson_topk" if prepared.kind == "pearson" else "dot_topk"
            kernel = getattr(similarity_kernels.get(backend), name)
            valid = () if prepared.kind == "pearson" else (prepared.valid,)
            clip = () if prepared.kind == "pearson" else (prepared.kind != "bm25",)
            for lo, hi in _backend.slices(rows.shape[0], minimum, minimum=minimum):
                kernel(
                    *args, *valid, rows[lo:hi], k, min_support, shrinkage, min_similarity,
                    out_idx[lo:hi], out_val[lo:hi], *clip,
                )  # fmt: skip
    return out_idx, out_val


def similarity_rows(
    matrix: Any,
    rows: Any = None,
    kind: str | None = "pearson",
    k: int = 20,
    min_support: int = 1,
    shrinkage: float = 0.0,
    min_similarity: float | None = None,
    matrix_T: Any = None,
    backend: str = "auto",
    num_threads: int = 0,
    dtype: Any = np.float32,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` similar rows of ``matrix`` for the query ``rows`` only.

    Parameters
    ----------
    matrix : scipy.sparse matrix (n, m) or PreparedMatrix
        Similarity is between its **rows**: for user-user on a users x items
        matrix ``X`` pass ``X`` (and ``matrix_T=X.T`` if you have it), for
        item-item pass ``X.T`` (and ``matrix_T=X``). A :class:`PreparedMatrix`
        from :func:`prepare` skips validation and the per-kind transform; then
        ``kind`` must be None or its kind, and ``matrix_T``/``dtype`` are ignored.
    rows : array_like of int (n_rows,), optional
        Query rows, each in ``[0, n)``, repeats allowed; default all rows.
    kind : {"pearson", "centered_cosine", "cosine", "adjusted_cosine", "tfidf", "bm25"}
    k : int >= 1
        Neighbours kept per query row (``k >= n`` keeps every candidate).
    min_support : int >= 0
        Minimum number of common columns (0 and 1 are the same: pairs without
        a common column never get a similarity).
    shrinkage : float >= 0
        ``sim * count / (count + shrinkage)``.
    min_similarity : float or None
        Drop similarities (after shrinkage) below it; None keeps all.
    matrix_T : scipy.sparse matrix (m, n), optional
        ``matrix.T``, to save a transpose.
    backend : {"auto", "numba", "cython"}
    num_threads : int, 0 means all cores
    dtype : float32 or float64

    Returns
    -------
    idx : ndarray (n_rows, k) int32
        Neighbour rows of each query row, by descending similarity, ties by
        ascending index; -1 pads rows with fewer than ``k`` candidates.
    val : ndarray (n_rows, k) of ``dtype``
        Their similarities; ``-inf`` in padded slots.

    Notes
    -----
    Memory: the two CSR matrices, ``num_threads`` accumulators of ``n`` rows
    (64 bytes per row for pearson, ``2 * itemsize`` for the cosine kinds) and
    the output. Over all rows (``rows`` None or ``arange(n)``) every kind
    computes each pair once and adds ``num_threads`` sets of ``n`` heaps of
    size ``k`` (``n * k * (4 + itemsize)`` bytes each, at most
    ``HEAP_MEMORY_LIMIT`` in all, else each pair is computed from both sides).
    Identical output for any ``num_threads``. See the module docstring for
    the kinds and the degenerate cases.
    """
    if isinstance(matrix, PreparedMatrix):
        if kind is not None and kind != matrix.kind:
            raise ValueError(f"kind={kind!r} does not match the prepared kind {matrix.kind!r}")
        prepared = matrix
    else:
        if kind is None:
            raise ValueError("kind must be given unless matrix is a PreparedMatrix")
        prepared = prepare(matrix, kind, matrix_T=matrix_T, dtype=dtype)
    rows = _check_rows(rows, prepared.n)
    k, min_support, shrinkage, min_similarity = _check_options(
        k, min_support, shrinkage, min_similarity
    )
    _backend.resolve_backend(backend)
    _backend.resolve_threads(num_threads)
    return _run(prepared, rows, k, min_support, shrinkage, min_similarity, backend, num_threads)


def rows_to_csr(idx: np.ndarray, val: np.ndarray, n_cols: int) -> sp.csr_matrix:
    """Padded ``(n_rows, k)`` output of :func:`similarity_rows` -> CSR (n_rows, n_cols).

    Keeps each row's order (descending similarity), so the column indices are
    not sorted; padding (-1) is dropped.
    """
    keep = idx >= 0
    counts = keep.sum(axis=1)
    index_dtype = np.int32 if keep.sum() <= np.iinfo(np.int32).max else np.int64
    indptr = np.zeros(idx.shape[0] + 1, dtype=index_dtype)
    np.cumsum(counts, out=indptr[1:])
    out = sp.csr_matrix((idx.shape[0], n_cols), dtype=val.dtype)
    out.data = np.ascontiguousarray(val[keep])
    out.indices = np.ascontiguousarray(idx[keep], dtype=index_dtype)
    out.indptr = indptr
    out.has_sorted_indices = False
    return out


def similarity(
    X_or_csr: Any,
    kind: str = "pearson",
    axis: str = "items",
    k: int = 20,
    min_support: int = 1,
    shrinkage: float = 0.0,
    min_similarity: float | None = None,
    backend: str = "auto",
    num_threads: int = 0,
    dtype: Any = np.float32,
) -> sp.csr_matrix:
    """The ``k`` most similar users or items of each user or item.

    Parameters
    ----------
    X_or_csr : Interactions or scipy.sparse matrix (n_users, n_items)
        Ratings, users x items. Stored entries are the ratings (explicit zeros
        count as rated); missing entries are unknown, not zero.
    kind : {"pearson", "centered_cosine", "cosine", "adjusted_cosine", "tfidf", "bm25"}
        See the module docstring. The same option as the k-NN models'
        ``similarity=`` (``UserKNN`` / ``ItemKNN``): the same values and
        definitions, checked by :func:`check_similarity` with the same message
        (the models also take "pearson_baseline", which needs their fitted
        baselines).
    axis : {"items", "users"}
        Compare items (columns) or users (rows).
    k : int >= 1
        Neighbours kept per user/item.
    min_support : int >= 0
        Minimum number of co-rating users (items) for a pair to get a similarity.
    shrinkage : float >= 0
        ``sim * count / (count + shrinkage)``, ``count`` the co-rated count.
    min_similarity : float or None
        Drop similarities (after shrinkage) below it; None keeps all, negative
        ones included.
    backend : {"auto", "numba", "cython"}
    num_threads : int, 0 means all cores
    dtype : float32 or float64
        Precision of the computation (pearson accumulates in float64) and output.

    Returns
    -------
    csr_matrix (n, n) of ``dtype``
        ``n`` the number of items (users). Row ``i`` holds at most ``k``
        entries, by descending similarity then ascending index (column indices
        therefore not sorted), never ``(i, i)``; zero similarities are absent.

    Examples
    --------
    >>> S = fastrec.similarity(X, kind="pearson", axis="items", k=20)
    >>> S[3].indices, S[3].data   # the 20 items most similar to item 3, best first
    """
    kind = check_similarity(kind, "kind")
    axis = check_choice(axis, "axis", AXES)
    dtype = check_dtype_arg(dtype)
    k, min_support, shrinkage, min_similarity = _check_options(
        k, min_support, shrinkage, min_similarity
    )
    _backend.resolve_backend(backend)
    _backend.resolve_threads(num_threads)
    matrix = getattr(X_or_csr, "matrix", X_or_csr)  # Interactions -> its CSR
    name = "X" if matrix is X_or_csr else "X.matrix"
    X = check_csr(matrix, name, dtype=dtype)
    if axis == "items":
        a, at = transpose_csr(X), X
    else:
        a, at = X, transpose_csr(X)
    prepared = _prepare_trusted(a, at, kind, dtype)
    n = a.shape[0]
    rows = np.arange(n, dtype=np.int32)
    idx, val = _run(prepared, rows, k, min_support, shrinkage, min_similarity, backend, num_threads)
    return rows_to_csr(idx, val, n)
