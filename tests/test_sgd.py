"""Hogwild SGD kernel (both backends, both dtypes) and the SGDMF model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastrec as fr
import fastrec.models._sgd_layout as sgd_layout
import fastrec.models.sgd as sgd_module
from fastrec._backend import threads
from fastrec._kernels import sgd as sgd_kernels
from fastrec.models._sgd_layout import padded_factors, training_layout, ziggurat_tables
from fastrec.models._sgd_schedule import epoch_schedule
from fastrec.models.sgd import SGDMF, DivergenceError
from tests.reference_sgd import (
    low_rank_ratings,
    mix64_reference,
    normal_fill_reference,
    sgd_epoch_reference,
    sgd_objective,
    visiting_order,
)

from .conftest import tol

fixture_ok = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


def _one_block(indptr):
    """block_ptr of a single item block: the CSR row bounds side by side."""
    indptr = np.asarray(indptr, dtype=np.int64)
    return np.column_stack([indptr[:-1], indptr[1:]])


def _run_epoch(backend, dtype, problem, mu, lr, reg, bias, state):
    block_ptr, indices, ratings, order, bounds, blocks = problem
    P, Q, bu, bi = (np.array(a, dtype=dtype) for a in state)
    loss = np.zeros(len(bounds) - 1)
    kernel = sgd_kernels.get(backend).sgd_epoch
    with threads(1):
        kernel(
            np.asarray(block_ptr, dtype=np.int64), np.asarray(indices, dtype=np.int32),
            np.asarray(ratings, dtype=dtype), np.asarray(order, dtype=np.int32),
            np.asarray(bounds, dtype=np.int64), np.asarray(blocks, dtype=np.int32),
            dtype(mu), dtype(lr), dtype(reg), bias, P, Q, bu, bi, loss,
        )  # fmt: skip
    return P, Q, bu, bi, loss


def test_one_step_by_hand(backend, dtype):
    # one rating r=4 of user 0 for item 0; mu=3, b_u=0.5, b_i=-0.25, lr=0.1, reg=0.5
    state = ([[0.1, 0.2]], [[0.3, -0.1]], [0.5], [-0.25])
    problem = (_one_block([0, 1]), [0], [4.0], [0], [0, 1], [0])
    P, Q, bu, bi, loss = _run_epoch(backend, dtype, problem, 3.0, 0.1, 0.5, True, state)
    # pred = 3 + 0.5 - 0.25 + (0.03 - 0.02) = 3.26, err = 0.74
    np.testing.assert_allclose(loss, [0.74**2], **tol(dtype))
    np.testing.assert_allclose(bu, [0.549], **tol(dtype))  # 0.5 + 0.1 (0.74 - 0.25)
    np.testing.assert_allclose(bi, [-0.1635], **tol(dtype))  # -0.25 + 0.1 (0.74 + 0.125)
    np.testing.assert_allclose(P, [[0.1172, 0.1826]], **tol(dtype))  # p + .1 (.74 q - .5 p)
    np.testing.assert_allclose(Q, [[0.2924, -0.0802]], **tol(dtype))  # q + .1 (.74 p - .5 q)
    # without biases the biases are read but never written
    P, Q, bu, bi, _ = _run_epoch(backend, dtype, problem, 3.0, 0.1, 0.5, False, state)
    assert bu[0] == dtype(0.5) and bi[0] == dtype(-0.25)
    np.testing.assert_allclose(P, [[0.1172, 0.1826]], **tol(dtype))


def _random_problem(data, k_max=20):
    n_users = data.draw(st.integers(1, 25), label="n_users")
    n_items = data.draw(st.integers(1, 15), label="n_items")
    n_blocks = data.draw(st.integers(1, 4), label="n_blocks")
    k = data.draw(st.integers(1, k_max), label="factors")
    density = data.draw(st.floats(0.0, 1.0), label="density")
    seed = data.draw(st.integers(0, 2**31 - 1), label="seed")
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    block_of_item = rng.integers(0, n_blocks, n_items)
    # each row: its items grouped by block, in a random order within a block
    rows, block_ptr, start = [], np.zeros((n_users, n_blocks + 1), dtype=np.int64), 0
    for u in range(n_users):
        items = rng.permutation(np.flatnonzero(mask[u]))
        items = items[np.argsort(block_of_item[items], kind="stable")]
        rows.append(items)
        block_ptr[u] = start + np.searchsorted(block_of_item[items], np.arange(n_blocks + 1))
        start += items.shape[0]
    indices = np.concatenate(rows + [np.zeros(0, dtype=np.int64)]).astype(np.int32)
    ratings = rng.integers(1, 6, indices.shape[0]).astype(np.float64)
    order = rng.permutation(n_users)
    cuts = np.sort(rng.integers(0, n_users + 1, data.draw(st.integers(0, 4), label="cuts")))
    bounds = np.concatenate(([0], cuts, [n_users]))
    blocks = rng.permutation(n_blocks)
    state = (
        rng.normal(0, 0.3, (n_users, k)),
        rng.normal(0, 0.3, (n_items, k)),
        rng.normal(0, 0.1, n_users),
        rng.normal(0, 0.1, n_items),
    )
    return (block_ptr, indices, ratings, order, bounds, blocks), state


@fixture_ok
@given(data=st.data())
def test_epoch_matches_naive_loop(backend, dtype, data):
    problem, state = _random_problem(data)
    lr = data.draw(st.floats(0.0, 0.05), label="learning_rate")
    reg = data.draw(st.floats(0.0, 0.2), label="regularization")
    bias = data.draw(st.booleans(), label="biases")
    ratings = problem[2]
    mu = float(ratings.mean()) if ratings.size else 0.0
    got = _run_epoch(backend, dtype, problem, mu, lr, reg, bias, state)
    start = tuple(np.asarray(a, dtype=dtype) for a in state)
    want = sgd_epoch_reference(*problem, dtype(mu), dtype(lr), dtype(reg), bias, *start)
    for name, g, w in zip(("P", "Q", "b_u", "b_i"), got[:4], want[:4]):
        np.testing.assert_allclose(g, w, **tol(dtype), err_msg=name)
    np.testing.assert_allclose(got[4].sum(), want[4], rtol=10 * tol(dtype)["rtol"], atol=1e-6)
    # one thread is deterministic
    again = _run_epoch(backend, dtype, problem, mu, lr, reg, bias, state)
    for g, s in zip(got, again):
        assert np.array_equal(g, s)


def test_visiting_order_by_hand():
    # users 0, 1, 2 in one chunk, two item blocks visited as [1, 0]
    block_ptr = [[0, 1, 3], [3, 5, 5], [5, 5, 6]]
    order = visiting_order(block_ptr, [2, 0, 1], [0, 3], [1, 0])
    # block 1: pair (2, 0) -> 5, 1, 2; user 1 alone has nothing in block 1
    # block 0: pair (2, 0) -> 0 (user 2 has none); user 1 alone -> 3, 4
    assert order == [(2, 5), (0, 1), (0, 2), (0, 0), (1, 3), (1, 4)]
    # a lane whose user is done takes the next user at once (no fixed pairs):
    # runs 0: [0], 1: [1, 2, 3], 2: [4, 5]
    order = visiting_order([[0, 1], [1, 4], [4, 6]], [0, 1, 2], [0, 3], [0])
    assert order == [(0, 0), (1, 1), (2, 4), (1, 2), (2, 5), (1, 3)]


def _replay(order, problem, state, mu, lr, reg):
    """Item 1's factors after the updates of ``order`` (float64, as the reference)."""
    _, indices, ratings = problem[:3]
    P, Q, bu, bi = (np.array(a, dtype=np.float64) for a in state)
    for u, e in order:
        i = indices[e]
        err = ratings[e] - (mu + bu[u] + bi[i] + P[u] @ Q[i])
        bu[u] += lr * (err - reg * bu[u])
        bi[i] += lr * (err - reg * bi[i])
        P[u], Q[i] = P[u] + lr * (err * Q[i] - reg * P[u]), Q[i] + lr * (err * P[u] - reg * Q[i])
    return Q[1]


def test_lanes_refill_in_the_kernel(backend, dtype):
    # the by-hand order above, seen through the kernel: item 1 is updated by
    # users 1, 1, 2, 1 under the lane order (1, 1, 1, 2 under fixed pairs)
    problem = (_one_block([0, 1, 4, 6]), [0, 1, 1, 1, 0, 1], [5.0, 3.0, 3.0, 3.0, 1.0, 3.0],
               [0, 1, 2], [0, 3], [0])  # fmt: skip
    state = (np.full((3, 2), 0.1), np.full((2, 2), 0.1), np.zeros(3), np.zeros(2))
    got = _run_epoch(backend, dtype, problem, 3.0, 0.5, 0.02, True, state)
    start = tuple(np.asarray(a, dtype=dtype) for a in state)
    want = sgd_epoch_reference(*problem, dtype(3.0), dtype(0.5), dtype(0.02), True, *start)
    for g, w in zip(got[:4], want[:4]):
        np.testing.assert_allclose(g, w, **tol(dtype))
    # the fixed-pair order gives a visibly different item 1
    pairs = [(0, 0), (1, 1), (1, 2), (1, 3), (2, 4), (2, 5)]
    Q1 = _replay(pairs, problem, state, 3.0, 0.5, 0.02)
    assert np.abs(Q1 - want[1][1]).max() > 100 * tol(dtype)["atol"] + 1e-3


@fixture_ok
@given(data=st.data())
def test_backends_agree_bit_for_bit(dtype, data):
    problem, state = _random_problem(data, k_max=40)
    a = _run_epoch("numba", dtype, problem, 3.1, 0.02, 0.05, True, state)
    b = _run_epoch("cython", dtype, problem, 3.1, 0.02, 0.05, True, state)
    for x, y in zip(a, b):
        assert np.array_equal(x, y)


def _run_epochs(backend, dtype, problem, schedules, rates, mu, reg, state):
    """All epochs in one ``sgd_epochs`` call (one thread)."""
    block_ptr, indices, ratings = problem[:3]
    P, Q, bu, bi = (np.array(a, dtype=dtype) for a in state)
    loss = np.zeros((len(schedules), len(schedules[0][1]) - 1))
    kernel = sgd_kernels.get(backend).sgd_epochs
    with threads(1):
        kernel(
            np.asarray(block_ptr, dtype=np.int64), np.asarray(indices, dtype=np.int32),
            np.asarray(ratings, dtype=dtype),
            np.array([s[0] for s in schedules], dtype=np.int32),
            np.array([s[1] for s in schedules], dtype=np.int64),
            np.array([s[2] for s in schedules], dtype=np.int32),
            dtype(mu), np.array(rates, dtype=dtype), dtype(reg), True, P, Q, bu, bi, loss,
        )  # fmt: skip
    return P, Q, bu, bi, loss


@fixture_ok
@given(data=st.data())
def test_epochs_kernel_equals_epoch_by_epoch(backend, dtype, data):
    # sgd_epochs is sgd_epoch called once per row of its schedule, bit for bit
    problem, state = _random_problem(data, k_max=40)
    n_users, n_blocks = len(problem[3]), len(problem[5])
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31 - 1), label="seed2"))
    n_epochs = data.draw(st.integers(1, 3), label="epochs")
    n_cuts = len(problem[4]) - 2
    schedules = [
        (
            rng.permutation(n_users),
            np.concatenate(([0], np.sort(rng.integers(0, n_users + 1, n_cuts)), [n_users])),
            rng.permutation(n_blocks),
        )
        for _ in range(n_epochs)
    ]
    rates = list(rng.uniform(0.0, 0.05, n_epochs))
    together = _run_epochs(backend, dtype, problem, schedules, rates, 3.2, 0.05, state)
    current, losses = state, []
    for (order, bounds, blocks), rate in zip(schedules, rates):
        step = (*problem[:3], order, bounds, blocks)
        *current, loss = _run_epoch(backend, dtype, step, 3.2, rate, 0.05, True, current)
        losses.append(loss)
    for name, got, want in zip(("P", "Q", "b_u", "b_i"), together[:4], current):
        assert np.array_equal(got, want), name
    assert np.array_equal(together[4], np.array(losses))


@fixture_ok
@given(data=st.data())
def test_zero_padding_changes_nothing(backend, dtype, data):
    # the model pads rows with zero columns to whole cache lines: the first k
    # columns come out bit-identical and the padding stays exactly zero
    problem, state = _random_problem(data, k_max=40)
    k = state[0].shape[1]
    pad = data.draw(st.integers(1, 20), label="pad")
    padded = (
        np.pad(state[0], ((0, 0), (0, pad))),
        np.pad(state[1], ((0, 0), (0, pad))),
        state[2],
        state[3],
    )
    plain = _run_epoch(backend, dtype, problem, 3.0, 0.03, 0.05, True, state)
    wide = _run_epoch(backend, dtype, problem, 3.0, 0.03, 0.05, True, padded)
    assert np.array_equal(wide[0][:, :k], plain[0]) and np.array_equal(wide[1][:, :k], plain[1])
    assert not wide[0][:, k:].any() and not wide[1][:, k:].any()
    for got, want in zip(wide[2:], plain[2:]):
        assert np.array_equal(got, want)


def test_epochs_kernel_with_no_epochs_is_a_noop(backend, dtype):
    P, Q = np.array([[0.1, 0.2]], dtype=dtype), np.array([[0.3, -0.1]], dtype=dtype)
    bu, bi = np.array([0.5], dtype=dtype), np.array([-0.25], dtype=dtype)
    loss = np.zeros((0, 1))
    kernel = sgd_kernels.get(backend).sgd_epochs
    kernel(
        _one_block([0, 1]), np.zeros(1, np.int32), np.array([4.0], dtype=dtype),
        np.zeros((0, 1), np.int32), np.zeros((0, 2), np.int64), np.zeros((0, 1), np.int32),
        dtype(3.0), np.zeros(0, dtype=dtype), dtype(0.5), True, P, Q, bu, bi, loss,
    )  # fmt: skip
    assert P.tolist() == [[dtype(0.1), dtype(0.2)]] and Q.tolist() == [[dtype(0.3), dtype(-0.1)]]
    assert bu[0] == dtype(0.5) and bi[0] == dtype(-0.25)


def test_empty_users_and_order_subset_are_noops(backend, dtype):
    # user 1 has no ratings; user 2 is not in the order: both stay as they were
    problem = (_one_block([0, 2, 2, 3]), [1, 0, 0], [5.0, 1.0, 3.0], [1, 0], [0, 1, 2], [0])
    state = (np.full((3, 4), 0.1), np.full((2, 4), -0.2), np.zeros(3), np.zeros(2))
    P, _, bu, _, _ = _run_epoch(backend, dtype, problem, 3.0, 0.05, 0.02, True, state)
    assert np.array_equal(P[1:], np.full((2, 4), dtype(0.1)))
    assert np.array_equal(bu[1:], np.zeros(2, dtype=dtype))
    assert not np.array_equal(P[0], np.full(4, dtype(0.1)))


# ---------------------------------------------------------------------- model
def _ratings(n_users=40, n_items=30, density=0.3, seed=0):
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    mask[np.arange(n_users), rng.integers(0, n_items, n_users)] = True  # nobody empty
    users, items = np.nonzero(mask)
    ratings = rng.integers(1, 6, users.shape[0]).astype(float)
    return fr.Interactions.from_arrays(users * 10, items + 1000, ratings)


def _pairs(X):
    coo = X.matrix.tocoo()
    return X.user_ids[coo.row], X.item_ids[coo.col], coo.data.astype(np.float64)


def test_model_backends_and_dtypes_agree_at_one_thread(dtype):
    X = _ratings()
    kw = dict(factors=13, epochs=3, random_state=7, num_threads=1, dtype=np.dtype(dtype).name)
    a = SGDMF(backend="numba", **kw).fit(X)
    b = SGDMF(backend="cython", **kw).fit(X)
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
        assert getattr(a, name).dtype == dtype
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert [h["train_loss"] for h in a.history_] == [h["train_loss"] for h in b.history_]


def test_fit_in_one_call_equals_epoch_by_epoch(backend, dtype, monkeypatch):
    # without a callback all epochs run in one kernel call; with one, epoch by
    # epoch: the same Generator stream and arithmetic give the same model
    monkeypatch.setattr(sgd_layout, "ITEM_BLOCK_BYTES", 64)  # several blocks and chunks
    monkeypatch.setattr(sgd_layout, "USER_CHUNK_BYTES", 256)
    X = _ratings(seed=3)
    kw = dict(factors=19, epochs=4, random_state=5, num_threads=1, backend=backend,
              lr_schedule="decay", lr_decay=0.7, dtype=np.dtype(dtype).name)  # fmt: skip
    fast = SGDMF(**kw).fit(X)
    seen = []
    slow = SGDMF(**kw).fit(X, callback=lambda e, info: seen.append(e))
    assert seen == [0, 1, 2, 3] and fast.n_blocks_ > 1 and fast.n_chunks_ > 1
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
        assert np.array_equal(getattr(fast, name), getattr(slow, name)), name
        assert getattr(fast, name).flags.c_contiguous
    keys = ("epoch", "train_loss", "learning_rate", "threads")
    assert [[h[key] for key in keys] for h in fast.history_] == [
        [h[key] for key in keys] for h in slow.history_
    ]


def test_callback_sees_each_epochs_factors(backend):
    X = _ratings(seed=6)
    seen = []

    def record(epoch, info):
        seen.append((model.user_factors_.copy(), model.item_factors_.copy(),
                     model.user_bias_.copy(), model.item_bias_.copy()))  # fmt: skip

    model = SGDMF(factors=7, epochs=3, random_state=1, backend=backend)
    model.fit(X, callback=record)
    assert len(seen) == 3 and not np.array_equal(seen[0][1], seen[1][1])
    final = (model.user_factors_, model.item_factors_, model.user_bias_, model.item_bias_)
    for got, want in zip(seen[-1], final):
        assert np.array_equal(got, want)
    # the same model as a fit without a callback (item order restored each time)
    plain = SGDMF(factors=7, epochs=3, random_state=1, backend=backend).fit(X)
    assert np.array_equal(plain.item_factors_, model.item_factors_)


def test_one_thread_seed_is_deterministic(backend):
    X = _ratings()
    kw = dict(factors=8, epochs=4, random_state=3, num_threads=1, backend=backend)
    a, b = SGDMF(**kw).fit(X), SGDMF(**kw).fit(X)
    c = SGDMF(**{**kw, "random_state": 4}).fit(X)
    assert np.array_equal(a.user_factors_, b.user_factors_)
    assert np.array_equal(a.item_factors_, b.item_factors_)
    assert not np.array_equal(a.user_factors_, c.user_factors_)


def test_model_epoch_equals_reference_with_its_schedule(backend, dtype, monkeypatch):
    # small cache targets: several user chunks and item blocks even on tiny data
    monkeypatch.setattr(sgd_layout, "ITEM_BLOCK_BYTES", 64)
    monkeypatch.setattr(sgd_layout, "USER_CHUNK_BYTES", 256)
    X = _ratings(seed=1)
    model = SGDMF(factors=5, epochs=1, random_state=11, num_threads=1, backend=backend,
                  dtype=np.dtype(dtype).name).fit(X)  # fmt: skip
    assert model.n_blocks_ > 1 and model.n_chunks_ > 1
    # re-derive the model's visiting order from the same Generator stream
    rng = np.random.default_rng(11)
    block_ptr, labels, ratings, item_label = training_layout(X.matrix, rng, dtype, model.n_blocks_)
    P0 = padded_factors(rng, X.n_users, 5, dtype, 0.1, backend)[:, :5]
    Q0 = padded_factors(rng, X.n_items, 5, dtype, 0.1, backend)[:, :5]  # in label order
    schedule = epoch_schedule(np.diff(X.matrix.indptr), rng, model.n_chunks_, model.n_blocks_)
    want = sgd_epoch_reference(block_ptr, labels, ratings, *schedule, dtype(model.intercept_),
                               dtype(0.005), dtype(0.02), True, P0, Q0,
                               np.zeros(X.n_users), np.zeros(X.n_items))  # fmt: skip
    np.testing.assert_allclose(model.user_factors_, want[0], **tol(dtype))
    np.testing.assert_allclose(model.item_factors_, want[1][item_label], **tol(dtype))
    np.testing.assert_allclose(model.item_bias_, want[3][item_label], **tol(dtype))
    assert model.history_[0]["train_loss"] == pytest.approx(want[4] / X.nnz, rel=1e-4)
    # each row is visited in a random order, not sorted by item
    items = np.argsort(item_label)[labels]
    rows = [items[block_ptr[u, 0] : block_ptr[u, -1]] for u in range(X.n_users)]
    assert any((np.diff(r) < 0).any() for r in rows)


def test_test_rmse_approaches_noise_level(backend):
    noise = 0.2
    users, items, ratings = low_rank_ratings(300, 200, 3, 0.3, noise, seed=0)
    test = np.random.default_rng(1).random(users.shape[0]) < 0.1
    train = fr.Interactions.from_arrays(users[~test], items[~test], ratings[~test])
    model = SGDMF(factors=3, epochs=60, learning_rate=0.03, regularization=0.01,
                  random_state=0, num_threads=1, backend=backend).fit(train)  # fmt: skip
    rmse = math.sqrt(np.mean((model.predict(users[test], items[test]) - ratings[test]) ** 2))
    baseline = math.sqrt(np.mean((model.item_mean_[items[test]] - ratings[test]) ** 2))
    assert baseline > 2.5 * noise  # the structure is there to be learned
    assert rmse < 1.15 * noise


def test_two_threads_learn_as_well(backend, monkeypatch):
    X = _ratings(80, 60, 0.4)
    u, i, r = _pairs(X)
    kw = dict(factors=10, epochs=30, learning_rate=0.01, random_state=0, backend=backend)
    one = SGDMF(num_threads=1, **kw).fit(X)
    # small data runs single-threaded unless the threshold is lowered
    assert SGDMF(num_threads=2, **kw).fit(X).history_[0]["threads"] == 1
    monkeypatch.setattr(sgd_module, "MIN_RATINGS_PER_THREAD", 1)
    two = SGDMF(num_threads=2, **kw).fit(X)
    assert two.history_[0]["threads"] == 2
    rmse1 = math.sqrt(np.mean((one.predict(u, i) - r) ** 2))
    rmse2 = math.sqrt(np.mean((two.predict(u, i) - r) ** 2))
    assert rmse2 < 1.05 * rmse1 + 1e-3
    assert two.history_[-1]["train_loss"] < two.history_[0]["train_loss"]


@pytest.mark.parametrize("per_epoch", [False, True])
def test_several_threads_give_the_same_model_as_one_on_the_same_grid(
    backend, per_epoch, monkeypatch
):
    # the square grid makes the cells of a phase share no row: two threads are
    # bit-identical, run after run, to one thread visiting the same cells (with
    # a callback the epochs run one kernel call each: sgd_epoch, not sgd_epochs).
    # 36k ratings, 8 cells a phase. test_phases_wait_for_each_other is the
    # sharper check of the barrier between phases.
    monkeypatch.setattr(sgd_module, "MIN_RATINGS_PER_THREAD", 1)
    monkeypatch.setattr(sgd_layout, "GRID_PER_THREAD", 4)
    X = _ratings(400, 300, 0.3, seed=4)
    kw = dict(factors=48, epochs=3, random_state=2, backend=backend)
    fit = {"callback": lambda epoch, info: None} if per_epoch else {}
    two = SGDMF(num_threads=2, **kw).fit(X, **fit)
    again = SGDMF(num_threads=2, **kw).fit(X, **fit)
    grid = (two.n_chunks_, two.n_blocks_)
    assert two.history_[0]["threads"] == 2 and grid[0] == grid[1] and grid[0] % 2 == 0
    monkeypatch.setattr(sgd_module, "cache_blocks", lambda *args: grid)
    one = SGDMF(num_threads=1, **kw).fit(X, **fit)
    assert one.history_[0]["threads"] == 1
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
        assert np.array_equal(getattr(two, name), getattr(again, name)), name
        assert np.array_equal(getattr(two, name), getattr(one, name)), name


@pytest.mark.parametrize("one_call", [True, False])
def test_phases_wait_for_each_other(backend, one_call):
    # chunk 0 (users 0-199) has many ratings in block 0 (items 0-69) and few in
    # block 1 (items 70-79); chunk 1 (user 200) has one rating in each. A
    # thread done with the light cell (chunk 1, block 1) of phase 0 must not
    # start phase 1, whose first cell is (chunk 0, block 1), before the heavy
    # cell (chunk 0, block 0) is done: it would race through the users ahead
    # of the other thread. Two threads must give exactly the one-thread result,
    # with all epochs in one sgd_epochs call or one sgd_epoch call per epoch.
    # (Checked: with the Cython twin's phase barrier removed, this test fails.)
    rng = np.random.default_rng(5)
    n_users, n_items, k = 201, 80, 32
    mask = np.zeros((n_users, n_items), dtype=bool)
    mask[:200, :70] = rng.random((200, 70)) < 0.6
    mask[np.arange(200), 70 + rng.integers(0, 10, 200)] = True
    mask[200, [0, 79]] = True
    rows, block_ptr, start = [], np.zeros((n_users, 3), dtype=np.int64), 0
    for u in range(n_users):
        items = rng.permutation(np.flatnonzero(mask[u]))
        items = items[np.argsort(items >= 70, kind="stable")]
        rows.append(items)
        block_ptr[u] = start + np.array([0, np.count_nonzero(items < 70), items.shape[0]])
        start += items.shape[0]
    indices = np.concatenate(rows).astype(np.int32)
    ratings = rng.integers(1, 6, indices.shape[0]).astype(np.float32)
    n_epochs = 3
    schedule = (
        np.tile(np.arange(n_users, dtype=np.int32), (n_epochs, 1)),
        np.tile(np.array([0, 200, 201], dtype=np.int64), (n_epochs, 1)),
        np.tile(np.array([0, 1], dtype=np.int32), (n_epochs, 1)),
    )
    P0 = rng.normal(0, 0.1, (n_users, k)).astype(np.float32)
    Q0 = rng.normal(0, 0.1, (n_items, k)).astype(np.float32)
    results = []
    for n in (1, 2, 2, 2):
        state = (P0.copy(), Q0.copy(), np.zeros(n_users, np.float32), np.zeros(n_items, np.float32))
        with threads(n):
            if one_call:
                sgd_kernels.get(backend).sgd_epochs(
                    block_ptr, indices, ratings, *schedule, np.float32(3.0),
                    np.full(n_epochs, 0.01, dtype=np.float32), np.float32(0.02), True, *state,
                    np.zeros((n_epochs, 2)),
                )  # fmt: skip
            else:
                for e in range(n_epochs):
                    sgd_kernels.get(backend).sgd_epoch(
                        block_ptr, indices, ratings, *(part[e] for part in schedule),
                        np.float32(3.0), np.float32(0.01), np.float32(0.02), True, *state,
                        np.zeros(2),
                    )  # fmt: skip
        results.append(state)
    for other in results[1:]:
        for got, want in zip(other, results[0]):
            assert np.array_equal(got, want)


def test_phases_visit_the_cells_in_order():
    # two chunks (users [0, 1] and [2]) and two blocks visited as [1, 0]:
    # phase 0 is cell (chunk 0, block 1) then (chunk 1, block 0); phase 1 is
    # (chunk 0, block 0) then (chunk 1, block 1)
    block_ptr = [[0, 1, 2], [2, 2, 4], [4, 5, 6]]
    order = visiting_order(block_ptr, [0, 1, 2], [0, 2, 3], [1, 0])
    assert order == [(0, 1), (1, 2), (1, 3), (2, 4), (0, 0), (2, 5)]


@settings(max_examples=10)
@given(
    factors=st.integers(1, 12),
    epochs=st.integers(1, 4),
    learning_rate=st.floats(1e-4, 0.05),
    regularization=st.floats(0.0, 0.5),
    biases=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_training_loss_and_predictions_are_sane(
    factors, epochs, learning_rate, regularization, biases, seed
):
    X = _ratings(25, 20, 0.3, seed)
    seen = []
    model = SGDMF(factors=factors, epochs=epochs, learning_rate=learning_rate,
                  regularization=regularization, biases=biases, random_state=seed,
                  num_threads=1)  # fmt: skip
    model.fit(X, callback=lambda e, info: seen.append((e, info)))
    assert [e for e, _ in seen] == list(range(epochs))
    assert all(np.isfinite(info["train_loss"]) and info["train_loss"] >= 0 for _, info in seen)
    u, i, _ = _pairs(X)
    pred = model.predict(u, i)
    assert np.all((pred >= 1.0) & (pred <= 5.0))  # clipped to the training range
    assert model.intercept_ == (pytest.approx(model.global_mean_, rel=1e-6) if biases else 0.0)
    if not biases:
        assert not model.user_bias_.any() and not model.item_bias_.any()


def test_decaying_learning_rate_and_history():
    X = _ratings()
    model = SGDMF(factors=4, epochs=4, learning_rate=0.02, lr_schedule="decay", lr_decay=0.5,
                  random_state=0).fit(X)  # fmt: skip
    assert [h["learning_rate"] for h in model.history_] == [0.02, 0.01, 0.005, 0.0025]
    # training loss falls with more epochs at a constant rate
    const = SGDMF(factors=4, epochs=10, random_state=0, learning_rate=0.01, num_threads=1).fit(X)
    losses = [h["train_loss"] for h in const.history_]
    assert losses[-1] < losses[0]


def test_validation_rmse_and_early_stopping():
    X = _ratings(60, 40, 0.5, seed=2)
    train, test = fr.split.random_split(X, test_size=0.3, seed=0)
    u, i, r = _pairs(test)
    # no regularisation and a high rate: validation error bottoms out early
    kw = dict(factors=30, epochs=60, learning_rate=0.05, regularization=0.0, random_state=0,
              num_threads=1)  # fmt: skip
    full = SGDMF(**kw).fit(train, validation=test)
    vals = [h["val_rmse"] for h in full.history_]
    assert len(vals) == 60 and min(vals) < vals[-1]
    assert vals[-1] == pytest.approx(math.sqrt(np.mean((full.predict(u, i) - r) ** 2)))
    stopped = SGDMF(**kw).fit(train, validation=test, patience=3)
    assert len(stopped.history_) < 60
    assert stopped.best_epoch_ == len(stopped.history_) - 4
    best = min(h["val_rmse"] for h in stopped.history_)
    rmse = math.sqrt(np.mean((stopped.predict(u, i) - r) ** 2))
    assert rmse == pytest.approx(best)  # the best epoch's factors are kept
    with pytest.raises(ValueError, match="patience"):
        SGDMF().fit(train, patience=2)


def test_recommend_and_similar_items(backend):
    X = _ratings()
    model = SGDMF(factors=6, epochs=5, random_state=0, backend=backend).fit(X)
    users = X.user_ids[:5]
    ids, scores = model.recommend(users, n=4)
    assert ids.shape == (5, 4) and np.all(np.diff(scores, axis=1) <= 0)
    uidx = X.user_index(users)
    full = model._score_users(uidx.astype(np.int32))
    seen = X.matrix[uidx].toarray() != 0
    for row in range(5):
        cand = np.where(seen[row], -np.inf, full[row])
        np.testing.assert_allclose(np.sort(cand)[::-1][:4], scores[row], rtol=1e-6)
        assert not seen[row][X.item_index(ids[row])].any()
    # scores are the unclipped predictions
    j = X.item_index(ids[0, :1])
    p, q = model.user_factors_[uidx[0]], model.item_factors_[j[0]]
    want = model.intercept_ + model.user_bias_[uidx[0]] + model.item_bias_[j[0]] + p @ q
    assert scores[0, 0] == pytest.approx(want, rel=1e-5)
    sim_ids, sim = model.similar_items(X.item_ids[:3], n=X.n_items)
    assert sim_ids.shape == (3, X.n_items)
    unit = model.item_factors_ / np.linalg.norm(model.item_factors_, axis=1, keepdims=True)
    for row in range(3):
        assert X.item_ids[row] not in sim_ids[row][:-1] and sim_ids[row][-1] == -1
        assert sim[row, 0] == pytest.approx(np.delete(unit @ unit[row], row).max(), rel=1e-5)


def test_unknown_ids_fall_back_to_baseline():
    X = _ratings()
    model = SGDMF(factors=4, epochs=2, random_state=0).fit(X)
    item, user = X.item_ids[0], X.user_ids[0]
    pred = model.predict([-5, user, -5], [item, -7, -7])
    assert pred[0] == pytest.approx(model.item_mean_[0])
    assert pred[1] == pytest.approx(model.user_mean_[0])
    assert pred[2] == pytest.approx(model.global_mean_)
    ids, _ = model.recommend([-5], n=3)
    pop = np.argsort(-model.item_count_, kind="stable")[:3]
    assert list(ids[0]) == list(X.item_ids[pop])


def test_single_rating():
    X = fr.Interactions.from_arrays([1], [2], [4.0])
    model = SGDMF(factors=2, epochs=3, random_state=0).fit(X)
    assert model.predict([1], [2])[0] == pytest.approx(4.0)  # clipped to the only rating
    assert model.user_factors_.shape == (1, 2)


def test_fold_in_user_is_the_stationary_point(dtype):
    X = _ratings()
    model = SGDMF(factors=5, epochs=5, random_state=0, dtype=np.dtype(dtype).name).fit(X)
    items = X.item_ids[[0, 3, 5, 8]]
    ratings = np.array([5.0, 1.0, 4.0, 2.0])
    p, b = model.recalculate_user(items, ratings, return_bias=True)
    assert p.dtype == dtype and p.shape == (5,) and isinstance(b, float)
    # the default is the factor vector alone (every model's recalculate_user)
    np.testing.assert_array_equal(model.recalculate_user(items, ratings), p)
    iidx = X.item_index(items)
    Q = model.item_factors_[iidx].astype(np.float64)
    mu, bi = model.intercept_, model.item_bias_[iidx]

    def objective(vec, bias):
        P, bu = np.asarray(vec, np.float64)[None, :], np.array([bias])
        return sgd_objective(P, Q, bu, bi, mu, np.zeros(4, int), np.arange(4), ratings,
                             model.regularization)  # fmt: skip

    best = objective(p, b)
    rng = np.random.default_rng(0)
    for _ in range(20):  # a minimum: every small step away costs more
        step = rng.normal(0, 1e-2, 6)
        assert objective(p + step[:5], b + step[5]) > best - 1e-6
    p0, b0 = model.recalculate_user([], [], return_bias=True)
    assert not p0.any() and b0 == 0.0
    with pytest.raises(ValueError, match=r"items\[1\]"):
        model.recalculate_user([items[0], 999999], [1.0, 2.0])


def test_save_load_round_trip(tmp_path, backend):
    X = _ratings()
    model = SGDMF(factors=6, epochs=3, random_state=0, backend=backend, dtype=np.float64).fit(X)
    path = tmp_path / "sgd.npz"
    model.save(path)
    loaded = fr.load(path)
    assert isinstance(loaded, SGDMF) and loaded.get_params()["dtype"] == "float64"
    u, i, _ = _pairs(X)
    assert np.array_equal(loaded.predict(u, i), model.predict(u, i))
    assert np.array_equal(loaded.recommend(X.user_ids[:3], n=5)[0], model.recommend(
        X.user_ids[:3], n=5)[0])  # fmt: skip
    # a tampered file (wrong factor shape) is refused, not used
    with np.load(path) as npz:
        arrays = dict(npz)
    arrays["model.item_factors"] = arrays["model.item_factors"][:, :3]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="item_factors"):
        fr.load(tmp_path / "bad.npz")


@pytest.mark.parametrize(
    "params, field",
    [
        ({"factors": 0}, "factors"),
        ({"factors": 2.5}, "factors"),
        ({"epochs": 0}, "epochs"),
        ({"regularization": -0.1}, "regularization"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"init_std": -1.0}, "init_std"),
        ({"lr_schedule": "cosine"}, "lr_schedule"),
        ({"lr_decay": 1.5}, "lr_decay"),
        ({"dtype": "int32"}, "dtype"),
        ({"biases": "yes"}, "biases"),
        ({"random_state": -1}, "random_state"),
        ({"num_threads": -1}, "num_threads"),
        ({"backend": "gpu"}, "backend"),
    ],
)
def test_bad_parameters_raise_before_any_work(params, field):
    model = SGDMF(**params)
    with pytest.raises(ValueError, match=field):
        model.fit(_ratings())
    assert not hasattr(model, "user_factors_") and not hasattr(model, "n_users_")


def test_divergence_is_reported():
    X = _ratings()
    model = SGDMF(factors=20, epochs=20, learning_rate=5.0, init_std=3.0, random_state=0)
    with pytest.raises(DivergenceError, match="diverged in epoch"):
        model.fit(X)
    with pytest.raises(ValueError, match="not fitted"):
        model.predict([0], [1000])
    # epoch by epoch (with a callback) it stops at the first bad epoch
    seen = []
    with pytest.raises(DivergenceError, match="diverged in epoch"):
        model.fit(X, callback=lambda e, info: seen.append(e))
    assert len(seen) < 20


@pytest.mark.parametrize("n_blocks", [1, 3, 20])
def test_kernel_layout_helpers(n_blocks):
    rng = np.random.default_rng(0)
    m = sp.random(30, 20, density=0.3, format="csr", random_state=1, dtype=np.float32)
    m.data[:] = rng.integers(1, 6, m.nnz)
    block_ptr, labels, ratings, item_label = training_layout(m, rng, np.float64, n_blocks)
    assert sorted(item_label) == list(range(20))
    indices = np.argsort(item_label)[labels]  # back to the original items
    assert block_ptr.shape == (30, n_blocks + 1)
    assert np.array_equal(block_ptr[:, 0], m.indptr[:-1])
    assert np.array_equal(block_ptr[:, -1], m.indptr[1:])
    assert np.all(np.diff(block_ptr, axis=1) >= 0)
    block_of = {}
    for u in range(30):
        seg = slice(block_ptr[u, 0], block_ptr[u, -1])
        assert sorted(zip(indices[seg], ratings[seg])) == sorted(
            zip(m.indices[m.indptr[u] : m.indptr[u + 1]], m.data[m.indptr[u] : m.indptr[u + 1]])
        )
        for b in range(n_blocks):  # an item belongs to the same block in every row
            for item in indices[block_ptr[u, b] : block_ptr[u, b + 1]]:
                assert block_of.setdefault(item, b) == b
    # blocks are contiguous label ranges, in order, cut at equal shares of the ratings
    block_by_label = sorted((item_label[item], b) for item, b in block_of.items())
    assert [b for _, b in block_by_label] == sorted(b for _, b in block_by_label)
    per_label = np.bincount(item_label[m.indices], minlength=20)
    before = np.cumsum(per_label) - per_label
    for lab, b in block_by_label:
        assert b == before[lab] * n_blocks // m.nnz
    counts = np.diff(m.indptr)
    order, bounds, blocks = epoch_schedule(counts, rng, 4, n_blocks)
    assert sorted(order) == list(range(30)) and bounds[0] == 0 and bounds[-1] == 30
    assert np.all(np.diff(bounds) >= 0) and bounds.shape == (5,)
    assert sorted(blocks) == list(range(n_blocks))


def test_training_layout_checks_an_untrusted_matrix():
    rng = np.random.default_rng(0)
    bad = sp.csr_matrix(
        (np.ones(2), np.array([0, 7]), np.array([0, 1, 2])), shape=(2, 3)
    )  # column 7 of 3
    with pytest.raises(ValueError, match="matrix"):
        training_layout(bad, rng, np.float32)
    nan = sp.csr_matrix(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="matrix.data"):
        training_layout(nan, rng, np.float32)


def test_cache_blocks_sizes():
    from fastrec.models._sgd_layout import cache_blocks

    assert cache_blocks(100, 50, 8, 4, 1) == (1, 1)  # everything fits: one of each
    # one thread: chunks and blocks sized for the caches
    n_chunks, n_blocks = cache_blocks(138_000, 27_000, 128, 4, 1)
    assert n_blocks == -(-27_000 * 512 // sgd_layout.ITEM_BLOCK_BYTES)
    assert n_chunks == -(-138_000 * 512 // sgd_layout.USER_CHUNK_BYTES)
    # several threads: a square grid, a multiple of the threads, at least
    # GRID_PER_THREAD cells per thread and at least the cache counts
    per = sgd_layout.GRID_PER_THREAD
    assert cache_blocks(100, 50, 8, 4, 2) == (2 * per, 2 * per)
    assert cache_blocks(100, 50, 8, 4, 3) == (3 * per, 3 * per)
    grid = -(-max(n_chunks, n_blocks, 2 * per) // 2) * 2
    assert cache_blocks(138_000, 27_000, 128, 4, 2) == (grid, grid)
    assert cache_blocks(10, 3, 10_000_000, 8, 4) == (10, 3)  # capped by the counts


# -------------------------------------------------------------- initialisation
def test_ziggurat_tables_cut_equal_areas():
    edges, widths, heights = ziggurat_tables()
    area = edges[1] * heights[1] + math.sqrt(math.pi / 2) * math.erfc(edges[1] / math.sqrt(2))
    assert edges[0] * heights[1] == pytest.approx(area, rel=1e-12)  # base strip + tail
    layers = edges[1:256] * (heights[2:257] - heights[1:256])
    np.testing.assert_allclose(layers, area, rtol=1e-9)  # every layer has the same area
    assert np.all(np.diff(edges[1:]) < 0) and edges[256] == 0.0 and heights[256] == 1.0
    assert np.array_equal(widths, edges * 2.0**-52)


@settings(max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n_rows=st.integers(0, 40),
    k=st.integers(1, 40),
    seed=st.integers(0, 2**63 - 1),
    scale=st.floats(0.0, 10.0),
)
def test_normal_fill_backends_agree_and_padding_stays_zero(dtype, n_rows, k, seed, scale):
    tables = ziggurat_tables()
    outs = []
    for backend in ("numba", "cython"):
        out = np.zeros((n_rows, k + 3), dtype=dtype)
        sgd_kernels.get(backend).normal_fill(out, k, np.uint64(seed), scale, *tables)
        outs.append(out)
    assert np.array_equal(outs[0], outs[1])
    assert not outs[0][:, k:].any()


@settings(max_examples=25, deadline=None)
@given(
    n_rows=st.integers(0, 12),
    k=st.integers(1, 140),
    seed=st.integers(0, 2**64 - 1),
    scale=st.floats(0.01, 10.0),
)
def test_normal_fill_matches_the_reference(n_rows, k, seed, scale):
    # every draw, fast and slow (about 1% of them), equals the plain-Python
    # ziggurat, in both backends and both dtypes
    tables = ziggurat_tables()
    want = normal_fill_reference(n_rows, k, seed, scale, *tables)
    for backend in ("numba", "cython"):
        for dtype in (np.float64, np.float32):
            out = np.zeros((n_rows, k + 2), dtype=dtype)
            sgd_kernels.get(backend).normal_fill(out, k, np.uint64(seed), scale, *tables)
            assert np.array_equal(out[:, :k], want.astype(dtype)), (backend, dtype)
            assert not out[:, k:].any()


def test_normal_fill_is_the_same_for_any_thread_count(backend):
    tables = ziggurat_tables()
    outs = []
    for n in (1, 2):
        out = np.zeros((301, 37))
        with threads(n):
            sgd_kernels.get(backend).normal_fill(out, 37, np.uint64(99), 0.5, *tables)
        outs.append(out)
    assert np.array_equal(outs[0], outs[1])


def test_normal_fill_slow_draws_match_the_reference():
    # a seed and shape with draws on every slow path: the tail (layer 0 beyond
    # r) and rejected or accepted wedge tests
    tables = ziggurat_tables()
    edges, widths = tables[0], tables[1]
    seed, n = 12345, 20_000
    bits = [mix64_reference((seed + (j + 1) * 0x9E3779B97F4A7C15) % 2**64) for j in range(n)]
    layers = np.array([b & 255 for b in bits])
    x = np.array([float(b >> 12) for b in bits]) * widths[layers]
    slow = x >= edges[layers + 1]
    assert (slow & (layers == 0)).sum() >= 1 and (slow & (layers > 0)).sum() >= 10
    want = normal_fill_reference(1, n, seed, 1.0, *tables)
    for backend in ("numba", "cython"):
        out = np.zeros((1, n))
        sgd_kernels.get(backend).normal_fill(out, n, np.uint64(seed), 1.0, *tables)
        assert np.array_equal(out, want), backend


def test_normal_fill_is_standard_normal(backend):
    # 400k draws, seeded: moments, tail mass beyond the base strip, and a KS test
    from scipy import stats

    rows = padded_factors(np.random.default_rng(0), 4000, 100, np.float64, 1.0, backend)
    x = rows[:, :100].ravel()
    assert abs(x.mean()) < 0.01 and abs(x.std() - 1.0) < 0.01
    assert abs(stats.skew(x)) < 0.02 and abs(stats.kurtosis(x)) < 0.05
    beyond_r = np.mean(np.abs(x) > ziggurat_tables()[0][1])  # the tail branch
    assert beyond_r == pytest.approx(2 * stats.norm.sf(3.6541528853610088), rel=0.2)
    assert stats.kstest(x[:100_000], "norm").pvalue > 1e-3
    # rows are cache-line aligned, the padding is zero, a new seed gives new draws
    assert rows.ctypes.data % 64 == 0 and (rows.shape[1] * 8) % 64 == 0
    assert not rows[:, 100:].any()
    other = padded_factors(np.random.default_rng(1), 4000, 100, np.float64, 1.0, backend)
    assert not np.array_equal(other, rows)
