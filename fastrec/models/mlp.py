"""``MLPRecommender``: user and item embeddings through dense ReLU layers.

The model is the multi-layer perceptron of neural collaborative filtering (He
et al., "Neural Collaborative Filtering", WWW 2017, section 3.3): the user's
and the item's embeddings are concatenated and fed through dense layers with
ReLU to one output unit. With ``loss="mse"`` the output is the predicted rating
(explicit feedback, trained on squared error); with ``loss="bce"`` it is the
logit of an interaction, trained with the log loss on each observed
interaction and ``negatives`` items sampled uniformly among those the user has
not interacted with, drawn afresh every epoch (the NCF protocol, section 3.1.1
and 4.1).

Forward and backward passes are hand-written NumPy (``fastrec.nn``) whose
matrix products go to BLAS; the gather of a batch's embedding rows and the
scatter of their gradients are compiled kernels, fused with the optimiser so
that only the rows a batch touches are updated (lazy, row-wise Adam or SGD: see
``fastrec.nn.optim``). No dense gradient of an embedding table is ever formed.
Every buffer is allocated once per batch size, and thread limits (BLAS on one
thread; the kernels are serial per batch) are set once per ``fit``, as is the
flush-to-zero mode for subnormal floats (``fastrec.nn.fpmode``: on x86,
subnormals in the backward pass would otherwise slow training tenfold).

A fraction ``validation_fraction`` of the interactions (chosen at random with
``random_state``) is held out of training to measure a validation loss after
every epoch; training stops when it has not improved for ``patience`` epochs,
and the weights of the best epoch are kept. The held-out interactions still
count as seen in ``recommend`` and as positives (never sampled as negatives).

Determinism: with an integer ``random_state``, ``fit`` is bit-reproducible on a
given machine and backend (serial kernels, single-threaded BLAS, NumPy
``Generator`` streams for initialisation, split, shuffling and negatives).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from threadpoolctl import threadpool_limits

from .. import _backend
from .._kernels import embedding as embedding_kernels
from .._validation import (
    check_choice,
    check_dtype_arg,
    check_float,
    check_int,
    check_memory,
)
from ..data import Interactions
from ..nn.fpmode import flush_denormals
from ..nn.layers import MLP
from ..nn.losses import bce_with_logits_loss, mse_loss, sigmoid
from ..nn.optim import SGD, Adam, LazyAdam, LazySGD
from .base import (
    CallbackType,
    DivergenceError,
    Recommender,
    deprecated_error_alias,
    expect_array,
)

__all__ = ["MLPRecommender", "DivergenceError"]

# Pairs scored at once in predict / recommend (pairs x widest layer x 4 bytes).
_PAIR_BLOCK = 1 << 16
_NEGATIVE_ROUNDS = 64


# the error's earlier name: the same class, so ``except`` clauses keep working
__getattr__ = deprecated_error_alias(__name__, "TrainingDivergedError")


class _Examples(NamedTuple):
    """The training and validation examples (user, item, target) of one fit."""

    train: tuple[np.ndarray, np.ndarray, np.ndarray]
    validation: tuple[np.ndarray, np.ndarray, np.ndarray]
    positive_keys: np.ndarray  # user * n_items + item of every interaction, sorted


class _Optimisers(NamedTuple):
    """What one training pass needs besides the examples."""

    dense: Any
    users: Any
    items: Any
    batch: int
    gather: Callable
    loss_fn: Callable


def sample_negatives(
    rng: np.random.Generator,
    users: np.ndarray,
    positive_keys: np.ndarray,
    n_items: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw, for each entry of ``users``, an item that user has no interaction with.

    Uniform rejection sampling (He et al. 2017, section 4.1): candidates are
    drawn uniformly from all items, and those that are positives of their user
    are redrawn, up to 64 rounds.

    Parameters
    ----------
    rng : numpy Generator
    users : (n,) int32 internal user indices
    positive_keys : (nnz,) int64, sorted ``user * n_items + item`` of every positive
    n_items : int

    Returns
    -------
    items : (n,) int32
    ok : (n,) bool, False where no negative was found (a user who interacted
        with every item, or extremely close to it); such entries must be dropped.
    """
    users64 = users.astype(np.int64)
    items = rng.integers(0, n_items, size=users.shape[0]).astype(np.int32)
    todo = np.arange(users.shape[0])
    for _ in range(_NEGATIVE_ROUNDS):
        keys = users64[todo] * n_items + items[todo]
        pos = np.searchsorted(positive_keys, keys)
        pos[pos == positive_keys.shape[0]] = 0
        hit = positive_keys[pos] == keys
        todo = todo[hit]
        if todo.size == 0:
            break
        items[todo] = rng.integers(0, n_items, size=todo.size)
    ok = np.ones(users.shape[0], dtype=bool)
    if todo.size:
        keys = users64[todo] * n_items + items[todo]
        pos = np.minimum(np.searchsorted(positive_keys, keys), positive_keys.shape[0] - 1)
        ok[todo[positive_keys[pos] == keys]] = False
    return items, ok


class MLPRecommender(Recommender):
    """Neural collaborative filtering MLP with hand-written backpropagation.

    Parameters
    ----------
    embedding_dim : int >= 1
        Size of the user and of the item embedding (the network input is twice this).
    hidden : sequence of int >= 1, non-empty
        Widths of the hidden ReLU layers, e.g. ``(64, 32, 16)``; one linear
        output unit follows.
    loss : {"mse", "bce"}
        ``"mse"``: explicit ratings, squared error, the output is the rating
        (``predict`` clips it to the training rating range). ``"bce"``: implicit
        feedback, every interaction is a positive, ``negatives`` sampled items
        per positive are negatives, log loss; ``predict`` returns the
        probability and ``recommend`` ranks by logit.
    epochs : int >= 1
        Maximum number of passes over the training data.
    batch_size : int >= 1
        More than an epoch's training examples is one batch of them all.
        Sizes that cannot fit in memory (embeddings, layers, batch, negatives)
        are refused with a ``ValueError`` before anything is allocated.
    learning_rate : float > 0
    optimizer : {"adam", "sgd"}
        Adam (dense for the layers, lazy row-wise for the embeddings) or plain SGD.
    weight_decay : float >= 0
        L2 penalty added to the gradients of every parameter a step updates
        (lazily: embedding rows when their batch touches them).
    negatives : int
        Negatives per positive for ``loss="bce"`` (>= 1); ignored for ``"mse"``.
    validation_fraction : float in [0, 1)
        Share of the interactions held out for early stopping; 0 trains on
        everything for exactly ``epochs`` epochs.
    patience : int >= 1
        Epochs without a lower validation loss before training stops.
    init_std : float > 0
        Standard deviation of the normal initialisation of the embeddings.
    dtype : {"float32", "float64"}
    random_state : None, int or numpy.random.Generator
    num_threads : int, 0 means all cores
        Threads for ``recommend``'s scoring and top-k. Training runs its
        per-batch kernels serially and BLAS on one thread (at these batch
        sizes more threads cost more than they save).
    backend : {"auto", "numba", "cython"}

    Attributes
    ----------
    user_embeddings_ : (n_users, embedding_dim) ndarray
    item_embeddings_ : (n_items, embedding_dim) ndarray
    weights_, biases_ : lists of the dense layers' arrays, ``weights_[l]`` of
        shape (in, out); views into the one flat parameter vector.
    history_ : list of dict, one per epoch (train_loss, val_loss, seconds, samples_per_s)
    best_epoch_ : int, the epoch whose weights were kept (1-based)
    n_epochs_ : int, epochs actually run

    Notes
    -----
    Degenerate cases: users or items that only occur in the validation part
    keep their random embedding; a user who has interacted with every item
    gets no negatives. With ``validation_fraction > 0`` and too little data for
    a validation set (fewer than 2 interactions), training uses all data.
    """

    def __init__(
        self,
        embedding_dim: int = 32,
        hidden: tuple[int, ...] = (64, 32, 16),
        loss: str = "mse",
        epochs: int = 20,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        optimizer: str = "adam",
        weight_decay: float = 0.0,
        negatives: int = 4,
        validation_fraction: float = 0.2,
        patience: int = 3,
        init_std: float = 0.01,
        dtype: str = "float32",
        random_state: Any = None,
        num_threads: int = 0,
        backend: str = "auto",
    ):
        self.embedding_dim = embedding_dim
        self.hidden = hidden
        self.loss = loss
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.negatives = negatives
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.init_std = init_std
        self.dtype = dtype
        self.random_state = random_state
        self.num_threads = num_threads
        self.backend = backend

    # ------------------------------------------------------------- parameters
    def _validated_params(self) -> dict[str, Any]:
        embedding_dim = check_int(self.embedding_dim, "embedding_dim", minimum=1)
        hidden = self.hidden
        if isinstance(hidden, int | np.integer) and not isinstance(hidden, bool):
            raise ValueError(f"hidden must be a sequence of layer widths, got {hidden!r}")
        try:
            hidden = tuple(hidden)
        except TypeError:
            raise ValueError(f"hidden must be a sequence of layer widths, got {hidden!r}") from None
        if len(hidden) == 0:
            raise ValueError("hidden must name at least one layer width, got an empty sequence")
        hidden = tuple(
            check_int(width, f"hidden[{pos}]", minimum=1) for pos, width in enumerate(hidden)
        )
        params = {
            "embedding_dim": embedding_dim,
            "hidden": hidden,
            "loss": check_choice(self.loss, "loss", ("mse", "bce")),
            **self._checked_params("epochs"),
            "batch_size": check_int(self.batch_size, "batch_size", minimum=1),
            **self._checked_params("learning_rate"),
            "optimizer": check_choice(self.optimizer, "optimizer", ("adam", "sgd")),
            "weight_decay": check_float(self.weight_decay, "weight_decay", minimum=0.0),
            "negatives": check_int(
                self.negatives, "negatives", minimum=1 if self.loss == "bce" else 0
            ),
        }
        fraction = check_float(self.validation_fraction, "validation_fraction", minimum=0.0)
        if fraction >= 1.0:
            raise ValueError(f"validation_fraction must be < 1, got {self.validation_fraction}")
        params["validation_fraction"] = fraction
        params["patience"] = check_int(self.patience, "patience", minimum=1)
        params["init_std"] = check_float(self.init_std, "init_std", minimum=0.0, strict=True)
        params.update(self._checked_params("dtype", "random_state", "num_threads", "backend"))
        return params

    def _check_sizes(self, X: Interactions, itemsize: int) -> None:
        """Refuse, before allocating, parameter sizes this machine cannot hold."""
        d = int(self.embedding_dim)
        widths = (2 * d, *(int(h) for h in self.hidden), 1)
        n_weights = sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))
        # embeddings and dense weights, each with two Adam moments
        check_memory(
            3 * itemsize * ((X.n_users + X.n_items) * d + n_weights),
            f"embedding_dim={d}, hidden={tuple(self.hidden)} for {X.n_users} users and "
            f"{X.n_items} items",
        )
        if self.loss == "bce":
            check_memory(
                12 * X.nnz * (1 + int(self.negatives)),
                f"negatives={self.negatives} for {X.nnz} interactions",
            )
        # the activations of one batch: every hidden layer, forward and backward
        batch = min(int(self.batch_size), X.nnz * (1 + int(self.negatives)))
        check_memory(
            2 * itemsize * batch * sum(widths),
            f"batch_size={self.batch_size} with layer widths {widths}",
        )

    def _build(self) -> None:
        """Allocate the network for the fitted shapes (params already checked)."""
        dtype = check_dtype_arg(self.dtype)
        d = int(self.embedding_dim)
        self._mlp = MLP(2 * d, tuple(int(h) for h in self.hidden), dtype)
        self.user_embeddings_ = np.zeros((self.n_users_, d), dtype=dtype)
        self.item_embeddings_ = np.zeros((self.n_items_, d), dtype=dtype)
        self.weights_ = self._mlp.weights
        self.biases_ = self._mlp.biases

    # -------------------------------------------------------------------- fit
    def fit(
        self,
        X: Interactions,
        show_progress: bool = False,
        callback: CallbackType | None = None,
    ) -> MLPRecommender:
        """Train on the interactions ``X``.

        Parameters
        ----------
        X : Interactions
        show_progress : bool, show a tqdm bar over epochs
        callback : callable(epoch: int, info: dict), optional
            Called after every epoch with ``info`` = that epoch's ``history_`` entry.

        Raises
        ------
        ValueError
            Bad parameters (before any work) or data.
        DivergenceError
            The loss became NaN or infinite (also a ``ValueError``); the model
            is left unfitted.
        """
        params = self._validated_params()
        self._begin_fit(X)
        dtype = params["dtype"]
        rng = np.random.default_rng(self.random_state)
        self._check_sizes(X, np.dtype(dtype).itemsize)
        examples = self._split_examples(X, rng, dtype)
        self._build()
        self._init_weights(rng, examples)
        optimisers = self._optimisers(params, examples)
        self._train(params, rng, examples, optimisers, show_progress, callback)
        self._end_fit()
        return self

    def _split_examples(self, X: Interactions, rng: np.random.Generator, dtype: type) -> _Examples:
        """Hold out ``validation_fraction`` of the interactions (with ``bce``, plus
        ``negatives`` sampled non-interactions per held-out one)."""
        m = X.matrix
        users = np.repeat(np.arange(X.n_users, dtype=np.int32), np.diff(m.indptr))
        items = np.ascontiguousarray(m.indices, dtype=np.int32)
        ratings = np.asarray(m.data, dtype=dtype)
        nnz = users.shape[0]
        n_val = int(round(float(self.validation_fraction) * nnz))
        if n_val >= nnz:
            n_val = nnz - 1
        perm = rng.permutation(nnz)
        val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        tr_u, tr_i, tr_y = users[train_idx], items[train_idx], ratings[train_idx]
        va_u, va_i, va_y = users[val_idx], items[val_idx], ratings[val_idx]
        positive_keys = users.astype(np.int64) * X.n_items + items  # sorted (CSR order)
        if self.loss == "bce":
            tr_y = np.ones(tr_u.shape[0], dtype=dtype)
            if n_val:
                neg_u = np.repeat(va_u, int(self.negatives))
                neg_i, ok = sample_negatives(rng, neg_u, positive_keys, X.n_items)
                va_u = np.concatenate([va_u, neg_u[ok]])
                va_i = np.concatenate([va_i, neg_i[ok]])
                va_y = np.concatenate(
                    [np.ones(n_val, dtype=dtype), np.zeros(int(ok.sum()), dtype=dtype)]
                )
        return _Examples((tr_u, tr_i, tr_y), (va_u, va_i, va_y), positive_keys)

    def _init_weights(self, rng: np.random.Generator, examples: _Examples) -> None:
        """Normal embeddings; the network's init (output bias: the mean rating for mse)."""
        U, V = self.user_embeddings_, self.item_embeddings_
        U[...] = rng.standard_normal(U.shape) * float(self.init_std)
        V[...] = rng.standard_normal(V.shape) * float(self.init_std)
        output_bias = float(examples.train[2].mean()) if self.loss != "bce" else 0.0
        self._mlp.init(rng, output_bias=output_bias)

    def _optimisers(self, params: dict[str, Any], examples: _Examples) -> _Optimisers:
        """The dense and the two lazy embedding optimisers, the batch size and kernels."""
        backend = params["backend"]
        U, V, mlp = self.user_embeddings_, self.item_embeddings_, self._mlp
        lr, wd = float(self.learning_rate), float(self.weight_decay)
        dense, lazy = (Adam, LazyAdam) if self.optimizer == "adam" else (SGD, LazySGD)
        dense_opt = dense(mlp.params, lr, weight_decay=wd, backend=backend)
        user_opt = lazy(U, lr, weight_decay=wd, backend=backend)
        item_opt = lazy(V, lr, weight_decay=wd, backend=backend)
        # a batch larger than an epoch's examples is one epoch-sized batch
        bce = self.loss == "bce"
        n_examples = examples.train[0].shape[0] * (1 + (int(self.negatives) if bce else 0))
        batch = max(1, min(int(self.batch_size), n_examples))
        user_opt.reserve(batch)
        item_opt.reserve(batch)
        gather = embedding_kernels.get(backend).embedding_gather
        loss_fn = bce_with_logits_loss if bce else mse_loss
        return _Optimisers(dense_opt, user_opt, item_opt, batch, gather, loss_fn)

    def _train(
        self,
        params: dict[str, Any],
        rng: np.random.Generator,
        examples: _Examples,
        opt: _Optimisers,
        show_progress: bool,
        callback: CallbackType | None,
    ) -> None:
        """The epochs, with early stopping on the validation loss (best weights kept)."""
        self.history_ = []
        self.best_epoch_ = 0
        self.n_epochs_ = 0
        best: dict[str, Any] = {"loss": math.inf, "state": None, "bad_epochs": 0}

        def step(epoch: int) -> tuple[dict, bool]:
            info = self._train_epoch(epoch, rng, examples, opt, params["dtype"])
            self.n_epochs_ = epoch
            return info, self._track_best(epoch, info, examples, best)

        with (
            _backend.threads(self.num_threads),
            flush_denormals(params["backend"]),
            np.errstate(over="ignore", under="ignore", invalid="ignore"),
        ):
            self._run_epochs(
                range(1, int(self.epochs) + 1), step, "MLPRecommender", show_progress, callback,
                lambda info: {k: f"{v:.4f}" for k, v in info.items() if k.endswith("loss")},
            )  # fmt: skip
        if best["state"] is not None and self.best_epoch_ != self.n_epochs_:
            self.user_embeddings_[...], self.item_embeddings_[...], self._mlp.params[...] = best[
                "state"
            ]

    def _train_epoch(
        self,
        epoch: int,
        rng: np.random.Generator,
        examples: _Examples,
        opt: _Optimisers,
        dtype: type,
    ) -> dict[str, Any]:
        """One shuffled pass (fresh negatives with ``bce``) and the validation loss."""
        tic = time.perf_counter()
        tr_u, tr_i, tr_y = examples.train
        if self.loss == "bce":
            ep_u, ep_i, ep_y = self._bce_epoch(rng, tr_u, tr_i, examples.positive_keys, dtype)
        else:
            ep_u, ep_i, ep_y = tr_u, tr_i, tr_y
        order = rng.permutation(ep_u.shape[0])
        ep_u, ep_i, ep_y = ep_u[order], ep_i[order], ep_y[order]
        train_loss = self._run_epoch(
            ep_u, ep_i, ep_y, opt.batch, int(self.embedding_dim), opt.gather, opt.loss_fn,
            opt.dense, opt.users, opt.items,
        )  # fmt: skip
        seconds = time.perf_counter() - tic
        info: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": train_loss,
            "seconds": seconds,
            "samples_per_s": ep_u.shape[0] / max(seconds, 1e-12),
        }
        self._check_loss(
            epoch, "the training loss", train_loss, "Lower learning_rate or raise weight_decay."
        )
        if examples.validation[0].shape[0]:
            val_loss = self._validation_loss(*examples.validation)
            self._check_loss(epoch, "the validation loss", val_loss, "Lower learning_rate.")
            info["val_loss"] = val_loss
            if self.loss != "bce":
                info["val_rmse"] = math.sqrt(val_loss)
        return info

    def _check_loss(self, epoch: int, what: str, loss: float, advice: str) -> None:
        self._check_divergence(
            f"epoch {epoch}", loss, (), what,
            f"learning_rate={self.learning_rate}, weight_decay={self.weight_decay}", advice,
        )  # fmt: skip

    def _track_best(
        self, epoch: int, info: dict[str, Any], examples: _Examples, best: dict[str, Any]
    ) -> bool:
        """Keep the best epoch (and, before the last epoch, its weights); True to stop."""
        improved = True
        if "val_loss" in info:
            improved = info["val_loss"] < best["loss"]
            if improved:
                best["loss"] = info["val_loss"]
        if improved:
            self.best_epoch_ = epoch
            best["bad_epochs"] = 0
            if examples.validation[0].shape[0] and epoch < int(self.epochs):
                best["state"] = (
                    self.user_embeddings_.copy(),
                    self.item_embeddings_.copy(),
                    self._mlp.params.copy(),
                )
        else:
            best["bad_epochs"] += 1
        return best["bad_epochs"] >= int(self.patience)

    def _bce_epoch(self, rng, tr_u, tr_i, positive_keys, dtype):
        """This epoch's positives plus freshly sampled negatives, with labels."""
        neg_u = np.repeat(tr_u, int(self.negatives))
        neg_i, ok = sample_negatives(rng, neg_u, positive_keys, self.n_items_)
        neg_u, neg_i = neg_u[ok], neg_i[ok]
        ep_u = np.concatenate([tr_u, neg_u])
        ep_i = np.concatenate([tr_i, neg_i])
        ep_y = np.concatenate(
            [np.ones(tr_u.shape[0], dtype=dtype), np.zeros(neg_u.shape[0], dtype=dtype)]
        )
        return ep_u, ep_i, ep_y

    def _run_epoch(
        self, ep_u, ep_i, ep_y, batch, d, gather, loss_fn, dense_opt, user_opt, item_opt
    ) -> float:
        """One pass over shuffled samples; returns the mean training loss.

        The hot loop: every call below is a compiled kernel or a NumPy ufunc /
        BLAS call on buffers allocated once per batch size.
        """
        mlp = self._mlp
        U, V = self.user_embeddings_, self.item_embeddings_
        grads = mlp.grads
        n = ep_u.shape[0]
        total = 0.0
        ws = mlp.workspace(batch)
        for start in range(0, n, batch):
            stop = start + batch
            if stop > n:
                stop = n
                ws = mlp.workspace(n - start)
            bu = ep_u[start:stop]
            bi = ep_i[start:stop]
            gather(U, bu, ws.inputs[0], 0)
            gather(V, bi, ws.inputs[0], d)
            out = mlp.forward(ws)
            total += loss_fn(out, ep_y[start:stop], ws.grad_output, ws.scratch) * (stop - start)
            grad_x = mlp.backward(ws)
            dense_opt._step_trusted(grads)
            user_opt._step_trusted(bu, grad_x, 0)
            item_opt._step_trusted(bi, grad_x, d)
        return total / max(n, 1)

    def _validation_loss(self, va_u, va_i, va_y) -> float:
        out = self._raw_output(va_u, va_i)
        if self.loss == "bce":
            return bce_with_logits_loss(out, va_y)
        return mse_loss(out, va_y)

    # ---------------------------------------------------------------- scoring
    def _raw_output(self, uidx: np.ndarray, iidx: np.ndarray) -> np.ndarray:
        """Network output (rating or logit) for index pairs, in blocks."""
        U, V = self.user_embeddings_, self.item_embeddings_
        out = np.empty(uidx.shape[0], dtype=U.dtype)
        for start in range(0, uidx.shape[0], _PAIR_BLOCK):
            u = uidx[start : start + _PAIR_BLOCK]
            i = iidx[start : start + _PAIR_BLOCK]
            x = np.concatenate([U[u], V[i]], axis=1)
            out[start : start + u.shape[0]] = self._mlp.predict(x)
        return out

    def _predict_known(self, uidx: np.ndarray, iidx: np.ndarray) -> np.ndarray:
        with threadpool_limits(_backend.resolve_threads(self.num_threads), user_api="blas"):
            out = self._raw_output(uidx, iidx).astype(np.float64)
        if self.loss == "bce":
            return sigmoid(out)
        return np.clip(out, self.rating_min_, self.rating_max_)

    def _score_users(self, uidx: np.ndarray) -> np.ndarray:
        """Output of every item for each user in ``uidx`` (m, n_items) float32.

        The first layer splits over the concatenation:
        ``[u, v] @ W1 + b1 = u @ W1[:d] + (v @ W1[d:] + b1)``, so the item half
        is computed once for all users and each pair costs one addition there.
        """
        d = int(self.embedding_dim)
        mlp = self._mlp
        n = self.n_items_
        scores = np.empty((uidx.shape[0], n), dtype=np.float32)
        with threadpool_limits(_backend.resolve_threads(self.num_threads), user_api="blas"):
            w1, b1 = mlp.weights[0], mlp.biases[0]
            user_part = self.user_embeddings_[uidx] @ w1[:d]
            item_part = self.item_embeddings_ @ w1[d:]
            item_part += b1
            rows = max(1, _PAIR_BLOCK // max(n, 1))
            last = len(mlp.weights) - 1
            for start in range(0, uidx.shape[0], rows):
                up = user_part[start : start + rows]
                a = (up[:, None, :] + item_part[None, :, :]).reshape(-1, w1.shape[1])
                np.maximum(a, 0, out=a)
                for l in range(1, last + 1):
                    a = a @ mlp.weights[l]
                    a += mlp.biases[l]
                    if l < last:
                        np.maximum(a, 0, out=a)
                scores[start : start + up.shape[0]] = a.reshape(up.shape[0], n)
        return scores

    # ------------------------------------------------------------ persistence
    def _get_state(self) -> dict[str, np.ndarray]:
        return {
            "user_embeddings": self.user_embeddings_,
            "item_embeddings": self.item_embeddings_,
            "dense_params": self._mlp.params,
            "best_epoch": np.array([self.best_epoch_, self.n_epochs_], dtype=np.int64),
        }

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self._validated_params()
        d = int(self.embedding_dim)
        sizes = [2 * d, *(int(h) for h in self.hidden), 1]
        # every array is checked against the parameters before _build allocates
        U = expect_array(state, "user_embeddings", (self.n_users_, d))
        V = expect_array(state, "item_embeddings", (self.n_items_, d))
        params = expect_array(state, "dense_params", (MLP.count_params(sizes),))
        epochs = expect_array(state, "best_epoch", (2,), kinds="iu")
        if not 0 <= int(epochs[0]) <= int(epochs[1]) <= int(self.epochs):
            raise ValueError(
                f"model array 'best_epoch' holds {epochs.tolist()}: expected "
                f"0 <= best_epoch <= n_epochs <= epochs = {self.epochs}"
            )
        self._build()
        dtype = self.user_embeddings_.dtype
        self.user_embeddings_[...] = U.astype(dtype)
        self.item_embeddings_[...] = V.astype(dtype)
        self._mlp.params[...] = params.astype(dtype)
        self.best_epoch_, self.n_epochs_ = int(epochs[0]), int(epochs[1])
        self.history_ = []
