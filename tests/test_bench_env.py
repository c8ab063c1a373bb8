"""``fastrec bench``: the machine facts in its JSON, and the plumbing of ``--fresh``."""

from __future__ import annotations

import glob
import json
import os
import sys
import tempfile

import numpy as np
import pytest

import fastrec
from fastrec import benchmarks, cli
from fastrec.benchmarks import environment


def test_machine_info_is_sane():
    info = environment.machine_info()
    assert isinstance(info["cpu_model"], str) and info["cpu_model"]
    assert isinstance(info["cpu_flags"], list)
    assert info["cores_online"] >= 1
    assert 1 <= info["cores_usable"] <= info["cores_online"]
    assert isinstance(info["python"], str) and info["python"].count(".") == 2
    if sys.platform.startswith("linux"):
        assert info["cpu_flags"] and all(isinstance(f, str) for f in info["cpu_flags"])
        assert info["memory_gib"] > 0
        load = info["load_average"]
        assert len(load) == 3 and all(x >= 0 for x in load)


def test_library_versions_match_the_imported_ones():
    versions = environment.library_versions()
    assert versions["fastrec"] == fastrec.__version__
    assert versions["numpy"] == np.__version__
    assert set(environment.LIBRARIES) == set(versions)
    assert "scikit-surprise" in versions and "implicit" in versions


def test_bench_json_records_machine_build_and_versions(tmp_path, monkeypatch, capsys):
    # the benchmarks themselves are replaced by one row: this checks what the
    # command writes around them
    rows = [benchmarks.row("t", "s", 1.0, "peer", 2.0)]
    monkeypatch.setattr(benchmarks, "run", lambda *a, **k: [dict(r) for r in rows])
    rc = cli.main(["bench", "--only", "sgd", "--quick", "--out", str(tmp_path), "--quiet"])
    assert rc == 0
    payload = json.loads((tmp_path / "bench.json").read_text())
    machine = payload["machine"]
    assert machine["cpu_model"] and machine["cores_online"] >= 1
    for key in ("load_average_before", "load_average_after"):
        if sys.platform.startswith("linux"):
            assert len(machine[key]) == 3 and min(machine[key]) >= 0
    config = payload["config"]
    assert config["fastrec"] == fastrec.__version__ and "numba" in config["backends"]
    if "cython" in config["backends"]:
        assert "-O3" in config["cython_build_flags"]
    assert payload["versions"]["numpy"] == np.__version__
    assert payload["rows"][0]["ratio"] == 0.5
    assert payload["args"]["only"] == "sgd"


def test_fresh_plan_clones_installs_and_reruns_the_same_bench():
    plan = environment.fresh_plan("/w", "/repo", ["--quick", "--only", "sgd"], "/out")
    (cwd0, clone), (_, venv), (cwd2, install), (_, bench) = plan
    assert clone[:2] == ["git", "clone"] and clone[-2:] == ["/repo", os.path.join("/w", "src")]
    assert venv[1:4] == ["-m", "venv", "--system-site-packages"]
    assert cwd2 == os.path.join("/w", "src") and install[-3:] == ["install", "--quiet", "."]
    python = install[0]
    assert python.startswith(os.path.join("/w", "venv")) and bench[0] == python
    assert bench[1] == "-c" and "fastrec.cli import main" in bench[2]
    assert bench[3:] == ["bench", "--quick", "--only", "sgd", "--out", "/out"]


@pytest.mark.skipif(environment.source_checkout() is None, reason="not a git checkout")
def test_fresh_dry_run_prints_the_commands_and_runs_nothing(tmp_path, capsys):
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "fastrec-fresh-*")))
    out = tmp_path / "res"
    rc = cli.main(["bench", "--fresh", "--dry-run", "--quick", "--only", "sgd", "--out", str(out)])
    assert rc == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 5
    assert "git clone" in lines[0] and environment.source_checkout() in lines[0]
    assert "-m venv --system-site-packages" in lines[1]
    assert lines[2].endswith("-m pip install --quiet .)")
    assert "fastrec.cli import main" in lines[3]
    assert " bench --scale 1.0 --threads 2 --quick --only sgd --out " in lines[3]
    assert lines[3].endswith(f"{out})") and lines[4].startswith("rm -rf ")
    assert not out.exists()
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "fastrec-fresh-*"))) == before


def test_dry_run_needs_fresh(capsys):
    assert cli.main(["bench", "--dry-run", "--only", "sgd"]) == 2
    assert "--dry-run goes with --fresh" in capsys.readouterr().err
