"""The command line, through subprocess calls as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def run(*args, timeout=300):
    proc = subprocess.run(
        [sys.executable, "-m", "fastrec.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    return proc.returncode, proc.stdout, proc.stderr


def test_info():
    rc, out, err = run("info")
    assert rc == 0, err
    assert "backends" in out and "cython_openmp" in out and "blas" in out


def test_fit_recommend_evaluate_round_trip(tmp_path):
    model = tmp_path / "pop.npz"
    rc, out, err = run(
        "fit", "--model", "popularity", "--data", "movielens-small", "--out", str(model)
    )
    assert rc == 0, err
    assert model.exists() and "saved to" in out
    rc, out, err = run(
        "recommend", "--model", str(model), "--user", "1", "-n", "3", "--titles", "movielens-small"
    )
    assert rc == 0, err
    lines = [line for line in out.splitlines() if line.strip()[:2].strip().rstrip(".").isdigit()]
    assert len(lines) == 3 and "Shawshank Redemption" in out
    report = tmp_path / "metrics.json"
    rc, out, err = run(
        "evaluate",
        "--model",
        "popularity",
        "--data",
        "movielens-small",
        "--protocol",
        "loo",
        "--json",
        str(report),
    )
    assert rc == 0, err
    metrics = json.loads(report.read_text())
    assert 0 < metrics["hit_rate"] < 1 and "ndcg@10" in out


def test_generic_csv_and_kfold(tmp_path):
    data = tmp_path / "log.csv"
    rows = ["user,item,rating"] + [
        f"u{u},i{(u * 7 + j) % 13},{1 + (u + j) % 5}" for u in range(30) for j in range(6)
    ]
    data.write_text("\n".join(rows) + "\n")
    rc, out, err = run(
        "evaluate",
        "--model",
        "popularity",
        "--data",
        str(data),
        "--protocol",
        "kfold",
        "--folds",
        "3",
    )
    assert rc == 0, err
    assert out.count("fold ") == 3 and "rmse" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ("fit", "--model", "nope", "--data", "movielens-small", "--out", "x.npz"),
            "unknown model 'nope'",
        ),
        (
            ("fit", "--model", "popularity", "--data", "/no/such/path", "--out", "x.npz"),
            "does not exist",
        ),
        (
            (
                "fit",
                "--model",
                "popularity",
                "--data",
                "movielens-small",
                "--out",
                "x.npz",
                "--factors",
                "3",
            ),
            "Popularity has no parameter 'factors'",
        ),
        (("recommend", "--model", "/no/such/model.npz", "--user", "1"), "does not exist"),
        (("bench", "--only", "gpu"), "unknown benchmark family 'gpu'"),
    ],
)
def test_user_errors_are_one_line(args, message):
    rc, out, err = run(*args)
    assert rc == 2
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    assert err.startswith("fastrec: error:") and message in err


def test_unknown_user_and_bad_parameter_value(tmp_path):
    model = tmp_path / "pop.npz"
    assert (
        run("fit", "--model", "popularity", "--data", "movielens-small", "--out", str(model))[0]
        == 0
    )
    rc, out, err = run("recommend", "--model", str(model), "--user", "999999")
    assert rc == 2 and "unknown user '999999'" in err and "Traceback" not in err
    rc, out, err = run("recommend", "--model", str(model), "--user", "999999", "--allow-unknown")
    assert rc == 0 and "top 10" in out
    rc, out, err = run(
        "fit",
        "--model",
        "sgdmf",
        "--data",
        "movielens-small",
        "--out",
        str(tmp_path / "m.npz"),
        "--factors",
        "-3",
    )
    assert rc == 2 and "factors" in err and "Traceback" not in err
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a model")
    rc, out, err = run("recommend", "--model", str(bad), "--user", "1")
    assert rc == 2 and "not a fastrec model file" in err


def test_bench_quick_writes_json_and_chart(tmp_path):
    rc, out, err = run("bench", "--quick", "--only", "topk", "--out", str(tmp_path), "--quiet")
    assert rc == 0, err
    payload = json.loads((tmp_path / "bench.json").read_text())
    assert payload["rows"] and payload["rows"][0]["task"] == "recommend all users"
    assert payload["rows"][0]["fastrec_s"] > 0
    assert "ratio" in out


@pytest.mark.slow
def test_demo_runs_end_to_end():
    rc, out, err = run("demo", "--quick", "--quiet", timeout=600)
    assert rc == 0, err
    import re

    for name in ("ItemKNN", "UserKNN", "SGDMF", "ALS (implicit)", "MLPRecommender"):
        # a table row: the model, its fit time, then metric columns
        assert re.search(rf"^{re.escape(name)}\s+\d+\.\d+\s", out, re.M), (name, out)
    assert "not available" not in out
    assert "top 10 recommendations for user 1" in out
    # the neighbourhood models list better than the most popular items (P@10 column)
    p10 = {}
    for name in ("ItemKNN", "UserKNN", "Popularity"):
        cells = re.search(rf"^{name}\s+(.*)$", out, re.M).group(1).split()
        p10[name] = float(cells[3])  # fit s, RMSE, MAE, P@10
    assert p10["ItemKNN"] > p10["Popularity"] and p10["UserKNN"] > p10["Popularity"], out
    # a rating model listing worse than Popularity is named under the table, with why
    sgd = float(re.search(r"^SGDMF\s+(.*)$", out, re.M).group(1).split()[3])
    note = re.search(r"^Below Popularity's P@10 here: (.*?)\. Models fitted", out, re.M)
    if sgd < p10["Popularity"]:
        assert note is not None and "SGDMF" in note.group(1).split(", "), out
    else:
        assert note is None or "SGDMF" not in note.group(1).split(", "), out
