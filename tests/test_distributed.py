"""fastrec.distributed on a LocalCluster of worker processes: the same results as
the single-process library, the bytes the design implies, bad input, and a
worker killed in the middle of a fit."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastrec as fr

try:
    import dask.dataframe as dd
    import pandas as pd
    from distributed import Client, LocalCluster

    import fastrec.distributed as fd
except ImportError as exc:  # pragma: no cover - depends on the environment
    pytest.skip(
        f"the distributed extra is not installed (pip install 'fastrec[distributed]'): {exc}",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def client():
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def X():
    return fr.datasets.synthetic(1500, 400, 20000, seed=2)


@pytest.fixture(scope="module")
def D(client, X):
    return fd.DistributedInteractions.from_interactions(X, client, n_blocks=3).persist()


def _frame(X, shuffle_seed=0):
    u, i, r, _ = X.to_arrays()
    df = pd.DataFrame(
        {
            "user": np.char.add("u", X.user_ids[u].astype(str)).astype(object),
            "item": X.item_ids[i],
            "rating": r.astype(np.float64),
            "ts": np.arange(r.shape[0], dtype=np.int64)[::-1],
        }
    )
    return df.sample(frac=1.0, random_state=shuffle_seed).reset_index(drop=True)


def _same_interactions(a, b):
    for name in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(a.matrix, name), getattr(b.matrix, name))
    np.testing.assert_array_equal(a.user_ids, b.user_ids)
    np.testing.assert_array_equal(a.item_ids, b.item_ids)
    if b.timestamps is None:
        assert a.timestamps is None
    else:
        np.testing.assert_array_equal(a.timestamps, b.timestamps)
    assert a.implicit == b.implicit


# ------------------------------------------------------------------------- data
def test_from_interactions_round_trip(D, X):
    assert (D.n_users, D.n_items, D.nnz, D.n_blocks) == (X.n_users, X.n_items, X.nnz, 3)
    # nnz-balanced blocks: none holds more than twice its share
    per_block = np.add.reduceat(D.user_counts, D.user_bounds[:-1])
    assert per_block.max() <= 2 * X.nnz / 3
    _same_interactions(D.to_local(), X)


def test_read_parquet_and_csv_equal_from_dataframe(client, X, tmp_path):
    df = _frame(X)
    expected = fr.Interactions.from_dataframe(df, "user", "item", "rating", "ts")
    pq, csv = tmp_path / "pq", tmp_path / "csv"
    pq.mkdir()
    csv.mkdir()
    for p, chunk in enumerate(np.array_split(np.arange(len(df)), 5)):
        df.iloc[chunk].to_parquet(pq / f"part-{p}.parquet", index=False)
        df.iloc[chunk].to_csv(csv / f"part-{p}.csv", index=False)
    D = fd.read_interactions(str(pq), "user", "item", "rating", "ts", client=client)
    assert D.n_blocks == 2
    _same_interactions(D.to_local(), expected)
    D = fd.read_interactions(csv, "user", "item", "rating", "ts", client=client, n_blocks=4)
    _same_interactions(D.to_local(), expected)
    implicit = fd.read_interactions(str(pq), "user", "item", client=client).to_local()
    _same_interactions(implicit, fr.Interactions.from_dataframe(df, "user", "item", None))


# -------------------------------------------------------------------------- ALS
@pytest.mark.parametrize(
    "params",
    [
        dict(factors=8, iterations=3, implicit=True, solver="cg"),
        dict(
            factors=6,
            iterations=2,
            implicit=False,
            biases=False,
            solver="cholesky",
            regularization=0.1,
        ),
    ],
)
def test_als_equals_single_process(client, D, X, params):
    ref = fr.ALS(random_state=7, num_threads=2, **params).fit(X)
    model = fd.ALS(client=client, random_state=7, **params).fit(D)
    local = model.to_local()
    assert isinstance(local, fr.ALS)
    # bit-identical: every row is solved by the same operations
    np.testing.assert_array_equal(local.user_factors_, ref.user_factors_)
    np.testing.assert_array_equal(local.item_factors_, ref.item_factors_)
    np.testing.assert_array_equal(
        local.predict(X.user_ids[:5], X.item_ids[:5]), ref.predict(X.user_ids[:5], X.item_ids[:5])
    )
    # communication: each worker fetches the other side's blocks it lacks, once
    moved = [h["bytes_between_workers"] for h in model.history_]
    assert np.median(moved) == model.expected_bytes_per_iteration() > 0


def test_als_from_interactions_and_recommend(client, X, tmp_path):
    model = fd.ALS(client=client, n_blocks=2, factors=8, iterations=2, random_state=1).fit(X)
    ref = fr.ALS(factors=8, iterations=2, random_state=1).fit(X)
    recs = model.recommend(n=7)
    assert list(recs.columns) == ["user", "rank", "item", "score"]
    recs = recs.compute()
    ids, scores = ref.recommend(X.user_ids, n=7)
    keep = np.isfinite(scores)  # users with fewer than 7 unseen items: no padding rows
    np.testing.assert_array_equal(recs["user"].to_numpy(), np.repeat(X.user_ids, 7)[keep.ravel()])
    np.testing.assert_array_equal(
        recs["rank"].to_numpy(), np.tile(np.arange(1, 8), len(ids))[keep.ravel()]
    )
    np.testing.assert_array_equal(recs["item"].to_numpy(), ids[keep])
    np.testing.assert_allclose(recs["score"].to_numpy(), scores[keep], rtol=1e-6)
    model.recommend(n=3, exclude_seen=False, path=tmp_path / "recs")
    written = pd.read_parquet(tmp_path / "recs")
    assert len(written) == 3 * X.n_users
    ids3, _ = ref.recommend(X.user_ids, n=3, exclude_seen=False)
    np.testing.assert_array_equal(written["item"].to_numpy(), ids3.ravel())


# ------------------------------------------------------------------- similarity
@pytest.mark.parametrize(
    "kind,axis", [("pearson", "items"), ("cosine", "users"), ("adjusted_cosine", "items")]
)
def test_similarity_same_csr(client, D, X, kind, axis):
    S = fd.similarity(D, kind=kind, axis=axis, k=9, min_support=2, shrinkage=5.0)
    ref = fr.similarity(X, kind=kind, axis=axis, k=9, min_support=2, shrinkage=5.0)
    for name in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(S, name), getattr(ref, name))


# -------------------------------------------------------------------- bad input
def test_bad_client_and_n_blocks(client, X):
    closed = Client(client.scheduler.address)
    closed.close()
    with pytest.raises(ValueError, match="client is closed"):
        fd.DistributedInteractions.from_interactions(X, closed)
    with (
        LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as empty,
        Client(empty) as no_workers,
    ):
        with pytest.raises(ValueError, match="no workers"):
            fd.ALS(client=no_workers).fit(X)
    for bad in (0, -1, X.n_items + 1):
        with pytest.raises(ValueError, match="n_blocks"):
            fd.DistributedInteractions.from_interactions(X, client, n_blocks=bad)
    with pytest.raises(TypeError):
        fd.ALS(client=client, no_such_parameter=1)
    with pytest.raises(ValueError, match="factors"):
        fd.ALS(client=client, factors=0).fit(X)
    with pytest.raises(ValueError, match="biases=True needs implicit=False"):
        fd.ALS(client=client, implicit=True, biases=True).fit(X)
    users, items = X.user_ids[X.entry_users()], X.item_ids[X.matrix.indices]
    no_ratings = fr.Interactions.from_arrays(users, items)
    with pytest.raises(ValueError, match="no ratings"):
        fd.ALS(client=client, implicit=False).fit(no_ratings)


@pytest.mark.parametrize("solver", ["cg", "cholesky"])
def test_biased_explicit_als_equals_single_process(client, D, X, solver):
    """biases=None (on for explicit feedback) as fastrec.ALS: factors, biases, mu, lists."""
    params = dict(factors=5, iterations=3, implicit=False, solver=solver, regularization=0.1)
    ref = fr.ALS(random_state=3, num_threads=2, **params).fit(X)
    model = fd.ALS(client=client, random_state=3, **params).fit(D)
    local = model.to_local()
    assert local.intercept_ == ref.intercept_ != 0.0
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
        np.testing.assert_array_equal(getattr(local, name), getattr(ref, name), err_msg=name)
    assert np.abs(ref.item_bias_).max() > 0
    moved = [h["bytes_between_workers"] for h in model.history_]
    assert np.median(moved) == model.expected_bytes_per_iteration() > 0
    recs = model.recommend(n=4).compute()
    ids, scores = ref.recommend(X.user_ids, n=4)
    keep = np.isfinite(scores)
    np.testing.assert_array_equal(recs["item"].to_numpy(), ids[keep])
    np.testing.assert_allclose(recs["score"].to_numpy(), scores[keep], rtol=1e-6)


def test_bad_partitions_are_named(client, X, tmp_path):
    df = _frame(X).iloc[:600].reset_index(drop=True)
    parts = [df.iloc[:200], df.iloc[200:400], df.iloc[400:]]

    from dask import delayed as dask_delayed

    def dask_frame(frames):  # partitions that differ from the metadata, as files may
        return dd.from_delayed(
            [dask_delayed(f) for f in frames], meta=frames[0].iloc[:0], verify_meta=False
        )

    df.to_parquet(tmp_path / "a.parquet", index=False)
    with pytest.raises(ValueError, match="rating_col='stars' is missing from the Parquet file"):
        fd.read_interactions(tmp_path / "a.parquet", "user", "item", "stars", client=client)
    # one Parquet file lacks the rating column
    (tmp_path / "files").mkdir()
    for p, part in enumerate([parts[0], parts[1].drop(columns="rating"), parts[2]]):
        part.to_parquet(tmp_path / "files" / f"part-{p}.parquet", index=False)
    with pytest.raises(ValueError, match="rating_col='rating' is missing from .*part-1.parquet"):
        fd.read_interactions(tmp_path / "files", "user", "item", "rating", client=client)
    # a partition of a dask DataFrame built without checking its metadata
    short = [parts[0], parts[1].drop(columns="rating"), parts[2]]
    ddf = dd.from_delayed(
        [dask_delayed(f) for f in short], meta=parts[0].iloc[:0], verify_meta=False
    )
    with pytest.raises(ValueError, match="rating_col='rating' is not a column of partition 1"):
        fd.read_interactions(ddf, "user", "item", "rating", client=client)
    # NaN rating in partition 2
    nan = parts[2].copy()
    nan.loc[nan.index[5], "rating"] = np.nan
    with pytest.raises(ValueError, match="'rating' has a NaN.*partition 2 at row 5"):
        fd.read_interactions(
            dask_frame([parts[0], parts[1], nan]), "user", "item", "rating", client=client
        )
    # ids of mixed kinds across partitions: str user ids in 0 and 2, numbers in 1
    numbers = parts[1].copy()
    numbers["user"] = np.arange(len(numbers)).astype(object)
    with pytest.raises(
        ValueError, match=r"'user' holds str ids in partition 0 but number ids in partition 1"
    ):
        fd.read_interactions(
            dask_frame([parts[0], numbers, parts[2]]), "user", "item", client=client
        )
    mixed = parts[1].copy()
    mixed["user"] = mixed["user"].astype(object)
    mixed.loc[mixed.index[3], "user"] = 17
    with pytest.raises(ValueError, match="'user' holds ids of mixed.*partition 1"):
        fd.read_interactions(dask_frame([parts[0], mixed, parts[2]]), "user", "item", client=client)
    missing = parts[0].copy()
    missing.loc[missing.index[4], "item"] = None
    with pytest.raises(ValueError, match="'item' has a missing id.*partition 0 at row 4"):
        fd.read_interactions(
            dask_frame([missing, parts[1], parts[2]]), "user", "item", client=client
        )
    dup = pd.concat([parts[0], parts[0].iloc[:1]])
    with pytest.raises(ValueError, match="duplicate \\(user, item\\) pair"):
        fd.read_interactions(dask_frame([dup, parts[1]]), "user", "item", client=client)
    negative = parts[0].copy()
    negative["rating"] = -negative["rating"]
    signed = fd.read_interactions(
        dask_frame([negative, parts[1]]), "user", "item", "rating", client=client
    )
    with pytest.raises(ValueError, match="negative value"):
        fd.ALS(client=client, implicit=True).fit(signed)
    assert signed.nnz == 400  # nothing dropped


# --------------------------------------------------------------- fault tolerance
def test_worker_killed_mid_fit_gives_the_same_factors(client, X):
    """Runs last: kills a worker process (its nanny starts a new one)."""
    params = dict(factors=8, iterations=4, random_state=3)
    ref = fr.ALS(num_threads=2, **params).fit(X)
    D = fd.DistributedInteractions.from_interactions(X, client, n_blocks=2)
    killed = []

    def kill_one_worker(iteration, info):
        if iteration == 1 and not killed:
            # the worker that holds user block 0, its data and its factors
            holder = sorted(client.who_has([D.user_blocks[0]])[D.user_blocks[0].key])[0]
            pid = client.run(os.getpid, workers=[holder])[holder]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    start = time.perf_counter()
    pool = ThreadPoolExecutor(1)
    future = pool.submit(
        lambda: fd.ALS(client=client, **params).fit(D, callback=kill_one_worker).to_local()
    )
    try:
        local = future.result(timeout=120)  # no task waits forever for the dead worker
    finally:
        pool.shutdown(wait=False)
    assert killed
    assert time.perf_counter() - start < 120
    np.testing.assert_array_equal(local.user_factors_, ref.user_factors_)
    np.testing.assert_array_equal(local.item_factors_, ref.item_factors_)
