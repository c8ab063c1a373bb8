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


def test_bench_json_records_start_and_duration(tmp_path, monkeypatch):
    monkeypatch.setattr(
        benchmarks, "run", lambda *a, **k: [benchmarks.row("t", "s", 1.0, "p", 2.0)]
    )
    assert cli.main(["bench", "--only", "sgd", "--out", str(tmp_path), "--quiet"]) == 0
    payload = json.loads((tmp_path / "bench.json").read_text())
    assert payload["started"][:2] == "20" and len(payload["started"]) == 19
    assert payload["seconds"] >= 0


def test_data_seeds_reach_the_families_that_take_them(tmp_path, monkeypatch):
    seen = {}

    def fake_run(families, **kwargs):
        seen.update(kwargs, families=families)
        return [benchmarks.row("t", "s", 1.0, "p", 2.0)]

    monkeypatch.setattr(benchmarks, "run", fake_run)
    rc = cli.main(["bench", "--only", "similarity", "--data-seeds", "0, 3,1", "--out",
                   str(tmp_path), "--quiet"])  # fmt: skip
    assert rc == 0 and seen["data_seeds"] == (0, 3, 1)
    assert json.loads((tmp_path / "bench.json").read_text())["args"]["data_seeds"] == "0, 3,1"


@pytest.mark.parametrize(
    "text, message",
    [("0,x", "entry 1 ('x') is not an integer >= 0"), ("2,-1", "entry 1 ('-1')"),
     ("1,1", "entry 1 repeats seed 1"), ("", "entry 0 ('')")],
)  # fmt: skip
def test_bad_data_seeds_are_refused_with_their_position(text, message, tmp_path, capsys):
    rc = cli.main(["bench", "--data-seeds", text, "--out", str(tmp_path)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "--data-seeds" in err and message in err
    assert not (tmp_path / "bench.json").exists()


def test_run_passes_data_seeds_only_to_families_that_take_them(monkeypatch):
    import types

    calls = {}

    def with_seeds(scale, num_threads, quick, data_seeds):
        calls["similarity"] = data_seeds
        return [benchmarks.row("a", "s", 1.0, "p", 2.0)]

    def without(scale, num_threads, quick):
        calls["sgd"] = "called"
        return [benchmarks.row("b", "s", 1.0, "p", 4.0)]

    modules = {"similarity": types.SimpleNamespace(compare=with_seeds),
               "sgd": types.SimpleNamespace(compare=without)}  # fmt: skip
    monkeypatch.setattr(benchmarks.importlib, "import_module",
                        lambda name: modules[name.rsplit(".", 1)[1]])  # fmt: skip
    rows = benchmarks.run(["similarity", "sgd"], data_seeds=[2, 5], log=lambda s: None)
    assert calls == {"similarity": (2, 5), "sgd": "called"}
    assert [r["family"] for r in rows] == ["similarity", "sgd"]
    for bad in ([], [-1], [True], [1.5]):
        with pytest.raises(ValueError, match="data_seeds"):
            benchmarks.run(["sgd"], data_seeds=bad, log=lambda s: None)


def test_similarity_family_times_pearson_on_each_further_seed():
    pytest.importorskip("implicit")
    from fastrec.benchmarks import similarity

    rows = similarity.compare(quick=True, data_seeds=(0, 2))
    seeds = [(r["data_seed"], r["task"], r["peer"]) for r in rows]
    assert all(s == 0 for s, _, _ in seeds[:-1])
    last = rows[-1]
    assert last["data_seed"] == 2 and "data seed 2" in last["shape"]
    assert last["task"] == "item-item pearson top-20" and last["peer"].startswith("implicit")
    assert last["fastrec_s"] > 0 and last["peer_s"] > 0
    assert last["ratio"] == pytest.approx(last["fastrec_s"] / last["peer_s"])
    # the data differ between the seeds (the shape's nnz is the same by construction)
    a = similarity._data(4_000, 1_500, 150_000, seed=0)
    b = similarity._data(4_000, 1_500, 150_000, seed=2)
    assert a.shape == b.shape and (a != b).nnz > 0


def test_fresh_passes_data_seeds_on(tmp_path, capsys):
    out = tmp_path / "o"
    rc = cli.main(["bench", "--fresh", "--dry-run", "--data-seeds", "0,1", "--out", str(out)])
    assert rc == 0
    bench_line = [line for line in capsys.readouterr().out.splitlines() if " bench " in line]
    assert len(bench_line) == 1 and "--data-seeds 0,1" in bench_line[0]


@pytest.mark.parametrize("similarity", ["cosine", "pearson"])
def test_knn_serve_job_measures_the_fitted_model(similarity):
    # the serve job runs only at the full shape in `fastrec bench`; here on a small one
    from fastrec.benchmarks import knn
    from fastrec.models.knn import UserKNN

    out = knn._job_serve({"data": [600, 300, 6000], "n_query": 50, "num_threads": 2})
    assert out["seconds"] > 0 and out["model_mb"] > 0
    X = fastrec.datasets.synthetic(600, 300, 6000, seed=0)
    model = UserKNN(similarity=similarity).fit(X)
    side = model._side
    # at least the ratings by rows and by columns (int64 indptr, int32 indices, float32 values)
    floor = (side.a_indptr.nbytes + side.a_indices.nbytes + side.a_ratings.nbytes
             + side.b_indptr.nbytes + side.b_indices.nbytes + side.b_ratings.nbytes)  # fmt: skip
    assert knn._model_mb(model) * 2**20 >= floor + model._means.nbytes
