"""UserKNN / ItemKNN (Pearson, KNNWithMeans) vs scikit-surprise, and UserKNN's
memory when serving a batch of users on ML-20M-shaped data.

Each measurement runs in a fresh subprocess (``python -m fastrec.benchmarks.knn
JOB``) so that its peak memory can be read from the kernel: the process loads
the data and splits it, warms up (compiles the Numba kernels, if used), resets
its resident-set high-water mark (``/proc/self/clear_refs``), and then times
``fit`` + ``predict`` on the test pairs (the median of ``repeat`` runs).
"Peak memory" is the high-water mark during the first timed run minus the
resident set just before it. Surprise is timed on ``fit`` + ``test`` (its
trainset is built before the timer, as our ``Interactions`` are).

fastrec is configured as surprise is, ``fallback="global"`` included (the
global mean for a pair with an unknown user or item; the library's default
uses the user or item mean there). RMSE is reported on every test pair and on
the pairs whose user and item are both in the training set, and, for the
record, fastrec's RMSE with its default fallback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import numpy as np

from . import row

_DEFAULTS = {"k": 40, "similarity": "pearson", "min_support": 1, "shrinkage": 0.0}


def _rss_mb() -> tuple[float, float]:
    """(current resident set, high-water mark) of this process in MB (Linux)."""
    rss = hwm = float("nan")
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) / 1024
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) / 1024
    except OSError:
        pass
    return rss, hwm


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _data(job: dict) -> tuple[Any, Any]:
    from .. import datasets, split

    if job["data"] == "movielens_small":
        X = datasets.movielens_small()
    else:
        n_users, n_items, nnz = job["data"]
        X = datasets.synthetic(n_users, n_items, nnz, seed=0)
    if job.get("fraction", 1.0) < 1.0:
        keep = np.random.default_rng(1).random(X.nnz) < job["fraction"]
        X = X.subset(keep)
    return split.random_split(X, test_size=0.2, seed=0)


def _rmse_pair(y: np.ndarray, p: np.ndarray, known: np.ndarray) -> tuple[float, float]:
    err = (np.asarray(p, dtype=np.float64) - y) ** 2
    return float(np.sqrt(err.mean())), float(np.sqrt(err[known].mean()))


def _job_fastrec(job: dict) -> dict:
    from ..models.knn import ItemKNN, UserKNN

    train, test = _data(job)
    u, i, y, _ = test.to_arrays()
    raw_u, raw_i = test.user_ids[u], test.item_ids[i]
    known = (np.bincount(train.entry_users(), minlength=train.n_users)[u] > 0) & (
        np.bincount(train.matrix.indices, minlength=train.n_items)[i] > 0
    )
    cls = UserKNN if job["user_based"] else ItemKNN
    # configured like surprise: fallback="global" gives every pair with an
    # unknown user or item the global mean, as surprise does
    params = dict(
        _DEFAULTS,
        fallback="global",
        num_threads=job["num_threads"],
        backend=job.get("backend", "auto"),
    )
    cls(**params).fit(train).predict(raw_u[:200], raw_i[:200])  # warm-up / compile

    def fit_predict():
        return cls(**params).fit(train).predict(raw_u, raw_i)

    result = _timed_job(fit_predict, job.get("repeat", 1), y, known)
    # the library's default fallback (user or item mean), for the record
    default = cls(**dict(params, fallback="means")).fit(train).predict(raw_u, raw_i)
    result["rmse_default_fallback"] = _rmse_pair(y, default, known)[0]
    return result


def _timed_job(fit_predict, repeat: int, y: np.ndarray, known: np.ndarray) -> dict:
    """Peak memory of the first fit+predict, median wall and CPU time of ``repeat``."""
    walls, cpus = [], []
    for r in range(max(1, repeat)):
        if r == 0:
            rss0, _ = _rss_mb()
            _reset_peak()
        c0 = time.process_time()
        t0 = time.perf_counter()
        pred = fit_predict()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        if r == 0:
            _, hwm = _rss_mb()
    rmse_all, rmse_known = _rmse_pair(y, pred, known)
    return {
        "seconds": float(np.median(walls)),
        "seconds_range": [min(walls), max(walls)],
        "runs": len(walls),
        "cpu_seconds": float(np.median(cpus)),
        "peak_mb": hwm - rss0,
        "rmse": rmse_all,
        "rmse_known": rmse_known,
    }


def _job_surprise(job: dict) -> dict:
    import pandas as pd
    from surprise import Dataset, KNNWithMeans, Reader

    train, test = _data(job)
    tu, ti, ty, _ = train.to_arrays()
    df = pd.DataFrame({"u": train.user_ids[tu], "i": train.item_ids[ti], "r": ty})
    u, i, y, _ = test.to_arrays()
    known = (np.bincount(tu, minlength=train.n_users)[u] > 0) & (
        np.bincount(ti, minlength=train.n_items)[i] > 0
    )
    pairs = list(zip(test.user_ids[u], test.item_ids[i], y))
    lo, hi = float(ty.min()), float(ty.max())
    trainset = Dataset.load_from_df(df[["u", "i", "r"]], Reader(rating_scale=(lo, hi)))
    trainset = trainset.build_full_trainset()
    sim_options = {
        "name": "pearson",
        "user_based": job["user_based"],
        "min_support": _DEFAULTS["min_support"],
        "shrinkage": _DEFAULTS["shrinkage"],
    }

    def fit_predict():
        algo = KNNWithMeans(k=_DEFAULTS["k"], sim_options=sim_options, verbose=False)
        algo.fit(trainset)
        return np.array([p.est for p in algo.test(pairs)])

    return _timed_job(fit_predict, job.get("repeat", 1), y, known)


def _job_serve(job: dict) -> dict:
    """UserKNN.recommend for a batch of query users: time and peak memory."""
    from .. import datasets
    from ..models.knn import UserKNN

    n_users, n_items, nnz = job["data"]
    X = datasets.synthetic(n_users, n_items, nnz, seed=0)
    # the Cython backend allocates its scratch through NumPy, so tracemalloc sees it
    model = UserKNN(num_threads=job["num_threads"], backend=job.get("backend", "auto")).fit(X)
    model.recommend(X.user_ids[:2], n=10)  # warm-up / compile
    rng = np.random.default_rng(0)
    users = X.user_ids[rng.choice(X.n_users, min(job["n_query"], X.n_users), replace=False)]
    import tracemalloc

    rss0, _ = _rss_mb()
    _reset_peak()
    tracemalloc.start()
    t0 = time.perf_counter()
    model.recommend(users, n=10)
    elapsed = time.perf_counter() - t0
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    _, hwm = _rss_mb()
    return {
        "seconds": elapsed,
        "peak_mb": hwm - rss0,
        "traced_mb": traced_peak / 2**20,
        "model_mb": _model_mb(model),
    }


def _arrays(value: Any, out: dict[int, np.ndarray]) -> None:
    """The NumPy arrays ``value`` holds (itself, a sparse matrix's, an object's fields), by id."""
    import dataclasses

    import scipy.sparse as sp

    if isinstance(value, np.ndarray):
        out[id(value)] = value
    elif sp.issparse(value):
        for name in ("data", "indices", "indptr", "row", "col"):
            _arrays(getattr(value, name, None), out)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            _arrays(getattr(value, field.name), out)
    elif isinstance(value, list | tuple):
        for v in value:
            _arrays(v, out)


def _model_mb(model: Any) -> float:
    """MB of the arrays a fitted k-NN model serves from: its ratings side and its means."""
    found: dict[int, np.ndarray] = {}
    for value in vars(model._side).values():
        _arrays(value, found)
    _arrays(model._means, found)
    return sum(a.nbytes for a in found.values()) / 2**20


_JOBS = {"fastrec": _job_fastrec, "surprise": _job_surprise, "serve": _job_serve}


def _run_job(job: dict, timeout: float = 1800) -> dict:
    """Run one job in a fresh interpreter; returns its result dict or {"error": ...}."""
    cmd = [sys.executable, "-m", "fastrec.benchmarks.knn", json.dumps(job)]
    env = dict(os.environ)
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        return {"error": (out.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(lines[-1])


def _fmt_mb(x: float) -> str:
    return f"{x:.1f} MB" if np.isfinite(x) else "n/a"


def compare(scale: float = 1.0, num_threads: int = 2, quick: bool = False) -> list[dict]:
    """KNNWithMeans-equivalent rows (RMSE, fit+predict time, peak memory) and serving memory.

    ``quick``: a small synthetic data set (a few seconds). Otherwise
    ml-latest-small 80/20 ``random_split`` (seed 0), with ``scale < 1`` keeping
    that fraction of its ratings, and the 1,000-user UserKNN serving row on
    ``synthetic(138_000, 27_000, 20_000_000) * scale``.
    """
    if quick:
        data: Any = [400, 1_500, 20_000]
        shape = "synthetic 400x1500, nnz 20000, 80/20 split"
    else:
        data = "movielens_small"
        shape = "ml-latest-small 80/20 split" + (f", {scale:.0%} of ratings" if scale < 1 else "")
    try:
        import surprise  # noqa: F401

        have_surprise = True
    except ImportError:
        have_surprise = False
    rows = []
    for user_based, name in ((True, "UserKNN"), (False, "ItemKNN")):
        job = {
            "kind": "fastrec",
            "data": data,
            "fraction": min(scale, 1.0),
            "user_based": user_based,
            "num_threads": num_threads,
        }
        # medians of several runs in one process each: one 20 ms run is at the
        # mercy of a single scheduling hiccup on a shared machine
        fast = _run_job(dict(job, repeat=1 if quick else 7))
        task = f"{name} pearson k=40 fit+predict"
        if "error" in fast:
            rows.append(
                row(
                    task,
                    shape,
                    None,
                    "surprise KNNWithMeans",
                    None,
                    note=f"fastrec failed: {fast['error']}",
                )
            )
            continue
        if not have_surprise:
            rows.append(
                row(
                    task,
                    shape,
                    fast["seconds"],
                    "surprise KNNWithMeans",
                    None,
                    quality=f"rmse {fast['rmse']:.4f}",
                    note=f"scikit-surprise not installed; peak {_fmt_mb(fast['peak_mb'])}",
                )
            )
            continue
        peer = _run_job(dict(job, kind="surprise", repeat=1 if quick else 3))
        if "error" in peer:
            rows.append(
                row(
                    task,
                    shape,
                    fast["seconds"],
                    "surprise KNNWithMeans",
                    None,
                    quality=f"rmse {fast['rmse']:.4f}",
                    note=f"surprise failed: {peer['error']}",
                )
            )
            continue
        mem_ratio = fast["peak_mb"] / peer["peak_mb"] if peer["peak_mb"] > 0 else float("nan")
        rows.append(
            row(
                task,
                shape,
                fast["seconds"],
                "surprise KNNWithMeans",
                peer["seconds"],
                quality=(
                    f"rmse {fast['rmse']:.4f} vs {peer['rmse']:.4f} (all test pairs); "
                    f"{fast['rmse_known']:.4f} vs {peer['rmse_known']:.4f} (known user+item); "
                    f"fastrec's default fallback (user/item mean) "
                    f"{fast['rmse_default_fallback']:.4f} (all)"
                ),
                note=(
                    f"peak memory {_fmt_mb(fast['peak_mb'])} vs {_fmt_mb(peer['peak_mb'])} "
                    f"(ratio {mem_ratio:.4f}); "
                    f"wall speed-up {peer['seconds'] / fast['seconds']:.0f}x "
                    f"(medians of {fast['runs']} and {peer['runs']} runs; ranges "
                    f"{fast['seconds_range'][0]:.4f}-{fast['seconds_range'][1]:.4f} s and "
                    f"{peer['seconds_range'][0]:.2f}-{peer['seconds_range'][1]:.2f} s); "
                    f"CPU time {fast['cpu_seconds']:.3f} s (all threads) vs "
                    f"{peer['cpu_seconds']:.2f} s, {peer['cpu_seconds'] / fast['cpu_seconds']:.0f}x"
                ),
            )
        )
    if not quick:
        dims = [
            max(1_000, int(138_000 * scale)),
            max(500, int(27_000 * scale)),
            max(10_000, int(20_000_000 * scale)),
        ]
        serve = _run_job(
            {"kind": "serve", "data": dims, "n_query": 1000, "num_threads": num_threads}
        )
        sshape = f"synthetic {dims[0]}x{dims[1]}, nnz {dims[2]}, 1000 query users, top 10"
        if "error" in serve:
            rows.append(
                row(
                    "UserKNN recommend 1000 users",
                    sshape,
                    None,
                    "-",
                    None,
                    note=f"failed: {serve['error']}",
                )
            )
        else:
            rows.append(
                row(
                    "UserKNN recommend 1000 users",
                    sshape,
                    serve["seconds"],
                    "-",
                    None,
                    note=(
                        f"memory above the fitted model: {_fmt_mb(serve['traced_mb'])} "
                        f"allocated at peak (tracemalloc: score blocks, per-thread scratch), "
                        f"resident-set high-water mark +{_fmt_mb(serve['peak_mb'])}; "
                        f"model (ratings by rows and columns, means) {_fmt_mb(serve['model_mb'])}; "
                        "no peer: no all-pairs user similarity is built"
                    ),
                )
            )
    return rows


if __name__ == "__main__":
    _job = json.loads(sys.argv[1])
    print(json.dumps(_JOBS[_job["kind"]](_job)))
