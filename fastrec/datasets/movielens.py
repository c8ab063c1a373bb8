"""MovieLens loaders (ml-100k, ml-1m, ml-10m, ml-20m/25m/32m, ml-latest) and the bundled copy."""

from __future__ import annotations

import io
import json
import os
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from ..data import Interactions

__all__ = ["load_movielens", "movielens_small", "movie_titles", "load_csv"]

# (file name, format) in the order a folder is searched
_RATING_FILES = (
    ("ratings.csv", "csv"),  # ml-20m, 25m, 32m, latest, latest-small
    ("ratings.dat", "dat"),  # ml-1m, ml-10m ("::" separated)
    ("u.data", "udata"),  # ml-100k (tab separated, no header)
)
_MOVIE_FILES = (("movies.csv", "csv"), ("movies.dat", "dat"), ("u.item", "uitem"))


class FormatError(ValueError):
    """The file is not in any MovieLens layout (the CLI then tries a generic CSV)."""


def _line_of(message: str) -> str:
    """`` (line N)`` from a parser message that names a line or row, else ``""``."""
    import re

    found = re.search(r"\b(?:line|row) (\d+)", message)
    return f" (line {found.group(1)})" if found else ""


def _line_of_row(data: bytes, header: bool, message: str) -> str:
    """`` line N`` for the data row that ``message`` names ("at position P"), else ``""``.

    Only on the error path: counts the non-blank lines (the parser skips blank ones).
    """
    import re

    found = re.search(r"at position (\d+)", message)
    if not found:
        return ""
    want = int(found.group(1)) + (1 if header else 0)
    seen = -1
    for number, line in enumerate(data.split(b"\n"), 1):
        if line.strip():
            seen += 1
            if seen == want:
                return f" line {number}"
    return ""


def _ids_column(col: np.ndarray) -> np.ndarray:
    """An id column whose integers do not all fit in int64 becomes strings.

    Ids are labels: a 26-digit id is kept exactly, as text, rather than
    refused or rounded.
    """
    big = False
    if col.dtype.kind == "u" and col.size and col.max() > np.iinfo(np.int64).max:
        big = True
    elif col.dtype.kind == "O":
        lo, hi = np.iinfo(np.int64).min, np.iinfo(np.int64).max
        big = any(isinstance(v, int) and not lo <= v <= hi for v in col.tolist())
    if big:
        return np.array([str(v).strip() for v in col.tolist()])
    return col


def _sniff(path: str) -> str:
    name = os.path.basename(path)
    for fname, fmt in _RATING_FILES:
        if name == fname:
            return fmt
    with open(path, "rb") as fh:
        head = fh.readline()
    if b"::" in head:
        return "dat"
    if b"\t" in head:
        return "udata"
    if b"," in head:
        return "csv"
    raise FormatError(
        f"cannot tell the MovieLens format of {path!r}: expected u.data (tab separated), "
        "ratings.dat ('::' separated) or ratings.csv (comma separated with a header)"
    )


def _read_table(data: bytes, sep: bytes, path: str, n_cols_min: int, header: bool):
    """Parse a numeric table: (user, item, rating[, timestamp]) columns."""
    if sep != b",":
        data = data.replace(sep, b",")
    try:
        import pandas as pd
    except ImportError:  # slower pure-NumPy path
        pd = None
    try:
        if pd is not None:
            df = pd.read_csv(io.BytesIO(data), header=0 if header else None, sep=",")
            table = [df.iloc[:, j].to_numpy() for j in range(df.shape[1])]
        else:
            arr = np.loadtxt(io.BytesIO(data), delimiter=",", skiprows=1 if header else 0, ndmin=2)
            table = [arr[:, j] for j in range(arr.shape[1])]
    except (ValueError, OverflowError) as exc:  # pandas' ParserError is a ValueError
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path!r}{_line_of(msg)}: malformed ratings file: {msg}") from None
    if len(table) < n_cols_min:
        raise FormatError(
            f"{path!r} has {len(table)} columns; expected user, item, rating[, timestamp]"
        )
    return table


def load_movielens(path: str | os.PathLike, duplicates: str = "raise") -> Interactions:
    """Load MovieLens ratings from a folder or a ratings file; format detected.

    Recognised: ``u.data`` (ml-100k, tab separated), ``ratings.dat`` (ml-1m and
    ml-10m, ``::`` separated) and ``ratings.csv`` (ml-20m, 25m, 32m, latest,
    with the header ``userId,movieId,rating,timestamp``). A folder is searched
    for those names (also one level down, e.g. ``ml-100k/u.data``).

    Returns an ``Interactions`` with raw MovieLens user and movie ids,
    ratings and timestamps. Raises ``ValueError`` naming the path and the
    files looked for when nothing recognisable is there.
    """
    path = os.fspath(path)
    looked = [f for f, _ in _RATING_FILES]
    if os.path.isdir(path):
        found = None
        for base in (path, *sorted(os.path.join(path, d) for d in os.listdir(path))):
            if not os.path.isdir(base):
                continue
            for fname, fmt in _RATING_FILES:
                if os.path.isfile(os.path.join(base, fname)):
                    found = (os.path.join(base, fname), fmt)
                    break
            if found:
                break
        if found is None:
            raise ValueError(f"no MovieLens ratings file in {path!r}: looked for {looked}")
        file, fmt = found
    elif os.path.isfile(path):
        file, fmt = path, _sniff(path)
    else:
        raise ValueError(
            f"MovieLens path {path!r} does not exist (expected a folder or one of {looked})"
        )
    with open(file, "rb") as fh:
        data = fh.read()
    if not data.strip():
        raise ValueError(f"{file!r} is empty")
    header = False
    if fmt == "csv":
        header = not data[:1].isdigit()
        cols = _read_table(data, b",", file, 3, header)
    elif fmt == "dat":
        cols = _read_table(data, b"::", file, 3, False)
    else:
        cols = _read_table(data, b"\t", file, 3, False)
    users, items, ratings = _ids_column(cols[0]), _ids_column(cols[1]), cols[2]
    timestamps = cols[3] if len(cols) > 3 else None
    try:
        return Interactions.from_arrays(users, items, ratings, timestamps, duplicates=duplicates)
    except ValueError as exc:  # name the file and the line of the first bad row
        raise ValueError(f"{file!r}{_line_of_row(data, header, str(exc))}: {exc}") from None


def load_csv(
    path: str | os.PathLike, duplicates: str = "raise", implicit: bool = False
) -> Interactions:
    """Load a generic ``user,item[,rating[,timestamp]]`` CSV (header optional).

    Ids may be numbers or strings. With two columns (or ``implicit=True``) the
    data are implicit feedback.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"data file {path!r} does not exist")
    import csv

    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            rows, lines = [], []
            for r in reader:
                if r and any(c.strip() for c in r):
                    rows.append(r)
                    lines.append(reader.line_num)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{path!r} is not a readable UTF-8 CSV file: {exc}") from None
    if not rows:
        raise ValueError(f"{path!r} is empty")

    def numeric(s: str) -> bool:
        try:
            float(s)
            return True
        except ValueError:
            return False

    if len(rows[0]) >= 3 and not numeric(rows[0][2]):
        rows, lines = rows[1:], lines[1:]  # header
    if not rows:
        raise ValueError(f"{path!r} has a header but no data rows")
    width = len(rows[0])
    if width < 2:
        raise ValueError(f"{path!r}: expected at least the columns user,item")
    for pos, (r, line) in enumerate(zip(rows, lines)):
        if len(r) != width:
            raise ValueError(
                f"{path!r} line {line}: row {pos} has {len(r)} fields, expected {width}"
            )
    users = _ids_column(_auto_column([r[0] for r in rows]))
    items = _ids_column(_auto_column([r[1] for r in rows]))
    ratings = None
    if width >= 3 and not implicit:
        ratings = np.array([r[2] for r in rows], dtype=object)
    ts = np.array([r[3] for r in rows], dtype=object) if width >= 4 else None
    try:
        return Interactions.from_arrays(users, items, ratings, ts, duplicates=duplicates)
    except ValueError as exc:
        import re

        found = re.search(r"at position (\d+)", str(exc))
        where = f" line {lines[int(found.group(1))]}" if found else ""
        raise ValueError(f"{path!r}{where}: {exc}") from None


def _auto_column(values: list[str]) -> np.ndarray:
    """Ints where every value is one (numpy turns a mix with strings into strings)."""
    return np.array([_auto(v) for v in values])


def _auto(s: str) -> Any:
    s = s.strip()
    try:
        return int(s)
    except ValueError:
        return s


def _bundled(name: str):
    return resources.files("fastrec.datasets").joinpath("data", name)


@lru_cache(maxsize=2)
def _bundled_arrays() -> dict[str, np.ndarray]:
    with _bundled("ml_latest_small.npz").open("rb") as fh:
        with np.load(fh, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}


def movielens_small(catalogue: bool = False) -> Interactions:
    """The bundled MovieLens ml-latest-small ratings (610 users, 100836 ratings).

    Parameters
    ----------
    catalogue : bool
        False (default): items are the 9724 movies that have at least one
        rating. True: all 9742 movies of its ``movies.csv``, the 18 unrated
        ones as empty columns.

    Ratings are 0.5..5 stars; timestamps are seconds since 1970. The data are
    redistributed under the GroupLens licence shipped beside them
    (``fastrec/datasets/data/ML_LATEST_SMALL_LICENSE.txt``); cite Harper and
    Konstan (2015) when you publish results on them.
    """
    a = _bundled_arrays()
    X = Interactions.from_arrays(
        a["users"], a["items"], a["ratings_x2"].astype(np.float32) / 2, a["timestamps"]
    )
    if not catalogue:
        return X
    import scipy.sparse as sp

    all_ids = a["movie_ids"]
    cols = np.searchsorted(all_ids, X.item_ids)
    m = X.matrix
    full = sp.csr_matrix(
        (m.data, cols[m.indices].astype(np.int32), m.indptr), shape=(X.n_users, all_ids.shape[0])
    )
    return Interactions(full, X.user_ids, all_ids, X.timestamps, _trusted=True)


def movie_titles(path: str | os.PathLike | None = None) -> dict[int, str]:
    """Movie id -> title, from the bundled data (``path=None``) or a MovieLens folder."""
    if path is None:
        a = _bundled_arrays()
        titles = json.loads(a["titles_json"].tobytes().decode("utf-8"))
        return dict(zip(a["movie_ids"].tolist(), titles))
    path = os.fspath(path)
    base = path if os.path.isdir(path) else os.path.dirname(path)
    for fname, fmt in _MOVIE_FILES:
        f = os.path.join(base, fname)
        if os.path.isfile(f):
            return _read_titles(f, fmt)
    raise ValueError(f"no movie list in {base!r}: looked for {[f for f, _ in _MOVIE_FILES]}")


def _read_titles(file: str, fmt: str) -> dict[int, str]:
    import csv

    out: dict[int, str] = {}
    if fmt == "csv":
        with open(file, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            next(reader, None)
            for row in reader:
                if len(row) >= 2:
                    out[int(row[0])] = row[1]
    else:
        sep = "::" if fmt == "dat" else "|"
        with open(file, encoding="latin-1") as fh:
            for line in fh:
                parts = line.rstrip("\n").split(sep)
                if len(parts) >= 2 and parts[0].strip().isdigit():
                    out[int(parts[0])] = parts[1]
    return out
