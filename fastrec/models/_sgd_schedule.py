"""The epoch schedule of the SGD models: the visiting order of one epoch.

Every epoch of :class:`fastrec.SGDMF` (and of ``SVDpp``) visits the users in a
fresh random permutation cut into chunks of about equal rating counts, and the
item blocks of :func:`fastrec.models._sgd_layout.training_layout` in a fresh
random order (:func:`epoch_schedule`); the learning rate of each epoch follows
the model's ``lr_schedule`` (:func:`epoch_rate`). See :mod:`fastrec.models.sgd`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["LR_SCHEDULES", "epoch_rate", "epoch_schedule", "stacked_schedules"]

LR_SCHEDULES = ("constant", "decay")


def epoch_rate(schedule: str, epoch: int, learning_rate: float, lr_decay: float) -> float:
    """The learning rate of ``epoch``: constant, or ``learning_rate * lr_decay ** epoch``."""
    if schedule == "decay":
        return learning_rate * lr_decay**epoch
    return learning_rate


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


def stacked_schedules(
    user_counts: np.ndarray, rng: np.random.Generator, n_epochs: int, n_chunks: int, n_blocks: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The :func:`epoch_schedule` of ``n_epochs`` epochs, drawn in order, stacked.

    The same ``rng`` calls in the same order as one call per epoch, so a fit
    that draws every schedule first visits the ratings as one that draws them
    epoch by epoch. Returns ``user_orders (n_epochs, n_users)``, ``bounds
    (n_epochs, n_chunks + 1)`` and ``block_orders (n_epochs, n_blocks)``.
    """
    schedules = [epoch_schedule(user_counts, rng, n_chunks, n_blocks) for _ in range(n_epochs)]
    return (
        np.stack([s[0] for s in schedules]),
        np.stack([s[1] for s in schedules]),
        np.stack([s[2] for s in schedules]),
    )
