"""pytest-benchmark suite of the MLP family: kernels vs naive NumPy, training vs PyTorch.

Run: ``pytest bench/test_bench_mlp.py --benchmark-only`` (compiles outside the
timed closures; PyTorch rows are skipped when it is not installed).
"""

from __future__ import annotations

import numpy as np
import pytest

from fastrec import _backend
from fastrec._kernels import embedding as embedding_kernels
from fastrec.datasets import synthetic
from fastrec.models.mlp import MLPRecommender

BACKENDS = _backend.available_backends()
N_USERS, N_ITEMS, DIM, BATCH = 6040, 3706, 32, 256


@pytest.fixture(scope="module")
def batch_data():
    rng = np.random.default_rng(0)
    table = rng.standard_normal((N_USERS, DIM)).astype(np.float32) * 0.01
    idx = rng.integers(0, N_USERS, BATCH).astype(np.int32)
    grad = rng.standard_normal((BATCH, 2 * DIM + 1)).astype(np.float32)
    return table, idx, grad


@pytest.mark.parametrize("backend", BACKENDS)
def test_gather_fastrec(benchmark, backend, batch_data):
    table, idx, grad = batch_data
    kernel = embedding_kernels.get(backend).embedding_gather
    out = np.empty_like(grad)
    kernel(table, idx, out, 0)  # compile
    benchmark(kernel, table, idx, out, 0)
    np.testing.assert_array_equal(out[:, :DIM], table[idx])


def test_gather_numpy(benchmark, batch_data):
    table, idx, grad = batch_data
    out = np.empty_like(grad)

    def naive():
        out[:, :DIM] = table[idx]

    benchmark(naive)


@pytest.mark.parametrize("backend", BACKENDS)
def test_lazy_adam_fastrec(benchmark, backend, batch_data):
    table, idx, grad = batch_data
    table = table.copy()
    m, v = np.zeros_like(table), np.zeros_like(table)
    slot = np.full(N_USERS, -1, dtype=np.int32)
    rows = np.zeros(BATCH, dtype=np.int32)
    acc = np.zeros((BATCH, DIM), dtype=np.float32)
    kernel = embedding_kernels.get(backend).embedding_adam
    args = (table, m, v, idx, grad, 0, slot, rows, acc, 1e-3, 0.9, 0.999, 1e-8, 0.0, 0.1, 0.001)
    kernel(*args)
    benchmark(kernel, *args)


def test_lazy_adam_numpy(benchmark, batch_data):
    """The NumPy way: np.add.at into a dense gradient, then Adam on the touched rows."""
    table, idx, grad = batch_data
    table = table.copy()
    m, v = np.zeros_like(table), np.zeros_like(table)
    dense = np.zeros_like(table)

    def naive():
        dense[...] = 0
        np.add.at(dense, idx, grad[:, :DIM])
        rows = np.unique(idx)
        g = dense[rows]
        m[rows] = 0.9 * m[rows] + 0.1 * g
        v[rows] = 0.999 * v[rows] + 0.001 * g * g
        table[rows] -= 1e-2 * m[rows] / (np.sqrt(v[rows] / 0.001) + 1e-8)

    benchmark(naive)


@pytest.fixture(scope="module")
def train_data():
    """30,000 ratings of the ML-1M shape (one epoch is timed)."""
    from fastrec.benchmarks.mlp import _timed_subset

    return _timed_subset(synthetic(N_USERS, N_ITEMS, 200_000, seed=0), 30_000)


@pytest.mark.parametrize("batch_size", [256, 1024])
def test_train_epoch_fastrec(benchmark, train_data, batch_size):
    def fit():
        return MLPRecommender(epochs=1, batch_size=batch_size, validation_fraction=0.0,
                              random_state=0, num_threads=2).fit(train_data)  # fmt: skip

    fit()  # compile
    model = benchmark.pedantic(fit, rounds=3, iterations=1)
    assert np.isfinite(model.history_[-1]["train_loss"])


@pytest.mark.parametrize("batch_size", [256, 1024])
def test_train_epoch_torch(benchmark, train_data, batch_size):
    pytest.importorskip("torch")
    from fastrec.benchmarks.mlp import torch_throughput

    rate = benchmark.pedantic(
        lambda: torch_throughput(train_data, batch_size, num_threads=2), rounds=1, iterations=1
    )
    assert rate > 0
