"""KNNBaseline: fastrec ItemKNN configured as scikit-surprise's KNNBaseline, beside it.

ml-latest-small (bundled), ``fr.split.random_split(X, seed=0)`` (80/20); RMSE on
every test pair; fit + predict wall time; the two sides alternate, each repeated, medians quoted.

    python bench/knn_baseline.py --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd

import fastrec as fr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--backend", default="auto")
    args = ap.parse_args()
    import surprise

    X = fr.datasets.movielens_small()
    train, test = fr.split.random_split(X, seed=args.seed)
    tu, ti, tr, _ = test.to_arrays()  # internal indices -> raw ids below
    tu, ti = test.user_ids[tu], test.item_ids[ti]
    u, i, r, _ = train.to_arrays()
    u, i = train.user_ids[u], train.item_ids[i]
    df = pd.DataFrame({"u": u, "i": i, "r": r})
    reader = surprise.Reader(rating_scale=(float(r.min()), float(r.max())))
    fr_times, sp_times = [], []
    for _ in range(args.repeats):  # alternate the two sides: same load on both
        t = time.perf_counter()
        model = fr.ItemKNN(
            k=40,
            similarity="pearson_baseline",
            centering="baseline",
            shrinkage=100,
            fallback="global",
            num_threads=args.threads,
            backend=args.backend,
        ).fit(train)
        got = model.predict(tu, ti)
        fr_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        ts = surprise.Dataset.load_from_df(df, reader).build_full_trainset()
        algo = surprise.KNNBaseline(
            k=40, sim_options={"name": "pearson_baseline", "user_based": False}, verbose=False
        ).fit(ts)
        want = np.array([algo.predict(a, b).est for a, b in zip(tu, ti)])
        sp_times.append(time.perf_counter() - t)
    rmse_fr = float(np.sqrt(np.mean((got - tr) ** 2)))
    rmse_sp = float(np.sqrt(np.mean((want - tr) ** 2)))
    f, s = statistics.median(fr_times), statistics.median(sp_times)
    print(f"test pairs {len(tu)}; max |fastrec - surprise| = {np.abs(got - want).max():.2e}")
    print(f"| model | RMSE | fit+predict s (median of {args.repeats}) |")
    print("|---|---|---|")
    print(f"| surprise KNNBaseline (item, pearson_baseline, k=40) | {rmse_sp:.4f} | {s:.2f} |")
    print(
        f"| fastrec ItemKNN (same configuration, backend={args.backend}) "
        f"| {rmse_fr:.4f} | {f:.3f} |"
    )
    print(f"speed-up {s / f:.1f}x; runs fastrec {fr_times}, surprise {sp_times}")


if __name__ == "__main__":
    main()
