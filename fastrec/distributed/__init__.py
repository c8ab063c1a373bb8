"""fastrec beyond one machine: ALS, similarity and recommendations on a Dask cluster.

Needs the optional extra ``pip install 'fastrec[distributed]'`` (``dask[dataframe]``,
``distributed``, ``pyarrow``). The same code runs on a laptop's
``distributed.LocalCluster`` and on a cluster (dask-jobqueue, dask-kubernetes,
``dask scheduler`` / ``dask worker``)::

    from distributed import Client, LocalCluster
    import fastrec.distributed as fd

    client = Client(LocalCluster(n_workers=2, threads_per_worker=1))
    D = fd.read_interactions("ratings/", "userId", "movieId", "rating")
    model = fd.ALS(factors=64, iterations=15, random_state=0).fit(D)
    model.recommend(n=10, path="recommendations/")   # Parquet, written by the workers
    local = model.to_local()                          # a fitted fastrec.ALS

Names
-----
:class:`DistributedInteractions`
    Interactions as nnz-balanced row blocks (users x items and its transpose)
    on the workers; ``from_interactions``, ``to_local``.
:func:`read_interactions`
    Partitioned Parquet / CSV / a dask DataFrame -> ``DistributedInteractions``,
    built on the workers (only counts reach the client).
:class:`ALS`
    ``fastrec.ALS`` by row blocks on the workers, the same factors.
:func:`similarity`
    ``fastrec.similarity`` by blocks of query rows, the same CSR.

Design: the layer cuts data into blocks, places them through tasks with
lineage (never ``scatter``), and calls the public kernels of the single-process
library (:func:`fastrec.models.als.solve_rows`,
:func:`fastrec.neighbours.similarity_rows`); each task uses its worker's thread
count. A lost worker's blocks are recomputed by the scheduler.
"""

from __future__ import annotations

try:
    import dask.dataframe  # noqa: F401
    import distributed  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "fastrec.distributed needs Dask: pip install 'fastrec[distributed]' "
        f"(dask[dataframe], distributed, pyarrow); {exc}"
    ) from exc

from ._als import ALS
from ._data import DistributedInteractions, RowBlock, read_interactions
from ._similarity import similarity

__all__ = ["ALS", "DistributedInteractions", "RowBlock", "read_interactions", "similarity"]
