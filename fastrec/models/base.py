"""The estimator base class every fastrec model derives from.

A model stores its constructor arguments untouched (scikit-learn style), learns
in ``fit`` and keeps learned state in attributes with a trailing underscore.
This class supplies everything that is the same for every model:

- the baseline statistics learned from the training data (global, user and
  item means and counts) and the fallback rules built on them;
- ``predict`` and ``recommend`` on raw ids, including unknown ids;
- ``similar_items`` / ``similar_users`` id mapping;
- ``save`` and :func:`load` (``.npz`` of arrays + JSON metadata, no pickle).

A subclass implements ``fit`` (calling :meth:`_begin_fit` first and
:meth:`_end_fit` last) and these hooks, all on internal indices:

``_predict_known(uidx, iidx) -> ndarray``
    Predictions for pairs whose user and item both have training data.
``_score_users(uidx) -> ndarray (len(uidx), n_items) float32, C order``
    Scores of every item for a block of users (finite or -inf, never NaN).
``_factor_parts() -> (user_vectors, item_vectors, item_offset, user_offset)``
    Optional, for models whose scores are a factor product:
    ``score(u, i) = user_vectors[u] . item_vectors[i] + item_offset[i] +
    user_offset[u]`` (either offset may be None). ``recommend`` then uses the
    fused product + top-k kernel, which never builds a block of dense scores;
    ``_score_users`` must still return the same scores.
``_similar_items_internal(iidx, n)`` / ``_similar_users_internal(uidx, n)``
    Optional: ``(idx (m, n) int32, scores (m, n))`` excluding the query itself.
``_get_state() -> dict`` and ``_set_state(state)``
    The learned arrays to persist, and their validated restoration.
``_validated_params() -> dict``
    Checks every constructor argument (a ``ValueError`` naming it) and
    returns the values ``fit`` works with: numbers as ``int``/``float``, the
    dtype as a NumPy type, ``backend`` and ``num_threads`` resolved. Every
    model uses this one idiom (a model without parameters inherits the empty
    check), and ``fit``, ``_set_state`` and :func:`load` all call it. It
    returns the values rather than only raising so that ``fit`` computes with
    exactly what was checked and resolves the backend and the thread count
    once, instead of reading the raw attributes again.

Iterative fits share :meth:`Recommender._run_epochs` (the epoch loop with
``history_``, progress bar and callback) and report a run that blew up with
:class:`DivergenceError`, through :meth:`Recommender._check_divergence`.

Trusted paths: a function or constructor that skips validation because its
caller has already validated the input is spelled with ``trusted`` everywhere:
the keyword ``_trusted=True`` (``Interactions(..., _trusted=True)``,
``training_layout(..., _trusted=True)``) or the suffix ``_trusted``
(``fastrec.topk.topk_trusted``, ``fastrec.neighbours._prepare_trusted``).

Fallbacks (documented in the README and tested): in ``predict``, a pair whose
user has no training data and whose item has none gets the global mean; an
unknown/cold user with a known item gets the item mean; a known user with an
unknown/cold item gets the user mean. ``recommend`` for an unknown or cold user
returns the most popular training items, scored by their training counts.
"""

from __future__ import annotations

import inspect
import json
import os
import warnings
import zlib
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from .. import _backend
from .._validation import (
    all_finite,
    check_csr,
    check_dtype_arg,
    check_float,
    check_int,
    check_random_state,
    clamp_count,
)
from .._version import __version__
from ..data import IdVocabulary, Interactions
from ..topk import factor_topk_trusted, topk_trusted
from ._file import read_model_file, write_model_file

FILE_FORMAT = "fastrec-model"
LAYOUT_VERSION = 1
_REGISTRY: dict[str, type[Recommender]] = {}

# Bytes of dense scores materialised at once in recommend (rows x n_items x 4).
# Kept under glibc's largest dynamic mmap threshold (32 MiB): a larger block is
# a fresh mmap every time, and faulting its pages in cost as much as the BLAS
# product that fills it (measured: 1.7 vs 2.1 ns per score on one core).
_SCORE_BLOCK_BYTES = 16 << 20


# The checks of the parameters several models share, by name (see
# Recommender._checked_params); a model checks its own parameters itself.
_SHARED_CHECKS: dict[str, Callable[[Any], Any]] = {
    "factors": lambda v: check_int(v, "factors", minimum=1),
    "epochs": lambda v: check_int(v, "epochs", minimum=1),
    "iterations": lambda v: check_int(v, "iterations", minimum=1),
    "learning_rate": lambda v: check_float(v, "learning_rate", minimum=0.0, strict=True),
    "regularization": lambda v: check_float(v, "regularization", minimum=0.0),
    "init_std": lambda v: check_float(v, "init_std", minimum=0.0),
    "dtype": check_dtype_arg,
    "random_state": check_random_state,
    "num_threads": _backend.resolve_threads,
    "backend": _backend.resolve_backend,
}


class NotFittedError(ValueError, AttributeError):
    """The model was used before ``fit``."""


class DivergenceError(FloatingPointError, ValueError):
    """A fit produced NaN or infinite values (loss, factors or weights).

    Raised by every model that trains iteratively (``ALS``, ``SGDMF``,
    ``BPR``, ``SVDpp``, ``MLPRecommender``), with a message naming the model,
    the epoch or iteration, what became non-finite and the parameters to
    change; the model is left unfitted. It is a ``ValueError`` (bad
    parameters for the data) and a ``FloatingPointError``.
    ``fastrec.models.als.NonFiniteFactorsError`` and
    ``fastrec.models.mlp.TrainingDivergedError`` are deprecated names of
    this class.
    """


def deprecated_error_alias(module: str, old_name: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` that serves ``old_name`` as :class:`DivergenceError`.

    The old name is the same class (so ``except OldName`` still catches what
    every model raises) and warns with ``DeprecationWarning`` when looked up.
    """

    def __getattr__(name: str) -> Any:
        if name == old_name:
            warnings.warn(
                f"{module}.{old_name} is deprecated: catch fastrec.DivergenceError, which "
                "every model raises when a fit blows up",
                DeprecationWarning,
                stacklevel=2,
            )
            return DivergenceError
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__


def _json_safe(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return np.dtype(value).name  # np.float32 -> "float32", which np.dtype reads back
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise ValueError(f"parameter value {value!r} cannot be saved (not JSON-representable)")


def _vocab_array(ids: np.ndarray, name: str) -> np.ndarray:
    if ids.dtype.kind != "O":
        return ids
    values = ids.tolist()
    if all(isinstance(v, str) for v in values):
        return np.array(values, dtype=str)
    if all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in values):
        return np.array(values, dtype=np.int64)
    raise ValueError(f"{name} mixes kinds of ids (e.g. ints and strings) and cannot be saved")


def fingerprint(X: Interactions) -> int:
    """Cheap identity of a data set's structure and values (CRC32)."""
    m = X.matrix
    crc = zlib.crc32(np.asarray(m.shape, dtype=np.int64).tobytes())
    for arr in (m.indptr, m.indices, m.data):
        crc = zlib.crc32(np.ascontiguousarray(arr).view(np.uint8), crc)
    return crc


class Recommender:
    """Base class of the fastrec models (see the module docstring)."""

    #: Learned attribute names saved by ``save`` (subclasses extend via _get_state).
    _is_rating_model: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            _REGISTRY[cls.__name__] = cls

    # ------------------------------------------------------------------ params
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Recommender:
        valid = self._param_names()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(f"{key!r} is not a parameter of {type(self).__name__}: {valid}")
            setattr(self, key, value)
        return self

    def _validated_params(self) -> dict[str, Any]:
        """The checked constructor arguments (see the module docstring); none here."""
        return {}

    def _checked_params(self, *names: str) -> dict[str, Any]:
        """The shared checks (``_SHARED_CHECKS``) of the named parameters, in order.

        Returns ``{name: checked value}``; ``random_state`` is checked but not
        returned (``numpy.random.default_rng`` takes it as it is).
        """
        out = {name: _SHARED_CHECKS[name](getattr(self, name)) for name in names}
        out.pop("random_state", None)
        return out

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # --------------------------------------------------------------- fit frame
    def _begin_fit(self, X: Interactions) -> None:
        """Record the vocabularies and baseline statistics of the training data."""
        if not isinstance(X, Interactions):
            raise ValueError(
                f"fit expects a fastrec.Interactions, got {type(X).__name__}; build one with "
                "Interactions.from_arrays / from_dataframe / from_csr"
            )
        if X.nnz == 0:
            raise ValueError("cannot fit on an empty data set (nnz == 0)")
        self._fitted = False
        self._users = X.users
        self._items = X.items
        self._seen = X.matrix
        self._implicit_data = X.implicit
        m = X.matrix
        self.n_users_ = X.n_users
        self.n_items_ = X.n_items
        self.user_count_ = np.diff(m.indptr).astype(np.int64)
        self.item_count_ = np.bincount(m.indices, minlength=X.n_items).astype(np.int64)
        data = m.data.astype(np.float64)
        self.global_mean_ = float(data.mean())
        with np.errstate(invalid="ignore", divide="ignore"):
            # (not add.reduceat: it fails when the last users have no ratings)
            user_sum = np.bincount(X.entry_users(), weights=data, minlength=X.n_users)
            self.user_mean_ = np.where(
                self.user_count_ > 0, user_sum / np.maximum(self.user_count_, 1), self.global_mean_
            )
            item_sum = np.bincount(m.indices, weights=data, minlength=X.n_items)
            self.item_mean_ = np.where(
                self.item_count_ > 0, item_sum / np.maximum(self.item_count_, 1), self.global_mean_
            )
        self.rating_min_ = float(data.min())
        self.rating_max_ = float(data.max())
        self._train_fingerprint = fingerprint(X)

    def _end_fit(self) -> None:
        self._fitted = True

    @staticmethod
    def _check_callback(callback: Any) -> None:
        if callback is not None and not callable(callback):
            raise ValueError(f"callback must be callable, got {callback!r}")

    def _run_epochs(
        self,
        epochs: range,
        step: Callable[[int], tuple[dict, bool]],
        desc: str,
        show_progress: bool,
        callback: Callable[[int, dict], Any] | None,
        postfix: Callable[[dict], dict],
    ) -> None:
        """The epoch loop of the iterative fits.

        ``step(epoch)`` trains one epoch and returns ``(info, stop)``; ``info``
        is appended to ``history_``, shown on the progress bar (a tqdm bar over
        ``epochs`` when ``show_progress``, with ``postfix(info)``) and passed to
        ``callback(epoch, info)``; a true ``stop`` ends the loop after that
        (early stopping).
        """
        bar = None
        if show_progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(epochs), desc=desc)
        try:
            for epoch in epochs:
                info, stop = step(epoch)
                self.history_.append(info)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(postfix(info))
                if callback is not None:
                    callback(epoch, info)
                if stop:
                    break
        finally:
            if bar is not None:
                bar.close()

    def _divergence(self, step: str, what: str, settings: str, advice: str) -> DivergenceError:
        """The :class:`DivergenceError` of every model, one message format."""
        return DivergenceError(
            f"{type(self).__name__} diverged in {step}: {what} became NaN or infinite "
            f"({settings}). {advice}"
        )

    def _check_divergence(
        self,
        step: str,
        loss: float,
        arrays: tuple[np.ndarray, ...],
        what: str,
        settings: str,
        advice: str,
    ) -> None:
        """Raise :class:`DivergenceError` unless ``loss`` and ``arrays`` are all finite."""
        if not all_finite(loss, arrays):
            raise self._divergence(step, what, settings, advice)

    def _check_fitted(self) -> None:
        if not getattr(self, "_fitted", False):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call fit(data) first")

    @property
    def user_ids_(self) -> np.ndarray:
        self._check_fitted()
        return self._users.ids

    @property
    def item_ids_(self) -> np.ndarray:
        self._check_fitted()
        return self._items.ids

    # ----------------------------------------------------------------- predict
    def _baseline(self, uidx: np.ndarray, iidx: np.ndarray) -> np.ndarray:
        """Fallback prediction for pairs the model cannot score (see module doc)."""
        user_ok = uidx >= 0
        user_ok[user_ok] = self.user_count_[uidx[user_ok]] > 0
        item_ok = iidx >= 0
        item_ok[item_ok] = self.item_count_[iidx[item_ok]] > 0
        out = np.full(uidx.shape, self.global_mean_, dtype=np.float64)
        only_item = item_ok & ~user_ok
        out[only_item] = self.item_mean_[iidx[only_item]]
        only_user = user_ok & ~item_ok
        out[only_user] = self.user_mean_[uidx[only_user]]
        return out

    def _predict_known(self, uidx: np.ndarray, iidx: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict(self, users: Any, items: Any) -> np.ndarray:
        """Predicted rating (or score, for implicit models) of each (user, item) pair.

        Parameters
        ----------
        users, items : array_like (n,) of raw ids

        Returns
        -------
        ndarray (n,) float64. Pairs with an unknown or cold (no training data)
        user or item get the baseline described in the module docstring; this
        never raises for unknown ids.
        """
        self._check_fitted()
        users = np.atleast_1d(np.asarray(users))
        items = np.atleast_1d(np.asarray(items))
        if users.ndim != 1 or users.shape != items.shape:
            raise ValueError(
                f"users and items must be 1-D of the same length, got shapes {users.shape} "
                f"and {items.shape}"
            )
        return self._predict_indices(self._users.lookup(users), self._items.lookup(items))

    def _predict_indices(self, uidx: np.ndarray, iidx: np.ndarray) -> np.ndarray:
        uidx = np.asarray(uidx, dtype=np.int64)
        iidx = np.asarray(iidx, dtype=np.int64)
        out = self._baseline(uidx.copy(), iidx.copy())
        known = (uidx >= 0) & (iidx >= 0)
        known[known] = (self.user_count_[uidx[known]] > 0) & (self.item_count_[iidx[known]] > 0)
        if known.any():
            pred = np.asarray(
                self._predict_known(uidx[known].astype(np.int32), iidx[known].astype(np.int32)),
                dtype=np.float64,
            )
            out[known] = pred
        return out

    # --------------------------------------------------------------- recommend
    def _score_users(self, uidx: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _popular(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        counts = self.item_count_.astype(np.float32)[None, :]
        idx, val = topk_trusted(np.ascontiguousarray(counts), n, None, "auto", 1)
        return idx[0], val[0]

    def _recommend_indices(
        self,
        uidx: np.ndarray,
        n: int,
        exclude_seen: bool = True,
        backend: str = "auto",
        num_threads: int = 0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``n`` internal item indices (int32) and scores for internal users.

        Unknown (-1) or cold users get the most popular items.
        """
        uidx = np.asarray(uidx, dtype=np.int64)
        out_idx = np.empty((uidx.shape[0], n), dtype=np.int32)
        out_val = np.empty((uidx.shape[0], n), dtype=np.float32)
        warm = uidx >= 0
        warm[warm] = self.user_count_[uidx[warm]] > 0
        if (~warm).any():
            pop_idx, pop_val = self._popular(n)
            out_idx[~warm] = pop_idx
            out_val[~warm] = pop_val
        rows = np.flatnonzero(warm)
        parts = self._factor_parts()
        if parts is not None:
            self._recommend_factors(
                parts, uidx[rows], rows, n, exclude_seen, backend, num_threads, out_idx, out_val
            )
            return out_idx, out_val
        block = max(1, _SCORE_BLOCK_BYTES // (4 * max(self.n_items_, 1)))
        seen = self._seen
        if exclude_seen:
            seen_indices = np.ascontiguousarray(seen.indices, dtype=np.int32)
            seen_indptr = np.ascontiguousarray(seen.indptr, dtype=np.int64)
        for start in range(0, rows.shape[0], block):
            sel = rows[start : start + block]
            users = uidx[sel].astype(np.int32)
            exclude = None
            if exclude_seen:
                first = int(users[0])
                if users[-1] - first == users.shape[0] - 1 and (np.diff(users) == 1).all():
                    # a run of consecutive users (e.g. "every user"): the kernel
                    # reads positions through indptr, so a view of the row
                    # pointer over the whole indices array is the sliced matrix
                    exclude = (seen_indptr[first : first + users.shape[0] + 1], seen_indices)
                else:
                    sub = seen[users]
                    exclude = (
                        np.ascontiguousarray(sub.indptr, dtype=np.int64),
                        np.ascontiguousarray(sub.indices, dtype=np.int32),
                    )
            fused = self._score_topn(users, n, exclude)
            if fused is None:
                scores = np.ascontiguousarray(self._score_users(users), dtype=np.float32)
                idx, val = topk_trusted(scores, n, exclude, backend, num_threads)
            else:
                idx, val = fused
            out_idx[sel] = idx
            out_val[sel] = val
        return out_idx, out_val

    def _factor_parts(self) -> tuple | None:
        return None

    def _score_topn(
        self, users: np.ndarray, n: int, exclude: tuple[np.ndarray, np.ndarray] | None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The top ``n`` of ``_score_users(users)`` without ``exclude`` (CSR
        ``(indptr, indices)`` aligned with ``users``), computed without the
        dense score rows; None when the model has no such path (the default)."""
        return None

    def _recommend_factors(
        self, parts, users, sel, n, exclude_seen, backend, num_threads, out_idx, out_val
    ) -> None:
        # recommend for warm users through the fused kernel (see _factor_parts)
        user_vectors, item_vectors, item_offset, user_offset = parts
        exclude = None
        if exclude_seen:
            seen = self._seen
            exclude = (seen.indptr, np.ascontiguousarray(seen.indices, dtype=np.int32))
        idx, val = factor_topk_trusted(
            user_vectors,
            item_vectors,
            users.astype(np.int32),
            n,
            item_offset,
            exclude,
            backend,
            num_threads,
        )
        val = val.astype(np.float32, copy=False)
        if user_offset is not None:
            val += np.asarray(user_offset, dtype=np.float32)[users][:, None]
        out_idx[sel] = idx
        out_val[sel] = val

    def recommend(
        self, users: Any, n: int = 10, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` items for each user.

        Parameters
        ----------
        users : array_like (m,) of raw user ids (a scalar is treated as one user)
        n : int >= 1
            More than the number of items is clamped to it (the result then
            has ``n_items_`` columns).
        exclude_seen : bool
            Skip the items each user interacted with in training.

        Returns
        -------
        ids : ndarray (m, n) of raw item ids, best first
        scores : ndarray (m, n) float32
            Unknown or cold users get the ``n`` most popular training items,
            scored by their training counts. When fewer than ``n`` items are
            left to recommend, the remaining slots have score ``-inf`` and id
            -1 (integer ids) or None (other ids).
        """
        self._check_fitted()
        n = clamp_count(n, "n", self.n_items_)
        users = np.atleast_1d(np.asarray(users))
        if users.ndim != 1:
            raise ValueError(f"users must be 1-dimensional, got shape {users.shape}")
        idx, scores = self._recommend_indices(
            self._users.lookup(users),
            n,
            exclude_seen,
            getattr(self, "backend", "auto"),
            getattr(self, "num_threads", 0),
        )
        return self._item_ids_of(idx), scores

    def _item_ids_of(self, idx: np.ndarray) -> np.ndarray:
        return _ids_of(self._items.ids, idx)

    # ------------------------------ optional methods of fr.evaluate's model protocol
    def score_items(self, users: Any) -> np.ndarray:
        """Scores of every item for each user (raw user ids), seen items included.

        Returns ndarray (m, n_items_) float32, columns in ``item_ids_`` order:
        the scores ``recommend`` ranks (the factor models rank them with a
        fused kernel whose last bits may differ). Unknown or cold users get
        the items' training counts. Memory: ``4 * m * n_items_`` bytes, so
        pass users in batches. ``fr.evaluate`` uses it for "auc".
        """
        self._check_fitted()
        users = np.atleast_1d(np.asarray(users))
        if users.ndim != 1:
            raise ValueError(f"users must be 1-dimensional, got shape {users.shape}")
        uidx = self._users.lookup(users)
        warm = uidx >= 0
        warm[warm] = self.user_count_[uidx[warm]] > 0
        scores = np.tile(self.item_count_.astype(np.float32), (uidx.shape[0], 1))
        if warm.any():
            scores[warm] = self._score_users(uidx[warm].astype(np.int32))
        return scores

    def fitted_on(self, X: Interactions) -> bool:
        """Whether the model is fitted on exactly ``X`` (same matrix: structure and values).

        ``fr.evaluate(fit=None)`` fits a model for which this is False.
        """
        return (
            bool(getattr(self, "_fitted", False))
            and isinstance(X, Interactions)
            and self._train_fingerprint == fingerprint(X)
        )

    # ----------------------------------------------------------------- similar
    def _similar_items_internal(self, iidx: np.ndarray, n: int):
        raise NotImplementedError(f"{type(self).__name__} does not define item similarity")

    def _similar_users_internal(self, uidx: np.ndarray, n: int):
        raise NotImplementedError(f"{type(self).__name__} does not define user similarity")

    def similar_items(self, items: Any, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` items most similar to each given item (raw ids in and out).

        Unknown item ids raise ``ValueError`` naming the position. Padded slots
        (fewer than ``n`` neighbours) follow ``recommend``'s convention.
        """
        self._check_fitted()
        n = clamp_count(n, "n", self.n_items_)
        iidx = self._lookup_known(self._items, items, "items")
        idx, val = self._similar_items_internal(iidx, n)
        return self._item_ids_of(idx), val

    def similar_users(self, users: Any, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` users most similar to each given user (raw ids in and out)."""
        self._check_fitted()
        n = clamp_count(n, "n", self.n_users_)
        uidx = self._lookup_known(self._users, users, "users")
        idx, val = self._similar_users_internal(uidx, n)
        return _ids_of(self._users.ids, idx), val

    @staticmethod
    def _lookup_known(vocab: IdVocabulary, raw: Any, name: str) -> np.ndarray:
        raw = np.atleast_1d(np.asarray(raw))
        idx = vocab.lookup(raw)
        if (idx < 0).any():
            pos = int(np.argmax(idx < 0))
            raise ValueError(f"{name}[{pos}] = {raw[pos]!r} is not a known id")
        return idx.astype(np.int32)

    # ------------------------------------------------------------- persistence
    def _get_state(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted model to ``path`` (``.npz`` arrays + JSON metadata).

        The file is read back by :func:`fastrec.load` without pickle. The write
        is atomic: a temporary file in the same folder is written, flushed and
        fsynced, then renamed over ``path``; if anything fails (or the process
        is killed) before the rename, an existing file at ``path`` is intact.
        """
        self._check_fitted()
        seen = self._seen
        arrays: dict[str, np.ndarray] = {
            "base.user_ids": _vocab_array(self._users.ids, "user_ids"),
            "base.item_ids": _vocab_array(self._items.ids, "item_ids"),
            "base.seen_indptr": seen.indptr,
            "base.seen_indices": seen.indices,
            "base.seen_data": seen.data,
        }
        for key, value in self._get_state().items():
            arrays[f"model.{key}"] = np.asarray(value)
        meta = {
            "format": FILE_FORMAT,
            "layout_version": LAYOUT_VERSION,
            "library_version": __version__,
            "class": type(self).__name__,
            "params": {k: _json_safe(v) for k, v in self.get_params().items()},
            "implicit_data": bool(self._implicit_data),
        }
        arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        write_model_file(path, arrays)


def _ids_of(ids: np.ndarray, idx: np.ndarray) -> np.ndarray:
    pad = idx < 0
    if not pad.any():
        return ids[idx]
    if ids.dtype.kind in "iu":
        out = ids[np.where(pad, 0, idx)].astype(np.int64)
        out[pad] = -1
    else:
        out = ids[np.where(pad, 0, idx)].astype(object)
        out[pad] = None
    return out


def expect_array(
    state: dict[str, np.ndarray], name: str, shape: tuple[int | None, ...], kinds: str = "f"
) -> np.ndarray:
    """Fetch ``state[name]`` and check its shape and dtype kind (for ``_set_state``).

    Float arrays must be finite. Returns a C-contiguous array of the saved dtype.
    """
    if name not in state:
        raise ValueError(f"model file is missing the array {name!r}")
    arr = state[name]
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in kinds:
        dtype = getattr(arr, "dtype", type(arr).__name__)
        raise ValueError(f"model array {name!r} has dtype {dtype}, expected kind {kinds!r}")
    if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
        raise ValueError(f"model array {name!r} has shape {arr.shape}, expected {shape}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"model array {name!r} holds NaN or infinite values")
    return np.ascontiguousarray(arr)


def expect_csr(
    state: dict[str, np.ndarray],
    prefix: str,
    shape: tuple[int, int],
    name: str,
    dtype: Any = np.float32,
) -> sp.csr_matrix:
    """The CSR saved as ``<prefix>_indptr``, ``_indices``, ``_data``, validated.

    The index arrays are checked in their saved dtype (any integer width)
    before they are cast to the kernels' int32/int64, so an out-of-range
    value cannot wrap into a valid-looking one; then ``check_csr`` checks
    the structure (sorted, unique column indices per row) and the values.
    """
    n_rows, n_cols = shape
    indptr = expect_array(state, f"{prefix}_indptr", (n_rows + 1,), "iu")
    indices = expect_array(state, f"{prefix}_indices", (None,), "iu")
    data = expect_array(state, f"{prefix}_data", (indices.shape[0],), "f")
    nnz = indices.shape[0]
    if int(indptr[0]) != 0:
        raise ValueError(f"{name}.indptr[0] must be 0, got {indptr[0]}")
    dec = np.flatnonzero(indptr[1:] < indptr[:-1])
    if dec.size:
        raise ValueError(
            f"{name}.indptr must be non-decreasing: it decreases at position {dec[0] + 1}"
        )
    if int(indptr[-1]) != nnz:
        raise ValueError(
            f"{name}.indptr[-1] (position {n_rows}) must equal len(indices) = {nnz}, "
            f"got {indptr[-1]}"
        )
    if nnz:
        bad = np.flatnonzero(indices < 0)
        if bad.size:
            raise ValueError(
                f"{name}.indices has a negative column index ({indices[bad[0]]}) at position "
                f"{bad[0]}"
            )
        bad = np.flatnonzero(indices >= n_cols)
        if bad.size:
            raise ValueError(
                f"{name}.indices has a column index >= {n_cols} (the number of columns) at "
                f"position {bad[0]}: {indices[bad[0]]}"
            )
    if n_cols > np.iinfo(np.int32).max:
        raise ValueError(f"{name} has {n_cols} columns, more than int32 indices can address")
    matrix = sp.csr_matrix((n_rows, n_cols), dtype=data.dtype)
    matrix.data = data
    matrix.indices = indices.astype(np.int32)
    matrix.indptr = indptr.astype(np.int64)
    return check_csr(matrix, name, dtype=dtype)


_MODEL_MODULES = ("baseline", "knn", "sgd", "als", "mlp", "svdpp", "bpr", "ease")


def _import_model_modules() -> None:
    """Import every model module so that its classes are registered for ``load``."""
    import importlib

    for name in _MODEL_MODULES:
        try:
            importlib.import_module(f"fastrec.models.{name}")
        except ImportError:  # a model family that is not part of this build
            pass


class _StateView(dict):
    """The saved model arrays, remembering which ones ``_set_state`` looked at."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.used: set[str] = set()

    def __getitem__(self, key: str) -> np.ndarray:
        self.used.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.used.add(key)  # type: ignore[arg-type]
        return super().__contains__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.used.add(key)
        return super().get(key, default)


def _check_ids(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.ndim != 1 or arr.dtype.kind not in "iuU":
        raise ValueError(
            f"model array {name!r} must be 1-D integer or str ids, got shape {arr.shape} "
            f"of {arr.dtype}"
        )
    return arr


def _load_params(cls: type[Recommender], params: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(params) - set(cls._param_names()))
    if unknown:
        raise ValueError(f"{cls.__name__} does not take the parameter(s) {unknown}")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}


def load(path: str | os.PathLike) -> Recommender:
    """Load a model written by ``Recommender.save`` (never unpickles anything).

    Raises ``ValueError`` naming the path and the problem for anything that
    is not a model file fastrec wrote: a missing file, a folder, a device or
    FIFO, a text file, a truncated, tampered or oversized archive, metadata
    outside the schema, parameters that ``fit`` would refuse, arrays whose
    shapes or values disagree with each other, or another layout version.
    See :mod:`fastrec.models._file` for the limits.
    """
    path = os.fspath(path)
    arrays, meta = read_model_file(path)
    if meta["layout_version"] != LAYOUT_VERSION:
        raise ValueError(
            f"{path!r} uses model layout version {meta['layout_version']!r} "
            f"(written by fastrec {meta['library_version']!r}); this fastrec "
            f"({__version__}) reads layout version {LAYOUT_VERSION}"
        )
    _import_model_modules()
    cls = _REGISTRY.get(meta["class"])
    if cls is None:
        raise ValueError(f"{path!r} names an unknown model class {meta['class'][:80]!r}")
    try:
        params = _load_params(cls, meta["params"])
        model = cls(**params)
        model._validated_params()
        user_ids = _check_ids(expect_array(arrays, "base.user_ids", (None,), "iuU"), "user_ids")
        item_ids = _check_ids(expect_array(arrays, "base.item_ids", (None,), "iuU"), "item_ids")
        seen = expect_csr(
            arrays, "base.seen", (user_ids.shape[0], item_ids.shape[0]), "saved training matrix"
        )
        X = Interactions(seen, user_ids, item_ids, implicit=meta["implicit_data"], _trusted=True)
        model._begin_fit(X)
        state = _StateView(
            {k[len("model.") :]: v for k, v in arrays.items() if k.startswith("model.")}
        )
        model._set_state(state)
        extra = sorted(set(state) - state.used)
        if extra:
            raise ValueError(f"unexpected model array(s) {extra} for {cls.__name__}")
        known = {"base.user_ids", "base.item_ids", "base.seen_indptr", "base.seen_indices"}
        extra = sorted(
            k for k in arrays if not k.startswith("model.") and k not in known | {"base.seen_data"}
        )
        if extra:
            raise ValueError(f"unexpected array(s) {extra}")
    except (TypeError, ValueError, OverflowError) as exc:
        model = None
        raise ValueError(f"{path!r} is not a valid {cls.__name__} file: {exc}") from None
    model._end_fit()
    return model


CallbackType = Callable[[int, dict], Any]
