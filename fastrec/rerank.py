"""Re-ranking of recommendation lists for diversity.

:func:`mmr` re-orders the candidates of any model's ``recommend`` (or of
:func:`fastrec.topk`) by maximal marginal relevance, so that a short list is
not made of near copies of one item::

    ids, scores = model.recommend(users, n=100)                # 100 candidates each
    S = fr.similarity(train, kind="cosine", axis="items", k=100)
    ids, scores = fr.rerank.mmr(ids, scores, S, diversity=0.3, n=10, items=train)

The compiled kernels are ``kernels/numba/rerank.py`` and
``kernels/cython/rerank.pyx``.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from . import _backend
from ._kernels import rerank as rerank_kernels
from ._validation import (
    as_float_array,
    check_float,
    check_int,
    check_item_similarity,
    fmt_pos,
)
from .data import IdVocabulary, Interactions, _show

__all__ = ["mmr"]


def mmr(
    ids: Any,
    scores: Any,
    item_similarity: Any,
    diversity: float = 0.3,
    n: int = 10,
    items: Any = None,
    backend: str = "auto",
    num_threads: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Re-rank candidate lists by maximal marginal relevance (MMR).

    Carbonell and Goldstein, "The use of MMR, diversity-based reranking for
    reordering documents and producing summaries", SIGIR 1998, section 2.
    For every row, picks ``n`` of its candidates one at a time, each time the
    candidate ``i`` that maximises::

        (1 - diversity) * rel(i) - diversity * max_{j already picked} S[j, i]

    Parameters
    ----------
    ids : array_like (n_users, n_candidates)
        The candidates of each row, e.g. the ids from ``recommend(users,
        n=100)``. Without ``items``: integer item indices, i.e. rows and
        columns of ``item_similarity``. With ``items``: raw item ids, mapped
        through that vocabulary. Empty slots (-1, or None for non-integer
        ids, as ``recommend`` pads) are skipped. No item may appear twice in
        a row.
    scores : array_like (n_users, n_candidates), float
        The candidates' scores (higher is better); they must be finite except
        in empty slots, whose scores are ignored (``recommend`` puts -inf).
    item_similarity : scipy.sparse matrix (n_items, n_items)
        ``S``, e.g. ``fr.similarity(train, kind="cosine", axis="items",
        k=100)`` or ``ItemKNN().fit(train).similarity_``. Missing entries
        count as similarity 0; the entries of a row may be in any order, and
        repeated entries add up (as in scipy). Its data is converted to the
        dtype of ``scores``.
    diversity : float in [0, 1]
        The weight of the similarity penalty. 0 keeps the input order of the
        highest scores (ties as below), 1 ignores the scores after the
        first pick.
    n : int >= 1
        Length of the returned lists.
    items : Interactions, fitted fastrec model, or array of raw item ids, optional
        The vocabulary that ``item_similarity``'s rows follow (position =
        index); it must have ``n_items`` ids. Pass the training data (or the
        model) to use the raw ids that ``recommend`` returns.
    backend : {"auto", "numba", "cython"}
    num_threads : int, 0 means all cores

    Returns
    -------
    ids : ndarray (n_users, n)
        The picked candidates in picking order, of the input's kind (indices,
        or raw ids with ``items``). A row with fewer than ``n`` valid
        candidates ends with empty slots: -1 (integer ids) or None (others).
    scores : ndarray (n_users, n)
        The input scores of the picked candidates (not the MMR values), in
        the dtype of ``scores``; -inf in empty slots.

    Notes
    -----
    - ``rel(i)`` is the row's scores min-max normalised over its valid
      candidates, ``(s_i - min) / (max - min)``, so that scores of any scale
      (ratings, dot products, counts) weigh alike against similarities in
      [-1, 1]; when all of a row's valid candidates share one score, ``rel``
      is 1 for each of them.
    - The penalty of a candidate is 0 before the first pick, so the first
      pick is the best-scored candidate. ``S[j, i]`` is read from the row
      of the picked item ``j``: for a top-k similarity (not symmetric), a
      candidate is penalised when it is among a picked item's neighbours.
      Pass ``S.maximum(S.T)`` to penalise both directions.
    - Ties of the MMR value go to the higher ``rel``, then to the earlier
      position in the row (so with ``diversity=0`` the result is the rows
      sorted by descending score, stably).
    - Cost: ``n`` passes over the candidates per row plus ``n - 1`` rows of
      ``S``; per thread, an int32 map of ``n_items`` entries. Rows run in
      parallel; the result does not depend on the thread count or backend
      (up to the last bit of float ties).

    Raises
    ------
    ValueError
        ``diversity`` outside [0, 1]; ``n < 1``; ``ids`` and ``scores`` of
        different shapes; a non-square ``item_similarity`` or one whose size
        is not the number of items of ``items``; an id out of range (or not
        in ``items``); an item twice in a row; NaN or infinite scores at a
        valid slot. Messages name the parameter and the position.
    """
    diversity = check_float(diversity, "diversity", minimum=0.0, maximum=1.0)
    n = check_int(n, "n", minimum=1)
    backend = _backend.resolve_backend(backend)
    _backend.resolve_threads(num_threads)
    raw = np.asarray(ids)
    if raw.ndim != 2:
        raise ValueError(
            f"ids must be 2-dimensional (n_users, n_candidates), got shape {raw.shape}"
        )
    score_arr = np.asarray(scores)
    if score_arr.shape != raw.shape:
        raise ValueError(f"scores must have the shape of ids {raw.shape}, got {score_arr.shape}")
    score_arr = as_float_array(score_arr, "scores", finite=False)
    dtype = score_arr.dtype
    sim = check_item_similarity(item_similarity, dtype=dtype)
    n_items = sim.shape[0]
    vocab = None
    if items is not None:
        vocab = _vocabulary(items)
        if len(vocab) != n_items:
            raise ValueError(
                f"item_similarity has shape {sim.shape} but items has {len(vocab)} item ids: "
                "it must be (n_items, n_items) over the same items"
            )
        idx = _raw_to_index(raw, vocab)
    else:
        idx = _check_indices(raw, n_items)
    valid = idx >= 0
    bad = valid & ~np.isfinite(score_arr)
    if bad.any():
        flat = int(np.argmax(bad.ravel()))
        raise ValueError(
            f"scores must be finite at the valid candidates: found "
            f"{score_arr.ravel()[flat]} at position {fmt_pos(score_arr.shape, flat)}"
        )
    _check_no_repeats(idx)

    n_rows, n_cand = idx.shape
    out_pos = np.full((n_rows, n), -1, dtype=np.int32)
    if n_rows and n_cand:
        kernel = rerank_kernels.get(backend).mmr
        w_rel, w_div = dtype.type(1.0 - diversity), dtype.type(diversity)
        if backend == "cython":
            w_rel, w_div = float(w_rel), float(w_div)
        with _backend.threads(num_threads):
            kernel(idx, score_arr, sim.indptr, sim.indices, sim.data, w_rel, w_div, out_pos)
    picked = out_pos >= 0
    take = np.where(picked, out_pos, 0)
    out_scores = np.take_along_axis(score_arr, take, axis=1) if n_cand else np.zeros_like(take)
    out_scores = np.where(picked, out_scores, -np.inf).astype(dtype, copy=False)
    if n_cand:
        out_ids = np.take_along_axis(raw, take, axis=1)
    else:
        out_ids = np.zeros((n_rows, n), dtype=raw.dtype if raw.dtype.kind in "iu" else object)
    if not picked.all():
        if out_ids.dtype.kind in "iu":
            out_ids = out_ids.astype(np.int64 if out_ids.dtype.kind == "u" else out_ids.dtype)
            out_ids[~picked] = -1
        else:
            out_ids = out_ids.astype(object)
            out_ids[~picked] = None
    return out_ids, out_scores


def _at(shape: tuple[int, ...], flat: int) -> str:
    """``ids[r, c]`` for the flat position ``flat`` of a 2-D array."""
    r, c = np.unravel_index(flat, shape)
    return f"ids[{int(r)}, {int(c)}]"


def _vocabulary(items: Any) -> IdVocabulary:
    """The item vocabulary of an Interactions, a fitted model or an id array."""
    if isinstance(items, Interactions):
        return items.items
    from .models.base import Recommender

    if isinstance(items, Recommender):
        items._check_fitted()
        return items._items
    if isinstance(items, IdVocabulary):
        return items
    return IdVocabulary(np.asarray(items), "items")


def _check_indices(raw: np.ndarray, n_items: int) -> np.ndarray:
    """``ids`` as item indices: integers in [-1, n_items), as int32."""
    if raw.dtype.kind not in "iu":
        raise ValueError(
            f"ids must hold integer item indices, got dtype {raw.dtype} (pass items= the "
            "training data or the model to re-rank raw item ids)"
        )
    bad = (raw < -1) | (raw >= n_items)
    if bad.any():
        flat = int(np.argmax(bad.ravel()))
        raise ValueError(
            f"{_at(raw.shape, flat)} = {raw.ravel()[flat]} is out of range: item "
            f"indices must be in [0, {n_items}) (the size of item_similarity), -1 for an "
            "empty slot"
        )
    return np.ascontiguousarray(raw, dtype=np.int32)


def _is_pad(value: Any) -> bool:
    if value is None:
        return True
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) == -1


def _raw_to_index(raw: np.ndarray, vocab: IdVocabulary) -> np.ndarray:
    """Raw ids -> int32 indices through ``vocab``; -1 / None are empty slots."""
    if raw.dtype.kind in "iu":
        pad = raw == -1
    elif raw.dtype.kind == "O":
        pad = np.frompyfunc(_is_pad, 1, 1)(raw).astype(bool)
    else:
        pad = np.zeros(raw.shape, dtype=bool)
    idx = np.full(raw.shape, -1, dtype=np.int64)
    if (~pad).any():
        idx[~pad] = vocab.lookup(raw[~pad])
    unknown = (idx < 0) & ~pad
    if unknown.any():
        flat = int(np.argmax(unknown.ravel()))
        raise ValueError(
            f"{_at(raw.shape, flat)} = {_show(raw.ravel()[flat])!r} is not an item id of items"
        )
    return np.ascontiguousarray(idx, dtype=np.int32)


def _check_no_repeats(idx: np.ndarray) -> None:
    """Raise if an item appears twice in one row of ``idx`` (empty slots aside)."""
    if idx.shape[1] < 2:
        return
    srt = np.sort(idx, axis=1)
    rep = (srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)
    if rep.any():
        row = int(np.argmax(rep.any(axis=1)))
        item = int(srt[row, 1:][rep[row]][0])
        where = np.flatnonzero(idx[row] == item)[:2]
        raise ValueError(
            f"ids holds item index {item} twice in row {row} (positions "
            f"[{row}, {where[0]}] and [{row}, {where[1]}]): each candidate must be distinct"
        )
