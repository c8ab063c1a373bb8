"""Input checks shared by every public entry point.

Everything that reaches a compiled kernel passes through here first: the Cython
kernels run without bounds checks, so a malformed array would corrupt memory.
Every error is a ``ValueError`` naming the field and the first bad position.
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any

import numpy as np
import scipy.sparse as sp

from ._kernels import csr as csr_kernels

FLOAT_DTYPES = (np.float32, np.float64)
INT32_MAX = int(np.iinfo(np.int32).max)
INT64_MIN = int(np.iinfo(np.int64).min)
INT64_MAX = int(np.iinfo(np.int64).max)
# The most threads a ``num_threads`` argument may ask for: OpenMP would try to
# start them all, and its C interface takes an ``int``.
MAX_THREADS = 4096

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
    if arr.dtype.kind == "c":
        raise ValueError(f"{name} must be real numbers, got a complex array (dtype {arr.dtype})")
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
    indptr: Any, indices: Any, n_rows: int, n_cols: int, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a CSR structure; return ``(indptr, indices)`` in the kernels' dtypes.

    Any integer dtype is accepted. Values are checked in their own dtype before
    the cast (int32 ``indices``; int32 ``indptr``, or int64 when the matrix has
    more than 2**31 - 1 entries), so an int64 or uint64 value never wraps into
    a valid-looking one. Raises ``ValueError`` naming the array and position.
    """
    indptr = np.asarray(indptr)
    indices = np.asarray(indices)
    for field, arr in (("indptr", indptr), ("indices", indices)):
        if arr.dtype.kind not in "iu":
            raise ValueError(f"{name}.{field} must be an integer array, got dtype {arr.dtype}")
        if arr.ndim != 1:
            raise ValueError(f"{name}.{field} must be 1-dimensional, got shape {arr.shape}")
    if n_cols > INT32_MAX:
        raise ValueError(
            f"{name} has {n_cols} columns, more than int32 indices can address ({INT32_MAX})"
        )
    if indptr.shape[0] != n_rows + 1:
        raise ValueError(
            f"{name}.indptr must have n_rows + 1 = {n_rows + 1} entries, got shape {indptr.shape}"
        )
    nnz = indices.shape[0]
    if int(indptr[-1]) != nnz:
        raise ValueError(
            f"{name}.indptr[-1] (position {n_rows}) must equal len(indices) = {nnz}, "
            f"got {indptr[-1]}"
        )
    want = np.int32 if nnz <= INT32_MAX else np.int64
    if indptr.dtype != want:
        # every entry of a valid indptr lies in [0, nnz]: check before the cast
        bad = (indptr < 0) | (indptr > nnz)
        if bad.any():
            pos = first_true(bad)
            raise ValueError(f"{name}.indptr[{pos}] = {indptr[pos]} is outside [0, nnz = {nnz}]")
        indptr = indptr.astype(want)
    if indices.dtype != np.int32:
        low = indices < 0
        if low.any():
            raise ValueError(_CSR_MESSAGES[3].format(name=name, pos=first_true(low)))
        high = indices >= n_cols
        if high.any():
            raise ValueError(
                _CSR_MESSAGES[4].format(name=name, pos=first_true(high), n_cols=n_cols)
            )
        indices = indices.astype(np.int32)
    indptr = np.ascontiguousarray(indptr)
    indices = np.ascontiguousarray(indices)
    code, pos = csr_kernels.get("auto").check_csr(indptr, indices, n_cols)
    if code != 0:
        raise ValueError(_CSR_MESSAGES[int(code)].format(name=name, pos=int(pos), n_cols=n_cols))
    return indptr, indices


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
    if data.shape[0] != matrix.indices.shape[0]:
        raise ValueError(
            f"{name}.data has {data.shape[0]} entries but {name}.indices has "
            f"{matrix.indices.shape[0]}"
        )
    indptr, indices = check_csr_structure(matrix.indptr, matrix.indices, n_rows, n_cols, name)
    data = np.ascontiguousarray(data, dtype=dtype)
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


def check_num_threads(num_threads: Any) -> int:
    """``num_threads`` as an int in ``[0, MAX_THREADS]`` (0 means every core)."""
    if isinstance(num_threads, bool) or not isinstance(num_threads, numbers.Integral):
        raise ValueError(f"num_threads must be an integer >= 0, got {num_threads!r}")
    if num_threads < 0:
        raise ValueError(f"num_threads must be >= 0 (0 means all cores), got {num_threads}")
    if num_threads > MAX_THREADS:
        raise ValueError(f"num_threads must be <= {MAX_THREADS}, got {num_threads}")
    return int(num_threads)


def clamp_count(value: Any, name: str, limit: int) -> int:
    """``value`` checked as an int >= 1, then capped at ``max(limit, 1)``.

    For sizes whose useful range the data bound: ``k``/``n`` of a top-k list
    (the number of candidates), a mini-batch (the number of examples).
    """
    value = check_int(value, name, minimum=1)
    return min(value, max(int(limit), 1))


def physical_memory() -> int | None:
    """Bytes of RAM of this machine, or None when the system does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def _fmt_bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def check_memory(nbytes: int, what: str) -> None:
    """Refuse, before allocating, what cannot fit in this machine's memory.

    ``nbytes`` is a lower bound of what the operation allocates; ``what``
    names the parameters responsible (e.g. "factors=2**33 for 2 users and
    2 items"). Raises ``ValueError``; numpy's ``MemoryError`` never surfaces.
    """
    total = physical_memory()
    limit = total if total is not None else 1 << 50
    if nbytes > limit:
        raise ValueError(
            f"{what} needs at least {_fmt_bytes(nbytes)}, more than this machine's memory "
            f"({_fmt_bytes(limit)})"
        )


def _int64_overflow(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not INT64_MIN <= int(v) <= INT64_MAX


def check_ids(values: Any, name: str) -> np.ndarray:
    """Raw ids as a 1-D array, refusing what cannot be an id.

    Integer ids of every width are accepted as they are (computations on them
    happen in int64); integers outside the int64 range (uint64 values above
    2**63 - 1, Python ints of any size) are refused with their position: pass
    such ids as strings. NaN/None/infinite ids, complex numbers and nested
    sequences are refused too.
    """
    try:
        arr = np.asarray(values)
    except (ValueError, TypeError) as exc:  # ragged nested sequences
        raise ValueError(f"{name} must be a 1-D array of ids: {exc}") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional, got shape {arr.shape}")
    kind = arr.dtype.kind
    if kind == "u" and arr.dtype.itemsize >= 8 and arr.size:
        big = arr > INT64_MAX
        if big.any():
            pos = first_true(big)
            raise ValueError(
                f"{name} must fit in int64 (pass larger ids as strings): found {arr[pos]} "
                f"at position {pos}"
            )
    elif kind == "f":
        bad = ~np.isfinite(arr)
        if bad.any():
            pos = first_true(bad)
            raise ValueError(
                f"{name} must not be NaN or infinite: found {arr[pos]} at position {pos}"
            )
    elif kind == "c":
        raise ValueError(f"{name} must not be complex numbers (dtype {arr.dtype})")
    elif kind == "V":
        raise ValueError(f"{name} must be a plain array of ids, got dtype {arr.dtype}")
    elif kind == "O":
        for pos, v in enumerate(arr.tolist()):
            if (
                v is None
                or (isinstance(v, float) and v != v)
                or type(v).__name__ in ("NAType", "NaTType")  # pandas' missing values
            ):
                raise ValueError(f"{name} must not be missing (None/NaN): found at position {pos}")
            if _int64_overflow(v):
                raise ValueError(
                    f"{name} must fit in int64 (pass larger ids as strings): found {v} "
                    f"at position {pos}"
                )
            if isinstance(v, complex | np.complexfloating):
                raise ValueError(f"{name} must not be complex: found {v!r} at position {pos}")
            if isinstance(v, list | tuple | dict | set | np.ndarray):
                raise ValueError(
                    f"{name} must hold scalar ids: found a {type(v).__name__} at position {pos}"
                )
    return arr


def check_timestamps(values: Any, n: int) -> np.ndarray:
    """Timestamps as int64 (integral values, datetime64 in nanoseconds) or float64.

    Values outside the int64 range (which would wrap to INT64_MIN on a cast)
    are refused with their position, as are NaN, NaT and infinities.
    """
    ts = np.asarray(values)
    if ts.shape != (n,):
        raise ValueError(f"timestamps must have one entry per rating ({n}), got shape {ts.shape}")
    if ts.dtype.kind == "M":
        nat = np.isnat(ts)
        if nat.any():
            raise ValueError(f"timestamps must not be NaT: found at position {first_true(nat)}")
        ns = ts.astype("datetime64[ns]")
        back = ns.astype(ts.dtype)
        wrong = back != ts
        if wrong.any():
            pos = first_true(wrong)
            raise ValueError(
                f"timestamps[{pos}] = {ts[pos]} is outside the datetime64[ns] range "
                "(years 1678-2262)"
            )
        return ns.view(np.int64)
    if ts.dtype.kind in "iub":
        if ts.dtype.kind == "u" and ts.dtype.itemsize >= 8 and ts.size:
            big = ts > INT64_MAX
            if big.any():
                pos = first_true(big)
                raise ValueError(f"timestamps must fit in int64: found {ts[pos]} at position {pos}")
        return ts.astype(np.int64)
    ts = as_float_array(ts, "timestamps", dtype=np.float64)
    if np.all(ts == np.floor(ts)):
        out_of_range = (ts >= 2.0**63) | (ts < -(2.0**63))
        if out_of_range.any():
            pos = first_true(out_of_range)
            raise ValueError(f"timestamps must fit in int64: found {ts[pos]} at position {pos}")
        ts = ts.astype(np.int64)
    return ts


def check_scores(scores: Any, name: str = "scores") -> np.ndarray:
    """A 2-D real score matrix as C-ordered float32/float64; NaN refused, -inf allowed.

    Object, string and complex arrays are refused (``ValueError``) rather than
    converted: numpy would parse strings and drop imaginary parts silently.
    """
    arr = np.asarray(scores)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric: a float or integer array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-dimensional (n_rows, n_cols), got shape {arr.shape}")
    arr = as_float_array(arr, name, finite=False)
    nan = np.isnan(arr)
    if nan.any():
        flat = first_true(nan)
        raise ValueError(
            f"{name} must not contain NaN: found one at position {fmt_pos(arr.shape, flat)}"
        )
    return arr


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


def check_nonnegative(matrix: Any, name: str, needs: str) -> None:
    """Refuse a CSR with a negative stored value, naming it, its position, row and column.

    ``needs`` ends the message: why the caller takes no negative value.
    """
    bad = matrix.data < 0
    if bad.any():
        pos = int(np.argmax(bad))
        row = int(np.searchsorted(matrix.indptr, pos, side="right") - 1)
        raise ValueError(
            f"{name} holds a negative value {float(matrix.data[pos])} at position {pos} "
            f"(row {row}, column {int(matrix.indices[pos])}): {needs}"
        )


def check_random_state(value: Any) -> None:
    """``random_state`` of the models: None, a non-negative integer or a numpy Generator."""
    if value is None or isinstance(value, np.random.Generator):
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(
            f"random_state must be None, a non-negative integer or a numpy Generator, got {value!r}"
        )


def all_finite(loss: float, arrays: tuple[np.ndarray, ...]) -> bool:
    """Whether ``loss`` and every array are finite (NaN and infinities excluded).

    A finite sum proves an array finite, so the full elementwise test runs
    only when the sum is not (a NaN or infinity, or an overflowing sum).
    """
    return math.isfinite(loss) and all(np.isfinite(a.sum()) or np.isfinite(a).all() for a in arrays)
