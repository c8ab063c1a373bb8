"""``Interactions``: a users x items CSR matrix plus the raw-id vocabularies.

Raw ids (ints, strings, any hashable) are mapped to dense internal indices:
position ``u`` of ``user_ids`` is the raw id of internal user ``u``. When the
ids can be ordered (all numbers or all strings) the vocabulary is sorted; a mix
of kinds keeps the order of first appearance.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import scipy.sparse as sp

from ._validation import (
    as_float_array,
    check_choice,
    check_csr,
    check_finite,
    check_ids,
    check_timestamps,
)

__all__ = ["Interactions"]

_DUPLICATE_POLICIES = ("raise", "last", "mean", "sum")


class IdVocabulary:
    """Raw id <-> dense index map with vectorised lookups.

    Parameters
    ----------
    ids : array_like, shape (n,)
        Unique raw ids; ``ids[i]`` is the raw id of index ``i``.
    name : str
        Used in error messages ("user_ids", "item_ids").
    """

    def __init__(self, ids: Any, name: str):
        ids = check_ids(ids, name)
        self.ids = ids
        self.name = name
        self._dict: dict | None = None
        try:
            order = np.argsort(ids, kind="stable")
            sorted_ids = ids[order]
            if sorted_ids.size > 1:
                same = sorted_ids[1:] == sorted_ids[:-1]
                if np.any(same):
                    dup = int(order[1:][same].min())
                    raise ValueError(
                        f"{name} must be unique: {_show(ids[dup])!r} at position {dup} repeats"
                    )
            self._order = order
            # integer ids are searched as int64 (check_ids guarantees they fit)
            self._sorted = sorted_ids.astype(np.int64) if ids.dtype.kind in "iu" else sorted_ids
        except TypeError:  # ids of mixed kinds cannot be ordered
            self._order = self._sorted = None
            self._dict = {}
            for pos, v in enumerate(ids.tolist()):
                if v in self._dict:
                    raise ValueError(
                        f"{name} must be unique: {v!r} at position {pos} repeats"
                    ) from None
                self._dict[v] = pos

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def _dense_table(self) -> tuple[int, np.ndarray] | None:
        """``(lo, table)`` with ``table[id - lo]`` = index or -1, for compact integer ids.

        Built on first use when the ids are integers whose range spans at most
        ``max(16 * len, 2**20)`` values (at most 64 bytes per id, or 4 MiB), so
        a lookup is one gather instead of a binary search per id.
        """
        if self.ids.dtype.kind not in "iu" or len(self) == 0:
            return None
        table = getattr(self, "_table", None)
        if table is None:
            lo, hi = int(self._sorted[0]), int(self._sorted[-1])
            if hi - lo + 1 > max(16 * len(self), 1 << 20) or hi > np.iinfo(np.int64).max:
                table = (0, None)
            else:
                t = np.full(hi - lo + 1, -1, dtype=np.int32)
                t[(self.ids.astype(np.int64) - lo)] = np.arange(len(self), dtype=np.int32)
                table = (lo, t)
            self._table = table
        return None if table[1] is None else table

    def lookup(self, raw: Any) -> np.ndarray:
        """Internal indices (int64) of raw ids; -1 for ids not in the vocabulary."""
        raw = np.asarray(raw)
        scalar = raw.ndim == 0
        raw = np.atleast_1d(raw)
        if raw.size == 0:
            return np.zeros(0, dtype=np.int64)
        if raw.dtype.kind == "u" and raw.dtype.itemsize >= 8:
            # no id exceeds int64 (check_ids): larger queries are unknown, the rest compare as int64
            big = raw > np.iinfo(np.int64).max
            if big.any():
                out = np.full(raw.shape, -1, dtype=np.int64)
                out[~big] = self.lookup(raw[~big].astype(np.int64))
                return out[0:1].reshape(()) if scalar else out
            raw = raw.astype(np.int64)
        dense = self._dense_table() if raw.dtype.kind in "iu" else None
        if dense is not None:
            lo, t = dense
            off = raw.astype(np.int64, copy=False) - lo
            inside = (off >= 0) & (off < t.shape[0])
            out = np.full(raw.shape, -1, dtype=np.int64)
            out[inside] = t[off[inside]]
            return out[0:1].reshape(()) if scalar else out
        if self._dict is not None:
            out = np.fromiter(
                (self._dict.get(v, -1) for v in raw.tolist()), dtype=np.int64, count=raw.size
            )
        else:
            out = np.full(raw.shape, -1, dtype=np.int64)
            if len(self) > 0:
                try:
                    pos = np.searchsorted(self._sorted, raw)
                    pos = np.minimum(pos, len(self) - 1)
                    found = self._sorted[pos] == raw
                    if isinstance(found, np.ndarray) and found.shape == raw.shape:
                        out[found] = self._order[pos[found]]
                    else:  # comparison between incomparable kinds
                        raise TypeError
                except (TypeError, OverflowError):  # e.g. a Python int beyond int64
                    d = {v: i for i, v in enumerate(self.ids.tolist())}
                    out = np.fromiter(
                        (d.get(v, -1) for v in raw.tolist()), dtype=np.int64, count=raw.size
                    )
        return out[0:1].reshape(()) if scalar else out


def _stable_sort(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``order = argsort(key, kind="stable")`` and ``key[order]``, faster.

    When key and position fit together in 63 bits, the position is packed
    into the low bits and a plain (SIMD) value sort does the work: equal keys
    then come out in their original order, as a stable sort would give.
    """
    n = key.shape[0]
    pos_bits = max(1, int(n - 1).bit_length())
    top = int(key.max()) if n else 0
    if n and top.bit_length() + pos_bits <= 63:
        packed = (key << pos_bits) | np.arange(n, dtype=np.int64)
        packed.sort()
        order = packed & ((1 << pos_bits) - 1)
        packed >>= pos_bits
        return order, packed
    order = np.argsort(key, kind="stable")
    return order, key[order]


def _show(value: Any) -> Any:
    """A numpy scalar as the plain Python value (for readable messages)."""
    return value.item() if isinstance(value, np.generic) else value


def _factorize(raw: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Codes (int32) and vocabulary of a 1-D array of raw ids."""
    arr = check_ids(raw, name)
    if arr.dtype.kind in "iu" and arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if hi - lo < max(4 * arr.size, 1 << 20):  # dense range: O(n) table lookup
            # offsets in int64: in the ids' own (narrow) dtype ``arr - lo`` would wrap
            off = arr.astype(np.int64) - lo
            present = np.zeros(hi - lo + 1, dtype=bool)
            present[off] = True
            table = np.cumsum(present, dtype=np.int64) - 1
            codes = table[off].astype(np.int32)
            return codes, (np.flatnonzero(present) + lo).astype(arr.dtype)
    try:
        vocab, codes = np.unique(arr, return_inverse=True)
        return codes.astype(np.int32).ravel(), vocab
    except TypeError:  # mixed kinds: first-appearance order
        table: dict = {}
        codes = np.fromiter(
            (table.setdefault(v, len(table)) for v in arr.tolist()), dtype=np.int32, count=arr.size
        )
        vocab = np.empty(len(table), dtype=object)
        vocab[:] = list(table.keys())
        return codes, vocab


class Interactions:
    """User-item interactions: CSR ``matrix`` (users x items) and id vocabularies.

    Build with :meth:`from_arrays`, :meth:`from_dataframe` or :meth:`from_csr`.

    Attributes
    ----------
    matrix : scipy.sparse.csr_matrix (n_users, n_items), float32
        Ratings (1.0 for implicit data); int32 indices sorted within each row.
    user_ids, item_ids : ndarray
        Raw ids; position = internal index.
    timestamps : ndarray (nnz,) or None
        Aligned with ``matrix.data`` (CSR order).
    implicit : bool
        True when the data came without ratings (every value is 1.0).
    """

    def __init__(
        self,
        matrix: sp.csr_matrix,
        user_ids: Any,
        item_ids: Any,
        timestamps: np.ndarray | None = None,
        implicit: bool = False,
        _trusted: bool = False,
    ):
        if not _trusted:
            matrix = check_csr(matrix, "matrix", dtype=np.float32)
        self._matrix = matrix
        self._users = (
            user_ids if isinstance(user_ids, IdVocabulary) else IdVocabulary(user_ids, "user_ids")
        )
        self._items = (
            item_ids if isinstance(item_ids, IdVocabulary) else IdVocabulary(item_ids, "item_ids")
        )
        if len(self._users) != matrix.shape[0]:
            raise ValueError(
                f"user_ids has {len(self._users)} entries but the matrix has {matrix.shape[0]} rows"
            )
        if len(self._items) != matrix.shape[1]:
            raise ValueError(
                f"item_ids has {len(self._items)} entries but the matrix has "
                f"{matrix.shape[1]} columns"
            )
        if timestamps is not None and not _trusted:
            timestamps = check_timestamps(timestamps, matrix.nnz)
        self._timestamps = timestamps
        self.implicit = bool(implicit)

    # ------------------------------------------------------------------ builders
    @classmethod
    def from_arrays(
        cls,
        users: Iterable,
        items: Iterable,
        ratings: Iterable | None = None,
        timestamps: Iterable | None = None,
        duplicates: str = "raise",
    ) -> Interactions:
        """Build from parallel arrays of raw user ids, raw item ids and ratings.

        Parameters
        ----------
        users, items : array_like (n,)
            Raw ids of any hashable kind. NaN/None ids are an error.
        ratings : array_like (n,), optional
            Finite numbers. Omitted: implicit feedback, every value 1.0.
        timestamps : array_like (n,), optional
            Numbers or numpy datetime64 (stored as int64 nanoseconds then).
        duplicates : {"raise", "last", "mean", "sum"}
            What a repeated (user, item) pair does: raise a ValueError naming
            its position, keep the last occurrence, or merge the ratings by mean
            or sum (the merged pair keeps its latest timestamp).
        """
        check_choice(duplicates, "duplicates", _DUPLICATE_POLICIES)
        users = check_ids(users, "users")
        items = check_ids(items, "items")
        n = users.shape[0]
        if items.shape != (n,):
            raise ValueError(f"users has {n} entries but items has shape {items.shape}")
        implicit = ratings is None
        if implicit:
            values = np.ones(n, dtype=np.float32)
        else:
            values = np.asarray(ratings)
            if values.shape != (n,):
                raise ValueError(f"users has {n} entries but ratings has shape {values.shape}")
            values = as_float_array(values, "ratings", dtype=np.float64)
            with np.errstate(over="ignore"):  # overflow is reported just below
                values = values.astype(np.float32)
            check_finite(values, "ratings (as float32)")
        ts = None if timestamps is None else check_timestamps(timestamps, n)
        if n == 0:
            raise ValueError("empty data set: users, items (and ratings) have no entries")
        ucodes, user_ids = _factorize(users, "users")
        icodes, item_ids = _factorize(items, "items")
        n_users, n_items = len(user_ids), len(item_ids)
        key = ucodes.astype(np.int64) * n_items + icodes
        del ucodes, icodes
        order, key = _stable_sort(key)
        same = key[1:] == key[:-1]
        if same.any():
            if duplicates == "raise":
                later = order[1:][same]
                pos = int(later.min())
                u, i = divmod(int(key[1:][same][np.argmin(later)]), n_items)
                first = int(order[np.searchsorted(key, u * n_items + i)])
                raise ValueError(
                    f"duplicate (user, item) pair ({_show(user_ids[u])!r}, {_show(item_ids[i])!r}) "
                    f"at position "
                    f"{pos} (first at position {first}); pass duplicates='last', 'mean' or 'sum' "
                    "to merge"
                )
            starts = np.flatnonzero(np.concatenate(([True], ~same)))
            if duplicates == "last":
                last = np.append(starts[1:] - 1, key.shape[0] - 1)
                order = order[last]
                values = values[order]
                ts = ts[order] if ts is not None else None
            else:
                summed = np.add.reduceat(values[order].astype(np.float64), starts)
                if duplicates == "mean":
                    summed /= np.diff(np.append(starts, key.shape[0]))
                if ts is not None:
                    ts = np.maximum.reduceat(ts[order], starts)
                values = summed.astype(np.float32)
                order = None
            key = key[starts]
        else:
            values = values[order]
            ts = ts[order] if ts is not None else None
        del same
        rows, cols = np.divmod(key, n_items)
        del key
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n_users), out=indptr[1:])
        del rows
        if indptr[-1] <= np.iinfo(np.int32).max:
            indptr = indptr.astype(np.int32)
        matrix = sp.csr_matrix(
            (values, cols.astype(np.int32), indptr), shape=(n_users, n_items), copy=False
        )
        matrix.has_sorted_indices = True
        return cls(matrix, user_ids, item_ids, ts, implicit=implicit, _trusted=True)

    @classmethod
    def from_dataframe(
        cls,
        df: Any,
        user_col: str = "user",
        item_col: str = "item",
        rating_col: str | None = "rating",
        timestamp_col: str | None = None,
        duplicates: str = "raise",
    ) -> Interactions:
        """Build from a pandas DataFrame (columns named by the ``*_col`` arguments).

        ``rating_col=None`` (or a default "rating" column that is absent) means
        implicit feedback.
        """
        columns = list(getattr(df, "columns", []))
        for field, col in (("user_col", user_col), ("item_col", item_col)):
            if col not in columns:
                raise ValueError(f"{field}={col!r} is not a column of the DataFrame ({columns})")
        if rating_col is not None and rating_col not in columns:
            if rating_col == "rating":  # the default; the data are implicit
                rating_col = None
            else:
                raise ValueError(f"rating_col={rating_col!r} is not a column of the DataFrame")
        if timestamp_col is not None and timestamp_col not in columns:
            raise ValueError(f"timestamp_col={timestamp_col!r} is not a column of the DataFrame")

        def col(name):
            return df[name].to_numpy()

        return cls.from_arrays(
            col(user_col),
            col(item_col),
            ratings=col(rating_col) if rating_col is not None else None,
            timestamps=col(timestamp_col) if timestamp_col is not None else None,
            duplicates=duplicates,
        )

    @classmethod
    def from_csr(
        cls, matrix: Any, user_ids: Any = None, item_ids: Any = None, timestamps: Any = None
    ) -> Interactions:
        """Wrap a scipy.sparse users x items matrix (validated, not repaired).

        Ids default to ``arange(n_users)`` / ``arange(n_items)``. Explicit zeros
        stored in the matrix count as interactions with rating 0.
        """
        m = check_csr(matrix, "matrix", dtype=np.float32)
        if m.nnz == 0:
            raise ValueError("empty data set: the matrix has no stored entries")
        if m.data.dtype != np.float32 or not np.isfinite(m.data).all():
            check_finite(m.data, "matrix.data (as float32)")
        n_users, n_items = m.shape
        user_ids = np.arange(n_users) if user_ids is None else user_ids
        item_ids = np.arange(n_items) if item_ids is None else item_ids
        if timestamps is not None:
            timestamps = check_timestamps(timestamps, m.nnz)
        return cls(m, user_ids, item_ids, timestamps, implicit=False, _trusted=True)

    # ---------------------------------------------------------------- properties
    @property
    def matrix(self) -> sp.csr_matrix:
        return self._matrix

    @property
    def n_users(self) -> int:
        return int(self._matrix.shape[0])

    @property
    def n_items(self) -> int:
        return int(self._matrix.shape[1])

    @property
    def shape(self) -> tuple[int, int]:
        return self.n_users, self.n_items

    @property
    def nnz(self) -> int:
        return int(self._matrix.nnz)

    @property
    def user_ids(self) -> np.ndarray:
        return self._users.ids

    @property
    def item_ids(self) -> np.ndarray:
        return self._items.ids

    @property
    def timestamps(self) -> np.ndarray | None:
        return self._timestamps

    @property
    def users(self) -> IdVocabulary:
        return self._users

    @property
    def items(self) -> IdVocabulary:
        return self._items

    def user_index(self, raw_ids: Any) -> np.ndarray:
        """Internal indices of raw user ids (int64); -1 where unknown."""
        return self._users.lookup(raw_ids)

    def item_index(self, raw_ids: Any) -> np.ndarray:
        """Internal indices of raw item ids (int64); -1 where unknown."""
        return self._items.lookup(raw_ids)

    def entry_users(self) -> np.ndarray:
        """Internal user index of every stored entry, in CSR order (int32)."""
        return np.repeat(np.arange(self.n_users, dtype=np.int32), np.diff(self._matrix.indptr))

    def to_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """(user index, item index, rating, timestamp) per stored entry, CSR order."""
        m = self._matrix
        return self.entry_users(), m.indices, m.data, self._timestamps

    def same_vocabulary(self, other: Interactions) -> bool:
        return (self._users is other._users and self._items is other._items) or (
            np.array_equal(self.user_ids, other.user_ids)
            and np.array_equal(self.item_ids, other.item_ids)
        )

    def subset(self, mask: np.ndarray) -> Interactions:
        """The entries where ``mask`` (nnz booleans, CSR order) is True; same vocabulary."""
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (self.nnz,):
            raise ValueError(f"mask must have shape ({self.nnz},), got {mask.shape}")
        m = self._matrix
        rows = self.entry_users()[mask]
        indptr = np.zeros(self.n_users + 1, dtype=m.indptr.dtype)
        np.cumsum(np.bincount(rows, minlength=self.n_users), out=indptr[1:])
        sub = sp.csr_matrix((m.data[mask], m.indices[mask], indptr), shape=m.shape, copy=False)
        sub.indices = np.ascontiguousarray(sub.indices, dtype=np.int32)
        sub.indptr = indptr
        sub.has_sorted_indices = True
        ts = self._timestamps[mask] if self._timestamps is not None else None
        return Interactions(sub, self._users, self._items, ts, self.implicit, _trusted=True)

    def __len__(self) -> int:
        return self.nnz

    def __repr__(self) -> str:
        kind = "implicit" if self.implicit else "ratings"
        ts = ", timestamps" if self._timestamps is not None else ""
        return (
            f"Interactions(n_users={self.n_users}, n_items={self.n_items}, nnz={self.nnz}, "
            f"{kind}{ts})"
        )
