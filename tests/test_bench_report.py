"""``bench/report.py``: the table of BENCHMARKS.md written from several ``fastrec bench`` runs."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from fastrec import benchmarks

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def report():
    spec = importlib.util.spec_from_file_location("report", ROOT / "bench" / "report.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["report"] = module  # a dataclass looks its module up there
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("report", None)


def _run(tmp_path, name, pearson, sgd_s, commit="abc123", quick=False, fresh=True):
    rows = [
        benchmarks.row("item-item pearson top-20", "20M, data seed 0", pearson[0],
                       "implicit CosineRecommender(K=20).fit", 10.0),
        benchmarks.row("item-item pearson top-20", "20M, data seed 1", pearson[1],
                       "implicit CosineRecommender(K=20).fit", 10.0),
        benchmarks.row("fit ml-latest-small", "ml", sgd_s, "surprise SVD", 0.5),
        benchmarks.row("mlp rmse ml-latest-small", "ml", 1.0, "fastrec SGDMF", 0.1),
    ]  # fmt: skip
    for r, family in zip(rows, ("similarity", "similarity", "sgd", "mlp")):
        r["family"] = family
        r["note"] = f"{family} note"
    payload = {
        "machine": {"cpu_model": "Test CPU", "cpu_flags": ["avx2", "fma"], "cores_online": 2,
                    "cores_usable": 2, "load_average_before": [0.1, 0.2, 0.3],
                    "load_average_after": [1.0, 0.5, 0.3]},
        "config": {"cython_build_flags": "-O3 -march=native"},
        "versions": {"fastrec": "0.1.0", "implicit": "0.7.3", "libmf": None},
        "commit": None if fresh else commit,
        "started": "2026-12-03 10:00:00",
        "seconds": 600.0,
        "args": {"scale": 1.0, "threads": 2, "quick": quick, "only": None,
                 "data_seeds": "0,1", "out": str(tmp_path / name), "func": f"<fn {name}>"},
        "rows": rows,
    }  # fmt: skip
    if fresh:
        # a clone of a checkout with uncommitted changes: the clone is the commit
        mark = "-dirty" if name == "b" else ""
        payload["fresh"] = {"commit": commit + mark, "seconds": {"clone": 1.0, "install": 150.0}}
    folder = tmp_path / name
    folder.mkdir()
    (folder / "bench.json").write_text(json.dumps(payload))
    return str(folder)


def _table(text):
    table = text[text.index("| task |") :]
    table = table.split("The rows' notes")[0]
    lines = table.strip().splitlines()
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]


def test_medians_per_run_ratios_and_goals_checked_on_every_run(report, tmp_path):
    runs = [
        _run(tmp_path, "a", (5.0, 5.5), 0.030),
        _run(tmp_path, "b", (7.0, 5.0), 0.035),  # seed 0: 0.7 > 0.6 in this run
        _run(tmp_path, "c", (5.5, 4.0), 0.045),  # ml-latest-small: 45 ms > 40 ms
    ]
    text = report.render(runs)
    table = _table(text)
    assert len(table) == 4
    seed0, seed1, sgd, mlp = table
    assert seed0[2] == "5.5" and seed0[4] == "10"  # medians of the seconds
    assert seed0[5] == "**0.55**" and seed0[6] == "0.5 / 0.7 / 0.55"
    assert seed0[7] == "5 / 7 / 5.5"
    assert seed0[9] == "≤ 0.6: **not met** (2 of 3)"
    assert seed1[5] == "**0.5**" and seed1[9] == "≤ 0.6: **met** (3 of 3)"
    assert "data seed 1" in seed1[1]
    assert sgd[7] == "0.03 / 0.035 / 0.045"
    assert sgd[9] == "≤ 40 ms and ≥ 10x (≤ 0.1): **not met** (2 of 3)"
    assert mlp[9] == "reported"
    assert "fastrec bench --fresh --scale 1.0 --threads 2 --data-seeds 0,1" in text
    assert "Test CPU" in text and "avx2, fma" in text and "-O3 -march=native" in text
    assert "Not installed** (their rows have no peer time): libmf" in text
    assert text.count("| abc123 | 2026-12-03 10:00:00 | 600 |") == 3
    assert "install 150.0" in text
    assert "- fit ml-latest-small vs surprise SVD (ml): sgd note" in text


def test_quick_runs_check_no_goal(report, tmp_path):
    text = report.render([_run(tmp_path, "q", (9.0, 9.0), 0.2, quick=True)])
    assert "no goal is checked" in text
    assert not any("met" in row[9] for row in _table(text))


@pytest.mark.parametrize("change", ["commit", "options", "row"])
def test_runs_of_other_code_options_or_rows_are_refused(report, tmp_path, change):
    a = _run(tmp_path, "a", (5.0, 5.0), 0.03)
    b = _run(tmp_path, "b", (5.0, 5.0), 0.03, commit="other" if change == "commit" else "abc123")
    path = Path(b) / "bench.json"
    payload = json.loads(path.read_text())
    if change == "options":
        payload["args"]["threads"] = 4
    if change == "row":
        payload["rows"].pop(1)
    path.write_text(json.dumps(payload))
    with pytest.raises(ValueError, match={"commit": "commit 'other' differs",
                                          "options": "options .* differ",
                                          "row": "missing from run"}[change]):  # fmt: skip
        report.render([a, b])


def test_unreadable_or_foreign_files_are_named(report, tmp_path):
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(ValueError, match=r"run 0 .*x.json.*no 'rows' list"):
        report.load([str(tmp_path / "x.json")])
    with pytest.raises(ValueError, match="run 0 .*cannot read it"):
        report.load([str(tmp_path / "missing")])


def test_main_replaces_only_the_marked_part(report, tmp_path, capsys):
    run = _run(tmp_path, "a", (5.0, 5.0), 0.03)
    target = tmp_path / "B.md"
    target.write_text(f"# head\n\n{report.BEGIN}\nold table\n{report.END}\n\n## notes\nkept\n")
    assert report.main([run, "--target", str(target)]) == 0
    text = target.read_text()
    assert text.startswith("# head\n\n" + report.BEGIN + "\n## The table\n")
    assert "old table" not in text and text.endswith(report.END + "\n\n## notes\nkept\n")
    once = text
    assert report.main([run, "--target", str(target)]) == 0
    assert target.read_text() == once  # idempotent
    target.write_text("no markers\n")
    assert report.main([run, "--target", str(target)]) == 2
    assert "needs one" in capsys.readouterr().err
