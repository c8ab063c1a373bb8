"""The shared ``recommend`` path of the base class against a naive reference."""

from __future__ import annotations

import numpy as np
import pytest

import fastrec as fr
from fastrec.benchmarks.topk import _StaticFactors
from fastrec.models import base
from tests.reference_core import topk_reference


class _Factors(_StaticFactors):
    """Fixed factors, recommended through the blocked dense-scores path."""

    def _factor_parts(self):
        return None


class _FusedFactors(_StaticFactors):
    """The same scores, recommended through the fused product + top-k kernel."""

    def _factor_parts(self):
        # a per-user constant moves no item within a user's ranking; it is
        # added to the returned scores
        shift = 0.5 * np.arange(self.n_users_, dtype=np.float32)
        return self.user_factors_, self.item_factors_, None, shift


@pytest.fixture(params=["blocked", "fused"])
def fitted(backend, request):
    rng = np.random.default_rng(11)
    n_users, n_items = 90, 150
    users = rng.integers(0, n_users, 2000)
    items = rng.integers(0, n_items, 2000)
    X = fr.Interactions.from_arrays(users, items, np.ones(2000), duplicates="sum")
    U = rng.integers(-3, 4, (X.n_users, 6)).astype(np.float32)  # integer scores: many ties
    V = rng.integers(-3, 4, (X.n_items, 6)).astype(np.float32)
    cls = _Factors if request.param == "blocked" else _FusedFactors
    return cls(backend=backend, num_threads=2).fit(X, U, V), X, U, V


@pytest.mark.parametrize("order", ["all", "reversed", "shuffled_with_repeats"])
def test_recommend_matches_reference_across_blocks(fitted, monkeypatch, order):
    model, X, U, V = fitted
    # blocks of 7 users: many blocks, runs of consecutive users and broken runs
    monkeypatch.setattr(base, "_SCORE_BLOCK_BYTES", 7 * 4 * X.n_items)
    uidx = np.arange(X.n_users)
    if order == "reversed":
        uidx = uidx[::-1].copy()
    elif order == "shuffled_with_repeats":
        uidx = np.random.default_rng(0).integers(0, X.n_users, 60)
    idx, val = model._recommend_indices(uidx, 10)
    seen = X.matrix
    ref_idx, ref_val = topk_reference(
        U[uidx] @ V.T, 10, [seen.indices[seen.indptr[u] : seen.indptr[u + 1]] for u in uidx]
    )
    np.testing.assert_array_equal(idx, ref_idx)
    if isinstance(model, _FusedFactors):
        ref_val = ref_val + 0.5 * uidx[:, None]
    np.testing.assert_array_equal(val, ref_val.astype(np.float32))
    # without exclusion the seen items come back
    idx_all, _ = model._recommend_indices(uidx, 10, exclude_seen=False)
    ref_all, _ = topk_reference(U[uidx] @ V.T, 10)
    np.testing.assert_array_equal(idx_all, ref_all)
