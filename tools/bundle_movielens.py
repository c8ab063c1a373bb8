"""Rebuild fastrec/datasets/data/ml_latest_small.npz from a ml-latest-small folder.

Usage: python tools/bundle_movielens.py ../shared/data/ml-latest-small
Ratings are stored as uint8 half-stars, ids as int32, timestamps as int64,
titles as one JSON string (no pickle), compressed: about a quarter of the CSV.
"""

import json
import os
import sys

import numpy as np
import pandas as pd

src = sys.argv[1]
r = pd.read_csv(os.path.join(src, "ratings.csv"))
m = pd.read_csv(os.path.join(src, "movies.csv")).sort_values("movieId")
x2 = (r["rating"].to_numpy() * 2).round()
assert np.all(x2 / 2 == r["rating"].to_numpy())
out = os.path.join(
    os.path.dirname(__file__), "..", "fastrec", "datasets", "data", "ml_latest_small.npz"
)
np.savez_compressed(
    out,
    users=r["userId"].to_numpy().astype(np.int32),
    items=r["movieId"].to_numpy().astype(np.int32),
    ratings_x2=x2.astype(np.uint8),
    timestamps=r["timestamp"].to_numpy().astype(np.int64),
    movie_ids=m["movieId"].to_numpy().astype(np.int32),
    titles_json=np.frombuffer(json.dumps(m["title"].tolist()).encode("utf-8"), dtype=np.uint8),
)
print(out, os.path.getsize(out))
