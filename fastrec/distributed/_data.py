"""``DistributedInteractions``: interactions cut into row blocks held on Dask workers.

The data live on the workers as two sets of nnz-balanced row blocks: the users
x items matrix cut into blocks of consecutive users, and its transpose cut
into blocks of consecutive items (what an item half-sweep or an item
similarity reads). Each block is a :class:`RowBlock` (a CSR of its rows with
global column indices) produced by a task, so the scheduler knows how to
rebuild it if the worker holding it is lost: nothing is ``scatter``-ed.

:func:`read_interactions` builds everything on the workers from partitioned
Parquet or CSV (or any dask DataFrame), in four steps of tasks:

1. each partition's columns are checked and converted (ids present, ids of one
   kind, finite ratings), and its sorted unique ids are taken;
2. the unique ids are merged into the two vocabularies (sorted, as
   ``Interactions.from_dataframe`` orders them) and every partition is encoded
   against them;
3. per-row counts are summed; only these counts reach the client, which cuts
   the rows into blocks of about equal nonzeros;
4. each partition is split by block, and each block gathers its pieces from
   every partition and sorts them into a CSR (a duplicate (user, item) pair is
   an error, as ``duplicates="raise"``).
"""

from __future__ import annotations

import operator
import os
import uuid
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..data import Interactions
from . import _cluster

__all__ = ["DistributedInteractions", "read_interactions", "RowBlock"]


@dataclass(frozen=True)
class RowBlock:
    """Rows ``start .. start + matrix.shape[0] - 1`` of a CSR, global column indices.

    ``matrix`` is float32 with int32 sorted indices (the layout the kernels
    take); ``timestamps`` is aligned with ``matrix.data`` or None.
    """

    start: int
    matrix: sp.csr_matrix
    timestamps: np.ndarray | None = None

    @property
    def stop(self) -> int:
        return self.start + self.matrix.shape[0]


# ------------------------------------------------------------------ per-partition
_KINDS = {
    "integer": "number",
    "floating": "number",
    "mixed-integer-float": "number",
    "decimal": "number",
    "boolean": "number",
    "string": "str",
    "bytes": "bytes",
    "datetime64": "datetime",
    "datetime": "datetime",
}


def _id_kind(values: np.ndarray, column: str, partition: int) -> str:
    """Kind "number", "str", "bytes" or "datetime"; ids of several kinds in one partition raise."""
    from pandas.api.types import infer_dtype

    if values.shape[0] == 0:
        return "empty"
    inferred = infer_dtype(values, skipna=False)
    if inferred not in _KINDS:
        raise ValueError(
            f"column {column!r} holds ids of mixed or unsupported kinds ({inferred}) in "
            f"partition {partition}: the distributed reader needs ids of one kind, numbers "
            "or strings (convert them, e.g. all to str)"
        )
    return _KINDS[inferred]


def _missing(df: Any, column: str, partition: int) -> None:
    bad = df[column].isna().to_numpy()
    if bad.any():
        pos = int(np.argmax(bad))
        raise ValueError(
            f"column {column!r} has a missing id (None/NaN) in partition {partition} "
            f"at row {pos} of the partition"
        )


def _extract(df: Any, partition: int, columns: dict[str, str | None]) -> dict[str, Any]:
    """Check and convert one partition (a pandas DataFrame) into numpy arrays."""
    present = list(df.columns)
    for field, col in columns.items():
        if col is not None and col not in present:
            raise ValueError(
                f"{field}={col!r} is not a column of partition {partition} (its columns: {present})"
            )
    out: dict[str, Any] = {"partition": partition}
    for field in ("user_col", "item_col"):
        col = columns[field]
        _missing(df, col, partition)
        values = df[col].to_numpy()
        out[field] = values
        out[field + "_kind"] = _id_kind(values, col, partition)
    n = len(df)
    rating_col = columns["rating_col"]
    if rating_col is None:
        out["ratings"] = np.ones(n, dtype=np.float32)
    else:
        raw = df[rating_col].to_numpy()
        try:
            ratings = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"column {rating_col!r} must be numeric: partition {partition} holds "
                f"{raw.dtype} values"
            ) from None
        bad = ~np.isfinite(ratings)
        if bad.any():
            pos = int(np.argmax(bad))
            raise ValueError(
                f"column {rating_col!r} has a NaN or infinite rating ({ratings[pos]}) in "
                f"partition {partition} at row {pos} of the partition; nothing is dropped: "
                "clean or drop such rows first"
            )
        with np.errstate(over="ignore"):
            ratings32 = ratings.astype(np.float32)
        if not np.isfinite(ratings32).all():
            pos = int(np.argmax(~np.isfinite(ratings32)))
            raise ValueError(
                f"column {rating_col!r}: {ratings[pos]} in partition {partition} at row {pos} "
                "overflows float32"
            )
        out["ratings"] = ratings32
    ts_col = columns["timestamp_col"]
    out["timestamps"] = None
    if ts_col is not None:
        ts = df[ts_col].to_numpy()
        if ts.dtype.kind == "M":
            if np.isnat(ts).any():
                pos = int(np.argmax(np.isnat(ts)))
                raise ValueError(f"column {ts_col!r} has NaT in partition {partition} at row {pos}")
            ts = ts.astype("datetime64[ns]").view(np.int64)
        elif ts.dtype.kind != "i":
            try:
                ts = np.asarray(ts, dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(
                    f"column {ts_col!r} must hold numbers or datetimes (partition {partition})"
                ) from None
            if not np.isfinite(ts).all():
                pos = int(np.argmax(~np.isfinite(ts)))
                raise ValueError(
                    f"column {ts_col!r} has a NaN or infinite timestamp in partition "
                    f"{partition} at row {pos}"
                )
            if np.all(ts == np.floor(ts)):
                ts = ts.astype(np.int64)
        out["timestamps"] = ts
    return out


def _unique(part: dict[str, Any], field: str) -> tuple[str, int, np.ndarray]:
    """(kind, partition, sorted unique ids) of one partition's column."""
    return part[field + "_kind"], part["partition"], np.unique(part[field])


def _merge_unique(column: str, *parts: tuple[str, int, np.ndarray]) -> tuple[str, int, np.ndarray]:
    """Union of sorted unique ids; partitions with ids of different kinds raise."""
    typed = [p for p in parts if p[0] != "empty"] or list(parts)
    kind, partition, _ = typed[0]
    for other_kind, other_partition, _ in typed[1:]:
        if other_kind != kind:
            raise ValueError(
                f"column {column!r} holds {kind} ids in partition {partition} but {other_kind} "
                f"ids in partition {other_partition}: ids must be of one kind in every "
                "partition (convert them, e.g. all to str)"
            )
    values = [p[2] for p in parts if p[2].size]
    if not values:
        return kind, partition, parts[0][2]
    if len(values) == 1:
        return kind, partition, values[0]
    return kind, partition, np.unique(np.concatenate(values))


def _vocabulary(merged: tuple[str, int, np.ndarray]) -> np.ndarray:
    return merged[2]


def _encode(part: dict[str, Any], users: np.ndarray, items: np.ndarray) -> dict[str, Any]:
    """Internal indices (int32) of one partition's ids in the vocabularies."""
    return {
        "partition": part["partition"],
        "users": np.searchsorted(users, part["user_col"]).astype(np.int32),
        "items": np.searchsorted(items, part["item_col"]).astype(np.int32),
        "ratings": part["ratings"],
        "timestamps": part["timestamps"],
    }


def _encode_csr(
    start: int,
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    timestamps: np.ndarray | None,
    partition: int,
) -> dict[str, Any]:
    """An already encoded slice of rows (``from_interactions``)."""
    rows = np.repeat(np.arange(indptr.shape[0] - 1, dtype=np.int32), np.diff(indptr))
    return {
        "partition": partition,
        "users": rows + np.int32(start),
        "items": indices,
        "ratings": data,
        "timestamps": timestamps,
    }


def _counts(part: dict[str, Any], n_users: int, n_items: int) -> dict[str, Any]:
    return {
        "users": np.bincount(part["users"], minlength=n_users).astype(np.int64),
        "items": np.bincount(part["items"], minlength=n_items).astype(np.int64),
        "min_rating": float(part["ratings"].min()) if part["ratings"].size else np.inf,
        "min_partition": part["partition"],
        "timestamps": part["timestamps"] is not None,
    }


def _sum_counts(*counts: dict[str, Any]) -> dict[str, Any]:
    out = dict(counts[0])
    for c in counts[1:]:
        out["users"] = out["users"] + c["users"]
        out["items"] = out["items"] + c["items"]
        if c["min_rating"] < out["min_rating"]:
            out["min_rating"], out["min_partition"] = c["min_rating"], c["min_partition"]
        out["timestamps"] = out["timestamps"] and c["timestamps"]
    return out


def _split(part: dict[str, Any], user_bounds: np.ndarray, item_bounds: np.ndarray) -> list:
    """Pieces of one partition per user block, then per item block."""
    pieces = []
    ts = part["timestamps"]
    for rows, cols, bounds in (
        (part["users"], part["items"], user_bounds),
        (part["items"], part["users"], item_bounds),
    ):
        block = np.searchsorted(bounds, rows, side="right") - 1
        order = np.argsort(block, kind="stable")
        edges = np.searchsorted(block[order], np.arange(bounds.shape[0]))
        for b in range(bounds.shape[0] - 1):
            sel = order[edges[b] : edges[b + 1]]
            pieces.append(
                (
                    rows[sel],
                    cols[sel],
                    part["ratings"][sel],
                    ts[sel] if ts is not None else None,
                )
            )
    return pieces


def _show(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _build_block(
    start: int,
    stop: int,
    n_cols: int,
    transposed: bool,
    row_ids: np.ndarray,
    col_ids: np.ndarray,
    *pieces: tuple,
) -> RowBlock:
    """Sort the pieces of one block (in partition order) into a CSR."""
    rows = np.concatenate([p[0] for p in pieces]).astype(np.int64) - start
    cols = np.concatenate([p[1] for p in pieces])
    values = np.concatenate([p[2] for p in pieces]).astype(np.float32, copy=False)
    has_ts = all(p[3] is not None for p in pieces)
    key = rows * n_cols + cols
    order = np.argsort(key, kind="stable")
    key = key[order]
    same = np.flatnonzero(key[1:] == key[:-1])
    if same.size:
        r, c = divmod(int(key[same[0]]), n_cols)
        pair = (_show(row_ids[start + r]), _show(col_ids[c]))
        if transposed:
            pair = pair[::-1]
        raise ValueError(
            f"duplicate (user, item) pair {pair!r}: the distributed reader keeps every "
            "pair once (duplicates='raise'); merge repeated pairs before reading"
        )
    n_rows = stop - start
    indptr_dtype = np.int32 if key.shape[0] <= np.iinfo(np.int32).max else np.int64
    indptr = np.zeros(n_rows + 1, dtype=indptr_dtype)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    matrix = sp.csr_matrix(
        (values[order], cols[order].astype(np.int32), indptr), shape=(n_rows, n_cols), copy=False
    )
    matrix.has_sorted_indices = True
    ts = np.concatenate([p[3] for p in pieces])[order] if has_ts else None
    return RowBlock(int(start), matrix, ts)


def _identity(value: Any) -> Any:
    return value


def _stack_blocks(blocks: list[RowBlock]) -> tuple[sp.csr_matrix, np.ndarray | None]:
    """One CSR (and timestamps) from consecutive row blocks."""
    nnz = sum(b.matrix.nnz for b in blocks)
    n_cols = blocks[0].matrix.shape[1]
    n_rows = blocks[-1].stop
    indptr_dtype = np.int32 if nnz <= np.iinfo(np.int32).max else np.int64
    indptr = np.zeros(n_rows + 1, dtype=indptr_dtype)
    offset = 0
    for b in blocks:
        indptr[b.start + 1 : b.stop + 1] = b.matrix.indptr[1:] + offset
        offset += b.matrix.nnz
    indices = np.concatenate([b.matrix.indices for b in blocks]).astype(np.int32, copy=False)
    data = np.concatenate([b.matrix.data for b in blocks])
    matrix = sp.csr_matrix((data, indices, indptr), shape=(n_rows, n_cols), copy=False)
    matrix.has_sorted_indices = True
    ts = None
    if all(b.timestamps is not None for b in blocks):
        ts = np.concatenate([b.timestamps for b in blocks])
    return matrix, ts


def stack_matrix(*blocks: RowBlock) -> sp.csr_matrix:
    """Task: the whole matrix from its row blocks (on one worker)."""
    return _stack_blocks(list(blocks))[0]


# ------------------------------------------------------------------------ class
class DistributedInteractions:
    """User-item interactions held on Dask workers as nnz-balanced row blocks.

    Build with :meth:`from_interactions` or :func:`read_interactions`; bring
    back with :meth:`to_local`. The client holds futures and counts only.

    Attributes
    ----------
    client : distributed.Client
    n_users, n_items, nnz : int
    implicit : bool
        True when the data came without ratings (every value 1.0).
    user_bounds, item_bounds : ndarray (n_blocks + 1,) int64
        Row boundaries of the user blocks and of the item blocks.
    user_blocks, item_blocks : list of distributed.Future
        :class:`RowBlock` s of the users x items matrix (rows ``user_bounds[b]
        .. user_bounds[b+1]-1``) and of its transpose.
    user_counts, item_counts : ndarray (int64)
        Interactions per user / per item.
    workers : list of str
        The preferred worker of each block (``workers[b % len(workers)]``); the
        placement is a preference, not a restriction, so a lost worker's
        blocks are rebuilt elsewhere.
    """

    def __init__(
        self,
        client: Any,
        user_blocks: list,
        item_blocks: list,
        user_bounds: np.ndarray,
        item_bounds: np.ndarray,
        user_vocabulary: Any,
        item_vocabulary: Any,
        user_counts: np.ndarray,
        item_counts: np.ndarray,
        implicit: bool,
        has_timestamps: bool,
        min_rating: float,
        id_dtypes: tuple[np.dtype, np.dtype],
        workers: list[str],
    ):
        self.client = client
        self.user_blocks = user_blocks
        self.item_blocks = item_blocks
        self.user_bounds = user_bounds
        self.item_bounds = item_bounds
        self.user_vocabulary = user_vocabulary
        self.item_vocabulary = item_vocabulary
        self.user_counts = user_counts
        self.item_counts = item_counts
        self.implicit = bool(implicit)
        self.has_timestamps = bool(has_timestamps)
        self.min_rating = float(min_rating)
        self.id_dtypes = id_dtypes
        self.workers = workers

    # ----------------------------------------------------------------- builders
    @classmethod
    def from_interactions(
        cls, X: Interactions, client: Any = None, n_blocks: int | None = None
    ) -> DistributedInteractions:
        """Cut an in-memory :class:`~fastrec.Interactions` into blocks on the workers.

        The slices of ``X`` travel inside the tasks that build the blocks (so
        the scheduler can rebuild a lost block from them); ``n_blocks``
        defaults to the number of workers.
        """
        if not isinstance(X, Interactions):
            raise TypeError(f"X must be a fastrec.Interactions, got {type(X).__name__}")
        client = _cluster.resolve_client(client)
        workers = _cluster.worker_addresses(client)
        n_blocks = _cluster.check_n_blocks(n_blocks, X.n_users, X.n_items, len(workers))
        m = X.matrix
        user_counts = np.diff(m.indptr).astype(np.int64)
        item_counts = np.bincount(m.indices, minlength=X.n_items).astype(np.int64)
        user_bounds = _cluster.balanced_bounds(user_counts, n_blocks)
        item_bounds = _cluster.balanced_bounds(item_counts, n_blocks)
        token = uuid.uuid4().hex[:10]
        ts = X.timestamps
        parts = []
        with warnings.catch_warnings():  # the data travel in the tasks on purpose
            warnings.filterwarnings("ignore", message="Sending large graph")
            for b in range(n_blocks):
                lo, hi = int(user_bounds[b]), int(user_bounds[b + 1])
                a, z = int(m.indptr[lo]), int(m.indptr[hi])
                parts.append(
                    client.submit(
                        _encode_csr,
                        lo,
                        m.indptr[lo : hi + 1] - m.indptr[lo],
                        m.indices[a:z].copy(),
                        m.data[a:z].copy(),
                        ts[a:z].copy() if ts is not None else None,
                        b,
                        key=f"fastrec-data-{token}-slice-{b}",
                        workers=[workers[b % len(workers)]],
                        allow_other_workers=True,
                    )
                )
            user_vocab = client.submit(_identity, X.user_ids, key=f"fastrec-data-{token}-user-ids")
            item_vocab = client.submit(_identity, X.item_ids, key=f"fastrec-data-{token}-item-ids")
        min_rating = float(m.data.min()) if m.nnz else np.inf
        return cls._from_encoded(
            client,
            token,
            workers,
            parts,
            user_vocab,
            item_vocab,
            user_counts,
            item_counts,
            user_bounds,
            item_bounds,
            X.implicit,
            ts is not None,
            min_rating,
            (X.user_ids.dtype, X.item_ids.dtype),
        )

    @classmethod
    def _from_encoded(
        cls,
        client,
        token,
        workers,
        parts,
        user_vocab,
        item_vocab,
        user_counts,
        item_counts,
        user_bounds,
        item_bounds,
        implicit,
        has_ts,
        min_rating,
        id_dtypes,
    ) -> DistributedInteractions:
        n_blocks = user_bounds.shape[0] - 1
        n_users, n_items = int(user_bounds[-1]), int(item_bounds[-1])
        splits = [
            client.submit(_split, p, user_bounds, item_bounds, key=f"{p.key}-split") for p in parts
        ]
        user_blocks, item_blocks = [], []
        for side, bounds, n_cols, out in (
            ("user", user_bounds, n_items, user_blocks),
            ("item", item_bounds, n_users, item_blocks),
        ):
            transposed = side == "item"
            row_vocab, col_vocab = (
                (item_vocab, user_vocab) if transposed else (user_vocab, item_vocab)
            )
            for b in range(n_blocks):
                j = b + (n_blocks if transposed else 0)
                pieces = [
                    client.submit(operator.getitem, s, j, key=f"{s.key}-{side}-{b}") for s in splits
                ]
                out.append(
                    client.submit(
                        _build_block,
                        int(bounds[b]),
                        int(bounds[b + 1]),
                        n_cols,
                        transposed,
                        row_vocab,
                        col_vocab,
                        *pieces,
                        key=f"fastrec-data-{token}-{side}-block-{b}",
                        workers=[workers[b % len(workers)]],
                        allow_other_workers=True,
                    )
                )
        return cls(
            client,
            user_blocks,
            item_blocks,
            user_bounds,
            item_bounds,
            user_vocab,
            item_vocab,
            user_counts,
            item_counts,
            implicit,
            has_ts,
            min_rating,
            id_dtypes,
            workers,
        )

    # --------------------------------------------------------------- properties
    @property
    def n_users(self) -> int:
        return int(self.user_bounds[-1])

    @property
    def n_items(self) -> int:
        return int(self.item_bounds[-1])

    @property
    def shape(self) -> tuple[int, int]:
        return self.n_users, self.n_items

    @property
    def nnz(self) -> int:
        return int(self.user_counts.sum())

    @property
    def n_blocks(self) -> int:
        return len(self.user_blocks)

    @property
    def user_ids(self) -> np.ndarray:
        """Raw user ids (gathered from the workers)."""
        return self.user_vocabulary.result()

    @property
    def item_ids(self) -> np.ndarray:
        """Raw item ids (gathered from the workers)."""
        return self.item_vocabulary.result()

    def persist(self) -> DistributedInteractions:
        """Wait until every block is built (raises the first build error)."""
        from distributed import wait

        futures = [*self.user_blocks, *self.item_blocks, self.user_vocabulary, self.item_vocabulary]
        wait(futures)
        for f in futures:
            if f.status == "error":
                f.result()
        return self

    def to_local(self) -> Interactions:
        """The whole data set as an :class:`~fastrec.Interactions` on the client."""
        blocks = self.client.gather(self.user_blocks)
        matrix, ts = _stack_blocks(blocks)
        return Interactions(
            matrix,
            self.user_ids,
            self.item_ids,
            ts if self.has_timestamps else None,
            implicit=self.implicit,
            _trusted=True,
        )

    def __repr__(self) -> str:
        kind = "implicit" if self.implicit else "ratings"
        return (
            f"DistributedInteractions(n_users={self.n_users}, n_items={self.n_items}, "
            f"nnz={self.nnz}, {kind}, n_blocks={self.n_blocks}, workers={len(self.workers)})"
        )


# ------------------------------------------------------------------------ reader
def _parquet_files(path: str) -> list[str]:
    if os.path.isdir(path):
        found = []
        for root, dirs, files in os.walk(path):
            dirs.sort()
            found += [
                os.path.join(root, f)
                for f in sorted(files)
                if f.endswith((".parquet", ".parq")) and not f.startswith(("_", "."))
            ]
        return found
    return [path] if os.path.isfile(path) else []


def _check_parquet_columns(path: str, wanted: dict[str, str | None]) -> None:
    """Every local Parquet file holds every wanted column (footers only are read)."""
    import pyarrow.parquet as pq

    for partition, name in enumerate(_parquet_files(path)):
        present = set(pq.read_schema(name).names)
        for field, col in wanted.items():
            if col is not None and col not in present:
                raise ValueError(
                    f"{field}={col!r} is missing from the Parquet file {name!r} (file "
                    f"{partition} of {path!r}; its columns: {sorted(present)})"
                )


def _open(path: Any, wanted: dict[str, str | None]) -> Any:
    import dask.dataframe as dd

    p = os.fspath(path)
    names = [p]
    if os.path.isdir(p):
        names = sorted(os.listdir(p))
    if any(n.endswith((".csv", ".csv.gz", ".tsv")) for n in names):
        pattern = os.path.join(p, "*.csv*") if os.path.isdir(p) else p
        return dd.read_csv(pattern)
    _check_parquet_columns(p, wanted)
    return dd.read_parquet(p, columns=[c for c in wanted.values() if c is not None])


def _tree(client: Any, func: Any, items: list, key: str, *args: Any, fan_in: int = 16) -> Any:
    """Reduce ``items`` with ``func(*args, *group)`` in a tree of tasks."""
    level = 0
    while len(items) > 1:
        items = [
            client.submit(func, *args, *items[i : i + fan_in], key=f"{key}-{level}-{i}")
            for i in range(0, len(items), fan_in)
        ]
        level += 1
    if level == 0:
        items = [client.submit(func, *args, items[0], key=f"{key}-0-0")]
    return items[0]


def read_interactions(
    path_or_dask_dataframe: Any,
    user_col: str,
    item_col: str,
    rating_col: str | None = None,
    timestamp_col: str | None = None,
    client: Any = None,
    n_blocks: int | None = None,
) -> DistributedInteractions:
    """Read partitioned Parquet or CSV (or a dask DataFrame) into row blocks on the workers.

    Parameters
    ----------
    path_or_dask_dataframe : str, path or dask.dataframe.DataFrame
        A Parquet file or folder (``dask.dataframe.read_parquet``), CSV files
        (a ``*.csv`` path, glob or a folder of them: ``read_csv``), or a dask
        DataFrame, one task per partition.
    user_col, item_col : str
        Columns of the raw user and item ids: one kind of id (numbers, or
        strings) in every partition, no missing ids.
    rating_col : str, optional
        Finite numeric ratings; None: implicit feedback (every value 1.0).
    timestamp_col : str, optional
        Numbers or datetimes, kept aligned with the stored entries.
    client : distributed.Client, optional
        Default: the current client.
    n_blocks : int, optional
        Row blocks per side, ``1 <= n_blocks <= min(n_users, n_items)``;
        default one per worker.

    Returns
    -------
    DistributedInteractions
        Vocabularies sorted as ``Interactions.from_dataframe`` sorts them, so
        ``to_local()`` equals ``Interactions.from_dataframe`` of the whole
        table (same matrix, ids and timestamps).

    Raises
    ------
    ValueError
        A column missing (named, with the partition when only some partitions
        lack it), ids of mixed kinds (the partitions named), a missing id or a
        NaN/infinite rating (column, partition and row named), a duplicate
        (user, item) pair, or a bad ``client`` / ``n_blocks``. Nothing is
        dropped. Errors found on the workers are raised here.
    """
    client = _cluster.resolve_client(client)
    workers = _cluster.worker_addresses(client)
    ddf = path_or_dask_dataframe
    columns = {
        "user_col": user_col,
        "item_col": item_col,
        "rating_col": rating_col,
        "timestamp_col": timestamp_col,
    }
    if isinstance(ddf, str | os.PathLike):
        ddf = _open(ddf, columns)
    if not hasattr(ddf, "to_delayed") or not hasattr(ddf, "npartitions"):
        raise TypeError(
            "path_or_dask_dataframe must be a path (Parquet or CSV) or a dask DataFrame, got "
            f"{type(path_or_dask_dataframe).__name__}"
        )
    present = list(ddf.columns)
    for field, col in columns.items():
        if field in ("user_col", "item_col") and not isinstance(col, str):
            raise ValueError(f"{field} must be a column name, got {col!r}")
        if col is not None and col not in present:
            raise ValueError(f"{field}={col!r} is not a column of the data (columns: {present})")
    token = uuid.uuid4().hex[:10]
    partitions = ddf.to_delayed()  # each partition is checked by _extract
    # the partitions' graph goes to the scheduler with the first tasks
    futures = client.compute(partitions)
    parts = [
        client.submit(_extract, f, i, columns, key=f"fastrec-data-{token}-part-{i}")
        for i, f in enumerate(futures)
    ]
    vocabularies = []
    for field, col in (("user_col", user_col), ("item_col", item_col)):
        uniques = [client.submit(_unique, p, field, key=f"{p.key}-unique-{field}") for p in parts]
        merged = _tree(client, _merge_unique, uniques, f"fastrec-data-{token}-merge-{field}", col)
        vocabularies.append(
            client.submit(_vocabulary, merged, key=f"fastrec-data-{token}-{field}-ids")
        )
    user_vocab, item_vocab = vocabularies
    sizes = client.gather(
        [client.submit(len, v, key=f"{v.key}-len") for v in vocabularies]
    )  # counts only
    n_users, n_items = (int(s) for s in sizes)
    dtypes = client.gather(
        [client.submit(operator.attrgetter("dtype"), v, key=f"{v.key}-dtype") for v in vocabularies]
    )
    encoded = [
        client.submit(_encode, p, user_vocab, item_vocab, key=f"{p.key}-encoded") for p in parts
    ]
    counts = [client.submit(_counts, e, n_users, n_items, key=f"{e.key}-counts") for e in encoded]
    total = _tree(client, _sum_counts, counts, f"fastrec-data-{token}-counts").result()
    n_blocks = _cluster.check_n_blocks(n_blocks, n_users, n_items, len(workers))
    user_bounds = _cluster.balanced_bounds(total["users"], n_blocks)
    item_bounds = _cluster.balanced_bounds(total["items"], n_blocks)
    data = DistributedInteractions._from_encoded(
        client,
        token,
        workers,
        encoded,
        user_vocab,
        item_vocab,
        total["users"],
        total["items"],
        user_bounds,
        item_bounds,
        rating_col is None,
        bool(total["timestamps"]),
        total["min_rating"],
        tuple(dtypes),
    )
    return data.persist()
