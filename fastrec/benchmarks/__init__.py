"""Side-by-side comparisons with the peers a user would pick instead.

Each family module (``similarity``, ``knn``, ``sgd``, ``als``, ``mlp``,
``topk``) exposes ``compare(scale=1.0, num_threads=2, quick=False)`` returning
rows with the keys ``task, shape, fastrec_s, peer, peer_s, ratio, quality,
note``; ``ratio = fastrec_s / peer_s`` (below 1: fastrec is faster). A family
whose ``compare`` also takes ``data_seeds`` (``similarity``) repeats its main
comparison on synthetic data drawn with each of those seeds. Peers
that are not installed are skipped with a note. ``fastrec bench`` runs them
all and prints one table; the pytest-benchmark suites in ``bench/`` time the
same kernels against their naive references.
"""

from __future__ import annotations

import importlib
import inspect
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any

FAMILIES = ("similarity", "knn", "sgd", "als", "mlp", "topk", "rerank", "svdpp")
COLUMNS = ("task", "shape", "fastrec_s", "peer", "peer_s", "ratio", "quality", "note")


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Median wall time of ``repeat`` calls of ``fn`` (after no warm-up), and its last result."""
    times, result = [], None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2], result


def row(
    task: str,
    shape: str,
    fastrec_s: float | None,
    peer: str,
    peer_s: float | None,
    quality: str = "",
    note: str = "",
) -> dict[str, Any]:
    ratio = fastrec_s / peer_s if fastrec_s is not None and peer_s else None
    return {
        "task": task,
        "shape": shape,
        "fastrec_s": fastrec_s,
        "peer": peer,
        "peer_s": peer_s,
        "ratio": ratio,
        "quality": quality,
        "note": note,
    }


def run(
    families: Iterable[str] = FAMILIES,
    scale: float = 1.0,
    num_threads: int = 2,
    quick: bool = False,
    log: Callable[[str], None] = print,
    data_seeds: Iterable[int] = (0,),
) -> list[dict[str, Any]]:
    """Run the ``compare`` of each family; a family that fails is reported, not fatal.

    ``data_seeds`` go to the families whose ``compare`` takes them; the others
    measure on their fixed data (seed 0 of ``synthetic``, ml-latest-small).
    """
    data_seeds = tuple(data_seeds)
    for seed in data_seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"data_seeds: each seed must be an int >= 0, got {seed!r}")
    if not data_seeds:
        raise ValueError("data_seeds: give at least one seed")
    rows: list[dict[str, Any]] = []
    for family in families:
        if family not in FAMILIES:
            raise ValueError(f"unknown benchmark family {family!r}; choose from {FAMILIES}")
        try:
            module = importlib.import_module(f"fastrec.benchmarks.{family}")
        except ImportError as exc:
            rows.append(row(family, "", None, "", None, note=f"not available: {exc}"))
            continue
        log(f"[bench] {family} ...")
        t0 = time.perf_counter()
        kwargs: dict[str, Any] = {"scale": scale, "num_threads": num_threads, "quick": quick}
        if "data_seeds" in inspect.signature(module.compare).parameters:
            kwargs["data_seeds"] = data_seeds
        try:
            got = module.compare(**kwargs)
        except Exception as exc:  # keep the other families' figures
            rows.append(row(family, "", None, "", None, note=f"failed: {exc!r}"))
            log(traceback.format_exc())
            continue
        for r in got:
            r.setdefault("family", family)
        rows.extend(got)
        log(f"[bench] {family} done in {time.perf_counter() - t0:.1f} s")
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    def fmt(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
        return str(v)

    header = ["task", "data shape", "fastrec s", "peer", "peer s", "ratio", "quality", "note"]
    body = [[fmt(r.get(c)) for c in COLUMNS] for r in rows]
    widths = [
        max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)
    ]
    lines = [" | ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(c.ljust(w) for c, w in zip(b, widths)) for b in body]
    return "\n".join(lines)


def plot(
    rows: list[dict[str, Any]],
    path: str,
    title: str = "fastrec vs peers, same machine, same run",
    width: float = 9.0,
) -> bool:
    """Bar chart of the speed ratios (fastrec time / peer time); False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    # speed against other libraries only: rows comparing with another fastrec
    # model are quality comparisons and their time ratio means nothing here
    data = [
        (f"{r['task']}\nvs {r['peer']}", r["ratio"])
        for r in rows
        if r.get("ratio") and not str(r.get("peer", "")).startswith("fastrec")
    ]
    if not data:
        return False
    labels, ratios = zip(*data)
    fig, ax = plt.subplots(figsize=(width, 0.45 * len(data) + 1.5))
    colors = ["tab:green" if v <= 1 else "tab:red" for v in ratios]
    ax.barh(range(len(data)), ratios, color=colors)
    ax.axvline(1.0, color="black", lw=1)
    ax.set_yticks(range(len(data)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("fastrec time / peer time (log scale; < 1 = fastrec faster)")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return True
