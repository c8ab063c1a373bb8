"""The training layout of the SGD models: factor rows, cache blocks, rating order.

What :class:`fastrec.SGDMF` (and ``SVDpp`` and ``BPR``, which share parts)
set up once per fit, before the first epoch:

- :func:`padded_factors`: N(0, init_std^2) factor rows, padded to whole cache
  lines, drawn by the compiled ziggurat ``normal_fill`` (:func:`ziggurat_tables`);
- :func:`cache_blocks`: how many user chunks and item blocks an epoch is cut
  into (cache working set, and the thread grid);
- :func:`training_layout`: the ratings in visiting order, items relabelled by
  a random permutation and cut into blocks.

The per-epoch visiting order is in :mod:`fastrec.models._sgd_schedule`; the
whole scheme is described in :mod:`fastrec.models.sgd`.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import scipy.sparse as sp

from .._kernels import sgd as sgd_kernels
from .._validation import check_csr

__all__ = [
    "GRID_PER_THREAD",
    "ITEM_BLOCK_BYTES",
    "USER_CHUNK_BYTES",
    "cache_blocks",
    "padded_factors",
    "training_layout",
    "ziggurat_tables",
]

# Cells per thread in every phase of a multi-threaded epoch (see cache_blocks).
# A phase's cells must all be done before the next phase starts, so fewer,
# larger cells pay: on ml-latest-small with two threads, 1 cell per thread
# fitted in 33.5-40 ms against 36-45 ms for 2 and 41-52 ms for 4 (medians of 7,
# two runs, Xeon; the cells are cut to equal rating shares, so one each is
# balanced to within 1% on average).
GRID_PER_THREAD = 1
# Target sizes of one item block and of one user chunk's factors (see the
# kernel). Measured on synthetic(138_000, 27_000, 20M) with 2 threads (Xeon,
# 2 MiB L2 per core, large shared L3): L2-sized item blocks did not pay, as the
# item factors (3.5 MiB at 32 factors, 14 MiB at 128) stay in L3, so blocks
# start only past 16 MiB of item factors; user chunks of 4 MiB did best.
ITEM_BLOCK_BYTES = 16 << 20
USER_CHUNK_BYTES = 4 << 20


# Marsaglia & Tsang's 256-layer ziggurat for the normal density (J. Stat. Softw.
# 5(8), 2000): the base strip's right edge r and the area of every layer.
_ZIGGURAT_R = 3.6541528853610088
_ZIGGURAT_AREA = 0.00492867323399


@functools.lru_cache(maxsize=1)
def ziggurat_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(edges, widths, heights)``, each (257,) float64, for ``normal_fill``.

    ``edges[0] = v / f(r)`` (the base strip, which holds the tail), ``edges[1] =
    r`` and ``edges[i + 1] = sqrt(-2 log(v / edges[i] + f(edges[i])))``, so that
    every layer has area ``v`` under ``f(x) = exp(-x^2 / 2)``; ``edges[256] = 0``.
    ``widths = edges * 2**-52`` (a 52-bit integer times ``widths[i]`` is uniform
    on ``[0, edges[i])``) and ``heights = f(edges)``.
    """
    edges = np.empty(257)
    edges[0] = _ZIGGURAT_AREA / math.exp(-0.5 * _ZIGGURAT_R**2)
    edges[1] = _ZIGGURAT_R
    for i in range(1, 255):
        edges[i + 1] = math.sqrt(
            -2.0 * math.log(_ZIGGURAT_AREA / edges[i] + math.exp(-0.5 * edges[i] ** 2))
        )
    edges[256] = 0.0
    widths = edges * 2.0**-52
    heights = np.exp(-0.5 * edges**2)
    for table in (edges, widths, heights):
        table.flags.writeable = False
    return edges, widths, heights


def padded_factors(
    rng: np.random.Generator,
    n_rows: int,
    k: int,
    dtype: type,
    init_std: float,
    backend: str = "auto",
) -> np.ndarray:
    """N(0, init_std^2) factors in rows padded with zeros to whole cache lines.

    Returns a C-ordered ``(n_rows, stride)`` array whose first ``k`` columns are
    independent ``N(0, init_std^2)`` draws and whose rows start on 64-byte
    boundaries (``stride * itemsize`` is a multiple of 64). The draws come from
    the compiled ziggurat ``normal_fill`` seeded by one 63-bit integer drawn
    from ``rng`` (several times faster than ``rng.standard_normal``; the two
    backends give the same numbers). The padding stays exactly zero under the
    SGD updates (``0 * x = 0``) and adds exact zeros to the dot products, so
    the result does not depend on it; aligned rows keep every vector load
    inside one cache line.
    """
    itemsize = np.dtype(dtype).itemsize
    per_line = 64 // itemsize
    stride = -(-k // per_line) * per_line
    raw = np.zeros(n_rows * stride + per_line, dtype=dtype)
    offset = (-raw.ctypes.data % 64) // itemsize
    rows = raw[offset : offset + n_rows * stride].reshape(n_rows, stride)
    seed = int(rng.integers(0, 2**63, dtype=np.int64))
    fill = sgd_kernels.get(backend).normal_fill
    fill(rows, k, np.uint64(seed), float(init_std), *ziggurat_tables())
    return rows


def cache_blocks(
    n_users: int, n_items: int, factors: int, itemsize: int, threads: int
) -> tuple[int, int]:
    """How many user chunks and item blocks one epoch is cut into.

    One thread: item blocks of at most ``ITEM_BLOCK_BYTES`` of factors and
    user chunks of at most ``USER_CHUNK_BYTES`` bound what the thread touches
    for a while (the cache working set). Several threads: a square grid of
    ``g`` chunks by ``g`` blocks, ``g`` a multiple of the threads, at least
    ``GRID_PER_THREAD`` cells per thread in every phase (load balance) and at
    least the one-thread counts; in each phase the ``g`` cells running side by
    side share no user and no item (see the kernel). Both counts are capped by
    the numbers of users and items.
    """
    row = factors * itemsize
    n_blocks = max(1, -(-n_items * row // ITEM_BLOCK_BYTES))
    n_chunks = max(1, -(-n_users * row // USER_CHUNK_BYTES))
    if threads > 1:
        grid = max(n_blocks, n_chunks, GRID_PER_THREAD * threads)
        n_blocks = n_chunks = -(-grid // threads) * threads
    return min(max(n_users, 1), n_chunks), min(max(n_items, 1), n_blocks)


def training_layout(
    matrix: sp.csr_matrix,
    rng: np.random.Generator,
    dtype: type,
    n_blocks: int = 1,
    backend: str = "auto",
    *,
    _trusted: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The training ratings in visiting order, with items relabelled and cut into blocks.

    Items get a random new label (a permutation drawn from ``rng``): the
    kernel works on item rows stored in label order. Each row is sorted by
    label (the compiled ``relabel_rows``: counting sorts over blocks of rows,
    O(nnz); the same as SciPy's ``tocsc().tocsr()`` of the relabelled matrix),
    which is a random order within the row. The labels are cut into
    ``n_blocks`` contiguous ranges of about equal numbers of ratings (label
    ``l`` goes to block ``(ratings of labels below l) * n_blocks // nnz``), so a
    user's ratings of one block are a contiguous run of its row, and one
    block's item rows and biases are contiguous in memory.

    ``matrix`` is checked first (``check_csr``: a valid CSR structure, finite
    data) unless ``_trusted`` says it comes from an ``Interactions``, which
    checked it when it was built: the sort runs in a compiled kernel without
    bounds checks.

    Returns
    -------
    block_ptr : (n_users, n_blocks + 1) int64
        Run of user ``u`` in block ``b``: ``block_ptr[u, b]:block_ptr[u, b + 1]``.
    labels : (nnz,) int32, item labels in visiting order
    ratings : (nnz,) ``dtype``
    item_label : (n_items,) int32, the label of every item (a permutation)
    """
    if not _trusted:
        matrix = check_csr(matrix, "matrix", dtype=dtype)
    n_users, n_items = matrix.shape
    item_label = rng.permutation(n_items).astype(np.int32)
    indptr = np.asarray(matrix.indptr, dtype=np.int64)
    indices = np.asarray(matrix.indices, dtype=np.int32)
    data = np.ascontiguousarray(matrix.data, dtype=dtype)
    nnz = indices.shape[0]
    if n_blocks == 1:
        block_of_label = np.zeros(n_items, dtype=np.int32)
    else:
        per_label = np.empty(n_items, dtype=np.int64)
        per_label[item_label] = np.bincount(indices, minlength=n_items)
        before = np.cumsum(per_label) - per_label  # ratings of the labels below
        block_of_label = (before * n_blocks // max(nnz, 1)).astype(np.int32)
    labels = np.empty(nnz, dtype=np.int32)
    ratings = np.empty(nnz, dtype=dtype)
    block_ptr = np.empty((n_users, n_blocks + 1), dtype=np.int64)
    sgd_kernels.get(backend).relabel_rows(
        indptr, indices, data, item_label, block_of_label, labels, ratings, block_ptr,
        np.empty(n_items + 1, dtype=np.int64), np.empty(nnz, dtype=np.int32),
        np.empty(nnz, dtype=dtype),
    )  # fmt: skip
    return block_ptr, labels, ratings, item_label
