"""Draw bench/results/bench_full.png from the table in BENCHMARKS.md.

The chart shows the figures of the table, never of an older run: each row of
"## The table" with a speed ratio against another library becomes one bar.
Rows compared with another fastrec model (quality comparisons) and rows
without a ratio are left out.

    python bench/chart.py            # rewrites bench/results/bench_full.png
    python bench/chart.py --print    # lists the bars instead
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "BENCHMARKS.md"
CHART = ROOT / "bench" / "results" / "bench_full.png"


def _plain(cell: str) -> str:
    return re.sub(r"[`*]", "", cell).strip()


def _short(label: str) -> str:
    """A label without its parenthetical remarks (a chart label, not a footnote)."""
    label = re.sub(r"\[([^]]*)\]\([^)]*\)", r"\1", label)  # markdown links
    while True:
        shorter = re.sub(r"\s*\([^()]*\)", "", label)
        if shorter == label:
            return label.strip()
        label = shorter


def table_rows(path: Path = TABLE) -> list[dict]:
    """``{"task", "data", "peer", "ratio"}`` for every row of the table with a ratio."""
    text = path.read_text(encoding="utf-8")
    start = text.index("## The table")
    end = text.index("\n## ", start + 1)
    # the section holds several tables (the runs, then the figures): take the
    # one whose header names a task and a ratio
    tables: list[list[str]] = [[]]
    for line in text[start:end].splitlines():
        if line.startswith("|"):
            tables[-1].append(line)
        elif tables[-1]:
            tables.append([])
    for lines in tables:
        header = [_plain(c) for c in lines[0].strip("|").split("|")] if lines else []
        if "task" in header and "ratio" in header:
            break
    else:
        raise ValueError(f"{path}: no table with 'task' and 'ratio' columns under '## The table'")
    col = {name: header.index(name) for name in ("task", "data", "peer", "ratio")}
    rows = []
    last = {"data": "", "peer": ""}
    for line in lines[2:]:  # after the header and its |---| line
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        row = {name: _plain(cells[col[name]]) for name in ("task", "data", "peer")}
        for name in ("data", "peer"):  # "same": as the row above
            if row[name] == "same":
                row[name] = last[name]
            last[name] = row[name] or last[name]
        ratio = re.match(r"\**([0-9.]+)", cells[col["ratio"]])
        if ratio and row["peer"]:
            rows.append({**row, "ratio": float(ratio.group(1))})
    return rows


def _data_label(data: str) -> str:
    """The data cell cut to its first part (the shape or the data set), and its seed if any."""
    parts = [p.strip() for p in _short(data).split(",")]
    seed = [p for p in parts[1:] if p.startswith("data seed")]
    return ", ".join(parts[:1] + seed)


def chart_rows(rows: list[dict]) -> list[dict]:
    """The rows drawn: speed against another library (``fastrec.benchmarks.plot``'s rule)."""
    fastrec_models = ("SGDMF", "ALS", "ItemKNN", "UserKNN", "fastrec")
    return [
        {
            "task": r["task"],  # its remarks (backend, stored) tell bars apart
            "peer": f"{_short(r['peer']).split(',')[0]}, {_data_label(r['data'])}",
            "ratio": r["ratio"],
        }  # fmt: skip
        for r in rows
        if not r["peer"].startswith(fastrec_models)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print", action="store_true", help="list the bars, draw nothing")
    parser.add_argument("--out", default=str(CHART), help="where to write the PNG")
    args = parser.parse_args(argv)
    rows = chart_rows(table_rows())
    if args.print:
        for r in rows:
            print(f"{r['ratio']:>7.3f}  {r['task']}  vs {r['peer']}")
        return 0
    from fastrec.benchmarks import plot

    title = "fastrec vs peers: the table of BENCHMARKS.md (medians of the runs' ratios)"
    if not plot(rows, args.out, title=title, width=12.5):
        print("matplotlib is needed to draw the chart (pip install matplotlib)", file=sys.stderr)
        return 1
    print(f"wrote {args.out} ({len(rows)} bars from {TABLE.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
