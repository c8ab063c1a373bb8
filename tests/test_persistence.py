"""save / load: round trip and every kind of bad file (Popularity baseline here;
each model family's tests round-trip its own model)."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import fastrec as fr


@pytest.fixture
def fitted(tmp_path):
    X = fr.Interactions.from_arrays(["a", "a", "b", "c"], ["x", "y", "y", "z"], [5, 4, 3, 1])
    model = fr.Popularity().fit(X)
    path = tmp_path / "model.npz"
    model.save(path)
    return model, path


def test_round_trip(fitted):
    model, path = fitted
    loaded = fr.load(path)
    assert type(loaded) is type(model)
    users = ["a", "b", "zz"]
    np.testing.assert_array_equal(
        loaded.predict(users, ["y", "x", "z"]), model.predict(users, ["y", "x", "z"])
    )
    a, b = model.recommend(users, n=2), loaded.recommend(users, n=2)
    np.testing.assert_array_equal(a[0].astype(str), b[0].astype(str))
    np.testing.assert_array_equal(a[1], b[1])


def _rewrite(path, mutate):
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    mutate(arrays)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def test_truncated_file(fitted):
    _, path = fitted
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="not a readable fastrec model file"):
        fr.load(path)


def test_not_a_model(tmp_path):
    p = tmp_path / "x.npz"
    np.savez(p, a=np.arange(3))
    with pytest.raises(ValueError, match="not a fastrec model file"):
        fr.load(p)
    q = tmp_path / "x.txt"
    q.write_text("hello")
    with pytest.raises(ValueError, match="not a fastrec model file.*text or CSV"):
        fr.load(q)
    with pytest.raises(ValueError, match="does not exist"):
        fr.load(tmp_path / "missing.npz")


def test_pickled_payload_is_refused(tmp_path):
    p = tmp_path / "evil.npz"
    np.savez(p, __meta__=np.array([{"format": "fastrec-model"}], dtype=object))
    with pytest.raises(ValueError, match="dtype '.O' .only plain numeric"):
        fr.load(p)


def test_other_layout_version(fitted):
    _, path = fitted

    def bump(arrays):
        meta = json.loads(arrays["__meta__"].tobytes())
        meta["layout_version"] = 99
        arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)

    _rewrite(path, bump)
    with pytest.raises(ValueError, match="layout version 99"):
        fr.load(path)


def test_tampered_arrays(fitted):
    _, path = fitted

    def corrupt(arrays):
        arrays["base.seen_indices"] = arrays["base.seen_indices"] + 100

    _rewrite(path, corrupt)
    with pytest.raises(ValueError, match="column index >= 3"):
        fr.load(path)


def test_tampered_class_and_params(fitted, tmp_path):
    _, path = fitted

    def rename(arrays):
        meta = json.loads(arrays["__meta__"].tobytes())
        meta["class"] = "os.system"
        arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)

    _rewrite(path, rename)
    with pytest.raises(ValueError, match="unknown model class 'os.system'"):
        fr.load(path)


def test_corrupt_metadata(fitted):
    _, path = fitted

    def garble(arrays):
        arrays["__meta__"] = np.frombuffer(b"\xff\xfe{", dtype=np.uint8)

    _rewrite(path, garble)
    with pytest.raises(ValueError, match="corrupt metadata"):
        fr.load(path)
    assert zipfile.is_zipfile(path)


def test_unfitted_model_cannot_save_or_predict(tmp_path):
    with pytest.raises(fr.models.NotFittedError, match="not fitted"):
        fr.Popularity().save(tmp_path / "m.npz")
    with pytest.raises(ValueError, match="not fitted"):
        fr.Popularity().predict([1], [1])
