"""Item-item Pearson top-20 beside implicit's CosineRecommender(K=20), per data seed.

For each seed of ``fr.datasets.synthetic(138_000, 27_000, 20_000_000, seed)``:
``fr.similarity(X, kind="pearson", axis="items", k=20)`` against implicit's
``CosineRecommender(K=20).fit`` on the binarised matrix (the cheaper measure:
implicit has no co-rated Pearson), both on ``--threads`` threads, alternating
within the seed, ``--repeats`` times; medians and their ratio.

    python bench/pearson_seeds.py --seeds 0 1 2 3 --repeats 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import fastrec as fr  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--users", type=int, default=138_000)
    ap.add_argument("--items", type=int, default=27_000)
    ap.add_argument("--nnz", type=int, default=20_000_000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--backend", default="auto")
    args = ap.parse_args()
    from implicit.nearest_neighbours import CosineRecommender

    # warm-up (loads or compiles the kernels outside the timed region)
    fr.similarity(fr.datasets.synthetic(200, 50, 2000), kind="pearson", backend=args.backend)
    print("| seed | fastrec pearson s | implicit cosine s | ratio |")
    print("|---|---|---|---|")
    for seed in args.seeds:
        X = fr.datasets.synthetic(args.users, args.items, args.nnz, seed=seed)
        B = X.matrix.tocsr().astype(np.float32)
        B.data[:] = 1.0
        ours, theirs = [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            fr.similarity(
                X, kind="pearson", axis="items", k=20, backend=args.backend,
                num_threads=args.threads,
            )  # fmt: skip
            ours.append(time.perf_counter() - t)
            model = CosineRecommender(K=20, num_threads=args.threads)
            t = time.perf_counter()
            model.fit(B, show_progress=False)
            theirs.append(time.perf_counter() - t)
        a, b = statistics.median(ours), statistics.median(theirs)
        print(f"| {seed} | {a:.1f} ({', '.join(f'{v:.1f}' for v in ours)}) "
              f"| {b:.1f} ({', '.join(f'{v:.1f}' for v in theirs)}) | {a / b:.2f} |",
              flush=True)  # fmt: skip
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
