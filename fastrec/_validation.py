"""Input checks shared by every public entry point.

Everything that reaches a compiled kernel passes through here first: the Cython
kernels run without bounds checks, so a malformed array would corrupt memory.
Every error is a ``ValueError`` naming the field and the first bad position.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import scipy.sparse as sp

FLOAT_DTYPES = (np.float32, np.float64)

_CSR_MESSAGES = {
    1: "{name}.indptr[0] must be 0 (position 0)",
    2: "{name}.indptr must be non-decreasing: it decreases at position {pos}",
    3: "{name}.indices has a negative column index at position {pos}",
    4: "{name}.indices has a column index >= {n_cols} (the number of columns) at position {pos}",
    5: "{name}.indices must be sorted and unique within each row: not so at position {pos}",
}


def first_true(mask: np.ndarray) -> int:
    """Position of the first True in a flat boolean array (assumes one exists)."""
    return int(np.argmax(mask.ravel()))


def fmt_pos(shape: tuple[int, ...], flat: int) -> str:
    if len(shape) <= 1:
        return str(flat)
    return str(tuple(int(i) for i in np.unravel_index(flat, shape)))


def check_finite(arr: np.ndarray, name: str) -> None:
    """Raise if ``arr`` holds NaN or an infinity, naming the first position."""
    if arr.dtype.kind not in "fc":
        return
    bad = ~np.isfinite(arr)
    if bad.any():
        flat = first_true(bad)
        value = arr.ravel()[flat]
        raise ValueError(
            f"{name} must be finite: found {value} at position {fmt_pos(arr.shape, flat)}"
        )


def as_float_array(
    values: Any, name: str, dtype: Any = None, ndim: int | None = None, finite: bool = True
) -> np.ndarray:
    """Convert to a C-ordered float32/float64 array, rejecting non-numbers."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "biuf":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            flat = arr.ravel().tolist()
            for pos, v in enumerate(flat):
                try:
                    float(v)
                except (TypeError, ValueError):
                    raise ValueError(
                        f"{name} must be numeric: found {v!r} at position {pos}"
                    ) from None
            raise
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    if dtype is None:
        dtype = arr.dtype if arr.dtype.type in FLOAT_DTYPES else np.float32
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if finite:
        check_finite(arr, name)
    return arr


def check_dtype_arg(dtype: Any, name: str = "dtype") -> type:
    try:
        dt = np.dtype(dtype).type
    except TypeError:
        raise ValueError(f"{name} must be float32 or float64, got {dtype!r}") from None
    if dt not in FLOAT_DTYPES:
        raise ValueError(f"{name} must be float32 or float64, got {np.dtype(dtype).name}")
    return dt


def check_csr_structure(
    indptr: np.ndarray, indices: np.ndarray, n_rows: int, n_cols: int, name: str
) -> None:
    """Validate a CSR structure with the compiled scan (raises ValueError)."""
    from ._backend import get_kernel

    if indptr.ndim != 1 or indptr.shape[0] != n_rows + 1:
        raise ValueError(
            f"{name}.indptr must have n_rows + 1 = {n_rows + 1} entries, got shape {indptr.shape}"
        )
    nnz = indices.shape[0]
    if indptr[-1] != nnz:
        raise ValueError(
            f"{name}.indptr[-1] (position {n_rows}) must equal len(indices) = {nnz}, "
            f"got {indptr[-1]}"
        )
    code, pos = get_kernel("csr", "check_csr", "auto")(indptr, indices, n_cols)
    if code != 0:
        raise ValueError(_CSR_MESSAGES[int(code)].format(name=name, pos=int(pos), n_cols=n_cols))


def check_csr(
    matrix: Any,
    name: str = "matrix",
    dtype: Any = None,
    shape: tuple[int | None, int | None] | None = None,
    finite: bool = True,
) -> sp.csr_matrix:
    """Return ``matrix`` as a validated CSR: float data, int32 sorted indices.

    Accepts any scipy.sparse matrix or array. A CSR input is checked as it is
    (unsorted or duplicate indices are reported, not silently repaired); other
    sparse formats are converted, and duplicate coordinates in a COO input are
    an error. Copies only when a conversion is needed.
    """
    if not sp.issparse(matrix):
        raise ValueError(f"{name} must be a scipy.sparse matrix, got {type(matrix).__name__}")
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be 2-dimensional, got shape {matrix.shape}")
    if matrix.format == "coo":
        coo = matrix
        keys = coo.row.astype(np.int64) * coo.shape[1] + coo.col
        order = np.argsort(keys, kind="stable")
        dup = np.flatnonzero(np.diff(keys[order]) == 0)
        if dup.size:
            raise ValueError(
                f"{name} has duplicate coordinates: entry {int(order[dup[0] + 1])} repeats "
                f"({int(coo.row[order[dup[0]]])}, {int(coo.col[order[dup[0]]])})"
            )
    if matrix.format != "csr":
        matrix = sp.csr_matrix(matrix)
        matrix.sort_indices()
    n_rows, n_cols = matrix.shape
    if shape is not None:
        for axis, (want, got) in enumerate(zip(shape, matrix.shape)):
            if want is not None and want != got:
                raise ValueError(
                    f"{name} must have {want} {'rows' if axis == 0 else 'columns'}, got {got}"
                )
    data = matrix.data
    if data.dtype.kind not in "biuf":
        raise ValueError(f"{name}.data must be numeric, got dtype {data.dtype}")
    if dtype is None:
        dtype = data.dtype if data.dtype.type in FLOAT_DTYPES else np.float32
    dtype = check_dtype_arg(dtype)
    indptr = matrix.indptr
    indices = matrix.indices
    if indices.size and (indices.max(initial=0) > np.iinfo(np.int32).max):
        raise ValueError(f"{name} has more columns than int32 indices can address")
    if indptr.dtype.kind not in "iu" or indices.dtype.kind not in "iu":
        raise ValueError(f"{name}.indptr and {name}.indices must be integer arrays")
    indices = np.ascontiguousarray(indices, dtype=np.int32)
    indptr_dtype = np.int32 if indptr[-1] <= np.iinfo(np.int32).max else np.int64
    indptr = np.ascontiguousarray(indptr, dtype=indptr_dtype)
    data = np.ascontiguousarray(data, dtype=dtype)
    if data.shape[0] != indices.shape[0]:
        raise ValueError(
            f"{name}.data has {data.shape[0]} entries but {name}.indices has {indices.shape[0]}"
        )
    check_csr_structure(indptr, indices, n_rows, n_cols, name)
    if finite:
        check_finite(data, f"{name}.data")
    out = sp.csr_matrix((data, indices, indptr), shape=(n_rows, n_cols), copy=False)
    # scipy may upcast index arrays when building; keep the validated ones
    out.indices = indices
    out.indptr = indptr
    out.has_sorted_indices = True
    return out


def check_int(value: Any, name: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_float(
    value: Any,
    name: str,
    minimum: float | None = None,
    strict: bool = False,
    maximum: float | None = None,
) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if minimum is not None and (v <= minimum if strict else v < minimum):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {minimum}, got {value}")
    if maximum is not None and v > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return v


def check_choice(value: Any, name: str, choices: tuple) -> Any:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_item_similarity(matrix: Any, name: str = "item_similarity", dtype: Any = None):
    """A square item x item similarity as a CSR whose structure is safe to read.

    Unlike :func:`check_csr`, the entries of a row may come in any order
    (``fastrec.similarity`` returns each row by descending similarity) and a
    repeated (row, column) entry is allowed: its values add up, as everywhere
    in scipy.sparse. Checked: a scipy.sparse square matrix, numeric finite
    data, ``indptr`` starting at 0, non-decreasing and ending at ``nnz``,
    column indices in range. No copy of a CSR input unless ``dtype`` (float32
    or float64; default: the data's own, else float32) or the index widths
    (int32 indices, int32/int64 indptr) need one.
    """
    if not sp.issparse(matrix):
        raise ValueError(f"{name} must be a scipy.sparse matrix, got {type(matrix).__name__}")
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"{name} must be square (n_items, n_items), got shape {matrix.shape}")
    if matrix.format != "csr":
        matrix = sp.csr_matrix(matrix)
    n = matrix.shape[0]
    data, indices, indptr = matrix.data, matrix.indices, matrix.indptr
    if data.dtype.kind not in "biuf":
        raise ValueError(f"{name}.data must be numeric, got dtype {data.dtype}")
    if indptr.dtype.kind not in "iu" or indices.dtype.kind not in "iu":
        raise ValueError(f"{name}.indptr and {name}.indices must be integer arrays")
    if indptr.ndim != 1 or indptr.shape[0] != n + 1:
        raise ValueError(
            f"{name}.indptr must have n_rows + 1 = {n + 1} entries, got shape {indptr.shape}"
        )
    nnz = indices.shape[0]
    if data.shape[0] != nnz:
        raise ValueError(f"{name}.data has {data.shape[0]} entries but {name}.indices has {nnz}")
    if indptr[0] != 0:
        raise ValueError(f"{name}.indptr[0] must be 0 (position 0)")
    steps = np.diff(indptr)
    if (steps < 0).any():
        raise ValueError(
            f"{name}.indptr must be non-decreasing: it decreases at position "
            f"{first_true(steps < 0) + 1}"
        )
    if indptr[-1] != nnz:
        raise ValueError(
            f"{name}.indptr[-1] (position {n}) must equal len(indices) = {nnz}, got {indptr[-1]}"
        )
    if nnz:
        lo, hi = indices.min(), indices.max()
        if lo < 0 or hi >= n:
            bad = (indices < 0) | (indices >= n)
            pos = first_true(bad)
            raise ValueError(
                f"{name}.indices has column index {indices[pos]} at position {pos}: "
                f"it must be in [0, {n})"
            )
    if dtype is None:
        dtype = data.dtype if data.dtype.type in FLOAT_DTYPES else np.float32
    data = np.ascontiguousarray(data, dtype=check_dtype_arg(dtype))
    check_finite(data, f"{name}.data")
    indices = np.ascontiguousarray(indices, dtype=np.int32)
    indptr_dtype = np.int32 if indptr[-1] <= np.iinfo(np.int32).max else np.int64
    indptr = np.ascontiguousarray(indptr, dtype=indptr_dtype)
    out = sp.csr_matrix((n, n), dtype=data.dtype)
    out.data, out.indices, out.indptr = data, indices, indptr
    return out
