"""Ctrl-C: long kernel calls run in slices, so KeyboardInterrupt is raised between two.

- the sliced calls give exactly the output of one call over everything
  (slices forced down to a few rows with ``_backend.slice_cap``);
- an interrupt at the second slice (a stub) propagates, leaves the thread
  state as it was and the process usable: the next call is correct, an
  interrupted ``fit`` leaves the model unfitted;
- a real SIGINT stops a long ``fr.similarity`` in a child process quickly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import fastrec as fr
from fastrec import _backend
from fastrec.models import NotFittedError

BACKENDS = _backend.available_backends()


def _one_range(total, first=1, target=None, minimum=1):
    yield 0, total


def _interrupt_at_second(total, first=1, target=None, minimum=1):
    size = max(1, min(first, max(1, total // 3)))
    yield 0, min(total, size)
    raise KeyboardInterrupt


@pytest.fixture(scope="module")
def data():
    return fr.datasets.synthetic(400, 150, 6000, seed=7)


def _same_csr(a, b):
    assert a.shape == b.shape
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.data, b.data)


def _calls(data, backend):
    """Name -> callable returning arrays, for each sliced entry point."""
    scores = np.random.default_rng(0).standard_normal((120, 150)).astype(np.float32)
    return {
        "similarity_all_rows_pearson": lambda: fr.similarity(
            data, kind="pearson", axis="users", k=7, backend=backend
        ),
        "similarity_all_rows_cosine": lambda: fr.similarity(
            data, kind="cosine", axis="items", k=7, backend=backend
        ),
        "similarity_query_rows": lambda: fr.neighbours.similarity_rows(
            data.matrix, rows=np.arange(0, 400, 3), kind="adjusted_cosine", k=5, backend=backend
        ),
        "topk": lambda: fr.topk(scores, 9, backend=backend),
    }


def _assert_same(a, b):
    if hasattr(a, "indptr"):
        _same_csr(a, b)
    else:
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sliced_calls_equal_one_call(data, backend, monkeypatch):
    calls = _calls(data, backend)
    for call in calls.values():
        monkeypatch.setattr(_backend, "slices", _one_range)
        whole = call()
        monkeypatch.undo()
        monkeypatch.setattr(_backend, "slice_cap", 16)
        sliced = call()
        monkeypatch.undo()
        _assert_same(whole, sliced)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sliced_fits_equal_one_call(data, backend, monkeypatch):
    def fits():
        als = fr.ALS(factors=6, iterations=2, random_state=1, backend=backend).fit(data)
        sgd = fr.SGDMF(factors=6, epochs=4, random_state=1, num_threads=1, backend=backend)
        sgd.fit(data)
        users = data.user_ids[:60]
        return [
            als.user_factors_,
            als.item_factors_,
            *als.recommend(users, n=8),
            sgd.user_factors_,
            sgd.item_factors_,
            sgd.user_bias_,
            *sgd.recommend(users, n=8),
        ]

    monkeypatch.setattr(_backend, "slices", _one_range)
    whole = fits()
    monkeypatch.undo()
    monkeypatch.setattr(_backend, "slice_cap", 2)
    sliced = fits()
    for a, b in zip(whole, sliced):
        np.testing.assert_array_equal(a, b)


def _thread_state():
    return sorted((i["filepath"], i["num_threads"]) for i in threadpool_info())


@pytest.mark.parametrize("backend", BACKENDS)
def test_interrupt_between_slices_leaves_process_usable(data, backend, monkeypatch):
    calls = _calls(data, backend)
    expected = {name: call() for name, call in calls.items()}
    before = _thread_state()
    for name, call in calls.items():
        monkeypatch.setattr(_backend, "slices", _interrupt_at_second)
        with pytest.raises(KeyboardInterrupt):
            call()
        monkeypatch.undo()
        assert _thread_state() == before, name
        assert _backend._blas_holders == 0
        _assert_same(call(), expected[name])


@pytest.mark.parametrize("backend", BACKENDS)
def test_interrupted_fit_leaves_model_unfitted(data, backend, monkeypatch):
    models = [
        fr.ALS(factors=4, iterations=2, random_state=0, backend=backend),
        fr.SGDMF(factors=4, epochs=3, random_state=0, num_threads=1, backend=backend),
    ]
    for model in models:
        reference = type(model)(**model.get_params()).fit(data)
        model.fit(data)  # fitted once: an interrupted refit must not look fitted
        monkeypatch.setattr(_backend, "slices", _interrupt_at_second)
        with pytest.raises(KeyboardInterrupt):
            model.fit(data)
        monkeypatch.undo()
        with pytest.raises(NotFittedError):
            model.recommend(data.user_ids[:3])
        model.fit(data)
        np.testing.assert_array_equal(model.user_factors_, reference.user_factors_)


CHILD = textwrap.dedent(
    """
    import signal, sys, time
    # the default Ctrl-C behaviour, whatever the parent process left to its children
    # (an ignored or blocked SIGINT is inherited through fork and exec)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import numpy as np
    import fastrec as fr
    from fastrec import _backend
    backend = sys.argv[1]
    X = fr.datasets.synthetic(6000, 2000, 300_000, seed=1)
    small = fr.datasets.synthetic(200, 80, 2000, seed=3)
    ref = fr.similarity(small, kind="pearson", axis="users", k=5, backend=backend)
    _backend.SLICE_SECONDS = 0.05
    print("start", flush=True)
    tic = time.perf_counter()
    try:
        for _ in range(200):  # one call, many times: long enough to be interrupted
            fr.similarity(X, kind="pearson", axis="users", k=20, backend=backend)
        print("finished", flush=True)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    again = fr.similarity(small, kind="pearson", axis="users", k=5, backend=backend)
    print("usable" if (again != ref).nnz == 0 else "WRONG", flush=True)
    """
)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigint_stops_a_long_similarity(backend):
    if not hasattr(signal, "SIGINT") or os.name == "nt":
        pytest.skip("POSIX signals only")
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, backend], stdout=subprocess.PIPE, text=True
    )
    # a kernel that ignored the signal would run on for tens of seconds: a
    # watchdog kills the child then, and the test fails
    watchdog = threading.Timer(60.0, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout.readline().strip() == "start"
        time.sleep(1.0)
        sent = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        line = proc.stdout.readline().strip()
        stopped = time.perf_counter() - sent
        rest = proc.stdout.read().strip()
        assert proc.wait(30) == 0, f"child exit {proc.returncode} after {line!r} {rest!r}"
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
    assert line == "interrupted"
    assert rest == "usable"
    assert stopped < 2.0, f"took {stopped:.2f} s to stop"
