"""Client, worker and block-layout helpers shared by the distributed modules.

Everything here runs on the client except :func:`worker_threads`, which a
task calls on its worker.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

__all__ = [
    "resolve_client",
    "worker_threads",
    "balanced_bounds",
    "check_n_blocks",
    "outgoing_bytes",
]


def resolve_client(client: Any = None) -> Any:
    """The ``distributed.Client`` to use, checked to be open and to have workers.

    ``None`` means the current client (``distributed.get_client()``, e.g. the
    last ``Client(...)`` created in this process).
    """
    from distributed import Client, get_client

    if client is None:
        try:
            client = get_client()
        except ValueError:
            raise ValueError(
                "client=None but no Dask client is running: pass client=, or start one "
                "first (distributed.Client(distributed.LocalCluster()) on one machine)"
            ) from None
    if not isinstance(client, Client):
        raise TypeError(f"client must be a distributed.Client, got {type(client).__name__}")
    if client.status in ("closing", "closed"):
        raise ValueError(f"client is {client.status}: pass an open distributed.Client")
    if client.status != "running":
        raise ValueError(f"client is not running (status {client.status!r})")
    if not client.nthreads():
        raise ValueError(
            "client's cluster has no workers: start some (LocalCluster(n_workers=...), "
            "cluster.scale(...)) or wait for them (client.wait_for_workers(n))"
        )
    return client


def worker_addresses(client: Any) -> list[str]:
    """Addresses of the cluster's workers, sorted (the placement order of the blocks)."""
    return sorted(client.nthreads())


def worker_threads() -> int:
    """Threads of the worker running the current task (1 outside a worker).

    Each task runs the compiled kernels with this many threads, so a worker
    started with ``nthreads=t`` uses ``t`` cores, never every core of its
    machine.
    """
    try:
        from distributed import get_worker

        return max(1, int(get_worker().state.nthreads))
    except ValueError:  # not inside a worker (e.g. a synchronous test call)
        return 1


def check_n_blocks(n_blocks: Any, n_rows: int, n_cols: int, n_workers: int) -> int:
    """Validate ``n_blocks`` against the data (None: one block per worker)."""
    limit = min(n_rows, n_cols)
    if n_blocks is None:
        return max(1, min(n_workers, limit))
    if isinstance(n_blocks, bool) or not isinstance(n_blocks, numbers.Integral):
        raise ValueError(f"n_blocks must be None or an integer >= 1, got {n_blocks!r}")
    if n_blocks < 1:
        raise ValueError(f"n_blocks must be >= 1, got {n_blocks}")
    if n_blocks > limit:
        raise ValueError(
            f"n_blocks={n_blocks} is larger than the rows of one side (n_users={n_rows}, "
            f"n_items={n_cols}): every block needs at least one row"
        )
    return int(n_blocks)


def balanced_bounds(counts: np.ndarray, n_blocks: int) -> np.ndarray:
    """Row boundaries ``(n_blocks + 1,)`` cutting rows into blocks of about equal nnz.

    ``counts`` are the per-row nonzeros. Blocks are contiguous and each holds at
    least one row (``1 <= n_blocks <= len(counts)``).
    """
    n = counts.shape[0]
    cum = np.cumsum(counts, dtype=np.int64)
    total = int(cum[-1]) if n else 0
    targets = total * np.arange(1, n_blocks, dtype=np.float64) / n_blocks
    cuts = np.searchsorted(cum, targets, side="left") + 1
    bounds = np.empty(n_blocks + 1, dtype=np.int64)
    bounds[0], bounds[-1] = 0, n
    for b in range(1, n_blocks):
        # at least one row per block on both sides of the cut
        lo = bounds[b - 1] + 1
        hi = n - (n_blocks - b)
        bounds[b] = min(max(int(cuts[b - 1]), lo), hi)
    return bounds


def _outgoing_total(dask_worker: Any) -> int:
    return int(dask_worker.transfer_outgoing_bytes_total)


def outgoing_bytes(client: Any) -> dict[str, int]:
    """Bytes each worker has sent to other workers so far (dask's own counter).

    ``Worker.transfer_outgoing_bytes_total`` adds up the sizes (``sizeof``) of
    the results a worker served to its peers' dependency fetches (and to
    ``client.gather``, which the fit does not call). A restarted worker starts
    again from 0.
    """
    return client.run(_outgoing_total, on_error="ignore")  # a worker may just have died


def bytes_between(before: dict[str, int], after: dict[str, int]) -> int:
    """Bytes sent between workers from ``before`` to ``after`` (workers in both)."""
    return int(sum(max(0, after[w] - before[w]) for w in after if w in before))
