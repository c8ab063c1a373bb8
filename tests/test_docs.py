"""docs/api.md cannot go stale: every public name, model parameter and CLI option is there."""

from __future__ import annotations

import argparse
import inspect
import re
from pathlib import Path

import pytest

import fastrec as fr
from fastrec import cli

ROOT = Path(__file__).resolve().parent.parent
API = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
MODELS = (
    "Popularity",
    "UserKNN",
    "ItemKNN",
    "SGDMF",
    "ALS",
    "BPR",
    "EASE",
    "MLPRecommender",
    "SVDpp",
)


def _section(title: str) -> str:
    """The text under a ``### ...`` heading that contains ``title``, up to the next heading."""
    match = re.search(rf"^###[^\n]*{re.escape(title)}[^\n]*\n(.*?)(?=^##)", API, re.M | re.S)
    assert match, f"docs/api.md has no section for {title}"
    return match.group(1)


def test_every_public_name_is_documented():
    for name in fr.__all__:
        assert f"`fr.{name}" in API or f"fr.{name}(" in API or f"`{name}" in API, name
    for module in (fr.datasets, fr.split, fr.metrics, fr.rerank):
        for name in module.__all__:
            assert f"{name}(" in API, f"{module.__name__}.{name}"


def test_distributed_names_are_documented():
    fd = pytest.importorskip("fastrec.distributed", reason="the [distributed] extra is missing")
    for name in fd.__all__:
        assert f"`{name}" in API, f"fastrec.distributed.{name}"


@pytest.mark.parametrize("name", MODELS)
def test_every_model_parameter_and_default_is_documented(name):
    cls = getattr(fr, name)
    text = _section(f"`fr.{name}`") if name != "ItemKNN" else _section("`fr.UserKNN` and")
    params = [p for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self"]
    if not params:
        assert f"`fr.{name}()` has no parameters" in text
    for p in params:
        row = f"| `{p.name}` | `{p.default!r}` |"
        assert row in text, f"{name}: no row {row!r} in docs/api.md"


def test_model_methods_and_protocol_are_documented():
    base = fr.Popularity
    for method in [m for m in dir(base) if not m.startswith("_") and callable(getattr(base, m))]:
        assert f"`{method}(" in API, method
    for method in ("recommend(user_ids, n=..., exclude_seen=...)", "predict(user_ids, item_ids)"):
        assert method in API
    assert "score_items(user_ids)" in API and "fitted_on(train)" in API


def _call(func) -> str:
    """``name(a, b=1, ...)`` as the code declares it (types as ``np.float32``)."""
    parts = []
    for p in inspect.signature(func).parameters.values():
        if p.default is inspect.Parameter.empty:
            parts.append(p.name)
        elif isinstance(p.default, type):
            parts.append(f"{p.name}=np.{p.default.__name__}")
        else:
            parts.append(f"{p.name}={p.default!r}".replace("'", '"'))
    return f"{func.__name__}({', '.join(parts)})"


@pytest.mark.parametrize(
    "func, prefix",
    [(fr.evaluate, "fr."), (fr.similarity, "fr."), (fr.topk, "fr."), (fr.rerank.mmr, "fr.rerank.")],
)
def test_function_headings_show_the_code_signature(func, prefix):
    heading = f"### `{prefix}{_call(func)}`"
    assert heading in API, heading


def test_every_cli_option_is_documented():
    cli_text = API[API.index("## Command line") : API.index("## Errors")]
    parser = cli.build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for command, sub in subs.choices.items():
        row = re.search(rf"^\| `fastrec {command}` \|(.*)$", cli_text, re.M)
        assert row, f"no row for fastrec {command}"
        for action in sub._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert f"`{option}" in row.group(1), (command, option)


def test_readme_links_the_reference():
    assert "docs/api.md" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_chart_is_drawn_from_the_table():
    import importlib.util

    spec = importlib.util.spec_from_file_location("chart", ROOT / "bench" / "chart.py")
    chart = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(chart)
    rows = chart.table_rows()
    bars = chart.chart_rows(rows)
    assert len(bars) >= 15  # the table's format is still the one the script reads
    # the ratios are the table's ratio cells (the sixth), read here line by line
    text = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    section = text[text.index("## The table") :]
    section = section[: section.index("\n## ", 1)]
    ratios = []
    for line in section.splitlines():
        cells = line.split("|")
        if len(cells) > 7 and cells[4].strip() and re.match(r"\s*\**[0-9.]+", cells[6]):
            ratios.append(float(re.search(r"[0-9.]+", cells[6]).group()))
    assert [r["ratio"] for r in rows] == ratios
    assert not any(b["peer"].startswith(("SGDMF", "ALS", "fastrec")) for b in bars)
