"""Top-N quality of the neighbourhood models beside implicit's item-item models.

Protocol: ml-latest-small (bundled), ``fr.split.random_split(X, seed=s)`` (80/20),
relevant items = test ratings >= 4, items seen in training excluded, full
ranking over all items, averages over the users with at least one relevant
test item. implicit's models are fitted on the binarised training matrix.

    python bench/knn_topn.py --seeds 0 1 2
    python bench/knn_topn.py --seeds 0 --grid     # the settings compared for the defaults
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import fastrec as fr

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def relevant_sets(train, test):
    T = test.matrix.tocsr()
    rel = {}
    for u in range(T.shape[0]):
        a, b = T.indptr[u], T.indptr[u + 1]
        items = T.indices[a:b][T.data[a:b] >= 4.0]
        if items.size:
            rel[u] = set(items.tolist())
    return rel


def score_lists(lists, users, rel, k=10):
    """Mean precision@k and ndcg@k of ``lists`` (rows: internal item indices)."""
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    p = n = 0.0
    for row, u in enumerate(users):
        r = rel[u]
        hits = np.array([i in r for i in lists[row, :k]], dtype=float)
        p += hits.sum() / k
        ideal = disc[: min(len(r), k)].sum()
        n += (hits * disc).sum() / ideal
    return p / len(users), n / len(users)


def run_fastrec(model, train, users, rel):
    t = time.perf_counter()
    model.fit(train)
    raw = train.user_ids[users] if hasattr(train, "user_ids") else users
    ids, _ = model.recommend(raw, n=10)
    idx = train.item_index(ids)
    secs = time.perf_counter() - t
    return (*score_lists(idx, users, rel), secs)


def run_implicit(model, train, users, rel):
    B = train.matrix.tocsr().astype(np.float32).copy()
    B.data[:] = 1.0
    t = time.perf_counter()
    model.fit(B, show_progress=False)
    idx, _ = model.recommend(np.asarray(users), B[users], N=10, filter_already_liked_items=True)
    secs = time.perf_counter() - t
    return (*score_lists(idx, users, rel), secs)


def models(grid):
    out = {
        "Popularity": lambda: fr.Popularity(),
        "ItemKNN()": lambda: fr.ItemKNN(),
        "UserKNN()": lambda: fr.UserKNN(),
        "ItemKNN(similarity='pearson', shrinkage=0, ranking='rating') [old defaults]": (
            lambda: fr.ItemKNN(similarity="pearson", shrinkage=0.0, ranking="rating")
        ),
        "UserKNN(similarity='pearson', shrinkage=0, ranking='rating') [old defaults]": (
            lambda: fr.UserKNN(similarity="pearson", shrinkage=0.0, ranking="rating")
        ),
    }
    if grid:
        for sim in ("pearson", "pearson_baseline", "cosine", "tfidf", "bm25"):
            for shr in (0.0, 10.0, 100.0):
                for rank in ("sum", "weighted"):
                    for k in (20, 40, 100):
                        out[f"ItemKNN({sim},shr={shr:g},{rank},k={k})"] = (
                            lambda sim=sim, shr=shr, rank=rank, k=k: fr.ItemKNN(
                                k=k, similarity=sim, shrinkage=shr, ranking=rank
                            )
                        )
                        out[f"UserKNN({sim},shr={shr:g},{rank},k={k})"] = (
                            lambda sim=sim, shr=shr, rank=rank, k=k: fr.UserKNN(
                                k=k, similarity=sim, shrinkage=shr, ranking=rank
                            )
                        )
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--grid", action="store_true")
    ap.add_argument("--only", default=None, help="substring filter on model names")
    args = ap.parse_args()
    X = fr.datasets.movielens_small()
    for seed in args.seeds:
        train, test = fr.split.random_split(X, seed=seed)
        rel = relevant_sets(train, test)
        users = np.array(sorted(rel), dtype=np.int64)
        print(f"## seed {seed}: {len(users)} users with relevant test items")
        print("| model | p@10 | ndcg@10 | fit+recommend s |")
        print("|---|---|---|---|")
        rows = []
        if not args.grid:
            from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

            for name, m in (
                ("implicit CosineRecommender(K=20)", CosineRecommender(K=20)),
                ("implicit BM25Recommender(K=100)", BM25Recommender(K=100)),
            ):
                rows.append((name, *run_implicit(m, train, users, rel)))
                print("| {} | {:.4f} | {:.4f} | {:.2f} |".format(*rows[-1]), flush=True)
        for name, make in models(args.grid).items():
            if args.only and args.only not in name:
                continue
            rows.append((name, *run_fastrec(make(), train, users, rel)))
            print("| {} | {:.4f} | {:.4f} | {:.2f} |".format(*rows[-1]), flush=True)


if __name__ == "__main__":
    main()
