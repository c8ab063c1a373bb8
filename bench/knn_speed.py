"""ItemKNN fit + top-10 for every user, beside implicit's CosineRecommender(K=20).

Both on 2 threads, in one process, alternating, ``--repeats`` times; medians.
implicit gets the binarised matrix; its timed region is ``fit`` plus one batch
``recommend`` of every user (N=10, seen items filtered); fastrec's is
``ItemKNN().fit`` plus ``recommend`` of every user (n=10, seen excluded).

    python bench/knn_speed.py --users 138000 --items 27000 --nnz 20000000 --repeats 3
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
    ap.add_argument("--users", type=int, default=138_000)
    ap.add_argument("--items", type=int, default=27_000)
    ap.add_argument("--nnz", type=int, default=20_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--backend", default="auto")
    args = ap.parse_args()
    from implicit.nearest_neighbours import CosineRecommender

    X = fr.datasets.synthetic(args.users, args.items, args.nnz)
    B = X.matrix.tocsr().astype(np.float32)
    B.data[:] = 1.0
    users = np.arange(X.n_users)
    # warm-up (compiles the Numba kernels if that backend is used)
    small = fr.datasets.synthetic(200, 100, 2000)
    fr.ItemKNN(num_threads=args.threads, backend=args.backend).fit(small).recommend(
        small.user_ids, n=10
    )
    t_fr, t_im = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        m = fr.ItemKNN(num_threads=args.threads, backend=args.backend).fit(X)
        _ = m.similarity_  # the neighbour lists (built on first use)
        t_fit = time.perf_counter() - t
        ids, _ = m.recommend(X.user_ids, n=10)
        t_fr.append(time.perf_counter() - t)
        print(f"fastrec ItemKNN: fit {t_fit:.1f} s, fit+recommend {t_fr[-1]:.1f} s", flush=True)
        del m, ids
        im = CosineRecommender(K=20, num_threads=args.threads)
        t = time.perf_counter()
        im.fit(B, show_progress=False)
        t_fit = time.perf_counter() - t
        im.recommend(users, B, N=10, filter_already_liked_items=True)
        t_im.append(time.perf_counter() - t)
        print(
            f"implicit Cosine(K=20): fit {t_fit:.1f} s, fit+recommend {t_im[-1]:.1f} s", flush=True
        )
        del im
    f, i = statistics.median(t_fr), statistics.median(t_im)
    print(
        f"shape {args.users}x{args.items}, {X.nnz} ratings; medians of {args.repeats}: "
        f"fastrec {f:.1f} s, implicit {i:.1f} s, ratio fastrec/implicit {f / i:.2f}"
    )


if __name__ == "__main__":
    main()
