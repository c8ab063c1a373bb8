"""fastrec.distributed against one process and against Spark MLlib ALS.

Commands (from the repository root; results are printed and written as JSON)::

    python bench/bench_distributed.py overhead [--iterations 5] [--rounds 2]
    python bench/bench_distributed.py spark    [--iterations 3] [--spark-iterations 1 2]
    python bench/bench_distributed.py scale    [--iterations 2]

``overhead``
    ``synthetic(138_000, 27_000, 5_000_000, seed=0)``, implicit feedback,
    factors 64, ``cg_steps=3``: seconds per iteration of ``fastrec.ALS(num_threads=2)``
    and of ``fastrec.distributed.ALS`` on a ``LocalCluster`` of 2 worker processes
    x 1 thread, in the same process, ``rounds`` times each, alternating; medians
    over all the iterations. Also checks that the factors are bitwise equal and
    compares the bytes the workers report having sent each other per iteration
    with what the design implies (``expected_bytes_per_iteration``).
``spark``
    The same data and model in Spark MLlib (``pyspark.ml.recommendation.ALS``,
    ``local[2]``, ``rank=64``, ``implicitPrefs=True``, ``alpha=1``,
    ``regParam=0.01``, ``numUserBlocks=2, numItemBlocks=2``), fitted with
    ``maxIter`` = each of ``--spark-iterations``; Spark's seconds per iteration
    are the difference of the fit times divided by the difference of the
    iterations (so its set-up is not counted), against fastrec.distributed's
    median per iteration measured in the same run. ``--spark-warmup`` fits once
    before timing (the JVM's first fit is slower: class loading, JIT), so the
    difference is not shortened by the warm-up. CPU seconds (all threads, from
    ``/proc``) are recorded beside the wall times: the JVM's for Spark; the
    client's, the scheduler's and the workers' for fastrec.distributed; the
    process's for fastrec.ALS.
``scale``
    20M ratings (:func:`tiled_synthetic`: the 5M data above repeated 4 times
    along the items, 138,000 users x 108,000 items) written as 8 Parquet files,
    read by ``read_interactions`` on a ``LocalCluster`` of 4 worker processes x
    1 thread (4 blocks a side), fitted
    for ``--iterations``; checks the factors against ``fastrec.ALS`` on the same
    data and the bytes against the design. On a 2-core machine the 4 workers
    share 2 cores, so its seconds say nothing about speed: it is a test of
    equality and of traffic at a size and worker count beyond the unit tests.

``--cache DIR`` keeps the generated data between runs (an ``.npz`` of the
matrix: the same data as the generator's).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

import numpy as np
import scipy.sparse as sp

import fastrec as fr

SHAPE = (138_000, 27_000, 5_000_000)
PARAMS = dict(factors=64, regularization=0.01, alpha=1.0, cg_steps=3, implicit=True)


def _cached(name: str, make, cache: str | None) -> fr.Interactions:
    if cache:
        path = os.path.join(cache, f"{name}.npz")
        if os.path.exists(path):
            with np.load(path, allow_pickle=False) as z:
                m = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
                return fr.Interactions.from_csr(m, z["user_ids"], z["item_ids"])
    X = make()
    if cache:
        os.makedirs(cache, exist_ok=True)
        m = X.matrix
        np.savez(
            os.path.join(cache, f"{name}.npz"), data=m.data, indices=m.indices, indptr=m.indptr,
            shape=np.asarray(m.shape), user_ids=X.user_ids, item_ids=X.item_ids,
        )  # fmt: skip
    return X


def tiled_synthetic(copies: int = 4) -> fr.Interactions:
    """``synthetic(138_000, 27_000, 5_000_000, seed=0)`` repeated ``copies`` times
    along the items (copy ``c`` uses item ids ``c * 27_000 + j``): 138,000 users,
    108,000 items and 20M ratings for 4 copies, made in seconds (``synthetic``
    itself takes minutes at 20M)."""
    X = fr.datasets.synthetic(*SHAPE, seed=0)
    u, i, r, _ = X.to_arrays()
    n = X.n_items
    return fr.Interactions.from_arrays(
        np.tile(X.user_ids[u], copies),
        np.concatenate([X.item_ids[i] + c * n for c in range(copies)]),
        np.tile(r, copies),
    )


def _cluster(n_workers: int):
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None
    )
    return cluster, Client(cluster)


def _cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system, all threads) of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cluster_cpu(client) -> float:
    """CPU seconds so far of the client, the scheduler and every worker process."""
    workers = client.run(lambda: _cpu_seconds(os.getpid()))
    scheduler = client.run_on_scheduler(lambda: _cpu_seconds(os.getpid()))
    return sum(workers.values()) + scheduler + _cpu_seconds(os.getpid())


def _fit_local(X, iterations, seed=0):
    cpu = [_cpu_seconds(os.getpid())]
    model = fr.ALS(iterations=iterations, random_state=seed, num_threads=2, **PARAMS)
    model.fit(X, callback=lambda it, info: cpu.append(_cpu_seconds(os.getpid())))
    model.cpu_per_iteration_ = list(np.diff(cpu))
    return model, [h["seconds"] for h in model.history_]


def _fit_distributed(D, client, iterations, seed=0):
    import fastrec.distributed as fd

    cpu = [_cluster_cpu(client)]
    model = fd.ALS(client=client, iterations=iterations, random_state=seed, **PARAMS)
    model.fit(D, callback=lambda it, info: cpu.append(_cluster_cpu(client)))
    model.cpu_per_iteration_ = list(np.diff(cpu))
    return model, [h["seconds"] for h in model.history_]


def _equal(local, dist):
    d = dist.to_local()
    return {
        "bitwise_equal": bool(
            np.array_equal(d.user_factors_, local.user_factors_)
            and np.array_equal(d.item_factors_, local.item_factors_)
        ),
        "allclose_rtol_1e-4": bool(
            np.allclose(d.user_factors_, local.user_factors_, rtol=1e-4, atol=1e-7)
            and np.allclose(d.item_factors_, local.item_factors_, rtol=1e-4, atol=1e-7)
        ),
    }


def _bytes(model):
    moved = [h["bytes_between_workers"] for h in model.history_]
    return {
        "bytes_per_iteration_measured": moved,
        "bytes_per_iteration_design": model.expected_bytes_per_iteration(),
    }


def overhead(args) -> dict:
    import fastrec.distributed as fd

    X = _cached("synthetic_5m", lambda: fr.datasets.synthetic(*SHAPE, seed=0), args.cache)
    cluster, client = _cluster(2)
    try:
        D = fd.DistributedInteractions.from_interactions(X, client).persist()
        local_s, dist_s, local_cpu, dist_cpu = [], [], [], []
        for _ in range(args.rounds):
            local, s = _fit_local(X, args.iterations)
            local_s += s
            local_cpu += local.cpu_per_iteration_
            dist, s = _fit_distributed(D, client, args.iterations)
            dist_s += s
            dist_cpu += dist.cpu_per_iteration_
        out = {
            "data": f"synthetic{SHAPE}",
            "single_process_s_per_iteration": local_s,
            "distributed_s_per_iteration": dist_s,
            "median_single": statistics.median(local_s),
            "median_distributed": statistics.median(dist_s),
            "single_process_cpu_s_per_iteration": local_cpu,
            "distributed_cpu_s_per_iteration": dist_cpu,
            "cpu_ratio": statistics.median(dist_cpu) / statistics.median(local_cpu),
            **_equal(local, dist),
            **_bytes(dist),
        }
        out["ratio"] = out["median_distributed"] / out["median_single"]
        return out
    finally:
        client.close()
        cluster.close()


def spark(args) -> dict:
    import pandas as pd
    from pyspark.ml.recommendation import ALS as SparkALS
    from pyspark.sql import SparkSession

    import fastrec.distributed as fd

    X = _cached("synthetic_5m", lambda: fr.datasets.synthetic(*SHAPE, seed=0), args.cache)
    cluster, client = _cluster(2)
    try:
        D = fd.DistributedInteractions.from_interactions(X, client).persist()
        dist, dist_s = _fit_distributed(D, client, args.iterations)
    finally:
        client.close()
        cluster.close()
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.driver.memory", "6g")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    try:
        u, i, r, _ = X.to_arrays()
        frame = spark.createDataFrame(
            pd.DataFrame({"user": u.astype(np.int32), "item": i, "rating": r})
        ).cache()
        frame.count()
        jvm = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
        spark_fit, spark_cpu = {}, {}
        if args.spark_warmup:  # a first fit warms the JVM (class loading, JIT)
            SparkALS(
                rank=PARAMS["factors"], maxIter=1, implicitPrefs=True, numUserBlocks=2,
                numItemBlocks=2, userCol="user", itemCol="item", ratingCol="rating",
            ).fit(frame).userFactors.count()  # fmt: skip
        for iters in args.spark_iterations:
            als = SparkALS(
                rank=PARAMS["factors"], maxIter=iters, regParam=PARAMS["regularization"],
                alpha=PARAMS["alpha"], implicitPrefs=True, numUserBlocks=2, numItemBlocks=2,
                userCol="user", itemCol="item", ratingCol="rating", seed=0,
            )  # fmt: skip
            cpu = _cpu_seconds(jvm)
            start = time.perf_counter()
            model = als.fit(frame)
            model.userFactors.count()
            spark_fit[iters] = time.perf_counter() - start
            spark_cpu[iters] = _cpu_seconds(jvm) - cpu
    finally:
        spark.stop()
    a, b = min(spark_fit), max(spark_fit)
    per_iter = (spark_fit[b] - spark_fit[a]) / (b - a)
    cpu_per_iter = (spark_cpu[b] - spark_cpu[a]) / (b - a)
    out = {
        "data": f"synthetic{SHAPE}",
        "distributed_s_per_iteration": dist_s,
        "median_distributed": statistics.median(dist_s),
        "distributed_cpu_s_per_iteration": dist.cpu_per_iteration_,
        "spark_warmup_fit": bool(args.spark_warmup),
        "spark_fit_seconds_by_max_iter": spark_fit,
        "spark_fit_cpu_seconds_by_max_iter": spark_cpu,
        "spark_s_per_iteration": per_iter,
        "spark_cpu_s_per_iteration": cpu_per_iter,
    }
    out["spark_over_distributed"] = per_iter / out["median_distributed"]
    out["spark_over_distributed_cpu"] = cpu_per_iter / statistics.median(dist.cpu_per_iteration_)
    return out


def scale(args) -> dict:
    import pandas as pd

    import fastrec.distributed as fd

    X = _cached("tiled_20m", tiled_synthetic, args.cache)
    u, i, r, _ = X.to_arrays()
    with tempfile.TemporaryDirectory() as tmp:
        order = np.random.default_rng(1).permutation(X.nnz)  # files in no particular order
        for p, chunk in enumerate(np.array_split(order, 8)):
            pd.DataFrame(
                {"user": X.user_ids[u[chunk]], "item": X.item_ids[i[chunk]], "rating": r[chunk]}
            ).to_parquet(os.path.join(tmp, f"part-{p}.parquet"), index=False)
        del order
        local, local_s = _fit_local(X, args.iterations)
        cluster, client = _cluster(4)
        try:
            start = time.perf_counter()
            D = fd.read_interactions(tmp, "user", "item", "rating", client=client)
            read_s = time.perf_counter() - start
            same_data = D.nnz == X.nnz and D.shape == X.shape
            dist, dist_s = _fit_distributed(D, client, args.iterations)
            out = {
                "data": f"tiled_synthetic(4): {X.n_users} x {X.n_items}, nnz {X.nnz}, 8 files",
                "workers": 4,
                "n_blocks": D.n_blocks,
                "read_interactions_s": read_s,
                "same_shape_and_nnz": bool(same_data),
                "single_process_s_per_iteration": local_s,
                "distributed_s_per_iteration": dist_s,
                **_equal(local, dist),
                **_bytes(dist),
            }
        finally:
            client.close()
            cluster.close()
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["overhead", "spark", "scale"])
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--spark-iterations", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--spark-warmup", action="store_true", help="one fit before timing")
    parser.add_argument("--cache", default=None)
    parser.add_argument("--out", default=None, help="JSON file (default bench/results/)")
    args = parser.parse_args(argv)
    if args.iterations is None:
        args.iterations = {"overhead": 5, "spark": 3, "scale": 2}[args.what]
    start = time.perf_counter()
    result = {"overhead": overhead, "spark": spark, "scale": scale}[args.what](args)
    result["command"] = "python bench/bench_distributed.py " + " ".join(argv or sys.argv[1:])
    result["total_seconds"] = time.perf_counter() - start
    result["machine"] = f"{platform.machine()}, {os.cpu_count()} cpus, load {os.getloadavg()}"
    text = json.dumps(result, indent=1, default=str)
    print(text)
    out = args.out or os.path.join(
        os.path.dirname(__file__), "results", f"distributed_{args.what}.json"
    )
    with open(out, "w") as fh:
        fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
