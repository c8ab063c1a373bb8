"""MLPRecommender against PyTorch (training throughput), SGDMF (RMSE) and ALS (ranking).

Rows
----
``mlp train, batch 256`` / ``mlp train, batch 1024``
    Samples per second of one training epoch (shuffle + every mini-batch step:
    gather, forward, MSE loss, backward, Adam) of fastrec's MLPRecommender and
    of the same network in PyTorch on the CPU: embeddings of 32 for
    ``6040 x 3706`` users x items (the ML-1M shape), concatenated, dense layers
    64-32-16-1 with ReLU, Adam (lr 1e-3), ``torch.set_num_threads(num_threads)``.
    The PyTorch model is what a user writes: ``nn.Embedding`` (dense
    gradients) and ``torch.optim.Adam``. Data: ``synthetic(6040, 3706,
    1_000_209 * scale)``; ``200_000 * scale`` samples are timed (one epoch of
    that many ratings for both), after a warm-up. ``fastrec_s`` and
    ``peer_s`` are the seconds for those samples, so ``ratio`` is the inverse
    throughput ratio (target: <= 0.667 at batch 256, <= 1.0 at 1024).
``mlp train, batch 256, torch sparse``
    The same against ``nn.Embedding(sparse=True)`` with ``SparseAdam`` for the
    embeddings (lazy Adam, as fastrec) and Adam for the layers: the fairer
    algorithmic match, for information.
``mlp rmse ml-latest-small``
    ``movielens_small()``, ``random_split(test_size=0.2, seed=0)``;
    MLPRecommender(loss="mse", defaults, random_state=0) against fastrec's
    SGDMF (defaults, random_state=0). Quality: test RMSE (target: within 0.02).
``mlp ncf protocol ml-latest-small`` / ``mlp full ranking ml-latest-small``
    ``leave_one_out(by="time", seed=0)``; MLPRecommender(loss="bce",
    negatives=4, weight_decay=1e-3, other parameters default) against
    fastrec's ALS (implicit, defaults) where available.
    NCF protocol (He et al. 2017, section 4.1): each test item is ranked
    among 99 items the user never interacted with, sampled with seed 0 (ties
    counted against the test item); full ranking: ``fastrec.evaluate`` over
    all items, training items excluded. HR@10 and NDCG@10.
"""

from __future__ import annotations

import importlib
import math
import time
from functools import lru_cache
from typing import Any

import numpy as np

from ..data import Interactions
from ..datasets import movielens_small, synthetic
from ..models.mlp import MLPRecommender
from . import row, timed

EMBEDDING_DIM = 32
HIDDEN = (64, 32, 16)


@lru_cache(maxsize=2)
def _synthetic(n_users: int, n_items: int, nnz: int) -> Interactions:
    return synthetic(n_users, n_items, nnz, seed=0)


def _warm_up() -> None:
    """Compile (Numba) and load (Cython) the kernels outside the timed region."""
    tiny = Interactions.from_arrays([0, 0, 1, 2], [0, 1, 1, 2], [1.0, 2.0, 3.0, 4.0])
    for backend in ("numba", "auto"):
        for dtype in ("float32", "float64"):
            for optimizer in ("adam", "sgd"):
                MLPRecommender(
                    embedding_dim=2, hidden=(2,), epochs=1, batch_size=2, dtype=dtype,
                    optimizer=optimizer, backend=backend, random_state=0,
                ).fit(tiny)  # fmt: skip


def _timed_subset(X: Interactions, n: int) -> Interactions:
    """The first ``n`` ratings of a random permutation (same vocabulary and shape)."""
    if n >= X.nnz:
        return X
    mask = np.zeros(X.nnz, dtype=bool)
    mask[np.random.default_rng(1).permutation(X.nnz)[:n]] = True
    return X.subset(mask)


def fastrec_throughput(
    X: Interactions, batch_size: int, num_threads: int, epochs: int = 2
) -> float:
    """Best epoch's samples per second of MLPRecommender(loss="mse") on ``X``."""
    model = MLPRecommender(
        embedding_dim=EMBEDDING_DIM, hidden=HIDDEN, epochs=epochs, batch_size=batch_size,
        validation_fraction=0.0, random_state=0, num_threads=num_threads,
    )  # fmt: skip
    model.fit(X)
    return max(h["samples_per_s"] for h in model.history_)


def torch_throughput(
    X: Interactions, batch_size: int, num_threads: int, sparse: bool = False, warm: int = 20
) -> float:
    """Samples per second of one epoch of the same network in PyTorch."""
    import torch

    torch.set_num_threads(num_threads)
    torch.manual_seed(0)
    m = X.matrix
    users = torch.from_numpy(np.repeat(np.arange(X.n_users), np.diff(m.indptr)))
    items = torch.from_numpy(m.indices.astype(np.int64))
    ratings = torch.from_numpy(m.data.astype(np.float32))

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.user = torch.nn.Embedding(X.n_users, EMBEDDING_DIM, sparse=sparse)
            self.item = torch.nn.Embedding(X.n_items, EMBEDDING_DIM, sparse=sparse)
            layers: list[Any] = []
            width = 2 * EMBEDDING_DIM
            for h in HIDDEN:
                layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
                width = h
            layers.append(torch.nn.Linear(width, 1))
            self.mlp = torch.nn.Sequential(*layers)

        def forward(self, u, i):
            return self.mlp(torch.cat([self.user(u), self.item(i)], dim=1)).squeeze(1)

    net = Net()
    if sparse:
        emb = list(net.user.parameters()) + list(net.item.parameters())
        opts = [torch.optim.SparseAdam(emb, lr=1e-3), torch.optim.Adam(net.mlp.parameters())]
    else:
        opts = [torch.optim.Adam(net.parameters(), lr=1e-3)]
    loss_fn = torch.nn.MSELoss()

    def steps(u, i, y):
        for start in range(0, u.shape[0], batch_size):
            for opt in opts:
                opt.zero_grad()
            loss = loss_fn(net(u[start : start + batch_size], i[start : start + batch_size]),
                           y[start : start + batch_size])  # fmt: skip
            loss.backward()
            for opt in opts:
                opt.step()

    n = users.shape[0]
    w = min(n, warm * batch_size)
    steps(users[:w], items[:w], ratings[:w])
    t0 = time.perf_counter()
    perm = torch.randperm(n)
    steps(users[perm], items[perm], ratings[perm])
    return n / (time.perf_counter() - t0)


def torch_throughput_isolated(
    shape: tuple[int, int, int, int], batch_size: int, num_threads: int, sparse: bool = False
) -> float:
    """``torch_throughput`` in a fresh interpreter, as a PyTorch user runs it.

    Measured in-process, PyTorch's two-thread speed collapses (about 6x here)
    once Numba's OpenMP threading layer has started in the same process: two
    OpenMP runtimes (Numba's libgomp and the one bundled with PyTorch) contend
    for the cores. A separate process gives PyTorch its normal speed; the data
    are rebuilt there from the same seed.
    """
    import subprocess
    import sys

    code = (
        "from fastrec.benchmarks.mlp import _synthetic, _timed_subset, torch_throughput; "
        f"X = _timed_subset(_synthetic({shape[0]}, {shape[1]}, {shape[2]}), {shape[3]}); "
        f"print(torch_throughput(X, {batch_size}, {num_threads}, sparse={sparse}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    return math.sqrt(float(np.mean((np.asarray(pred, np.float64) - truth) ** 2)))


def ncf_sampled_metrics(
    model: Any, train: Interactions, test: Interactions, n_negatives: int = 99, k: int = 10
) -> tuple[float, float]:
    """HR@k and NDCG@k under the NCF protocol (one test item vs sampled negatives).

    For each test entry the model scores the test item and ``n_negatives``
    items the user has in neither train nor test (uniform, seed 0). The test
    item's rank counts the negatives scoring at least as high (ties against
    it). HR = rank < k; NDCG = 1 / log2(rank + 2) when rank < k.
    """
    rng = np.random.default_rng(0)
    tm = test.matrix.tocoo()
    seen = (train.matrix + test.matrix).tocsr()
    hits, gains = [], []
    users, items = tm.row, tm.col
    neg = np.empty((users.shape[0], n_negatives), dtype=np.int64)
    for row_pos, u in enumerate(users):
        taken = set(seen.indices[seen.indptr[u] : seen.indptr[u + 1]].tolist())
        chosen: list[int] = []
        while len(chosen) < n_negatives:
            for c in rng.integers(0, train.n_items, size=2 * n_negatives).tolist():
                if c not in taken:
                    taken.add(c)
                    chosen.append(c)
                    if len(chosen) == n_negatives:
                        break
        neg[row_pos] = chosen
    cand = np.concatenate([items[:, None], neg], axis=1)
    raw_u = np.repeat(train.user_ids[users], n_negatives + 1)
    raw_i = train.item_ids[cand.ravel()]
    scores = model.predict(raw_u, raw_i).reshape(cand.shape)
    rank = (scores[:, 1:] >= scores[:, :1]).sum(axis=1)
    hits = rank < k
    gains = np.where(hits, 1.0 / np.log2(rank + 2.0), 0.0)
    return float(hits.mean()), float(gains.mean())


def _als():
    try:
        return importlib.import_module("fastrec.models.als").ALS
    except (ImportError, AttributeError):
        return None


def compare(scale: float = 1.0, num_threads: int = 2, quick: bool = False) -> list[dict]:
    _warm_up()
    rows: list[dict] = []
    if quick:
        n_users, n_items, nnz, n_timed = 2000, 1000, 60_000, 5_000
    else:
        n_users, n_items = 6040, 3706
        nnz = max(10_000, int(1_000_209 * scale))
        n_timed = max(5_000, int(200_000 * scale))
    X = _synthetic(n_users, n_items, nnz)
    Xt = _timed_subset(X, n_timed)
    shape = f"{n_users}x{n_items}, {Xt.nnz} samples timed"
    try:
        import torch  # noqa: F401

        have_torch = True
    except ImportError:
        have_torch = False
    for batch, target in ((256, 1.5), (1024, 1.0)):
        ours = fastrec_throughput(Xt, batch, num_threads)
        fastrec_s = Xt.nnz / ours
        if not have_torch:
            rows.append(row(f"mlp train, batch {batch}", shape, fastrec_s, "torch", None,
                            f"{ours:,.0f} samples/s", "torch not installed"))  # fmt: skip
            continue
        theirs = torch_throughput_isolated((n_users, n_items, nnz, n_timed), batch, num_threads)
        rows.append(
            row(
                f"mlp train, batch {batch}",
                shape,
                fastrec_s,
                "torch (Adam)",
                Xt.nnz / theirs,
                f"{ours:,.0f} vs {theirs:,.0f} samples/s = {ours / theirs:.2f}x",
                f"target >= {target}x",
            )
        )
        if batch == 256 and not quick:
            sparse = torch_throughput_isolated(
                (n_users, n_items, nnz, n_timed), batch, num_threads, sparse=True
            )
            rows.append(
                row(
                    "mlp train, batch 256, torch sparse", shape, fastrec_s,
                    "torch (SparseAdam)", Xt.nnz / sparse,
                    f"{ours:,.0f} vs {sparse:,.0f} samples/s = {ours / sparse:.2f}x",
                    "informative: lazy embedding Adam in torch too",
                )
            )  # fmt: skip

    # ---- rating quality on ml-latest-small
    from ..models.sgd import SGDMF
    from ..split import leave_one_out, random_split

    data = movielens_small()
    train, test = random_split(data, test_size=0.2, seed=0)
    tm = test.matrix.tocoo()
    tu, ti, truth = test.user_ids[tm.row], test.item_ids[tm.col], tm.data.astype(np.float64)
    epochs = 2 if quick else 20
    mlp = MLPRecommender(epochs=epochs, random_state=0, num_threads=num_threads)
    mlp_s, _ = timed(lambda: mlp.fit(train))
    mlp_rmse = _rmse(mlp.predict(tu, ti), truth)
    sgd = SGDMF(epochs=epochs, random_state=0, num_threads=num_threads)
    sgd_s, _ = timed(lambda: sgd.fit(train))
    sgd_rmse = _rmse(np.clip(sgd.predict(tu, ti), 0.5, 5.0), truth)
    rows.append(
        row(
            "mlp rmse ml-latest-small", f"{train.n_users}x{train.n_items}, {train.nnz} train",
            mlp_s, "fastrec SGDMF", sgd_s,
            f"rmse {mlp_rmse:.4f} vs {sgd_rmse:.4f} (diff {mlp_rmse - sgd_rmse:+.4f})",
            f"target |diff| <= 0.02; MLP stopped at epoch {mlp.n_epochs_}, kept {mlp.best_epoch_}",
        )
    )  # fmt: skip

    # ---- ranking on ml-latest-small, leave-one-out by time
    train, test = leave_one_out(data, by="time", seed=0)
    shape = f"{train.n_users}x{train.n_items}, leave-one-out by time"
    mlp = MLPRecommender(loss="bce", negatives=4, weight_decay=1e-3, epochs=epochs,
                         random_state=0, num_threads=num_threads)  # fmt: skip
    mlp_s, _ = timed(lambda: mlp.fit(train))
    ALS = _als()
    als = None
    als_s = None
    if ALS is not None:
        als = ALS(random_state=0, num_threads=num_threads) if _takes_seed(ALS) else ALS()
        als_s, _ = timed(lambda: als.fit(train))
    hr, ndcg = ncf_sampled_metrics(mlp, train, test)
    if als is not None:
        a_hr, a_ndcg = ncf_sampled_metrics(als, train, test)
        quality = f"HR@10 {hr:.3f} vs {a_hr:.3f}, NDCG@10 {ndcg:.3f} vs {a_ndcg:.3f}"
    else:
        quality = f"HR@10 {hr:.3f}, NDCG@10 {ndcg:.3f}"
    note = "99 sampled negatives" + ("" if als is not None else "; ALS not available")
    rows.append(row("mlp ncf protocol ml-latest-small", shape, mlp_s,
                    "fastrec ALS" if als else "ALS", als_s, quality, note))  # fmt: skip
    from ..evaluation import evaluate

    res = evaluate(mlp, train, test, metrics=("hit_rate", "ndcg"), k=10, fit=False)
    quality = f"HR@10 {res['hit_rate']:.3f}, NDCG@10 {res['ndcg']:.3f}"
    if als is not None:
        a = evaluate(als, train, test, metrics=("hit_rate", "ndcg"), k=10, fit=False)
        quality = (
            f"HR@10 {res['hit_rate']:.3f} vs {a['hit_rate']:.3f}, "
            f"NDCG@10 {res['ndcg']:.3f} vs {a['ndcg']:.3f}"
        )
    rows.append(row("mlp full ranking ml-latest-small", shape, mlp_s,
                    "fastrec ALS" if als else "ALS", als_s, quality,
                    "all items, train items excluded"))  # fmt: skip
    return rows


def _takes_seed(cls: Any) -> bool:
    import inspect

    params = inspect.signature(cls.__init__).parameters
    return "random_state" in params and "num_threads" in params


if __name__ == "__main__":  # python -m fastrec.benchmarks.mlp [scale] [quick]
    import sys

    from . import format_table

    scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    quick = len(sys.argv) > 2 and sys.argv[2] == "quick"
    print(format_table(compare(scale=scale, quick=quick)))
