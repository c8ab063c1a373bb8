"""``fastrec.distributed.similarity``: top-k similarity by blocks of query rows on the workers.

One task stacks the row blocks into the whole matrix and applies the per-kind
transform (:func:`fastrec.neighbours.prepare`'s), once; every worker that
runs query blocks fetches that prepared matrix once. A task per block of query
rows then runs :func:`fastrec.neighbours.similarity_rows` (the query-rows
kernels of ``fastrec.similarity``) with its worker's threads, and the client
stacks the ``(rows, k)`` results into the same CSR as ``fastrec.similarity``.
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import scipy.sparse as sp

from .. import _backend
from .._validation import check_choice, check_dtype_arg
from ..data import Interactions
from ..neighbours import (
    AXES,
    PreparedMatrix,
    _check_options,
    _prepare_trusted,
    check_similarity,
    rows_to_csr,
    similarity_rows,
)
from . import _cluster
from ._data import DistributedInteractions, RowBlock, _stack_blocks

__all__ = ["similarity"]


def _prepare_task(kind: str, dtype: type, n_rows_blocks: int, *blocks: RowBlock) -> PreparedMatrix:
    """The prepared (rows, columns) matrix from its row blocks and its transpose's."""
    a, _ = _stack_blocks(list(blocks[:n_rows_blocks]))
    at, _ = _stack_blocks(list(blocks[n_rows_blocks:]))
    a.data = a.data.astype(dtype, copy=False)
    at.data = at.data.astype(dtype, copy=False)
    return _prepare_trusted(a, at, kind, dtype)


def _query_task(
    prepared: PreparedMatrix,
    start: int,
    stop: int,
    k: int,
    min_support: int,
    shrinkage: float,
    min_similarity: float | None,
    backend: str,
) -> tuple[np.ndarray, np.ndarray]:
    return similarity_rows(
        prepared,
        np.arange(start, stop, dtype=np.int32),
        kind=None,
        k=k,
        min_support=min_support,
        shrinkage=shrinkage,
        min_similarity=min_similarity,
        backend=backend,
        num_threads=_cluster.worker_threads(),
    )


def similarity(
    data: DistributedInteractions | Interactions,
    kind: str = "pearson",
    axis: str = "items",
    k: int = 20,
    min_support: int = 1,
    shrinkage: float = 0.0,
    min_similarity: float | None = None,
    backend: str = "auto",
    dtype: Any = np.float32,
    client: Any = None,
    n_blocks: int | None = None,
) -> sp.csr_matrix:
    """The ``k`` most similar users or items of each, computed on the workers.

    Same parameters and result as :func:`fastrec.similarity` (the same CSR:
    structure, order and values), plus:

    Parameters
    ----------
    data : DistributedInteractions or Interactions
        An ``Interactions`` is first cut into blocks on the workers.
    client : distributed.Client, optional
        Default: the data's client, else the current one.
    n_blocks : int, optional
        Query blocks when ``data`` is an ``Interactions`` (default: one per
        worker); a ``DistributedInteractions`` uses its own blocks of the
        compared side (nnz-balanced).

    Notes
    -----
    Each worker holds the whole prepared matrix (and its transpose) while it
    runs query blocks: memory per worker is that of ``fastrec.similarity`` on
    one machine, and the work is divided. The ``(n, n)`` result is gathered on
    the client, at most ``k`` entries a row.
    """
    kind = check_similarity(kind, "kind")
    axis = check_choice(axis, "axis", AXES)
    dtype = check_dtype_arg(dtype)
    k, min_support, shrinkage, _ = _check_options(k, min_support, shrinkage, min_similarity)
    backend = _backend.resolve_backend(backend)
    if isinstance(data, Interactions):
        client = _cluster.resolve_client(client)
        data = DistributedInteractions.from_interactions(data, client, n_blocks)
    elif isinstance(data, DistributedInteractions):
        client = _cluster.resolve_client(data.client if client is None else client)
    else:
        raise TypeError(
            "data must be a DistributedInteractions or a fastrec.Interactions, got "
            f"{type(data).__name__}"
        )
    if axis == "items":
        rows, columns, bounds = data.item_blocks, data.user_blocks, data.item_bounds
    else:
        rows, columns, bounds = data.user_blocks, data.item_blocks, data.user_bounds
    token = uuid.uuid4().hex[:10]
    prepared = client.submit(
        _prepare_task,
        kind,
        dtype,
        len(rows),
        *rows,
        *columns,
        key=f"fastrec-similarity-{token}-prepared",
    )
    workers = data.workers
    parts = [
        client.submit(
            _query_task,
            prepared,
            int(bounds[b]),
            int(bounds[b + 1]),
            k,
            min_support,
            shrinkage,
            min_similarity,
            backend,
            key=f"fastrec-similarity-{token}-{b}",
            workers=[workers[b % len(workers)]],
            allow_other_workers=True,
        )
        for b in range(len(rows))
    ]
    results = client.gather(parts)
    idx = np.concatenate([r[0] for r in results])
    val = np.concatenate([r[1] for r in results])
    return rows_to_csr(idx, val, int(bounds[-1]))
