"""Thread state after concurrent kernel calls: restored exactly, whatever the interleaving.

The BLAS thread count is process-wide; each kernel call holds it at one thread.
Calls from several Python threads overlap, so a per-call save/restore would
leave the count of whichever call saved last (1) behind.
"""

from __future__ import annotations

import random
import sys
import threading
import time

import numba
import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import fastrec as fr
from fastrec import _backend
from fastrec._kernels import topk as topk_kernels


def _state() -> list[tuple[str, str, int]]:
    return sorted((i["user_api"], i["filepath"], i["num_threads"]) for i in threadpool_info())


def _run_threads(target, n_threads: int = 8) -> None:
    errors: list[BaseException] = []

    def wrapped(seed: int) -> None:
        try:
            target(random.Random(seed))
        except BaseException as exc:  # noqa: BLE001  (reported by the main thread)
            errors.append(exc)

    workers = [threading.Thread(target=wrapped, args=(s,)) for s in range(n_threads)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often: many more interleavings
    try:
        for w in workers:
            w.start()
        for w in workers:
            w.join(60)
    finally:
        sys.setswitchinterval(interval)
    assert not any(w.is_alive() for w in workers)
    if errors:
        raise errors[0]


@pytest.fixture
def blas_not_one():
    # a count other than 1, so that a leaked hold shows
    _backend._blas_controller()  # loads SciPy's BLAS too, so both are limited
    import numba  # noqa: F401  (imported before the threads start, so they overlap at once)

    if min(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas") > 1:
        yield
        return
    with threadpool_limits(limits=2, user_api="blas"):
        yield


@pytest.mark.parametrize("backend", _backend.available_backends())
def test_threads_blocks_from_many_threads_restore_exactly(blas_not_one, backend):
    before = _state()
    assert all(n > 1 for api, _, n in before if api == "blas")
    numba_before = numba.get_num_threads()

    def work(rng: random.Random) -> None:
        for _ in range(20):
            with _backend.threads(rng.choice([0, 1, 2])):
                topk_kernels.get(backend)
                time.sleep(rng.random() * 0.01)
            time.sleep(rng.random() * 0.002)

    _run_threads(work)
    assert _state() == before
    assert numba.get_num_threads() == numba_before


@pytest.mark.parametrize("backend", _backend.available_backends())
def test_concurrent_recommend_leaves_thread_state_unchanged(blas_not_one, backend):
    X = fr.datasets.synthetic(300, 200, 4000, seed=1)
    model = fr.ALS(factors=8, iterations=2, random_state=0, backend=backend).fit(X)
    users = X.user_ids[:50]
    expected = model.recommend(users, n=5)
    before = _state()
    results = []

    def work(rng: random.Random) -> None:
        for _ in range(20):
            results.append(model.recommend(users[rng.randrange(0, 50) :], n=5))
            time.sleep(rng.random() * 0.001)

    _run_threads(work)
    assert _state() == before
    again = model.recommend(users, n=5)
    np.testing.assert_array_equal(again[0], expected[0])
    np.testing.assert_array_equal(again[1], expected[1])
    assert len(results) == 8 * 20


def test_nested_and_failing_blocks_restore(blas_not_one):
    before = _state()
    with pytest.raises(RuntimeError):
        with _backend.threads(1):
            with _backend.threads(2):
                raise RuntimeError("boom")
    assert _state() == before
    assert _backend._blas_holders == 0
