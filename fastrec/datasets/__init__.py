"""Data sets: MovieLens loaders, the bundled ml-latest-small, synthetic data."""

from .movielens import load_csv, load_movielens, movie_titles, movielens_small
from .synthetic import synthetic

__all__ = ["load_csv", "load_movielens", "movie_titles", "movielens_small", "synthetic"]
