"""Model files: what fr.load refuses (one test per kind of bad file) and atomic saves."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest

import fastrec as fr


@pytest.fixture(scope="module")
def als_file(tmp_path_factory):
    X = fr.datasets.synthetic(50, 30, 500, seed=4)
    model = fr.ALS(factors=3, iterations=1, random_state=0).fit(X)
    path = tmp_path_factory.mktemp("files") / "als.npz"
    model.save(path)
    return path.read_bytes()


def _members(raw: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def _write(path, members, method=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _npy(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _with_meta(raw: bytes, edit) -> dict[str, bytes]:
    members = _members(raw)
    meta = json.loads(np.load(io.BytesIO(members["__meta__.npy"])).tobytes())
    edit(meta)
    text = json.dumps(meta).encode()
    members["__meta__.npy"] = _npy(np.frombuffer(text, dtype=np.uint8))
    return members


def test_valid_file_loads(als_file, tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(als_file)
    assert isinstance(fr.load(path), fr.ALS)


@pytest.mark.parametrize(
    "param, value, message",
    [
        ("backend", "os.system", "backend must be"),
        ("regularization", float("nan"), "regularization must be finite"),
        ("factors", 10**30, "user_factors.*has shape"),
        ("num_threads", -3, "num_threads must be >= 0"),
        ("solver", ["cg"], "solver must be one of"),
        ("bogus", 1, "does not take the parameter"),
    ],
)
def test_parameters_are_checked_as_fit_checks_them(als_file, tmp_path, param, value, message):
    members = _with_meta(als_file, lambda m: m["params"].__setitem__(param, value))
    path = _write(tmp_path / "m.npz", members)
    with pytest.raises(ValueError, match=message):
        fr.load(path)


def test_text_and_csv_files_are_not_model_files(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("user,item,rating\n1,2,3.5\n")
    with pytest.raises(ValueError, match="not a fastrec model file.*text or CSV") as info:
        fr.load(path)
    assert "allow_pickle" not in str(info.value)


def test_members_other_than_npy_are_refused(als_file, tmp_path):
    members = _members(als_file)
    members["notes.txt"] = b"hello"
    with pytest.raises(ValueError, match="unexpected archive member 'notes.txt'"):
        fr.load(_write(tmp_path / "a.npz", members))
    members = _members(als_file)
    members["sub/model.x.npy"] = _npy(np.arange(3))
    with pytest.raises(ValueError, match="unexpected archive member 'sub/"):
        fr.load(_write(tmp_path / "b.npz", members))


def test_unexpected_arrays_are_refused(als_file, tmp_path):
    members = _members(als_file)
    members["model.extra.npy"] = _npy(np.arange(3))
    with pytest.raises(ValueError, match="unexpected model array.*extra"):
        fr.load(_write(tmp_path / "a.npz", members))


def test_deep_or_huge_metadata_is_refused(als_file, tmp_path):
    members = _members(als_file)
    deep = b"[" * 200_000 + b"]" * 200_000
    members["__meta__.npy"] = _npy(np.frombuffer(deep, dtype=np.uint8))
    tic = time.perf_counter()
    with pytest.raises(ValueError, match="metadata"):
        fr.load(_write(tmp_path / "a.npz", members))
    members = _with_meta(als_file, lambda m: m["params"].__setitem__("solver", [[[["cg"]]]]))
    with pytest.raises(ValueError, match="corrupt metadata.*solver"):
        fr.load(_write(tmp_path / "b.npz", members))
    members = _members(als_file)
    members["__meta__.npy"] = _npy(np.zeros(2 << 20, dtype=np.uint8))
    with pytest.raises(ValueError, match="__meta__.*at most"):
        fr.load(_write(tmp_path / "c.npz", members))
    assert time.perf_counter() - tic < 5


def test_declared_shape_beyond_member_size_is_refused(als_file, tmp_path):
    members = _members(als_file)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (10**6, 10**6)}
    )
    members["model.user_factors.npy"] = header.getvalue() + b"\0" * 64
    with pytest.raises(ValueError, match="user_factors.*declares shape"):
        fr.load(_write(tmp_path / "a.npz", members))


def test_decompression_bomb_is_refused(als_file, tmp_path):
    members = _members(als_file)
    members["model.user_factors.npy"] = _npy(np.zeros((50, 400_000), np.float32))  # 80 MB
    tic = time.perf_counter()
    with pytest.raises(ValueError, match="decompression bomb"):
        fr.load(_write(tmp_path / "bomb.npz", members, zipfile.ZIP_DEFLATED))
    assert time.perf_counter() - tic < 5


def test_object_arrays_are_refused_without_unpickling(als_file, tmp_path):
    members = _members(als_file)
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    members["model.user_factors.npy"] = buf.getvalue()
    with pytest.raises(ValueError, match="only plain numeric"):
        fr.load(_write(tmp_path / "a.npz", members))


def test_wide_csr_indices_are_checked_before_the_cast(als_file, tmp_path):
    members = _members(als_file)
    indices = np.load(io.BytesIO(members["base.seen_indices.npy"])).astype(np.int64)
    indices[0] += 2**32  # would wrap into the same valid-looking int32 value
    members["base.seen_indices.npy"] = _npy(indices)
    with pytest.raises(ValueError, match="column index >= 30"):
        fr.load(_write(tmp_path / "a.npz", members))


def test_special_files_are_refused_without_reading(tmp_path):
    tic = time.perf_counter()
    with pytest.raises(ValueError, match="not a fastrec model file: it is a folder"):
        fr.load(tmp_path)
    if os.path.exists("/dev/zero"):
        with pytest.raises(ValueError, match="not a regular file"):
            fr.load("/dev/zero")
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        with pytest.raises(ValueError, match="not a regular file"):
            fr.load(fifo)
    assert time.perf_counter() - tic < 2


# ------------------------------------------------------------------ atomic save
def test_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    X = fr.datasets.synthetic(40, 20, 300, seed=1)
    model = fr.Popularity().fit(X)
    path = tmp_path / "m.npz"
    model.save(path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]  # no temporary file left


SAVER = textwrap.dedent(
    """
    import sys
    import numpy as np
    import fastrec as fr
    X = fr.datasets.synthetic(3000, 2000, 60_000, seed=2)
    model = fr.ALS(factors=8, iterations=1, random_state=0).fit(X)
    # a large model: about 7 million float32 factors (~28 MB written each save)
    model.user_factors_ = np.ones((model.n_users_, 1400), np.float32)
    model.item_factors_ = np.ones((model.n_items_, 1400), np.float32)
    model.factors = 1400
    print("saving", flush=True)
    while True:
        model.save(sys.argv[1])
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals only")
def test_save_killed_midway_leaves_the_old_model(tmp_path):
    X = fr.datasets.synthetic(60, 30, 600, seed=3)
    old = fr.ALS(factors=4, iterations=1, random_state=0).fit(X)
    path = tmp_path / "model.npz"
    old.save(path)
    before = path.read_bytes()
    proc = subprocess.Popen(
        [sys.executable, "-c", SAVER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "saving"
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    # the file is the old model or a complete new one, never a truncated one
    loaded = fr.load(path)
    if path.read_bytes() == before:
        np.testing.assert_array_equal(loaded.user_factors_, old.user_factors_)
    else:
        assert loaded.user_factors_.shape[1] == 1400 and (loaded.user_factors_ == 1).all()
    leftovers = [f for f in os.listdir(tmp_path) if f != "model.npz"]
    assert all(f.startswith(".model.npz.") and f.endswith(".tmp") for f in leftovers)
