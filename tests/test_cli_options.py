"""Command-line options: help texts, --seed, --duplicates, evaluate --json, bench peers."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import pytest

import fastrec as fr
from fastrec import cli


def _subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


def test_every_option_of_every_command_has_help():
    parser = cli.build_parser()
    commands = dict(_subparsers(parser))
    assert set(commands) == {"demo", "fit", "recommend", "evaluate", "bench", "info"}
    for name, sub in commands.items():
        for action in sub._actions:
            text = action.help
            assert isinstance(text, str) and text.strip(), (name, action.option_strings)
            assert text != argparse.SUPPRESS, (name, action.option_strings)


def _main(capsys, *argv):
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_seed_seeds_the_model(tmp_path, capsys):
    paths = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        paths[name] = tmp_path / f"{name}.npz"
        fit = ("fit", "--model", "als", "--data", "movielens-small", "--out", str(paths[name]))
        rc, _, err = _main(capsys, *fit, "--seed", str(seed), "--factors", "4", "--iterations", "1")
        assert rc == 0, err
    a, b, c = (fr.load(paths[n]).user_factors_ for n in "abc")
    np.testing.assert_array_equal(a, b)  # the same seed: the same model
    assert not np.array_equal(a, c)  # another seed: another initialisation
    # an explicit --random_state wins over --seed
    rc, _, err = _main(
        capsys, *fit, "--seed", "4", "--random_state", "3", "--factors", "4", "--iterations", "1"
    )
    assert rc == 0, err
    np.testing.assert_array_equal(fr.load(paths["c"]).user_factors_, a)


def test_evaluate_twice_with_one_seed_gives_the_same_figures(tmp_path, capsys):
    reports = []
    for run in range(2):
        path = tmp_path / f"r{run}.json"
        rc, out, err = _main(
            capsys,
            "evaluate",
            "--model",
            "sgdmf",
            "--data",
            "movielens-small",
            "--seed",
            "7",
            "--factors",
            "8",
            "--epochs",
            "2",
            "--num_threads",
            "1",
            "--relevance-threshold",
            "4",
            "--json",
            str(path),
            "--quiet",
        )
        assert rc == 0, err
        reports.append(json.loads(path.read_text()))
    first, second = ({k: v for k, v in r.items() if k != "fit_s"} for r in reports)
    assert first == second
    X = fr.datasets.movielens_small()
    assert first["model"] == "SGDMF"
    assert first["params"]["factors"] == 8 and first["params"]["random_state"] == 7
    assert first["params"]["dtype"] in ("float32", "float64")
    assert first["data"] == {
        "path": "movielens-small",
        "n_users": X.n_users,
        "n_items": X.n_items,
        "nnz": X.nnz,
    }
    assert first["protocol"] == {
        "split": "random",
        "test_size": 0.2,
        "folds": None,
        "seed": 7,
        "relevance_threshold": 4.0,
        "k": 10,
        "exclude_seen": True,
    }
    assert 0 < first["precision"] < 1 and first["rmse"] > 0


def test_duplicates_option(tmp_path, capsys):
    data = tmp_path / "log.csv"
    rows = ["user,item,rating"] + [
        f"u{u},i{(u + j) % 9},{1 + j % 5}" for u in range(12) for j in range(5)
    ]
    rows.append("u0,i0,5")  # u0 rated i0 (3 is the first rating) a second time
    data.write_text("\n".join(rows) + "\n")
    base = ("evaluate", "--model", "popularity", "--data", str(data), "--quiet")
    rc, _, err = _main(capsys, *base)
    assert rc == 2 and err.count("\n") == 1
    assert "duplicate (user, item) pair ('u0', 'i0')" in err
    assert "pass --duplicates last, mean or sum to merge" in err and "duplicates='" not in err
    for policy in ("last", "mean", "sum"):
        report = tmp_path / f"{policy}.json"
        rc, _, err = _main(capsys, *base, "--duplicates", policy, "--json", str(report))
        assert rc == 0, err
        assert json.loads(report.read_text())["data"]["nnz"] == 60
    with pytest.raises(SystemExit) as info:  # argparse refuses it: one line, status 2
        cli.main([*base, "--duplicates", "first"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "invalid choice: 'first'" in err and err.count("\n") == 1


def test_bench_without_the_peers_names_what_to_install(tmp_path, capsys, monkeypatch):
    from fastrec import benchmarks

    monkeypatch.setitem(sys.modules, "surprise", None)  # as if scikit-surprise were absent
    # the measurements themselves are replaced by one row without a peer time
    row = benchmarks.row("svdpp fit", "s", 1.0, "surprise SVDpp", None)
    monkeypatch.setattr(benchmarks, "run", lambda *a, **k: [dict(row)])
    rc, out, err = _main(
        capsys, "bench", "--quick", "--quiet", "--only", "svdpp", "--out", str(tmp_path)
    )
    # fastrec's times are still measured and written; the missing peer is named
    # first on stderr and again under the table
    assert rc == 0, err
    assert "no peer library to compare with is installed (scikit-surprise)" in err
    assert "pip install 'fastrec[bench]'" in err
    assert "not installed: scikit-surprise" in out
    assert (tmp_path / "bench.json").exists()
    monkeypatch.setitem(sys.modules, "implicit", None)
    missing, needed = cli._missing_peers(["similarity", "knn"])
    assert needed == ["implicit", "scikit-surprise", "sparse-dot-topn"]
    # the two hidden ones are missing (sparse-dot-topn too where it is not installed)
    assert {"implicit", "scikit-surprise"} <= set(missing) <= set(needed)
    assert cli._missing_peers(["rerank", "mlp"]) == ([], [])  # no peer from the extra


@pytest.mark.parametrize("user, known", [("1", True), ("999999", False)])
def test_recommend_knows_the_users_through_the_public_ids(tmp_path, capsys, user, known):
    path = tmp_path / "pop.npz"
    assert (
        _main(
            capsys, "fit", "--model", "popularity", "--data", "movielens-small", "--out", str(path)
        )[0]
        == 0
    )
    rc, out, err = _main(capsys, "recommend", "--model", str(path), "--user", user, "-n", "3")
    assert (rc == 0) == known, err
    assert ("top 3 for user" in out) == known
