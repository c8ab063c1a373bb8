"""Non-personalised reference models: useful as baselines and for sanity checks."""

from __future__ import annotations

import numpy as np

from ..data import Interactions
from .base import Recommender, expect_array

__all__ = ["Popularity"]


class Popularity(Recommender):
    """Recommend the most interacted-with items; predict the item mean rating.

    ``predict(u, i)`` is the training mean rating of item ``i`` (the global
    mean for an unknown item); ``recommend`` ranks items by training count,
    ties by ascending index. It has no parameters and no backend.
    """

    def __init__(self):
        pass

    def fit(self, X: Interactions, show_progress: bool = False, callback=None) -> Popularity:
        self._begin_fit(X)
        self._end_fit()
        return self

    def _predict_known(self, uidx: np.ndarray, iidx: np.ndarray) -> np.ndarray:
        return self.item_mean_[iidx]

    def _score_users(self, uidx: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.item_count_.astype(np.float32), (uidx.shape[0], self.n_items_))

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"item_count": self.item_count_}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        counts = expect_array(state, "item_count", (self.n_items_,), kinds="iu")
        if not np.array_equal(counts, self.item_count_):
            raise ValueError("item_count does not match the saved training matrix")
