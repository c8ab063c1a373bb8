"""Foundation figures for BENCHMARKS.md: data build, synthetic data, import and compile times.

Usage: python bench/foundation.py [--scale 1.0]
Prints a markdown table. Memory is the peak of NumPy allocations traced by
tracemalloc during the call, beyond the inputs that already existed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc

import numpy as np


def _traced(fn):
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn()
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, elapsed, peak


def _subprocess_seconds(code: str, env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--scale", type=float, default=1.0)
    args = p.parse_args()
    import fastrec as fr

    n_users, n_items, nnz = (
        int(138_000 * args.scale),
        int(27_000 * args.scale),
        int(20_000_000 * args.scale),
    )
    rows = []
    X, t_syn, peak_syn = _traced(lambda: fr.datasets.synthetic(n_users, n_items, nnz, seed=0))
    rows.append((f"synthetic({n_users}, {n_items}, {nnz})", t_syn, peak_syn, ""))

    u, i, r, ts = X.to_arrays()
    rng = np.random.default_rng(0)
    perm = rng.permutation(X.nnz)
    users = X.user_ids[u][perm].astype(np.int64)
    items = X.item_ids[i][perm].astype(np.int64)
    ratings = r[perm].astype(np.float64)
    del X, u, i, r, ts, perm
    input_bytes = users.nbytes + items.nbytes + ratings.nbytes
    Y, t_build, peak_build = _traced(lambda: fr.Interactions.from_arrays(users, items, ratings))
    rows.append(
        (
            f"Interactions.from_arrays, {nnz} shuffled int64/int64/float64 triples",
            t_build,
            peak_build,
            f"{peak_build / input_bytes:.2f}x the inputs ({input_bytes / 2**20:.0f} MiB)",
        )
    )
    del Y

    env = dict(os.environ)
    t_import = min(_subprocess_seconds("import fastrec", env) for _ in range(3))
    t_python = min(_subprocess_seconds("pass", env) for _ in range(3))
    rows.append(
        ("cold `import fastrec` (minus bare interpreter start)", t_import - t_python, None, "")
    )
    code = (
        "import time, numpy as np, fastrec as fr; s=np.random.rand(64,500).astype(np.float32);"
        "t=time.perf_counter(); fr.topk(s, 10, backend='numba'); print(time.perf_counter()-t)"
    )
    with tempfile.TemporaryDirectory() as cache:
        env_cache = {**env, "NUMBA_CACHE_DIR": cache}
        first = subprocess.run(
            [sys.executable, "-c", code], env=env_cache, capture_output=True, text=True, check=True
        )
        second = subprocess.run(
            [sys.executable, "-c", code], env=env_cache, capture_output=True, text=True, check=True
        )
    rows.append(
        ("first call of a Numba kernel (topk), empty cache: compile", float(first.stdout), None, "")
    )
    rows.append(
        ("first call of a Numba kernel (topk), warm on-disk cache", float(second.stdout), None, "")
    )
    code_cy = code.replace("'numba'", "'cython'")
    cy = subprocess.run(
        [sys.executable, "-c", code_cy], env=env, capture_output=True, text=True, check=True
    )
    rows.append(("first call of the Cython kernel (topk)", float(cy.stdout), None, ""))

    print("| step | seconds | peak traced memory | note |")
    print("|---|---|---|---|")
    for name, secs, peak, note in rows:
        mem = f"{peak / 2**20:.0f} MiB" if peak is not None else "-"
        print(f"| {name} | {secs:.3f} | {mem} | {note} |")


if __name__ == "__main__":
    main()
