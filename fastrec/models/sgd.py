"""``SGDMF``: biased matrix factorisation for explicit ratings, by Hogwild SGD.

The model is Funk's SVD with biases (Koren, Bell & Volinsky, "Matrix
factorization techniques for recommender systems", IEEE Computer 42(8), 2009,
eq. 5), the same model and update rule as Surprise's ``SVD``::

    r_hat(u, i) = mu + b_u + b_i + p_u . q_i

Each epoch visits every training rating once and takes one stochastic gradient
step on its squared error plus L2 penalties on the factors and biases (kernel:
``kernels/numba/sgd.py``, twin ``kernels/cython/sgd.pyx``). Threads update
without locks (Hogwild: Niu, Recht, Re & Wright, NIPS 2011).

Visiting order
--------------
Everything random is drawn in Python from one ``numpy.random.Generator`` seeded
by ``random_state``:

1. once per fit, the items are relabelled by a random permutation and each
   user's ratings are visited in ascending new label (LIBMF's random shuffle
   followed by sorting, Chin et al., ACM TIST 2015, section 4): a random order
   within every row. The kernel keeps the item rows and biases in label
   order (so one block's rows are contiguous) and :meth:`SGDMF.fit` puts
   them back in item order at the end. The label range is cut into item
   blocks of about equal rating counts. Then one seed each for the user and
   the item factors, which the compiled ziggurat ``normal_fill`` turns into
   N(0, init_std^2) draws (:func:`padded_factors`);
2. every epoch, the users are visited in a fresh random permutation, cut into
   contiguous chunks of about equal rating counts, and the blocks in a fresh
   random order. The epoch is one phase per block: in phase ``s`` chunk ``c``
   works in block ``block_order[(c + s) % n_blocks]``, the chunks of a phase
   side by side, and the next phase starts when they are all done. Within a
   (chunk, block) cell, two lanes take the chunk's users in order, one
   user's run at a time, and alternate one rating each (two independent
   update chains per thread; a lane that finishes takes the next user at
   once; see the kernel's docstring).

How many chunks and blocks (:func:`cache_blocks`): with one thread, as the
caches suggest (one of each on small data); with several, a square grid of
``g x g`` cells, ``g`` a multiple of the threads. The cells of a phase then
share no user and no item, so no two threads ever write the same row: the
result does not depend on the timing, and a seeded fit is reproducible for a
given thread count (the grid, and so the visiting order, depends on it). Only
when there are fewer items than ``g`` do two cells of a phase share item
rows (the Hogwild race, permitted; then a multi-threaded result varies from
run to run).

Without a callback, validation data or a progress bar, the schedules of all the
epochs are drawn first (the same draws in the same order) and the epochs run in
one kernel call (``sgd_epochs``): the result is the same as epoch by epoch.

With ``num_threads=1`` a seeded fit is bit-for-bit reproducible, and the Numba
and Cython backends give identical factors.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from .. import _backend
from .._kernels import sgd as sgd_kernels
from .._validation import (
    all_finite,
    check_choice,
    check_csr,
    check_dtype_arg,
    check_float,
    check_int,
    check_memory,
    check_random_state,
)
from ..data import Interactions
from ._factors import cosine_similar, factor_scores
from .base import Recommender, expect_array

__all__ = ["SGDMF", "DivergenceError"]

LR_SCHEDULES = ("constant", "decay")

# Cells per thread in every phase of a multi-threaded epoch (see cache_blocks).
# A phase's cells must all be done before the next phase starts, so fewer,
# larger cells pay: on ml-latest-small with two threads, 1 cell per thread
# fitted in 33.5-40 ms against 36-45 ms for 2 and 41-52 ms for 4 (medians of 7,
# two runs, Xeon; the cells are cut to equal rating shares, so one each is
# balanced to within 1% on average).
GRID_PER_THREAD = 1
# Fewer ratings than this per thread: use fewer threads (ml-latest-small's 80k
# training ratings use two). The kernel's threads take cells from one queue
# and a phase waits only for the previous phase's cells, not for every thread,
# so a descheduled thread on a loaded machine delays a phase only while it
# holds a cell (the earlier barrier waited for every thread at each of the 40
# phases of a 20-epoch fit; at load average 14 on two vCPUs a two-thread fit
# then slept about 540 times, and now about 30: medians of 5 fits).
MIN_RATINGS_PER_THREAD = 20_000
# Target sizes of one item block and of one user chunk's factors (see the
# kernel). Measured on synthetic(138_000, 27_000, 20M) with 2 threads (Xeon,
# 2 MiB L2 per core, large shared L3): L2-sized item blocks did not pay, as the
# item factors (3.5 MiB at 32 factors, 14 MiB at 128) stay in L3, so blocks
# start only past 16 MiB of item factors; user chunks of 4 MiB did best.
ITEM_BLOCK_BYTES = 16 << 20
USER_CHUNK_BYTES = 4 << 20


class DivergenceError(FloatingPointError, ValueError):
    """The SGD run produced NaN or infinite values (learning rate too high)."""


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
    trusted: bool = False,
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
    data) unless ``trusted`` says it comes from an ``Interactions``, which
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
    if not trusted:
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


def epoch_schedule(
    user_counts: np.ndarray, rng: np.random.Generator, n_chunks: int, n_blocks: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random user order cut into chunks of about equal ratings, and a block order.

    Returns
    -------
    user_order : (n_users,) int32, a permutation of the users
    chunk_bounds : (n_chunks + 1,) int64, non-decreasing, from 0 to n_users
    block_order : (n_blocks,) int32, a permutation of the item blocks
    """
    n_users = user_counts.shape[0]
    user_order = rng.permutation(n_users).astype(np.int32)
    bounds = np.empty(n_chunks + 1, dtype=np.int64)
    bounds[0], bounds[-1] = 0, n_users
    if n_chunks > 1:
        cum = np.cumsum(user_counts[user_order])
        # np.linspace(0, total, n_chunks + 1)[1:-1], without its overhead (once per epoch)
        targets = np.arange(1, n_chunks) * ((cum[-1] if n_users else 0) / n_chunks)
        bounds[1:-1] = np.searchsorted(cum, targets, side="right")
    block_order = rng.permutation(n_blocks).astype(np.int32)
    return user_order, bounds, block_order


class SGDMF(Recommender):
    """Biased matrix factorisation trained by Hogwild stochastic gradient descent.

    Parameters
    ----------
    factors : int >= 1
        Length of the latent vectors ``p_u`` and ``q_i``.
    epochs : int >= 1
        Passes over the training ratings (fewer with early stopping).
    learning_rate : float > 0
        SGD step size (epoch 0 for the decaying schedule).
    regularization : float >= 0
        L2 weight on the factors and the biases, applied at every update.
    biases : bool
        Learn ``mu + b_u + b_i``. When False the model is ``p_u . q_i`` alone
        (no global mean either), as Surprise's ``SVD(biased=False)``.
    init_std : float >= 0
        Factors start from N(0, init_std^2); biases start at 0.
    lr_schedule : {"constant", "decay"}
        The rate of epoch ``t``: ``learning_rate``, or
        ``learning_rate * lr_decay ** t``.
    lr_decay : float in (0, 1]
        Factor per epoch of the decaying schedule.
    dtype : {"float32", "float64"}
        Precision of the factors and of the arithmetic.
    random_state : None, int or numpy.random.Generator
        Seeds the initial factors and the visiting order.
    num_threads : int
        Threads for fitting; 0 means all cores. A seed gives bit-identical
        runs for a given number of threads used (the threads work on disjoint
        rows; see the module docstring for the one exception). Small data
        sets use fewer threads: at most one per ``MIN_RATINGS_PER_THREAD``
        (20 000) training ratings, so a fit on fewer than 40 000 ratings is
        single-threaded.
    backend : {"auto", "numba", "cython"}

    Attributes
    ----------
    user_factors_ : (n_users, factors) ndarray of ``dtype``
    item_factors_ : (n_items, factors) ndarray of ``dtype``
    user_bias_, item_bias_ : (n_users,), (n_items,) ndarray (zeros without biases)
    intercept_ : float
        ``mu``: the training mean rating (0 without biases).
    history_ : list of dict
        The per-epoch ``info`` dicts passed to the callback. When the epochs
        ran in one kernel call (no callback, validation or progress bar),
        ``seconds`` is that call's time divided evenly over the epochs.
    best_epoch_ : int or None
        With validation data: the epoch whose factors were kept.

    Notes
    -----
    ``predict`` clips to the training rating range (as Surprise does) and falls
    back to the baseline means for unknown or cold ids (see
    :mod:`fastrec.models.base`). A user or item without training ratings keeps
    its random initial factors and is never scored by them.
    """

    def __init__(
        self,
        factors: int = 100,
        epochs: int = 20,
        learning_rate: float = 0.005,
        regularization: float = 0.02,
        biases: bool = True,
        init_std: float = 0.1,
        lr_schedule: str = "constant",
        lr_decay: float = 0.9,
        dtype: str = "float32",
        random_state: Any = None,
        num_threads: int = 0,
        backend: str = "auto",
    ):
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.biases = biases
        self.init_std = init_std
        self.lr_schedule = lr_schedule
        self.lr_decay = lr_decay
        self.dtype = dtype
        self.random_state = random_state
        self.num_threads = num_threads
        self.backend = backend

    # ------------------------------------------------------------------ checks
    def _validated_params(self) -> dict[str, Any]:
        factors = check_int(self.factors, "factors", minimum=1)
        epochs = check_int(self.epochs, "epochs", minimum=1)
        learning_rate = check_float(self.learning_rate, "learning_rate", minimum=0.0, strict=True)
        regularization = check_float(self.regularization, "regularization", minimum=0.0)
        init_std = check_float(self.init_std, "init_std", minimum=0.0)
        if not isinstance(self.biases, bool | np.bool_):
            raise ValueError(f"biases must be True or False, got {self.biases!r}")
        check_choice(self.lr_schedule, "lr_schedule", LR_SCHEDULES)
        lr_decay = check_float(self.lr_decay, "lr_decay", minimum=0.0, strict=True, maximum=1.0)
        dtype = check_dtype_arg(self.dtype)
        check_random_state(self.random_state)
        num_threads = _backend.resolve_threads(self.num_threads)
        backend = _backend.resolve_backend(self.backend)
        return {
            "factors": factors,
            "epochs": epochs,
            "learning_rate": learning_rate,
            "regularization": regularization,
            "init_std": init_std,
            "lr_decay": lr_decay,
            "dtype": dtype,
            "num_threads": num_threads,
            "backend": backend,
        }

    def _epoch_rate(self, epoch: int, learning_rate: float, lr_decay: float) -> float:
        if self.lr_schedule == "decay":
            return learning_rate * lr_decay**epoch
        return learning_rate

    # --------------------------------------------------------------------- fit
    def fit(
        self,
        X: Interactions,
        validation: Interactions | None = None,
        patience: int | None = None,
        show_progress: bool = False,
        callback: Callable[[int, dict], Any] | None = None,
    ) -> SGDMF:
        """Learn the factors from the ratings in ``X``.

        Parameters
        ----------
        X : Interactions
            Explicit ratings (implicit data is accepted: every rating is 1).
        validation : Interactions, optional
            Held-out ratings; their RMSE (through ``predict``, so unknown ids
            get the baseline) is reported every epoch as ``val_rmse``.
        patience : int >= 1, optional
            Early stopping (needs ``validation``): stop when ``val_rmse`` has
            not improved for ``patience`` epochs and keep the best epoch's
            factors. Without it every epoch runs and the last factors are kept.
        show_progress : bool
            A tqdm bar over the epochs.
        callback : callable(epoch, info), optional
            Called after every epoch (the model's factor and bias attributes
            then hold that epoch's values) with ``info`` holding ``epoch``,
            ``train_loss`` (mean squared error of the pass, each error taken
            just before its update), ``train_rmse``, ``learning_rate``,
            ``threads`` (used), ``seconds`` and, with validation data,
            ``val_rmse``.

        Raises
        ------
        ValueError
            Invalid parameters or data (before any work).
        DivergenceError
            The run produced NaN or infinite factors or loss (a ``ValueError``
            and ``FloatingPointError``); the model is left unfitted.
        """
        params = self._validated_params()
        if validation is not None and not isinstance(validation, Interactions):
            raise ValueError(
                "validation must be a fastrec.Interactions or None, got "
                f"{type(validation).__name__}"
            )
        if patience is not None:
            patience = check_int(patience, "patience", minimum=1)
            if validation is None:
                raise ValueError("patience (early stopping) needs validation data")
        if callback is not None and not callable(callback):
            raise ValueError(f"callback must be callable, got {callback!r}")
        self._begin_fit(X)

        dtype = params["dtype"]
        k = params["factors"]
        check_memory(
            (self.n_users_ + self.n_items_) * k * np.dtype(dtype).itemsize,
            f"factors={k} for {self.n_users_} users and {self.n_items_} items",
        )
        rng = np.random.default_rng(self.random_state)
        threads = max(1, min(params["num_threads"], self._seen.nnz // MIN_RATINGS_PER_THREAD))
        n_chunks, n_blocks = cache_blocks(
            self.n_users_, self.n_items_, k, np.dtype(dtype).itemsize, threads
        )
        block_ptr, labels, ratings, item_label = training_layout(
            self._seen, rng, dtype, n_blocks, params["backend"], trusted=True
        )
        # the kernel works on padded, cache-line aligned rows, the item rows
        # (and item biases) in label order; _publish sets the public attributes
        with _backend.threads(threads):
            user_rows = padded_factors(
                rng, self.n_users_, k, dtype, params["init_std"], params["backend"]
            )
            item_rows = padded_factors(
                rng, self.n_items_, k, dtype, params["init_std"], params["backend"]
            )
        self.user_bias_ = np.zeros(self.n_users_, dtype=dtype)
        label_bias = np.zeros(self.n_items_, dtype=dtype)
        rows = (user_rows, item_rows, label_bias, item_label)
        self.intercept_ = float(dtype(self.global_mean_)) if self.biases else 0.0
        self.history_ = []
        self.best_epoch_ = None

        val_pairs = None
        if validation is not None:
            vm = validation.matrix.tocoo()
            val_pairs = (
                self._users.lookup(validation.user_ids)[vm.row],
                self._items.lookup(validation.item_ids)[vm.col],
                vm.data.astype(np.float64),
            )
        nnz = ratings.shape[0]
        self.n_chunks_, self.n_blocks_ = n_chunks, n_blocks
        if val_pairs is None and callback is None and not show_progress:
            # nothing to do between epochs: draw every epoch's schedule now (the
            # same Generator calls in the same order as epoch by epoch) and run
            # all the epochs in one kernel call
            self._fit_all_epochs(params, rng, threads, block_ptr, labels, ratings, rows)
            self._publish(k, *rows)
            self._end_fit()
            return self
        kernel = sgd_kernels.get(params["backend"]).sgd_epoch
        best: tuple | None = None
        best_rmse = math.inf
        bar = tqdm(total=params["epochs"], desc="SGDMF") if show_progress else None
        with _backend.threads(threads):
            for epoch in range(params["epochs"]):
                start = time.perf_counter()
                rate = self._epoch_rate(epoch, params["learning_rate"], params["lr_decay"])
                user_order, bounds, block_order = epoch_schedule(
                    self.user_count_, rng, n_chunks, n_blocks
                )
                chunk_loss = np.zeros(bounds.shape[0] - 1, dtype=np.float64)
                kernel(
                    block_ptr, labels, ratings, user_order, bounds, block_order,
                    dtype(self.intercept_), dtype(rate), dtype(params["regularization"]),
                    bool(self.biases),
                    user_rows, item_rows, self.user_bias_, label_bias,
                    chunk_loss,
                )  # fmt: skip
                loss = float(chunk_loss.sum()) / nnz
                self._check_finite(epoch, loss, rate, rows)
                info = {
                    "epoch": epoch,
                    "train_loss": loss,
                    "train_rmse": math.sqrt(loss),
                    "learning_rate": rate,
                    "threads": threads,
                    "seconds": time.perf_counter() - start,
                }
                stop = False
                # validation and the callback see the current factors
                self._publish(k, *rows)
                if val_pairs is not None:
                    uidx, iidx, truth = val_pairs
                    pred = self._predict_indices(uidx, iidx)
                    val_rmse = float(np.sqrt(np.mean((pred - truth) ** 2)))
                    info["val_rmse"] = val_rmse
                    if val_rmse < best_rmse:
                        best_rmse = val_rmse
                        self.best_epoch_ = epoch
                        if patience is not None:
                            best = self._snapshot()
                    elif patience is not None and epoch - self.best_epoch_ >= patience:
                        stop = True
                self.history_.append(info)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(rmse=f"{info['train_rmse']:.4f}")
                if callback is not None:
                    callback(epoch, info)
                if stop:
                    break
        if bar is not None:
            bar.close()
        if best is not None:
            (self.user_factors_, self.item_factors_, self.user_bias_, self.item_bias_) = best
        self._end_fit()
        return self

    def _publish(
        self,
        k: int,
        user_rows: np.ndarray,
        item_rows: np.ndarray,
        label_bias: np.ndarray,
        item_label: np.ndarray,
    ) -> None:
        """The public attributes from the kernel's arrays: the first ``k`` columns,
        item rows and biases back in item order (new C-contiguous arrays)."""
        self.user_factors_ = np.ascontiguousarray(user_rows[:, :k])
        self.item_factors_ = item_rows[item_label, :k]
        self.item_bias_ = label_bias[item_label]

    def _snapshot(self) -> tuple[np.ndarray, ...]:
        return (
            self.user_factors_.copy(),
            self.item_factors_.copy(),
            self.user_bias_.copy(),
            self.item_bias_.copy(),
        )

    def _fit_all_epochs(
        self,
        params: dict[str, Any],
        rng: np.random.Generator,
        threads: int,
        block_ptr: np.ndarray,
        labels: np.ndarray,
        ratings: np.ndarray,
        rows: tuple[np.ndarray, ...],
    ) -> None:
        """Every epoch in one ``sgd_epochs`` call (no callback, validation or bar).

        The factors are checked once, after the last epoch; the loss of every
        epoch is known afterwards, so a divergence still names the first epoch
        whose loss was not finite. ``seconds`` in ``history_`` is the whole
        run's time divided evenly over the epochs.
        """
        dtype = params["dtype"]
        n_epochs = params["epochs"]
        schedules = [
            epoch_schedule(self.user_count_, rng, self.n_chunks_, self.n_blocks_)
            for _ in range(n_epochs)
        ]
        user_orders = np.stack([s[0] for s in schedules])
        bounds = np.stack([s[1] for s in schedules])
        block_orders = np.stack([s[2] for s in schedules])
        rates = [
            self._epoch_rate(e, params["learning_rate"], params["lr_decay"])
            for e in range(n_epochs)
        ]
        chunk_loss = np.zeros((n_epochs, bounds.shape[1] - 1), dtype=np.float64)
        kernel = sgd_kernels.get(params["backend"]).sgd_epochs
        rate_array = np.array(rates, dtype=dtype)
        start = time.perf_counter()
        with _backend.threads(threads):
            # epoch ranges (Ctrl-C is seen between two): the kernel runs its
            # epochs one after the other, so any split gives the same factors
            for e0, e1 in _backend.slices(n_epochs):
                kernel(
                    block_ptr, labels, ratings, user_orders[e0:e1], bounds[e0:e1],
                    block_orders[e0:e1], dtype(self.intercept_), rate_array[e0:e1],
                    dtype(params["regularization"]), bool(self.biases),
                    rows[0], rows[1], self.user_bias_, rows[2], chunk_loss[e0:e1],
                )  # fmt: skip
        seconds = (time.perf_counter() - start) / n_epochs
        losses = chunk_loss.sum(axis=1) / ratings.shape[0]
        bad = np.flatnonzero(~np.isfinite(losses))
        if bad.size:
            self._check_finite(int(bad[0]), math.nan, rates[bad[0]], rows)
        self._check_finite(n_epochs - 1, 0.0, rates[-1], rows)
        self.history_ = [
            {
                "epoch": e,
                "train_loss": float(losses[e]),
                "train_rmse": math.sqrt(losses[e]),
                "learning_rate": rates[e],
                "threads": threads,
                "seconds": seconds,
            }
            for e in range(n_epochs)
        ]

    def _check_finite(
        self, epoch: int, loss: float, rate: float, rows: tuple[np.ndarray, ...]
    ) -> None:
        # the padded rows are contiguous (one pass each); their padding stays 0
        arrays = (rows[0], rows[1], self.user_bias_, rows[2])
        # a NaN or an infinity anywhere makes the sum non-finite; a finite sum
        # proves the array finite (an overflowing sum falls back to the full test)
        if all_finite(loss, arrays):
            return
        raise DivergenceError(
            f"SGDMF diverged in epoch {epoch}: the training loss or the factors became NaN or "
            f"infinite (learning_rate={rate:g}, regularization={self.regularization!r}). "
            "Lower learning_rate, raise regularization or lower init_std."
        )

    # ----------------------------------------------------------------- predict
    def _predict_known(self, uidx: np.ndarray, iidx: np.ndarray) -> np.ndarray:
        dots = np.einsum("ij,ij->i", self.user_factors_[uidx], self.item_factors_[iidx])
        pred = self.intercept_ + (self.user_bias_[uidx] + self.item_bias_[iidx] + dots).astype(
            np.float64
        )
        return np.clip(pred, self.rating_min_, self.rating_max_)

    def _score_users(self, uidx: np.ndarray) -> np.ndarray:
        return factor_scores(
            self.user_factors_[uidx],
            self.item_factors_,
            item_offset=self.item_bias_,
            row_offset=self.intercept_ + self.user_bias_[uidx],
        )

    def _factor_parts(self):
        # recommend ranks p_u . q_i + b_i with the fused kernel; mu + b_u is
        # the same for all of a user's items and is added to the scores after
        dtype = self.user_factors_.dtype
        return (
            np.ascontiguousarray(self.user_factors_),
            np.ascontiguousarray(self.item_factors_, dtype=dtype),
            np.ascontiguousarray(self.item_bias_, dtype=dtype),
            self.intercept_ + self.user_bias_.astype(np.float64),
        )

    def _similar_items_internal(self, iidx: np.ndarray, n: int):
        """Cosine similarity of the item factors (biases are not part of it)."""
        return cosine_similar(self.item_factors_, iidx, n, self.backend, self.num_threads)

    def _similar_users_internal(self, uidx: np.ndarray, n: int):
        """Cosine similarity of the user factors."""
        return cosine_similar(self.user_factors_, uidx, n, self.backend, self.num_threads)

    # ----------------------------------------------------------------- fold-in
    def recalculate_user(self, items: Any, ratings: Any) -> tuple[np.ndarray, float]:
        """Factors and bias of a (new) user from their ratings, item side fixed.

        Solves the regularised least squares problem that the SGD updates of
        one user converge to when the item factors and biases are held fixed:
        ``min sum_j (r_j - mu - b_i(j) - b_u - p . q_j)^2 + n reg (|p|^2 + b_u^2)``
        over ``p`` (and ``b_u`` when the model has biases), with ``n`` the
        number of ratings (the SGD penalty is paid once per rating).

        Parameters
        ----------
        items : array_like (n,) of raw item ids known to the model
        ratings : array_like (n,) finite numbers

        Returns
        -------
        factors : (factors,) ndarray of the model dtype
        bias : float (0.0 for a model without biases)

        An empty rating list gives zero factors and bias (the model then
        predicts ``mu + b_i``). Unknown item ids raise ``ValueError`` naming the
        position.
        """
        self._check_fitted()
        from .._validation import as_float_array

        iidx = self._lookup_known(self._items, items, "items")
        r = as_float_array(np.atleast_1d(np.asarray(ratings)), "ratings", np.float64, ndim=1)
        if r.shape[0] != iidx.shape[0]:
            raise ValueError(f"items has {iidx.shape[0]} entries but ratings has {r.shape[0]}")
        k = self.item_factors_.shape[1]
        dtype = self.item_factors_.dtype
        n = r.shape[0]
        if n == 0:
            return np.zeros(k, dtype=dtype), 0.0
        Q = self.item_factors_[iidx].astype(np.float64)
        target = r - self.intercept_ - self.item_bias_[iidx].astype(np.float64)
        if self.biases:
            Q = np.hstack([Q, np.ones((n, 1))])
        reg = n * float(self.regularization)
        A = Q.T @ Q + reg * np.eye(Q.shape[1])
        solution = np.linalg.lstsq(A, Q.T @ target, rcond=None)[0]
        bias = float(solution[k]) if self.biases else 0.0
        return solution[:k].astype(dtype), bias

    # ------------------------------------------------------------- persistence
    def _get_state(self) -> dict[str, np.ndarray]:
        return {
            "user_factors": self.user_factors_,
            "item_factors": self.item_factors_,
            "user_bias": self.user_bias_,
            "item_bias": self.item_bias_,
            "intercept": np.array([self.intercept_], dtype=np.float64),
        }

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        params = self._validated_params()
        dtype, k = params["dtype"], params["factors"]
        self.user_factors_ = expect_array(state, "user_factors", (self.n_users_, k)).astype(
            dtype, copy=False
        )
        self.item_factors_ = expect_array(state, "item_factors", (self.n_items_, k)).astype(
            dtype, copy=False
        )
        self.user_bias_ = expect_array(state, "user_bias", (self.n_users_,)).astype(dtype)
        self.item_bias_ = expect_array(state, "item_bias", (self.n_items_,)).astype(dtype)
        self.intercept_ = float(expect_array(state, "intercept", (1,))[0])
        self.history_ = []
        self.best_epoch_ = None
