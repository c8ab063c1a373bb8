"""``fastrec.distributed.ALS``: alternating least squares over row blocks on Dask workers.

The maths is :func:`fastrec.models.als.solve_rows` (the kernels of
``fastrec.ALS``); this module only places the work. Per half-sweep (say the
users, the item factors fixed):

- a task per user block solves that block's rows with ``solve_rows`` on the
  worker that holds the block (a preference, not a restriction), reading the
  item factors from every item block: each worker fetches the blocks it does
  not hold, once;
- for implicit feedback, each task computes ``Y^T Y + regularization * I``
  itself (one BLAS thread, as ``fastrec.ALS`` does it, so the same bits): with
  one block per worker, the workers compute it side by side, where a separate
  task would keep all but one waiting.

Every row is solved independently by the same operations as in one process, so
the factors are bitwise those of ``fastrec.ALS`` with the same seed, backend
and dtype, whatever the blocks and workers. Communication per iteration, by
this design, is the other side's factors to every worker that lacks them,
``(W - 1) * (n_users + n_items) * factors * itemsize`` bytes for ``W`` workers
each holding blocks of both sides; ``history_`` records the bytes dask reports
having moved. Dask's scheduler may still move a block to another worker (work
stealing when a worker idles, or after a worker is lost), which then shows as
more bytes.

Fault tolerance comes from dask's lineage: every block (data and factors) is
the result of a task, the client keeps the newest factor blocks, and the
scheduler recomputes what a lost worker held from its ancestors (back to the
data blocks, themselves rebuilt from their source partitions if they were on
it). The recomputed factors are the same bits.
"""

from __future__ import annotations

import copy
import math
import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _backend
from ..data import Interactions
from ..models.als import ALS as LocalALS
from ..models.als import gram_matrix, solve_rows
from ..models.base import DivergenceError
from ..topk import factor_topk_trusted
from . import _cluster
from ._data import DistributedInteractions, RowBlock

__all__ = ["ALS"]

_NOT_DISTRIBUTED = ("calculate_training_loss",)


# ------------------------------------------------------------------------ tasks
def _init_block(
    seed: Any,
    side: str,
    start: int,
    stop: int,
    n_users: int,
    n_items: int,
    k: int,
    dtype: type,
    biased: bool = False,
) -> np.ndarray:
    """Rows ``start:stop`` of the initial factors, drawn exactly as ``fastrec.ALS`` draws them.

    With ``biased``, a last column of zero biases follows the ``k`` factors.
    """
    rng = np.random.default_rng(copy.deepcopy(seed))  # never advance the caller's generator
    if side != "user":
        rng.random((n_users, k), dtype=dtype)  # the user draw comes first
    rows = rng.random((stop, k), dtype=dtype)[start:stop] * dtype(0.01)
    if biased:
        rows = np.column_stack([rows, np.zeros(stop - start, dtype=dtype)])
    return rows


def _block_sum(block: RowBlock) -> float:
    """Sum of a block's values in float64 (for the mean rating, ``mu``)."""
    return float(block.matrix.data.astype(np.float64).sum())


def _solve_task(
    side: str,
    iteration: int,
    params: dict[str, Any],
    block: RowBlock,
    factors: np.ndarray,
    *other: np.ndarray,
) -> np.ndarray:
    """New factors of one row block (``solve_rows`` copies ``factors``: inputs stay intact).

    The gram ``Y^T Y + regularization * I`` (implicit feedback) is computed here,
    on one BLAS thread as ``fastrec.ALS`` does, so it is the same bits on every
    worker; a separate gram task would make every worker wait for one worker
    and fetch its result.
    """
    Y = np.concatenate(other)
    gram = gram_matrix(Y, params["regularization"], num_threads=1) if params["implicit"] else None
    # with biases (params["intercept"] not None) the factors carry the bias as a last column
    out = solve_rows(
        block.matrix,
        factors,
        Y,
        gram=gram,
        num_threads=_cluster.worker_threads(),
        check_input=False,
        **params,
    )
    bad = ~np.isfinite(out)
    if bad.any():
        row = block.start + int(np.argmax(bad.any(axis=1)))
        raise DivergenceError(
            f"ALS produced NaN or infinite {side} factors in iteration {iteration} (first at "
            f"{side} row {row}; solver={params['solver']!r}, regularization="
            f"{params['regularization']!r}). A singular system (e.g. regularization=0 with the "
            "exact solver) or overflowing values cause this: raise regularization or scale "
            "the data."
        )
    return out


def _recommend_task(
    n: int,
    exclude_seen: bool,
    backend: str,
    intercept: float | None,
    block: RowBlock,
    factors: np.ndarray,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    *item_blocks: np.ndarray,
) -> Any:
    import pandas as pd

    items = np.concatenate(item_blocks)
    m = factors.shape[0]
    exclude = None
    if exclude_seen:
        exclude = (block.matrix.indptr, block.matrix.indices)
    item_offset = user_offset = None
    if intercept is not None:  # [factors, bias] rows: x_u . y_i + c_i, then + mu + b_u
        item_offset = np.ascontiguousarray(items[:, -1])
        user_offset = intercept + factors[:, -1].astype(np.float64)
        factors = np.ascontiguousarray(factors[:, :-1])
        items = np.ascontiguousarray(items[:, :-1])
    idx, val = factor_topk_trusted(
        factors,
        items,
        np.arange(m, dtype=np.int32),
        n,
        item_offset,
        exclude,
        backend,
        _cluster.worker_threads(),
    )
    if user_offset is not None:
        val = val.astype(np.float32, copy=False)
        val += user_offset.astype(np.float32)[:, None]
    keep = idx >= 0
    users = np.repeat(user_ids[block.start : block.stop], n).reshape(m, n)
    ranks = np.broadcast_to(np.arange(1, n + 1, dtype=np.int32), (m, n))
    return pd.DataFrame(
        {
            "user": users[keep],
            "rank": ranks[keep],
            "item": item_ids[idx[keep]],
            "score": val[keep].astype(np.float32),
        }
    )


def _concat(*blocks: np.ndarray) -> np.ndarray:
    return np.concatenate(blocks)


# ------------------------------------------------------------------------ model
class ALS:
    """Alternating least squares on a Dask cluster, equal to ``fastrec.ALS``.

    Parameters
    ----------
    client : distributed.Client, optional
        Default: the current client (``distributed.get_client()``).
    n_blocks : int, optional
        Row blocks per side when ``fit`` is given an in-memory
        ``Interactions`` (default: one per worker); a
        :class:`DistributedInteractions` keeps its own blocks.
    **params
        The parameters of :class:`fastrec.ALS` (``factors``, ``regularization``,
        ``alpha``, ``iterations``, ``cg_steps``, ``implicit``, ``solver``,
        ``dtype``, ``random_state``, ``backend``, ...), validated by it.
        ``num_threads`` is not used by the fit: each task runs the kernels
        with its worker's thread count (start workers with ``nthreads=t`` to
        give each ``t`` cores); it is kept for the model of :meth:`to_local`.
        ``calculate_training_loss`` is not supported here (compute
        :func:`fastrec.models.als.training_loss` on ``to_local()``).
        ``biases`` is as in ``fastrec.ALS`` (``None``: on for explicit
        feedback): each factor block then carries the rows' bias as a last
        column, solved with the factors, and ``mu`` (the mean rating) is
        summed from the blocks on the workers.

    Attributes
    ----------
    user_factor_blocks_, item_factor_blocks_ : list of distributed.Future
        The factors, one (rows, factors) array per row block, on the workers.
    data_ : DistributedInteractions
        The data of the last fit.
    history_ : list of dict
        Per iteration: ``iteration``, ``seconds`` (wall clock of both
        half-sweeps, scheduling included), ``bytes_between_workers`` (what the
        workers report having sent each other during the iteration) and
        ``loss`` (None).

    Notes
    -----
    A ``numpy.random.Generator`` given as ``random_state`` is copied into the
    tasks and not advanced (``fastrec.ALS`` advances it).
    """

    def __init__(self, client: Any = None, n_blocks: int | None = None, **params: Any):
        self.client = client
        self.n_blocks = n_blocks
        self.params = params
        self._local_model()  # unknown names raise TypeError now

    def _local_model(self) -> LocalALS:
        return LocalALS(**self.params)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"client": self.client, "n_blocks": self.n_blocks, **self.params}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"fastrec.distributed.ALS(n_blocks={self.n_blocks!r}{', ' if args else ''}{args})"

    # --------------------------------------------------------------------- fit
    def fit(
        self,
        data: DistributedInteractions | Interactions,
        callback: Callable[[int, dict], Any] | None = None,
    ) -> ALS:
        """Learn the factors; the same factors as ``fastrec.ALS(**params).fit``.

        Parameters
        ----------
        data : DistributedInteractions or Interactions
            An ``Interactions`` is first cut into blocks on the workers
            (:meth:`DistributedInteractions.from_interactions`).
        callback : callable(iteration, info), optional
            Called on the client after every iteration with the ``history_``
            entry.

        Raises
        ------
        ValueError
            Invalid parameters, a bad client, negative values with implicit
            feedback (before any work).
        DivergenceError
            A block produced NaN or infinite factors (the row is named).
        """
        from distributed import wait

        local = self._local_model()
        params = local._validated_params()
        for name in _NOT_DISTRIBUTED:
            if getattr(local, name, False):
                raise ValueError(f"{name}=True is not supported by fastrec.distributed.ALS")
        biased = bool(params["biases"])
        if callback is not None and not callable(callback):
            raise ValueError(f"callback must be callable, got {callback!r}")
        if isinstance(data, Interactions):
            client = _cluster.resolve_client(self.client)
            data = DistributedInteractions.from_interactions(data, client, self.n_blocks)
        elif isinstance(data, DistributedInteractions):
            client = _cluster.resolve_client(data.client if self.client is None else self.client)
        else:
            raise TypeError(
                "fit expects a DistributedInteractions or a fastrec.Interactions, got "
                f"{type(data).__name__}"
            )
        if biased and data.implicit:
            raise ValueError(
                "the data have no ratings (read without a rating column): explicit ALS with "
                "biases models ratings; give a rating column, or use implicit=True"
            )
        if local.implicit and data.min_rating < 0:
            raise ValueError(
                f"the data hold a negative value {data.min_rating}: implicit feedback needs "
                "values r >= 0 (confidence c = 1 + alpha * r); use implicit=False for signed "
                "ratings"
            )
        dtype = params["dtype"]
        k = params["factors"]
        seed = local.random_state
        if seed is None:  # fresh entropy, drawn once for every block
            seed = np.random.SeedSequence().entropy
        solve = {
            "regularization": params["regularization"],
            "alpha": params["alpha"],
            "implicit": bool(local.implicit),
            "solver": params["solver"],
            "cg_steps": params["cg_steps"],
            "backend": params["backend"],
            "intercept": None,
        }
        token = uuid.uuid4().hex[:10]
        workers = data.workers
        n_blocks = data.n_blocks
        intercept = 0.0
        if biased:  # mu as fastrec.ALS rounds it: the mean rating in the factors' dtype
            sums = client.gather([client.submit(_block_sum, b) for b in data.user_blocks])
            intercept = float(dtype(math.fsum(sums) / max(data.nnz, 1)))
            solve["intercept"] = intercept

        def place(b: int) -> dict[str, Any]:
            return {"workers": [workers[b % len(workers)]], "allow_other_workers": True}

        def init(side: str, bounds: np.ndarray) -> list:
            return [
                client.submit(
                    _init_block,
                    seed,
                    side,
                    int(bounds[b]),
                    int(bounds[b + 1]),
                    data.n_users,
                    data.n_items,
                    k,
                    dtype,
                    biased,
                    key=f"fastrec-als-{token}-init-{side}-{b}",
                    **place(b),
                )
                for b in range(n_blocks)
            ]

        def half(side: str, it: int, blocks: list, mine: list, other: list) -> list:
            return [
                client.submit(
                    _solve_task,
                    side,
                    it,
                    solve,
                    blocks[b],
                    mine[b],
                    *other,
                    key=f"fastrec-als-{token}-{side}-{it}-{b}",
                    **place(b),
                )
                for b in range(n_blocks)
            ]

        user_factors = init("user", data.user_bounds)
        item_factors = init("item", data.item_bounds)
        history = []
        for it in range(params["iterations"]):
            before = _cluster.outgoing_bytes(client)
            start = time.perf_counter()
            user_factors = half("user", it, data.user_blocks, user_factors, item_factors)
            item_factors = half("item", it, data.item_blocks, item_factors, user_factors)
            futures = user_factors + item_factors
            wait(futures)
            for f in futures:
                if f.status == "error":
                    f.result()  # raises the task's exception
            seconds = time.perf_counter() - start
            moved = _cluster.bytes_between(before, _cluster.outgoing_bytes(client))
            info = {
                "iteration": it,
                "loss": None,
                "seconds": seconds,
                "bytes_between_workers": moved,
            }
            history.append(info)
            if callback is not None:
                callback(it, info)
        self.client_ = client
        self.data_ = data
        self.user_factor_blocks_ = user_factors
        self.item_factor_blocks_ = item_factors
        self.history_ = history
        self.dtype_ = dtype
        self.intercept_ = intercept
        self.biased_ = biased
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "user_factor_blocks_"):
            from ..models.base import NotFittedError

            raise NotFittedError("fastrec.distributed.ALS is not fitted yet: call fit(data) first")

    def expected_bytes_per_iteration(self) -> int:
        """Bytes the design moves per iteration (see the module docstring).

        Every worker that runs a block's task fetches the blocks of the other
        side it does not hold: with blocks spread round-robin over ``W``
        workers this is ``(W - 1)`` copies of each side's factors (fewer when
        there are fewer blocks than workers).
        """
        self._check_fitted()
        data = self.data_
        n_blocks = data.n_blocks
        w = min(len(data.workers), n_blocks)
        k = self._local_model().factors + int(self.biased_)  # the bias column travels too
        itemsize = np.dtype(self.dtype_).itemsize
        total = 0
        for bounds in (data.user_bounds, data.item_bounds):
            sizes = np.diff(bounds) * k * itemsize
            for worker in range(w):
                held = sum(int(sizes[b]) for b in range(n_blocks) if b % w == worker)
                total += int(sizes.sum()) - held
        return total

    # ---------------------------------------------------------------- results
    def to_local(self) -> LocalALS:
        """A fitted ``fastrec.ALS`` (factors and the data gathered to the client)."""
        self._check_fitted()
        model = self._local_model()
        X = self.data_.to_local()
        model._begin_fit(X)
        users = np.concatenate(self.client_.gather(self.user_factor_blocks_))
        items = np.concatenate(self.client_.gather(self.item_factor_blocks_))
        if self.biased_:
            model._publish_biased(users, items)
        else:  # a model without biases: zero biases, intercept 0
            model.user_factors_, model.item_factors_ = users, items
            model.user_bias_ = np.zeros(model.n_users_, dtype=self.dtype_)
            model.item_bias_ = np.zeros(model.n_items_, dtype=self.dtype_)
        model.intercept_ = self.intercept_
        model.history_ = [dict(h) for h in self.history_]
        model._end_fit()
        return model

    def recommend(self, n: int = 10, exclude_seen: bool = True, path: Any = None) -> Any:
        """Top-``n`` items of every user, computed by blocks of users on the workers.

        Parameters
        ----------
        n : int >= 1
        exclude_seen : bool
            Skip each user's training items.
        path : str or path, optional
            Write the result as Parquet to this folder (one file per block)
            instead of returning it.

        Returns
        -------
        dask.dataframe.DataFrame or None
            Columns ``user`` (raw id), ``rank`` (1 = best), ``item`` (raw id),
            ``score`` (float32), one partition per user block, users in
            internal order; the same lists as ``to_local().recommend`` (a user
            with fewer than ``n`` items left has fewer rows, no padding).
            None when ``path`` is given.
        """
        import dask.dataframe as dd
        import pandas as pd

        from .._validation import check_int

        self._check_fitted()
        n = check_int(n, "n", minimum=1)
        if not isinstance(exclude_seen, bool | np.bool_):
            raise ValueError(f"exclude_seen must be True or False, got {exclude_seen!r}")
        client = _cluster.resolve_client(self.client_)
        data = self.data_
        backend = _backend.resolve_backend(self._local_model().backend)
        token = uuid.uuid4().hex[:10]
        workers = data.workers
        parts = [
            client.submit(
                _recommend_task,
                n,
                bool(exclude_seen),
                backend,
                self.intercept_ if self.biased_ else None,
                data.user_blocks[b],
                self.user_factor_blocks_[b],
                data.user_vocabulary,
                data.item_vocabulary,
                *self.item_factor_blocks_,
                key=f"fastrec-recommend-{token}-{b}",
                workers=[workers[b % len(workers)]],
                allow_other_workers=True,
            )
            for b in range(data.n_blocks)
        ]
        user_dtype, item_dtype = data.id_dtypes
        meta = pd.DataFrame(
            {
                "user": pd.Series([], dtype=user_dtype),
                "rank": pd.Series([], dtype=np.int32),
                "item": pd.Series([], dtype=item_dtype),
                "score": pd.Series([], dtype=np.float32),
            }
        )
        frame = dd.from_delayed(parts, meta=meta, verify_meta=False)
        if path is None:
            return frame
        frame.to_parquet(path, write_index=False)
        return None
