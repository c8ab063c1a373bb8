"""Randomised calls over the public API with adversarial inputs, on both backends.

Every call must end in one of two ways: a correct result (checked against what
the input says it should be), or a ``ValueError``/``TypeError`` whose message
names the field or parameter at fault. Any other exception (OverflowError,
MemoryError, IndexError, a wrapped-around id, a metric above 1, ...) fails.

The tallies of every run (calls, correct results, clean errors, bad outcomes)
are written as JSON to the file named by ``FASTREC_FUZZ_TALLY`` when it is set;
``FASTREC_FUZZ_EXAMPLES`` (default 20) sets the examples per test.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastrec as fr
from fastrec.cli import main as cli_main
from tests.reference_core import topk_reference

BACKENDS = ["numba", "cython"]
INT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
INT64_MAX = int(np.iinfo(np.int64).max)
# sizes no machine can hold (16 TiB and up for any factor matrix), or beyond int64
HUGE = [2**40, 2**44, 2**62, 2**63 + 1, 10**30]

TALLY = {"calls": 0, "correct": 0, "clean_errors": 0, "bad": 0}
# examples per test (FASTREC_FUZZ_EXAMPLES raises it for a longer run; the CLI test runs 2x)
EXAMPLES = int(os.environ.get("FASTREC_FUZZ_EXAMPLES", "20"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module", autouse=True)
def _write_tally():
    yield
    path = os.environ.get("FASTREC_FUZZ_TALLY")
    if path:
        with open(path, "w") as fh:
            json.dump(TALLY, fh)


def call(fn, names):
    """``(True, result)`` of ``fn()``, or ``(False, exc)`` for a clean error naming a field.

    Anything else (another exception type, or a message naming no field) is a
    bad outcome and fails the test.
    """
    TALLY["calls"] += 1
    try:
        result = fn()
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        if not any(n in msg for n in names):
            TALLY["bad"] += 1
            raise AssertionError(
                f"error names none of {names}: {type(exc).__name__}: {msg}"
            ) from exc
        TALLY["clean_errors"] += 1
        return False, exc
    except Exception as exc:
        TALLY["bad"] += 1
        raise AssertionError(f"unexpected {type(exc).__name__}: {exc}") from exc
    TALLY["correct"] += 1
    return True, result


def bad_result(message):
    TALLY["correct"] -= 1
    TALLY["bad"] += 1
    raise AssertionError(message)


# ------------------------------------------------------------------ ids
@st.composite
def id_arrays(draw, n):
    """n ids of an adversarial kind: any integer width (extremes included), big ints, strings."""
    kind = draw(st.sampled_from(["int", "int", "pyint", "str", "float"]))
    if kind == "int":
        dt = draw(st.sampled_from(INT_DTYPES))
        info = np.iinfo(dt)
        pool = sorted({int(info.min), int(info.max), 0, 1, int(info.max) - 1, int(info.min) + 1})
        vals = draw(
            st.lists(
                st.sampled_from(pool) | st.integers(int(info.min), int(info.max)),
                min_size=n,
                max_size=n,
            )
        )
        return np.array(vals, dtype=dt)
    if kind == "pyint":
        vals = draw(st.lists(st.integers(-(2**70), 2**70), min_size=n, max_size=n))
        arr = np.empty(n, dtype=object)
        arr[:] = vals
        return arr
    if kind == "str":
        return np.array(
            draw(st.lists(st.text("ab1", min_size=1, max_size=3), min_size=n, max_size=n))
        )
    vals = draw(
        st.lists(st.sampled_from([0.5, -1.0, 3.0, np.nan, np.inf, 1e300]), min_size=n, max_size=n)
    )
    return np.array(vals)


def _fits_int64(arr):
    return (
        all(-(2**63) <= int(v) <= INT64_MAX for v in arr.tolist())
        if arr.dtype.kind in "iuO"
        else True
    )


def _expected_error(arr):
    if arr.dtype.kind in "iuO" and not _fits_int64(arr):
        return True
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        return True
    return False


@FUZZ
@given(data=st.data(), via=st.sampled_from(["arrays", "dataframe"]))
def test_ids_of_every_kind_round_trip(data, via):
    n = data.draw(st.integers(1, 12), label="n")
    users = data.draw(id_arrays(n), label="users")
    items = data.draw(id_arrays(n), label="items")
    ratings = np.arange(1, n + 1, dtype=np.float64)
    if via == "arrays":
        fn = lambda: fr.Interactions.from_arrays(users, items, ratings, duplicates="last")  # noqa: E731
    else:
        pd = pytest.importorskip("pandas")
        df = pd.DataFrame({"user": users, "item": items, "rating": ratings})
        fn = lambda: fr.Interactions.from_dataframe(df, duplicates="last")  # noqa: E731
    ok, X = call(fn, ["users", "items"])
    should_fail = _expected_error(users) or _expected_error(items)
    if not ok:
        if not should_fail:
            bad_result(f"valid ids refused: {X}")
        return
    if should_fail:
        bad_result("ids that cannot be kept exactly were accepted")
    # every id comes back exactly, and maps back to its own row/column
    for raw, vocab, lookup in (
        (users, X.user_ids, X.user_index),
        (items, X.item_ids, X.item_index),
    ):
        got = [v for v in vocab.tolist()]
        want = list(dict.fromkeys(raw.tolist()))
        if sorted(map(repr, got)) != sorted(map(repr, want)):
            bad_result(f"ids changed: {want} -> {got}")
        idx = lookup(raw)
        if (idx < 0).any() or [vocab[i] for i in idx.tolist()] != raw.tolist():
            bad_result("lookup of the training ids does not give them back")


@FUZZ
@given(
    dt=st.sampled_from(INT_DTYPES + [np.float64, "datetime64[s]", "pyint"]),
    data=st.data(),
)
def test_timestamps_are_kept_or_refused(dt, data):
    n = data.draw(st.integers(1, 6))
    if dt == "pyint":
        vals = data.draw(st.lists(st.integers(-(2**65), 2**65), min_size=n, max_size=n))
        ts = np.empty(n, dtype=object)
        ts[:] = vals
        exact = [int(v) for v in vals]
        fits = all(-(2**63) <= v < 2**63 for v in exact)
    elif dt == np.float64:
        vals = data.draw(
            st.lists(
                st.sampled_from([0.0, 1.0, 1e18, 9.3e18, -9.3e18, 1e30]), min_size=n, max_size=n
            )
        )
        ts = np.array(vals)
        exact = [int(v) for v in vals]
        fits = all(-(2.0**63) <= v < 2.0**63 for v in vals)
    elif dt == "datetime64[s]":
        years = data.draw(st.lists(st.integers(1, 9000), min_size=n, max_size=n))
        ts = np.array([f"{y:04d}-06-01" for y in years], dtype="datetime64[s]")
        fits = all(1678 <= y <= 2261 for y in years)
        exact = ts.astype("datetime64[ns]").view(np.int64).tolist() if fits else None
    else:
        info = np.iinfo(dt)
        vals = data.draw(
            st.lists(st.integers(int(info.min), int(info.max)), min_size=n, max_size=n)
        )
        ts = np.array(vals, dtype=dt)
        exact = vals
        fits = all(v <= INT64_MAX for v in vals)
    ok, X = call(
        lambda: fr.Interactions.from_arrays(np.arange(n), np.arange(n), np.ones(n), timestamps=ts),
        ["timestamps"],
    )
    if ok != fits:
        bad_result(f"timestamps {ts!r}: accepted={ok}, in range={fits}")
    if ok and X.timestamps.tolist() != exact:
        bad_result(f"timestamps changed: {exact} -> {X.timestamps.tolist()}")


# ------------------------------------------------------------------ CSR input
@st.composite
def csr_inputs(draw):
    """A CSR with index arrays of some integer dtype, possibly corrupted out of range."""
    n_rows = draw(st.integers(1, 6))
    n_cols = draw(st.integers(1, 6))
    dense = draw(st.lists(st.booleans(), min_size=n_rows * n_cols, max_size=n_rows * n_cols))
    mask = np.array(dense).reshape(n_rows, n_cols)
    if not mask.any():
        mask[0, 0] = True
    m = sp.csr_matrix(mask.astype(np.float64) * 2.0)
    idx_dt = draw(st.sampled_from([np.int32, np.int64, np.uint32, np.uint64, np.int16]))
    ptr_dt = draw(st.sampled_from([np.int32, np.int64, np.uint64]))
    indices = m.indices.astype(np.int64)
    indptr = m.indptr.astype(np.int64)
    fault = draw(st.sampled_from([None, None, "col+2**32", "col-2**32", "col_huge", "ptr+2**32"]))
    if fault == "col+2**32" and idx_dt in (np.int64, np.uint64):
        indices[0] += 2**32
    elif fault == "col-2**32" and idx_dt == np.int64:
        indices[-1] -= 2**32
    elif fault == "col_huge" and idx_dt == np.uint64:
        indices = indices.astype(np.uint64)
        indices[0] = np.uint64(2**64 - 1 - int(indices[0]))
    elif fault == "ptr+2**32" and ptr_dt in (np.int64, np.uint64) and n_rows > 1:
        indptr[1] += 2**32
    else:
        fault = None
    m2 = sp.csr_matrix((m.data, m.indices, m.indptr), shape=m.shape)
    m2.indices = indices.astype(idx_dt)
    m2.indptr = indptr.astype(ptr_dt)
    return m2, m, fault


@FUZZ
@given(
    problem=csr_inputs(),
    backend=st.sampled_from(BACKENDS),
    entry=st.sampled_from(["from_csr", "similarity", "topk"]),
)
def test_csr_index_arrays_checked_in_their_own_dtype(problem, backend, entry):
    m, clean, fault = problem
    if entry == "from_csr":
        ok, got = call(lambda: fr.Interactions.from_csr(m), ["matrix"])
        if ok:
            if fault or (got.matrix != clean).nnz:
                bad_result(f"fault {fault} not detected / matrix changed")
    elif entry == "similarity":
        ok, got = call(
            lambda: fr.similarity(m, kind="cosine", k=3, backend=backend), ["X", "matrix"]
        )
        if ok:
            want = fr.similarity(clean, kind="cosine", k=3, backend=backend)
            if fault or abs(got - want).max() > 1e-5:
                bad_result(f"fault {fault} not detected / similarity differs")
    else:
        scores = np.arange(m.shape[0] * m.shape[1], dtype=np.float64).reshape(m.shape)
        ok, got = call(lambda: fr.topk(scores, 3, exclude=m, backend=backend), ["exclude"])
        if ok:
            rows = [clean.indices[clean.indptr[r] : clean.indptr[r + 1]] for r in range(m.shape[0])]
            ref, _ = topk_reference(scores, min(3, m.shape[1]), rows)
            if fault or not np.array_equal(got[0], ref):
                bad_result(f"fault {fault} not detected / top-k differs")
    if not ok and fault is None:
        bad_result(f"a valid CSR was refused: {got}")


# ------------------------------------------------------------------ topk scores
@FUZZ
@given(
    kind=st.sampled_from(["f32", "f64", "int", "nan", "object", "complex", "str", "neg_inf"]),
    k=st.sampled_from([1, 2, 5, 2**31, 2**40, 10**20]),
    shape=st.tuples(st.integers(1, 5), st.integers(1, 7)),
    backend=st.sampled_from(BACKENDS),
    seed=st.integers(0, 1000),
)
def test_topk_scores_real_and_k_clamped(kind, k, shape, backend, seed):
    rng = np.random.default_rng(seed)
    s = rng.integers(-5, 5, shape).astype(np.float64)
    if kind == "f32":
        s = s.astype(np.float32)
    elif kind == "int":
        s = s.astype(np.int64)
    elif kind == "nan":
        s[rng.integers(shape[0]), rng.integers(shape[1])] = np.nan
    elif kind == "object":
        s = s.astype(object)
    elif kind == "complex":
        s = s + 1j
    elif kind == "str":
        s = s.astype(str)
    elif kind == "neg_inf":
        s[0, 0] = -np.inf
    ok, got = call(lambda: fr.topk(s, k, backend=backend), ["scores", "k"])
    refuse = kind in ("nan", "object", "complex", "str")
    if ok == refuse:
        bad_result(f"{kind} scores: accepted={ok}")
    if ok:
        ref_idx, _ = topk_reference(np.asarray(s, dtype=np.float64), min(k, shape[1]))
        if not np.array_equal(got[0], ref_idx):
            bad_result("top-k differs from the reference")
    elif kind == "nan" and "position" not in str(got):
        bad_result(f"NaN error without its position: {got}")


# ------------------------------------------------------------------ metrics
@FUZZ
@given(data=st.data())
def test_ranking_metrics_never_exceed_one(data):
    n_rows = data.draw(st.integers(1, 4))
    width = data.draw(st.integers(1, 6))
    rec = np.array(
        data.draw(st.lists(st.integers(-1, 3), min_size=n_rows * width, max_size=n_rows * width))
    ).reshape(n_rows, width)
    relevant = [data.draw(st.lists(st.integers(0, 4), max_size=3)) for _ in range(n_rows)]
    k = data.draw(st.sampled_from([None, 1, width, width + 3, 2**40]))
    ok, got = call(lambda: fr.metrics.ranking_metrics(rec, relevant, k=k), ["k="])
    too_long = k is not None and k > width
    if ok == too_long:
        bad_result(f"k={k} with lists of {width}: accepted={ok}")
    if ok:
        # a repeated item counts once, at its first position: as if later repeats were empty
        once = rec.copy()
        for r in range(n_rows):
            seen = set()
            for c in range(width):
                if once[r, c] >= 0 and once[r, c] in seen:
                    once[r, c] = -1
                seen.add(int(once[r, c]))
        want = fr.metrics.ranking_metrics(once, relevant, k=k)
        for name in want:
            if not np.allclose(got[name], want[name], equal_nan=True):
                bad_result(f"{name}: repeats not counted once")
        kk = k or width
        for r in range(n_rows):  # precision and recall by hand: distinct hits
            if not relevant[r]:
                continue
            hits = len({int(i) for i in rec[r, : min(kk, width)] if i >= 0} & set(relevant[r]))
            if not np.isclose(got["precision"][r], hits / kk) or not np.isclose(
                got["recall"][r], hits / len(set(relevant[r]))
            ):
                bad_result(f"row {r}: precision/recall differ from the distinct hits")
    if ok:
        for name, v in got.items():
            v = v[~np.isnan(v)]
            if ((v < 0) | (v > 1 + 1e-12)).any():
                bad_result(f"{name} outside [0, 1]: {v}")


# ------------------------------------------------------------------ models
TINY = fr.Interactions.from_arrays(
    np.array([0, 0, 1, 1, 2, 2, 3], np.int8),
    np.array([-100, 100, -100, 7, 100, 7, 7], np.int8),
    [1.0, 2.0, 3.0, 4.0, 5.0, 1.0, 2.0],
)
SIZE_PARAMS = {
    "SGDMF": ["factors", "num_threads"],
    "SVDpp": ["factors", "num_threads"],
    "ALS": ["factors", "num_threads"],
    "MLPRecommender": ["embedding_dim", "batch_size", "negatives", "num_threads"],
    "ItemKNN": ["k", "max_neighbors", "min_support", "num_threads"],
    "UserKNN": ["k", "max_neighbors", "min_support", "num_threads"],
}
ODD_VALUES = HUGE + [-1, 0, -(2**63), float("nan"), float("inf"), "12", None, True, 2.5, [3]]
FAST = {
    "SGDMF": {"epochs": 2},
    "SVDpp": {"epochs": 2},
    "ALS": {"iterations": 2},
    "MLPRecommender": {"epochs": 1},
}


@FUZZ
@given(
    name=st.sampled_from(sorted(SIZE_PARAMS)),
    data=st.data(),
    backend=st.sampled_from(BACKENDS),
)
def test_absurd_model_parameters(name, data, backend):
    param = data.draw(st.sampled_from(SIZE_PARAMS[name]), label="param")
    value = data.draw(st.sampled_from(ODD_VALUES), label="value")
    if name == "MLPRecommender" and param == "negatives":
        FAST_KW = {**FAST[name], "loss": "bce"}
    else:
        FAST_KW = FAST.get(name, {})
    cls = getattr(fr, name)

    def fit():
        return cls(**{**FAST_KW, param: value, "backend": backend}).fit(TINY)

    ok, model = call(fit, [param])
    if ok:
        ids, scores = model.recommend(TINY.user_ids, n=2**40)  # n is clamped to the items
        if ids.shape != (TINY.n_users, TINY.n_items):
            bad_result(f"recommend shape {ids.shape}")
        known = set(TINY.item_ids.tolist()) | {-1}
        if not set(ids.ravel().tolist()) <= known:
            bad_result(f"recommend returned ids outside the catalogue: {ids}")


@FUZZ
@given(
    name=st.sampled_from(["Popularity", "ItemKNN", "UserKNN", "SGDMF"]),
    queries=st.lists(
        st.sampled_from([-100, 100, 7, 0, 3, -1, 2**63 - 1, 2**64 - 1, 2**70, "x", 1.5]),
        min_size=1,
        max_size=5,
    ),
    n=st.sampled_from([1, 3, 2**31, 2**40, 0, -2]),
    backend=st.sampled_from(BACKENDS),
)
def test_predict_recommend_with_odd_ids_and_sizes(name, queries, n, backend):
    kw = {} if name == "Popularity" else {"backend": backend, **FAST.get(name, {})}
    model = getattr(fr, name)(**kw).fit(TINY)
    if all(isinstance(q, int) for q in queries) and all(
        -(2**63) <= q <= INT64_MAX for q in queries
    ):
        q = np.array(queries, dtype=np.int64)
    elif all(isinstance(q, int) for q in queries) and all(0 <= q < 2**64 for q in queries):
        q = np.array(queries, dtype=np.uint64)
    else:
        q = np.empty(len(queries), dtype=object)
        q[:] = queries
    ok, got = call(lambda: model.recommend(q, n=n), ["n", "users"])
    if ok:
        ids, scores = got
        if n < 1 or ids.shape != (len(queries), min(n, TINY.n_items)):
            bad_result(f"recommend n={n}: shape {ids.shape}")
    elif n >= 1:
        bad_result(f"recommend refused valid n={n}: {got}")
    items = np.array([7] * len(queries))
    ok, pred = call(lambda: model.predict(q, items), ["users", "items"])
    if ok and not np.isfinite(pred).all():
        bad_result(f"predict gave {pred}")


# ------------------------------------------------------------------ CLI
@pytest.fixture(scope="module")
def cli_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    (d / "good.csv").write_text("user,item,rating\n1,10,4\n1,11,3\n2,10,5\n2,12,2\n3,11,1\n")
    (d / "bigid.csv").write_text(
        "user,item,rating\n12345678901234567890123456,10,4\n1,11,3\n2,10,5\n"
    )
    (d / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,2,3,9\n1,3,4,9,9\n")
    (d / "short.csv").write_text("u,i,r\n1,2,3\n1,3\n")
    (d / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    (d / "text.npz").write_text("user,item\n1,2\n")
    model = str(d / "model.npz")
    with contextlib.redirect_stdout(io.StringIO()):
        assert (
            cli_main(
                [
                    "fit",
                    "--model",
                    "popularity",
                    "--data",
                    str(d / "good.csv"),
                    "--out",
                    model,
                    "--quiet",
                ]
            )
            == 0
        )
    raw = open(model, "rb").read()
    (d / "trunc.npz").write_bytes(raw[: len(raw) // 2])
    fifo = d / "fifo"
    if hasattr(os, "mkfifo"):
        os.mkfifo(fifo)
    return d


CLI_CASES = [
    ("recommend", "--model", "{model}", "--user", "1", "-n", "{huge}"),
    ("recommend", "--model", "{model}", "--user", "{bigid}", "-n", "3"),
    ("recommend", "--model", "{model}", "--user", "1", "-n", "{bad}"),
    ("recommend", "--model", "{badmodel}", "--user", "1"),
    (
        "fit",
        "--model",
        "als",
        "--data",
        "{data}",
        "--out",
        "{out}",
        "--quiet",
        "--factors",
        "{huge}",
    ),
    ("fit", "--model", "itemknn", "--data", "{data}", "--out", "{out}", "--quiet", "--k", "{huge}"),
    (
        "fit",
        "--model",
        "sgdmf",
        "--data",
        "{data}",
        "--out",
        "{out}",
        "--quiet",
        "--num_threads",
        "{huge}",
    ),
    ("evaluate", "--model", "popularity", "--data", "{data}", "--k", "{huge}", "--quiet"),
    ("evaluate", "--model", "popularity", "--data", "{data}", "--k", "{bad}", "--quiet"),
    ("bench", "--only", "topk", "--threads", "{huge}", "--quick"),
]


@settings(
    max_examples=2 * EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    case=st.sampled_from(CLI_CASES),
    huge=st.sampled_from(["4096", "2147483648", "1099511627776", "100000000000000000000000000"]),
    bad=st.sampled_from(["0", "-5", "abc", "1e3", ""]),
    bigid=st.sampled_from(["12345678901234567890123456", "99999999999999999999", "-1", "x"]),
    badmodel=st.sampled_from(
        ["junk.npz", "text.npz", "trunc.npz", "fifo", "missing.npz", "good.csv", "."]
    ),
    data=st.sampled_from(
        ["good.csv", "bigid.csv", "ratings.csv", "short.csv", "missing.csv", "fifo"]
    ),
)
def test_cli_user_mistakes_are_one_line(cli_files, case, huge, bad, bigid, badmodel, data):
    d = cli_files
    if badmodel == "fifo" and not (d / "fifo").exists():
        badmodel = "missing.npz"
    fmt = {
        "model": str(d / "model.npz"),
        "huge": huge,
        "bad": bad,
        "bigid": bigid,
        "badmodel": str(d / badmodel),
        "data": str(d / data),
        "out": str(d / "out.npz"),
    }
    argv = [a.format(**fmt) for a in case]
    if argv[0] == "bench" and int(huge) <= 4096:
        return  # a valid thread count would run the benchmark
    err, out = io.StringIO(), io.StringIO()
    TALLY["calls"] += 1
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            rc = cli_main(argv)
    except SystemExit as exc:  # argparse's own mistakes
        rc = exc.code
    except BaseException as exc:
        TALLY["bad"] += 1
        raise AssertionError(f"{argv}: {type(exc).__name__}: {exc}") from exc
    lines = err.getvalue().strip().splitlines()
    if rc == 0:
        TALLY["correct"] += 1
        return
    if rc != 2 or len(lines) != 1 or "Traceback" in err.getvalue() or "error" not in lines[0]:
        TALLY["bad"] += 1
        raise AssertionError(f"{argv}: status {rc}, stderr {err.getvalue()!r}")
    TALLY["clean_errors"] += 1


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_cli_fifo_model_in_a_subprocess_does_not_hang(cli_files):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fastrec.cli",
            "recommend",
            "--model",
            str(cli_files / "fifo"),
            "--user",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    TALLY["calls"] += 1
    lines = proc.stderr.strip().splitlines()
    ok = proc.returncode == 2 and len(lines) == 1 and "not a regular file" in lines[0]
    TALLY["clean_errors" if ok else "bad"] += 1
    assert ok, (proc.returncode, proc.stderr)


@pytest.mark.parametrize("name", ["Popularity", "ItemKNN", "SGDMF"])
def test_fit_when_the_last_users_have_no_ratings(name):
    # e.g. the train part of a split: raised IndexError from add.reduceat before
    m = sp.csr_matrix(np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0], [0.0, 0.0]]))
    kw = FAST.get(name, {})
    model = getattr(fr, name)(**kw).fit(fr.Interactions.from_csr(m))
    assert model.user_mean_.tolist()[:2] == [1.0, 2.0]
    assert model.user_mean_[2] == model.user_mean_[3] == pytest.approx(1.5)


def test_narrow_signed_ids_are_not_corrupted():
    X = fr.Interactions.from_arrays([0, 1], np.array([-100, 100], np.int8), [1.0, 2.0])
    assert X.item_ids.tolist() == [-100, 100]
    assert X.item_index(np.array([100, -100], np.int8)).tolist() == [1, 0]


def test_malformed_ratings_file_names_file_and_line(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("userId,movieId,rating,timestamp\n1,2,3,9\n1,3,4,9\n2,3,4,9,9\n")
    with pytest.raises(ValueError, match=r"ratings\.csv.*line 4"):
        fr.datasets.load_movielens(path)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = cli_main(
            ["fit", "--model", "popularity", "--data", str(path), "--out", str(tmp_path / "x.npz")]
        )
    assert rc == 2
    assert "ratings.csv" in err.getvalue() and "line 4" in err.getvalue()
    assert len(err.getvalue().strip().splitlines()) == 1


def test_csv_with_26_digit_ids_keeps_them_as_strings(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("user,item,rating\n12345678901234567890123456,1,4\n7,1,3\n")
    X = fr.datasets.load_csv(path)
    assert sorted(X.user_ids.tolist()) == ["12345678901234567890123456", "7"]


def test_repeated_item_counts_once():
    got = fr.metrics.ranking_metrics(np.array([[0, 0, 0], [2, 1, 2]]), [[0], [2, 1]])
    assert got["precision"].tolist() == pytest.approx([1 / 3, 2 / 3])
    assert got["ndcg"].tolist() == pytest.approx([1.0, 1.0])
    assert got["recall"].tolist() == [1.0, 1.0]
