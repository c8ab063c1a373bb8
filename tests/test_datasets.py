"""MovieLens loaders on small fixtures of every format, the bundled copy, synthetic data."""

from __future__ import annotations

import time

import numpy as np
import pytest

import fastrec as fr

ROWS = [(1, 10, 4.0, 100), (1, 20, 3.0, 50), (2, 10, 5.0, 70), (3, 30, 1.0, 90)]


def _write(path, text):
    path.write_text(text)
    return path


@pytest.fixture
def ml100k(tmp_path):
    d = tmp_path / "ml-100k"
    d.mkdir()
    _write(d / "u.data", "".join(f"{u}\t{i}\t{int(r)}\t{t}\n" for u, i, r, t in ROWS))
    _write(d / "u.item", "10|Ten (1990)|x\n20|Twenty (1991)|x\n30|Thirty (1992)|x\n")
    return d


@pytest.fixture
def ml1m(tmp_path):
    d = tmp_path / "ml-1m"
    d.mkdir()
    _write(d / "ratings.dat", "".join(f"{u}::{i}::{int(r)}::{t}\n" for u, i, r, t in ROWS))
    _write(d / "movies.dat", "10::Ten (1990)::Drama\n20::Twenty (1991)::Drama\n")
    return d


@pytest.fixture
def ml20m(tmp_path):
    d = tmp_path / "ml-20m"
    d.mkdir()
    _write(
        d / "ratings.csv",
        "userId,movieId,rating,timestamp\n" + "".join(f"{u},{i},{r},{t}\n" for u, i, r, t in ROWS),
    )
    _write(d / "movies.csv", 'movieId,title,genres\n10,"Ten, The (1990)",Drama\n')
    return d


def _check(X):
    assert (X.n_users, X.n_items, X.nnz) == (3, 3, 4)
    assert X.user_ids.tolist() == [1, 2, 3] and X.item_ids.tolist() == [10, 20, 30]
    assert X.matrix.toarray().tolist() == [[4, 3, 0], [5, 0, 0], [0, 0, 1]]
    assert X.timestamps.tolist() == [100, 50, 70, 90]


@pytest.mark.parametrize("fixture", ["ml100k", "ml1m", "ml20m"])
def test_every_format_from_folder_and_file(fixture, request):
    d = request.getfixturevalue(fixture)
    _check(fr.datasets.load_movielens(d))
    f = next(p for p in d.iterdir() if p.name in ("u.data", "ratings.dat", "ratings.csv"))
    _check(fr.datasets.load_movielens(f))
    _check(fr.datasets.load_movielens(d.parent))  # one level down is searched too


def test_titles_in_every_format(ml100k, ml1m, ml20m):
    assert fr.datasets.movie_titles(ml100k)[20] == "Twenty (1991)"
    assert fr.datasets.movie_titles(ml1m)[10] == "Ten (1990)"
    assert fr.datasets.movie_titles(ml20m)[10] == "Ten, The (1990)"


def test_unrecognised_input_names_path_and_files(tmp_path):
    with pytest.raises(
        ValueError,
        match=r"no MovieLens ratings file in .*looked for "
        r"\['ratings.csv', 'ratings.dat', 'u.data'\]",
    ):
        fr.datasets.load_movielens(tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        fr.datasets.load_movielens(tmp_path / "missing")
    odd = _write(tmp_path / "data.txt", "hello world\n")
    with pytest.raises(ValueError, match="cannot tell the MovieLens format"):
        fr.datasets.load_movielens(odd)
    bad = _write(tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\n1,2,nan,3\n")
    with pytest.raises(ValueError, match="ratings must be finite: found nan at position 0"):
        fr.datasets.load_movielens(bad)


def test_generic_csv(tmp_path):
    f = _write(tmp_path / "log.csv", "user,item,rating\nann,apple,5\nbob,apple,3\nann,pear,2\n")
    X = fr.datasets.load_csv(f)
    assert X.user_ids.tolist() == ["ann", "bob"] and X.matrix.toarray().tolist() == [[5, 2], [3, 0]]
    g = _write(tmp_path / "implicit.csv", "1,7\n2,7\n")
    assert fr.datasets.load_csv(g).implicit
    h = _write(tmp_path / "ragged.csv", "1,7,5\n2,7\n")
    with pytest.raises(ValueError, match="row 1 has 2 fields, expected 3"):
        fr.datasets.load_csv(h)


def test_bundled_movielens_small_matches_shared_csv():
    t0 = time.perf_counter()
    X = fr.datasets.movielens_small()
    elapsed = time.perf_counter() - t0
    assert (X.n_users, X.n_items, X.nnz) == (610, 9724, 100836)
    assert X.matrix.data.min() == 0.5 and X.matrix.data.max() == 5.0
    assert elapsed < 5.0  # "well under a second" on an idle machine; loose for shared CI
    full = fr.datasets.movielens_small(catalogue=True)
    assert full.n_items == 9742 and full.nnz == 100836
    assert fr.datasets.movie_titles()[1] == "Toy Story (1995)"
    import os

    shared = os.path.join(
        os.path.dirname(__file__), "..", "..", "shared", "data", "ml-latest-small"
    )
    if os.path.isdir(shared):
        Y = fr.datasets.load_movielens(shared)
        assert (Y.matrix != X.matrix).nnz == 0 and np.array_equal(Y.timestamps, X.timestamps)


def test_synthetic_is_deterministic_exact_and_heavy_tailed():
    X = fr.datasets.synthetic(2000, 800, 40_000, seed=3)
    Y = fr.datasets.synthetic(2000, 800, 40_000, seed=3)
    Z = fr.datasets.synthetic(2000, 800, 40_000, seed=4)
    assert X.nnz == 40_000 and X.shape == (2000, 800)
    assert (X.matrix != Y.matrix).nnz == 0 and (X.matrix != Z.matrix).nnz > 0
    assert set(np.unique(X.matrix.data)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    user_counts = np.sort(np.diff(X.matrix.indptr))[::-1]
    item_counts = np.sort(np.bincount(X.matrix.indices, minlength=800))[::-1]
    # heavy tails: the top 10% hold far more than 10% of the ratings
    assert user_counts[:200].sum() > 0.3 * X.nnz
    assert item_counts[:80].sum() > 0.3 * X.nnz
    assert user_counts.min() >= 1


def test_synthetic_signal_is_learnable():
    X, p = fr.datasets.synthetic(
        500, 300, 20_000, seed=0, noise=0.3, discrete=False, return_params=True
    )
    u, i, r, _ = X.to_arrays()
    truth = (
        p["global_mean"]
        + p["user_bias"][u]
        + p["item_bias"][i]
        + np.einsum("ij,ij->i", p["user_factors"][u], p["item_factors"][i])
    )
    residual = r - np.clip(truth, 1, 5)
    assert np.std(residual) < 0.35 < np.std(r)


def test_synthetic_dense_corner_and_bad_args():
    X = fr.datasets.synthetic(5, 4, 20)
    assert X.nnz == 20 and X.matrix.toarray().all()
    with pytest.raises(ValueError, match="nnz must be <= n_users \\* n_items = 20"):
        fr.datasets.synthetic(5, 4, 21)
    with pytest.raises(ValueError, match="nnz must be >= n_users"):
        fr.datasets.synthetic(5, 4, 3)
    with pytest.raises(ValueError, match="n_users must be >= 1"):
        fr.datasets.synthetic(0, 4, 3)
