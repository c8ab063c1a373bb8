"""How the ItemKNN / UserKNN defaults were chosen (similarity, shrinkage, k).

For each candidate: p@10 and ndcg@10 on three 80/20 random splits of
ml-latest-small (protocol of ``bench/knn_topn.py``), RMSE of ``predict`` on
the test ratings, and the median number of co-ratings behind the 10
neighbours ``similar_items`` returns for the 50 most-rated items.

    python bench/knn_defaults.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import fastrec as fr

sys.path.insert(0, str(Path(__file__).parent))
from knn_topn import relevant_sets, score_lists  # noqa: E402

CANDIDATES = [
    ("pearson", 0.0, 40),
    ("pearson", 100.0, 40),
    ("cosine", 0.0, 40),
    ("cosine", 10.0, 40),
    ("cosine", 25.0, 40),
    ("cosine", 50.0, 40),
    ("cosine", 100.0, 40),
    ("tfidf", 10.0, 40),
    ("bm25", 10.0, 100),
]


def co_rating_median(model, train):
    counts = np.diff(train.matrix.tocsc().indptr)
    top = np.argsort(-counts, kind="stable")[:50]
    ids, _ = model.similar_items(train.item_ids[top], n=10)
    B = train.matrix.tocsc().astype(bool).astype(np.float32)
    co = []
    for row, i in enumerate(top):
        nb = train.item_index(ids[row][ids[row] != -1])
        co.extend((B[:, nb].T @ B[:, i]).toarray().ravel().tolist())
    return float(np.median(co))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args()
    X = fr.datasets.movielens_small()
    splits = [fr.split.random_split(X, seed=s) for s in args.seeds]
    print(
        "| model | similarity | shrinkage | k | p@10 per seed | ndcg@10 per seed |"
        f" RMSE seed {args.seeds[0]} | median co-ratings |"
    )
    print("|---|---|---|---|---|---|---|---|")
    pop = []
    for train, test in splits:
        rel = relevant_sets(train, test)
        users = np.array(sorted(rel))
        m = fr.Popularity().fit(train)
        idx = train.item_index(m.recommend(train.user_ids[users], n=10)[0])
        pop.append(score_lists(idx, users, rel))
    p_txt = " ".join(f"{p:.4f}" for p, _ in pop)
    n_txt = " ".join(f"{n:.4f}" for _, n in pop)
    print(f"| Popularity | | | | {p_txt} | {n_txt} | | |")
    for cls in (fr.ItemKNN, fr.UserKNN):
        for sim, shr, k in CANDIDATES:
            ps, ns = [], []
            rmse = co = None
            for s, (train, test) in enumerate(splits):
                rel = relevant_sets(train, test)
                users = np.array(sorted(rel))
                m = cls(similarity=sim, shrinkage=shr, k=k).fit(train)
                idx = train.item_index(m.recommend(train.user_ids[users], n=10)[0])
                p, n = score_lists(idx, users, rel)
                ps.append(p)
                ns.append(n)
                if s == 0:
                    tu, ti, tr, _ = test.to_arrays()
                    pred = m.predict(test.user_ids[tu], test.item_ids[ti])
                    rmse = float(np.sqrt(np.mean((pred - tr) ** 2)))
                    if cls is fr.ItemKNN:
                        co = co_rating_median(m, train)
            co_txt = "-" if co is None else f"{co:g}"
            p_txt = " ".join(f"{p:.4f}" for p in ps)
            n_txt = " ".join(f"{n:.4f}" for n in ns)
            print(
                f"| {cls.__name__} | {sim} | {shr:g} | {k} | {p_txt} | {n_txt} | {rmse:.4f} "
                f"| {co_txt} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
