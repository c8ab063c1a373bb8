"""Write the table of BENCHMARKS.md from the ``bench.json`` of one or more ``fastrec bench`` runs.

    fastrec bench --fresh --data-seeds 0,1,2,3 --out bench_results/fresh1   # three times
    python bench/report.py bench_results/fresh1 bench_results/fresh2 bench_results/fresh3
    python bench/chart.py   # the chart, from the table

Each argument is a ``bench.json`` or the folder holding one. The runs must
come from the same commit and the same ``fastrec bench`` options (their rows
are matched by family, task, data and peer). The script replaces the part of
BENCHMARKS.md between the lines ``<!-- report:begin -->`` and
``<!-- report:end -->`` with: the machine (CPU model, vector extensions,
cores, memory, compiler, build flags, library versions, all read from the
first run's JSON), one line per run (commit, start, load average before and
after, the fresh install's steps and seconds), and the table: per row the
median over the runs of fastrec's and the peer's seconds, the median of the
runs' ratios, every run's ratio, the first run's quality column, and the
row's goal with the number of runs that met it; then each row's note from
the first run (memory, throughput, CPU time, repeats). The goals are listed in
``GOALS`` below; a goal is checked on each run's own figures, never on the
medians. ``--print`` writes the text to standard output instead.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "BENCHMARKS.md"
BEGIN = "<!-- report:begin -->"
END = "<!-- report:end -->"


@dataclass(frozen=True)
class Goal:
    """What a row set out to reach: ``text`` for the reader, ``check(row)`` on one run's row."""

    family: str
    task: str  # regular expression, matched from the start of the row's task
    peer: str  # regular expression, matched from the start of the row's peer
    text: str
    check: Callable[[dict[str, Any]], bool]


def _ratio_at_most(limit: float) -> Callable[[dict[str, Any]], bool]:
    return lambda r: r.get("ratio") is not None and r["ratio"] <= limit


def _seconds_below(limit: float) -> Callable[[dict[str, Any]], bool]:
    return lambda r: r.get("fastrec_s") is not None and r["fastrec_s"] < limit


def _sgd_small(r: dict[str, Any]) -> bool:
    return (
        r.get("ratio") is not None
        and r.get("fastrec_s") is not None
        and r["fastrec_s"] <= 0.040
        and r["ratio"] <= 0.1
    )


GOALS: tuple[Goal, ...] = (
    Goal("similarity", r"item-item pearson top-20$", "implicit", "≤ 0.6", _ratio_at_most(0.6)),
    Goal("similarity", r"item-item cosine top-20$", "implicit", "≤ 0.6", _ratio_at_most(0.6)),
    Goal("similarity", r"item-item \w+ top-20$", "sparse_dot_topn", "< 1", _ratio_at_most(0.999)),
    Goal(
        "knn",
        r"(User|Item)KNN pearson k=40 fit\+predict",
        "surprise",
        "≥ 50x (≤ 0.02)",
        _ratio_at_most(0.02),
    ),  # fmt: skip
    Goal("sgd", r"sgd fit, factors", "libmf", "≥ 1.5x (≤ 0.67)", _ratio_at_most(1 / 1.5)),
    Goal("sgd", r"fit ml-latest-small", "surprise", "≤ 40 ms and ≥ 10x (≤ 0.1)", _sgd_small),
    Goal("als", r"als implicit iteration, factors", "implicit", "≤ 0.6", _ratio_at_most(0.6)),
    Goal("topk", r"recommend all users", "implicit", "≥ 1.5x (≤ 0.67)", _ratio_at_most(1 / 1.5)),
    Goal("mlp", r"mlp train, batch 256$", "torch", "≥ 1.5x (≤ 0.67)", _ratio_at_most(1 / 1.5)),
    Goal("mlp", r"mlp train, batch 1024$", "torch", "≥ 1x (≤ 1)", _ratio_at_most(1.0)),
    Goal("svdpp", r"SVDpp fit", "surprise", "≥ 30x (≤ 0.033)", _ratio_at_most(1 / 30)),
    Goal("rerank", r"MMR re-rank", "NumPy", "< 0.5 s", _seconds_below(0.5)),
)


def goal_for(r: dict[str, Any]) -> Goal | None:
    for g in GOALS:
        if (
            r.get("family") == g.family
            and re.match(g.task, str(r.get("task", "")))
            and re.match(g.peer, str(r.get("peer", "")), flags=re.IGNORECASE)
        ):
            return g
    return None


def load(paths: list[str]) -> list[dict[str, Any]]:
    """The runs' JSON payloads; refuses runs of different commits or options."""
    runs = []
    for position, p in enumerate(paths):
        path = Path(p)
        if path.is_dir():
            path = path / "bench.json"
        try:
            with open(path, encoding="utf-8") as fh:
                payload = json.load(fh)
        except (OSError, ValueError) as exc:
            raise ValueError(f"run {position} ({path}): cannot read it: {exc}") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("rows"), list):
            raise ValueError(f"run {position} ({path}): no 'rows' list: not a fastrec bench JSON")
        payload["_path"] = str(path)
        runs.append(payload)
    if not runs:
        raise ValueError("give at least one run")
    first = runs[0]
    ignored = ("out", "quiet", "func")  # func: the handler's repr, an address
    for position, run in enumerate(runs[1:], start=1):
        if commit_of(run) != commit_of(first):
            raise ValueError(
                f"run {position} ({run['_path']}): commit {commit_of(run)!r} differs from "
                f"run 0's {commit_of(first)!r}: a table mixes one code's runs only"
            )
        a = {k: v for k, v in (run.get("args") or {}).items() if k not in ignored}
        b = {k: v for k, v in (first.get("args") or {}).items() if k not in ignored}
        if a != b:
            raise ValueError(
                f"run {position} ({run['_path']}): options {a} differ from run 0's {b}"
            )
    return runs


def commit_of(run: dict[str, Any]) -> str | None:
    """The commit measured: the checkout's, or for ``--fresh`` the cloned one.

    A fresh run clones the committed work only, so a ``-dirty`` mark (the
    checkout it was cloned from had uncommitted changes) does not apply to it.
    """
    fresh = run.get("fresh") or {}
    if fresh.get("commit"):
        return str(fresh["commit"]).removesuffix("-dirty")
    return run.get("commit")


def _key(r: dict[str, Any]) -> tuple:
    return (r.get("family"), r.get("task"), r.get("shape"), r.get("peer"))


def _median(rows: list[dict[str, Any]], name: str) -> float | None:
    """The median of ``name`` over the rows; None unless every row has it."""
    values = [r[name] for r in rows if r.get(name) is not None]
    return statistics.median(values) if len(values) == len(rows) else None


def combine(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per row of the first run: the row in every run, medians and goal counts."""
    per_run = []
    for position, run in enumerate(runs):
        rows: dict[tuple, dict[str, Any]] = {}
        for r in run["rows"]:
            if _key(r) in rows:
                raise ValueError(f"run {position}: the row {_key(r)} occurs twice")
            rows[_key(r)] = r
        per_run.append(rows)
    out = []
    for key, r0 in per_run[0].items():
        rows = [rows.get(key) for rows in per_run]
        missing = [i for i, r in enumerate(rows) if r is None]
        if missing:
            raise ValueError(f"row {key} is missing from run(s) {missing}")

        goal = goal_for(r0)
        out.append(
            {
                "row": r0,
                "runs": rows,
                "fastrec_s": _median(rows, "fastrec_s"),
                "peer_s": _median(rows, "peer_s"),
                "ratio": _median(rows, "ratio"),
                "goal": goal,
                "met": None if goal is None else sum(bool(goal.check(r)) for r in rows),
            }
        )
    return out


def _num(v: float | None) -> str:
    if v is None:
        return ""
    if v >= 100:
        return f"{v:.0f}"
    if v >= 0.01:
        return f"{v:.3g}"
    return f"{v:.2g}"


def _cell(text: Any) -> str:
    return str(text or "").replace("|", "/").replace("\n", " ")


def _flags(flags: list[str]) -> str:
    wanted = ("avx512f", "avx2", "fma", "avx", "sse4_2", "neon", "asimd")
    have = [f for f in wanted if f in flags]
    return ", ".join(have) if have else "none of " + ", ".join(wanted)


def machine_text(runs: list[dict[str, Any]]) -> list[str]:
    m = runs[0].get("machine") or {}
    cfg = runs[0].get("config") or {}
    versions = runs[0].get("versions") or {}
    lines = [
        f"- **CPU:** {m.get('cpu_model')}, {m.get('cores_online')} cores online "
        f"({m.get('cores_usable')} usable), vector extensions: {_flags(m.get('cpu_flags') or [])}"
        + (", a virtual machine" if m.get("virtualised") else ""),
        f"- **Caches:** {', '.join(f'{k} {v}' for k, v in (m.get('caches') or {}).items())}; "
        f"**memory:** {m.get('memory_gib')} GiB; **OS:** {m.get('platform')}",
        f"- **Python** {m.get('python')}; **compiler:** {m.get('compiler')}",
    ]
    build = {k: v for k, v in cfg.items() if re.search(r"flag|compiler|cython|openmp|backend", k,
                                                       flags=re.IGNORECASE)}  # fmt: skip
    if build:
        lines.append("- **Build and backends** (`fastrec.show_config()`): "
                     + "; ".join(f"{k}: {_cell(v)}" for k, v in build.items()))  # fmt: skip
    lines.append("- **Versions:** " + ", ".join(
        f"{k} {v}" for k, v in versions.items() if v is not None))  # fmt: skip
    absent = [k for k, v in versions.items() if v is None]
    if absent:
        lines.append(f"- **Not installed** (their rows have no peer time): {', '.join(absent)}")
    return lines


def runs_text(runs: list[dict[str, Any]]) -> list[str]:
    lines = ["| run | commit | started (UTC) | bench s | load average before → after "
             "(1, 5, 15 min) | fresh install: steps and seconds |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for position, run in enumerate(runs, start=1):
        m = run.get("machine") or {}
        fresh = run.get("fresh") or {}
        seconds = fresh.get("seconds") or {}
        steps = ", ".join(f"{k} {v}" for k, v in seconds.items()) if fresh else "not fresh"
        before = m.get("load_average_before")
        after = m.get("load_average_after")
        lines.append(
            f"| {position} | {commit_of(run)} | {run.get('started', '')} "
            f"| {_num(run.get('seconds'))} | {before} → {after} | {steps} |"
        )
    return lines


def full_shapes(run: dict[str, Any]) -> bool:
    """Whether a run measured the shapes the goals are set for (``--scale 1.0``, no ``--quick``)."""
    args = run.get("args") or {}
    return not args.get("quick") and float(args.get("scale", 1.0)) == 1.0


def table_text(combined: list[dict[str, Any]], n_runs: int, goals: bool = True) -> list[str]:
    lines = [
        "| task | data | fastrec s | peer | peer s | ratio | ratio per run | fastrec s per run "
        "| quality (run 1) | goal: runs that met it |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in combined:
        r = c["row"]
        ratio = f"**{c['ratio']:.3g}**" if c["ratio"] is not None else ""
        per_run = " / ".join(_num(x.get("ratio")) or "-" for x in c["runs"])
        if c["goal"] is None:
            goal = "reported"
        elif not goals:
            goal = f"({c['goal'].text} at the full shapes)"
        else:
            verdict = "**met**" if c["met"] == n_runs else "**not met**"
            goal = f"{c['goal'].text}: {verdict} ({c['met']} of {n_runs})"
        note = r.get("note") or ""
        if r.get("peer_s") is None and "not installed" in note:
            goal = f"{goal}; {_cell(note)}"
        lines.append(
            "| " + " | ".join([
                _cell(r.get("task")), _cell(r.get("shape")), _num(c["fastrec_s"]),
                _cell(r.get("peer")), _num(c["peer_s"]), ratio,
                per_run if r.get("ratio") is not None else "",
                " / ".join(_num(x.get("fastrec_s")) or "-" for x in c["runs"])
                if r.get("fastrec_s") is not None else "",
                _cell(r.get("quality")), goal,
            ]) + " |"
        )  # fmt: skip
    return lines


def notes_text(combined: list[dict[str, Any]]) -> list[str]:
    """The first run's note of each row (memory, throughput, CPU time, repeats), as a list."""
    lines = []
    for c in combined:
        r = c["row"]
        if r.get("note"):
            peer = f" vs {r['peer']}" if r.get("peer") and r.get("peer") != "-" else ""
            lines.append(f"- {_cell(r.get('task'))}{_cell(peer)} ({_cell(r.get('shape'))}): "
                         f"{_cell(r['note'])}")  # fmt: skip
    return lines


def command_text(runs: list[dict[str, Any]], paths: list[str]) -> list[str]:
    args = runs[0].get("args") or {}
    opts = []
    for name in ("scale", "threads", "only", "quick", "data_seeds"):
        value = args.get(name)
        if value in (None, False, "0") and name != "scale":
            continue
        flag = "--" + name.replace("_", "-")
        opts.append(flag if value is True else f"{flag} {value}")
    fresh = any(run.get("fresh") for run in runs)
    cmd = "fastrec bench " + ("--fresh " if fresh else "") + " ".join(opts)
    rel = [str(Path(p)) for p in paths]
    return [
        "```bash",
        f"{cmd} --out <folder>   # {len(runs)} times, one after the other",
        f"python bench/report.py {' '.join(rel)}",
        "python bench/chart.py",
        "```",
    ]


def render(paths: list[str]) -> str:
    runs = load(paths)
    combined = combine(runs)
    n = len(runs)
    out = ["## The table", ""]
    out.append(
        f"Written by `bench/report.py` from {n} run{'s' if n > 1 else ''} of `fastrec bench` "
        "with the options below"
        + (
            ", each in a fresh clone installed with `pip install .`"
            if all(run.get("fresh") for run in runs)
            else ""
        )  # fmt: skip
        + '. Each figure is the median over the runs; "ratio per run" gives every run\'s '
        "own ratio, and a goal counts as met only if every run met it."
    )
    out += ["", *command_text(runs, paths), "", "The machine (from the first run's JSON):", ""]
    out += machine_text(runs)
    full = full_shapes(runs[0])
    if not full:
        out += ["", "These runs used smaller shapes than the goals are set for: no goal is "
                "checked."]  # fmt: skip
    out += ["", *runs_text(runs), "", *table_text(combined, n, goals=full)]
    notes = notes_text(combined)
    if notes:
        out += ["", "The rows' notes, from the first run:", "", *notes]
    return "\n".join(out) + "\n"


def splice(text: str, block: str) -> str:
    """``text`` with the part between BEGIN and END replaced by ``block``."""
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise ValueError(f"the target needs one {BEGIN} line followed by one {END} line")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{block}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="bench.json files, or folders holding one")
    parser.add_argument("--print", action="store_true", help="write to standard output only")
    parser.add_argument("--target", default=str(TARGET), help="the Markdown file to update")
    args = parser.parse_args(argv)
    try:
        block = render(args.runs)
        if args.print:
            sys.stdout.write(block)
            return 0
        target = Path(args.target)
        target.write_text(splice(target.read_text(encoding="utf-8"), block), encoding="utf-8")
    except ValueError as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 2
    print(f"wrote the table of {target} from {len(args.runs)} run(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
