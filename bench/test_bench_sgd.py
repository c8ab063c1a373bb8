"""pytest-benchmark suite for SGDMF: fastrec vs its naive reference vs peers.

Run: ``python -m pytest bench/test_bench_sgd.py --benchmark-only``
(``--benchmark-compare`` etc. as usual). Peers that are not installed are
skipped. Every fastrec kernel is compiled/loaded by a warm-up call before its
timed rounds. The side-by-side ratios for BENCHMARKS.md come from
``fastrec.benchmarks.sgd.compare`` (see ``bench/results/sgd.md``).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys

import numpy as np
import pytest

import fastrec as fr
from fastrec._backend import threads
from fastrec.models._sgd_layout import training_layout
from fastrec.models._sgd_schedule import epoch_schedule
from fastrec.models.sgd import SGDMF

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from fastrec._kernels import sgd as sgd_kernels
from tests.reference_sgd import sgd_epoch_reference  # noqa: E402

FACTORS = 32
EPOCHS = 3
THREADS = 2


@pytest.fixture(scope="module")
def data():
    return fr.datasets.synthetic(5_000, 2_000, 200_000, seed=0)


@pytest.fixture(scope="module")
def movielens_train():
    """The SGD benchmark data: ml-latest-small, 80/20 ``random_split(seed=0)``, train part."""
    return fr.split.random_split(fr.datasets.movielens_small(), test_size=0.2, seed=0)[0]


@pytest.fixture(scope="module")
def tiny():
    return fr.datasets.synthetic(200, 100, 2_000, seed=0)


@pytest.mark.parametrize("backend", ["numba", "cython"])
def test_fastrec_fit(benchmark, data, backend):
    model = SGDMF(factors=FACTORS, epochs=EPOCHS, random_state=0, num_threads=THREADS,
                  backend=backend)  # fmt: skip
    model.fit(data)  # warm-up (Numba compiles or loads its cache here)
    benchmark(model.fit, data)
    assert model.history_[-1]["train_rmse"] < model.history_[0]["train_rmse"]


def _epoch_inputs(X):
    rng = np.random.default_rng(0)
    block_ptr, labels, ratings, _ = training_layout(X.matrix, rng, np.float32)
    schedule = epoch_schedule(np.diff(X.matrix.indptr), rng, 1)
    P = rng.normal(0, 0.1, (X.n_users, FACTORS)).astype(np.float32)
    Q = rng.normal(0, 0.1, (X.n_items, FACTORS)).astype(np.float32)
    return (block_ptr, labels, ratings, *schedule), P, Q  # item rows in label order


@pytest.mark.parametrize("backend", ["numba", "cython"])
def test_fastrec_one_epoch_tiny(benchmark, tiny, backend):
    layout, P, Q = _epoch_inputs(tiny)
    kernel = sgd_kernels.get(backend).sgd_epoch
    bu, bi, loss = (
        np.zeros(tiny.n_users, np.float32),
        np.zeros(tiny.n_items, np.float32),
        np.zeros(1),
    )
    mu, lr, reg = np.float32(3.5), np.float32(0.005), np.float32(0.02)

    def run():
        with threads(1):
            kernel(*layout, mu, lr, reg, True, P.copy(), Q.copy(), bu.copy(), bi.copy(), loss)

    run()
    benchmark(run)


def test_naive_reference_one_epoch_tiny(benchmark, tiny):
    layout, P, Q = _epoch_inputs(tiny)
    bu, bi = np.zeros(tiny.n_users), np.zeros(tiny.n_items)
    benchmark.pedantic(
        sgd_epoch_reference, args=(*layout, 3.5, 0.005, 0.02, True, P, Q, bu, bi), rounds=3
    )


def test_libmf_fit(benchmark, data):
    pytest.importorskip("libmf")
    with contextlib.redirect_stdout(io.StringIO()):
        from libmf import mf
    coo = data.matrix.tocoo()
    triples = np.column_stack([coo.row, coo.col, coo.data]).astype(np.float32)
    engine = mf.MF(k=FACTORS, nr_threads=THREADS, nr_iters=EPOCHS, quiet=True,
                   lambda_p1=0.0, lambda_q1=0.0, lambda_p2=0.02, lambda_q2=0.02)  # fmt: skip
    benchmark(engine.fit, triples)


def test_surprise_svd_fit(benchmark, data):
    pytest.importorskip("surprise")
    pd = pytest.importorskip("pandas")
    from surprise import SVD, Dataset, Reader

    coo = data.matrix.tocoo()
    frame = pd.DataFrame({"u": coo.row, "i": coo.col, "r": coo.data.astype(np.float64)})
    trainset = Dataset.load_from_df(frame, Reader(rating_scale=(1, 5))).build_full_trainset()
    algo = SVD(n_factors=FACTORS, n_epochs=EPOCHS, lr_all=0.005, reg_all=0.02, random_state=0)
    benchmark.pedantic(algo.fit, args=(trainset,), rounds=2)


def test_fastrec_fit_movielens_small(benchmark, movielens_train):
    model = SGDMF(factors=100, epochs=20, learning_rate=0.005, regularization=0.02,
                  random_state=0, num_threads=THREADS)  # fmt: skip
    model.fit(movielens_train)  # warm-up
    benchmark(model.fit, movielens_train)
    assert model.history_[-1]["train_rmse"] < model.history_[0]["train_rmse"]


def test_surprise_svd_fit_movielens_small(benchmark, movielens_train):
    pytest.importorskip("surprise")
    pd = pytest.importorskip("pandas")
    from surprise import SVD, Dataset, Reader

    coo = movielens_train.matrix.tocoo()
    frame = pd.DataFrame({"u": coo.row, "i": coo.col, "r": coo.data.astype(np.float64)})
    reader = Reader(rating_scale=(float(coo.data.min()), float(coo.data.max())))
    trainset = Dataset.load_from_df(frame, reader).build_full_trainset()
    algo = SVD(n_factors=100, n_epochs=20, lr_all=0.005, reg_all=0.02, random_state=0)
    benchmark.pedantic(algo.fit, args=(trainset,), rounds=3)
