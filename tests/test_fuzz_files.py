"""Fuzzing fr.load with altered model files of every class on both backends.

Every altered file must either load into a working model or be refused with a
ValueError naming the path; never another exception, never more than 5 s.
Alterations: truncations, byte flips, metadata edits (parameters, class,
version, structure), array replacements (dtype, shape, values), members
dropped, added, swapped or duplicated, and valid re-packings (deflated
members), which must load and give the original recommendations.
"""

from __future__ import annotations

import io
import json
import signal
import time
import zipfile
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastrec as fr
from fastrec import _backend

BACKENDS = _backend.available_backends()
FIGURES: Counter = Counter()


def _models(backend: str) -> dict:
    X = fr.datasets.synthetic(60, 40, 700, seed=2)
    models = {
        "Popularity": fr.Popularity().fit(X),
        "ALS": fr.ALS(factors=3, iterations=1, random_state=0, backend=backend).fit(X),
        "SGDMF": fr.SGDMF(factors=3, epochs=1, random_state=0, backend=backend).fit(X),
        "UserKNN": fr.UserKNN(k=5, backend=backend).fit(X),
        "ItemKNN": fr.ItemKNN(k=5, max_neighbors=8, backend=backend).fit(X),
        "MLPRecommender": fr.MLPRecommender(
            embedding_dim=2, hidden=(3,), epochs=1, random_state=0, backend=backend
        ).fit(X),
    }
    models["ItemKNN"].recommend(X.user_ids[:2])  # builds the neighbour lists, saved too
    return models


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    out = []
    for backend in BACKENDS:
        for name, model in _models(backend).items():
            path = folder / f"{name}-{backend}.npz"
            model.save(path)
            users = model.user_ids_[:5]
            out.append((name, backend, path.read_bytes(), model.recommend(users, n=3), users))
    yield out
    print(
        f"\nmodel-file fuzz: {FIGURES['files']} files, {FIGURES['loaded']} loaded, "
        f"{FIGURES['refused']} refused with a clean ValueError, {FIGURES['bad']} bad outcomes"
    )


def test_every_model_class_is_fuzzed(saved):
    from fastrec.models.base import _REGISTRY, _import_model_modules

    _import_model_modules()
    covered = {name for name, *_ in saved}
    assert {"Popularity", "ALS", "SGDMF", "UserKNN", "ItemKNN", "MLPRecommender"} <= covered
    assert covered <= set(_REGISTRY)


# --------------------------------------------------------------- alterations
def _members(raw: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def _zip(members: list[tuple[str, bytes]], method=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def _meta(members: dict[str, bytes]) -> dict:
    arr = np.load(io.BytesIO(members["__meta__.npy"]))
    return json.loads(arr.tobytes())


WEIRD_VALUES = [
    float("nan"),
    float("inf"),
    -1,
    0,
    10**30,
    2**31,
    "os.system",
    "",
    "x" * 5000,
    None,
    True,
    [],
    [1, [2]],
    {"a": 1},
    1.5,
    "float16",
    "cython",
    "numba",
    3,
]

WEIRD_ARRAYS = [
    np.zeros(0, np.float32),
    np.array([np.nan], np.float64),
    np.array([2**40, -(2**40)], np.int64),
    np.array([-1, 0, 1], np.int8),
    np.arange(7, dtype=np.uint64) * np.uint64(2**62),
    np.ones((3, 3), np.float32),
    np.array(["a", "b"]),
    np.array([True, False]),
    np.array([1.0 + 2j]),
    np.array([{"x": 1}], dtype=object),
    np.zeros((2, 2), np.dtype([("a", "i4"), ("b", "f8")])),
    np.float64(3.0),
]


@st.composite
def alterations(draw, n_files: int):
    index = draw(st.integers(0, n_files - 1))
    kind = draw(
        st.sampled_from(
            ["truncate", "flip", "meta", "array", "drop", "add", "swap", "dup", "repack", "perturb"]
        )
    )
    seed = draw(st.integers(0, 2**32 - 1))
    return index, kind, seed


def _alter(raw: bytes, kind: str, rng: np.random.Generator) -> tuple[bytes, bool]:
    """The altered file, and whether it must load into the same model."""
    if kind == "truncate":
        return raw[: int(rng.integers(0, len(raw)))], False
    if kind == "flip":
        data = bytearray(raw)
        for pos in rng.integers(0, len(data), size=int(rng.integers(1, 9))):
            data[pos] ^= int(rng.integers(1, 256))
        return bytes(data), False
    members = _members(raw)
    names = list(members)
    if kind == "repack":
        return _zip(list(members.items()), zipfile.ZIP_DEFLATED), True
    if kind == "meta":
        meta = _meta(members)
        choice = int(rng.integers(0, 6))
        if choice == 0 and meta["params"]:
            key = list(meta["params"])[int(rng.integers(0, len(meta["params"])))]
            meta["params"][key] = WEIRD_VALUES[int(rng.integers(0, len(WEIRD_VALUES)))]
        elif choice == 1:
            meta["class"] = ["Popularity", "ALS", "ItemKNN", "MLPRecommender", "os.system"][
                int(rng.integers(0, 5))
            ]
        elif choice == 2:
            del meta[list(meta)[int(rng.integers(0, len(meta)))]]
        elif choice == 3:
            meta["layout_version"] = WEIRD_VALUES[int(rng.integers(0, len(WEIRD_VALUES)))]
        elif choice == 4:
            meta["params"]["nested"] = [[[[1]]]]
        else:
            meta = [meta] * 3
        text = json.dumps(meta, allow_nan=True).encode()
        if int(rng.integers(0, 4)) == 0:
            text = b"[" * 100_000 + text
        members["__meta__.npy"] = _npy(np.frombuffer(text, dtype=np.uint8))
        return _zip(list(members.items())), False
    if kind == "array":
        name = names[int(rng.integers(0, len(names)))]
        members[name] = _npy(WEIRD_ARRAYS[int(rng.integers(0, len(WEIRD_ARRAYS)))])
        return _zip(list(members.items())), False
    if kind == "perturb":
        # same dtype and shape, other values: a structurally valid but tampered array
        name = [n for n in names if n != "__meta__.npy"][int(rng.integers(0, len(names) - 1))]
        arr = np.load(io.BytesIO(members[name])).copy()
        if arr.size:
            flat = arr.reshape(-1)
            pos = int(rng.integers(0, flat.size))
            if arr.dtype.kind in "iu":
                flat[pos] = [np.iinfo(arr.dtype).max, 0, flat[pos] + 1][int(rng.integers(0, 3))]
            elif arr.dtype.kind == "f":
                flat[pos] = [np.nan, -flat[pos], 1e30][int(rng.integers(0, 3))]
            elif arr.dtype.kind == "U":
                flat[pos] = flat[(pos + 1) % flat.size]
        members[name] = _npy(arr)
        return _zip(list(members.items())), False
    if kind == "drop":
        del members[names[int(rng.integers(0, len(names)))]]
        return _zip(list(members.items())), False
    if kind == "add":
        extra = ["model.extra.npy", "base.extra.npy", "notes.txt", "dir/", "a/b.npy"]
        members[extra[int(rng.integers(0, len(extra)))]] = _npy(np.arange(3))
        return _zip(list(members.items())), False
    if kind == "swap":
        a, b = rng.choice(len(names), size=2, replace=False)
        members[names[a]], members[names[b]] = members[names[b]], members[names[a]]
        return _zip(list(members.items())), False
    # dup: a member twice (zip allows it)
    items = list(members.items())
    items.append(items[int(rng.integers(0, len(items)))])
    return _zip(items), False


class _Hang(Exception):
    pass


def _on_alarm(signum, frame):
    raise _Hang


@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_altered_model_files(saved, tmp_path_factory, data):
    index, kind, seed = data.draw(alterations(len(saved)))
    name, backend, raw, expected, users = saved[index]
    altered, must_match = _alter(raw, kind, np.random.default_rng(seed))
    path = tmp_path_factory.mktemp("alt") / "model.npz"
    path.write_bytes(altered)
    FIGURES["files"] += 1
    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(5)
    tic = time.perf_counter()
    try:
        model = fr.load(path)
    except ValueError as exc:
        FIGURES["refused"] += 1
        assert str(path) in str(exc), f"{kind}: the message does not name the file: {exc}"
        assert "allow_pickle" not in str(exc)
        assert not must_match, f"{name}/{backend} {kind}: a valid file was refused: {exc}"
        return
    except _Hang:
        FIGURES["bad"] += 1
        raise AssertionError(f"{name}/{backend} {kind}: fr.load ran for more than 5 s") from None
    except BaseException:
        FIGURES["bad"] += 1
        raise
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert time.perf_counter() - tic < 5.0
    # loaded: it must work, and a valid re-packing must be the same model
    try:
        ids, scores = model.recommend(users, n=3)
        assert ids.shape == (len(users), 3) and not np.isnan(scores).any()
        model.predict(users, model.item_ids_[: len(users)])
        if must_match:
            np.testing.assert_array_equal(ids, expected[0])
            np.testing.assert_array_equal(scores, expected[1])
    except BaseException:
        FIGURES["bad"] += 1
        raise
    FIGURES["loaded"] += 1


def test_special_files_are_refused_quickly(tmp_path):
    import os

    cases = [tmp_path]  # a folder
    if os.path.exists("/dev/zero"):
        cases.append("/dev/zero")
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        cases.append(fifo)
    for case in cases:
        tic = time.perf_counter()
        with pytest.raises(ValueError, match="not a fastrec model file"):
            fr.load(case)
        assert time.perf_counter() - tic < 1.0
