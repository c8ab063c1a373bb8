"""Item-item top-k similarity vs implicit's CosineRecommender and sparse_dot_topn.

On ``synthetic(138_000, 27_000, 20_000_000)``, item-item top-20,
2 threads: ``kind="pearson"`` no slower than ``implicit``'s
``CosineRecommender(K=20).fit``, ``kind="cosine"`` at most 0.6x of it, both
faster than ``sparse_dot_topn.sp_matmul_topn`` (top_n=20, n_threads=2) on the
same row-normalised items x users matrix, peak memory under 2 GB.

Peak memory is the process's maximum resident set size
(``resource.getrusage``; Numba's allocations are invisible to ``tracemalloc``)
read right after the fastrec runs and before any peer runs, so it includes
the data and whatever the process held before: an upper bound on fastrec's
peak. ``memory="subprocess"`` measures each kind in a fresh subprocess
instead (slower: it runs each kind again).

With ``data_seeds=(0, 1, 2, 3)`` (``fastrec bench --data-seeds 0,1,2,3``)
the comparison above runs on the data of the first seed, and Pearson against
implicit is timed again on ``synthetic(...)`` drawn with each further seed:
the two alternate, so a change of machine load hits both.

Generating the full-size data takes minutes; set ``FASTREC_BENCH_CACHE`` to a
folder to keep it as ``.npz`` between runs.

Run: ``python -m fastrec.benchmarks.similarity [scale] [quick]``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import Any

import numpy as np
import scipy.sparse as sp

from . import row, timed

_MEMORY_SCRIPT = r"""
import json, resource, sys
import numpy as np, scipy.sparse as sp
from fastrec.neighbours import similarity
X = sp.load_npz(sys.argv[1]).tocsr()
X.indices = X.indices.astype(np.int32)
similarity(X[:50], kind=sys.argv[2], axis="items", k=20, backend=sys.argv[3])  # compile
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
S = similarity(X, kind=sys.argv[2], axis="items", k=20, backend=sys.argv[3],
               num_threads=int(sys.argv[4]))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"before_mb": before / 1024, "peak_mb": after / 1024, "nnz": int(S.nnz)}))
"""


def _data(n_users: int, n_items: int, nnz: int, seed: int = 0) -> sp.csr_matrix:
    """``synthetic(..., seed=seed).matrix`` (users x items float32), cached if asked."""
    cache = os.environ.get("FASTREC_BENCH_CACHE")
    path = None
    if cache:
        os.makedirs(cache, exist_ok=True)
        path = os.path.join(cache, f"synthetic_{n_users}_{n_items}_{nnz}_seed{seed}.npz")
        if os.path.exists(path):
            X = sp.load_npz(path).tocsr()
            X.indices = X.indices.astype(np.int32)
            return X
    from ..datasets import synthetic

    X = synthetic(n_users, n_items, nnz, seed=seed).matrix
    if path:
        sp.save_npz(path, X, compressed=False)
    return X


def _overlap(a: sp.csr_matrix, b: sp.csr_matrix) -> float:
    """Mean fraction of a's neighbours (per row) also among b's."""
    hits, total = 0, 0
    for i in range(a.shape[0]):
        ra = a.indices[a.indptr[i] : a.indptr[i + 1]]
        rb = b.indices[b.indptr[i] : b.indptr[i + 1]]
        hits += np.intersect1d(ra, rb).size
        total += ra.size
    return hits / max(total, 1)


def _peak_memory(X: sp.csr_matrix, kind: str, backend: str, num_threads: int) -> dict | None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "X.npz")
        sp.save_npz(path, X, compressed=False)
        out = subprocess.run(
            [sys.executable, "-c", _MEMORY_SCRIPT, path, kind, backend, str(num_threads)],
            capture_output=True,
            text=True,
        )
    if out.returncode != 0:
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def _maxrss_mb() -> float | None:
    try:
        import resource
    except ImportError:  # not POSIX
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _implicit_fit(X: sp.csr_matrix, k: int, num_threads: int):
    """implicit's ``CosineRecommender(K=k).fit`` as a timed callable (None if not installed)."""
    try:
        from implicit.nearest_neighbours import CosineRecommender
    except ImportError:
        return None
    Xd = X.astype(np.float64)  # implicit's own normalize() works in float64 anyway

    def fit_implicit():
        model = CosineRecommender(K=k, num_threads=num_threads)
        model.fit(Xd, show_progress=False)
        return model.similarity.tocsr()

    return fit_implicit


def _seed_rows(
    shape: tuple[int, int, int], seed: int, k: int, num_threads: int, repeat: int
) -> list[dict]:
    """Pearson top-k against implicit's cosine on the data of another seed, alternating."""
    from ..neighbours import similarity

    X = _data(*shape, seed=seed)
    label = f"{shape[0]}x{shape[1]}, nnz {X.nnz}, data seed {seed}, item-item top-{k}, "
    label += f"{num_threads} threads"
    task = f"item-item pearson top-{k}"
    fit_implicit = _implicit_fit(X, k, num_threads)
    ours, theirs = [], []
    for _ in range(repeat):
        ours.append(timed(lambda: similarity(X, kind="pearson", axis="items", k=k,
                                             num_threads=num_threads))[0])  # fmt: skip
        if fit_implicit is not None:
            theirs.append(timed(fit_implicit)[0])
    t_ours = float(np.median(ours))
    if fit_implicit is None:
        r = row(task, label, t_ours, "implicit", None, note="implicit not installed")
    else:
        r = row(task, label, t_ours, "implicit CosineRecommender(K=20).fit",
                float(np.median(theirs)),
                quality="different measure (co-rated Pearson vs cosine)",
                note=f"alternating, medians of {repeat}")  # fmt: skip
    r["data_seed"] = seed
    return [r]


def compare(
    scale: float = 1.0,
    num_threads: int = 2,
    quick: bool = False,
    memory: str = "inprocess",
    data_seeds: tuple[int, ...] = (0,),
) -> list[dict]:
    from ..neighbours import similarity

    if quick:
        n_users, n_items, nnz = 4_000, 1_500, 150_000
    else:
        n_users = max(1000, int(138_000 * scale))
        n_items = max(500, int(27_000 * scale))
        nnz = max(20_000, int(20_000_000 * scale))
    seed = data_seeds[0]
    X = _data(n_users, n_items, nnz, seed=seed)
    shape = (
        f"{n_users}x{n_items}, nnz {X.nnz}, data seed {seed}, item-item top-20, "
        f"{num_threads} threads"
    )
    k = 20
    backend = "auto"

    def run(kind: str) -> Any:
        return similarity(X, kind=kind, axis="items", k=k, backend=backend, num_threads=num_threads)

    similarity(X[:50], kind="pearson", axis="items", k=k)  # compile (Numba) outside the timing
    similarity(X[:50], kind="cosine", axis="items", k=k)
    repeat = 3 if quick else 1
    rss_data = _maxrss_mb()
    t_pearson, S_pearson = timed(lambda: run("pearson"), repeat)
    rss_pearson = _maxrss_mb()
    t_cosine, S_cosine = timed(lambda: run("cosine"), repeat)
    rss_cosine = _maxrss_mb()

    peaks: dict[str, dict | None] = {}
    if memory == "subprocess":
        for kind in ("pearson", "cosine"):
            peaks[kind] = _peak_memory(X, kind, backend, num_threads)
    elif rss_data is not None:
        peaks["pearson"] = {"before_mb": rss_data, "peak_mb": rss_pearson}
        peaks["cosine"] = {"before_mb": rss_data, "peak_mb": rss_cosine}

    def mem_note(kind: str) -> str:
        m = peaks.get(kind)
        if not m:
            return ""
        return (
            f"; process max RSS {m['peak_mb']:.0f} MB (with data loaded: {m['before_mb']:.0f} MB)"
        )

    rows = []
    # implicit (0.7: fit takes the users x items matrix and compares items)
    fit_implicit = _implicit_fit(X, k, num_threads)
    if fit_implicit is None:
        rows.append(
            row(
                "item-item pearson top-20",
                shape,
                t_pearson,
                "implicit",
                None,
                note="implicit not installed",
            )
        )
        rows.append(
            row(
                "item-item cosine top-20",
                shape,
                t_cosine,
                "implicit",
                None,
                note="implicit not installed",
            )
        )
    else:
        t_imp, S_imp = timed(fit_implicit, repeat)
        # implicit keeps the item itself among its K: drop it for the overlap
        S_imp = S_imp.tocsr()
        S_imp.setdiag(0)
        S_imp.eliminate_zeros()
        overlap = _overlap(S_cosine, S_imp)
        rows.append(
            row(
                "item-item pearson top-20",
                shape,
                t_pearson,
                "implicit CosineRecommender(K=20).fit",
                t_imp,
                quality="different measure (co-rated Pearson vs cosine)",
                note="target ratio <= 0.6" + mem_note("pearson"),
            )
        )
        rows.append(
            row(
                "item-item cosine top-20",
                shape,
                t_cosine,
                "implicit CosineRecommender(K=20).fit",
                t_imp,
                quality=f"neighbour overlap {overlap:.4f} (implicit's K=20 includes self)",
                note="target ratio <= 0.6" + mem_note("cosine"),
            )
        )
    try:
        from sparse_dot_topn import sp_matmul_topn
    except ImportError:
        sp_matmul_topn = None
    if sp_matmul_topn is None:
        for kind, t in (("pearson", t_pearson), ("cosine", t_cosine)):
            rows.append(
                row(
                    f"item-item {kind} top-20",
                    shape,
                    t,
                    "sparse_dot_topn",
                    None,
                    note="sparse_dot_topn not installed",
                )
            )
    else:

        def sdt():
            # the same normalised items x users matrix, product with its transpose
            items = X.T.tocsr()
            norms = np.sqrt(np.asarray(items.multiply(items).sum(axis=1)).ravel())
            scale_rows = sp.diags(np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0))
            A = (scale_rows @ items).astype(np.float32).tocsr()
            return sp_matmul_topn(A, A.T.tocsr(), top_n=k, sort=True, n_threads=num_threads)

        t_sdt, S_sdt = timed(sdt, repeat)
        S_sdt = S_sdt.tocsr()
        S_sdt.setdiag(0)
        S_sdt.eliminate_zeros()
        overlap = _overlap(S_cosine, S_sdt)
        for kind, t in (("pearson", t_pearson), ("cosine", t_cosine)):
            rows.append(
                row(
                    f"item-item {kind} top-20",
                    shape,
                    t,
                    "sparse_dot_topn.sp_matmul_topn(top_n=20)",
                    t_sdt,
                    quality=(
                        f"cosine neighbour overlap {overlap:.4f} (top_n=20 includes self)"
                        if kind == "cosine"
                        else "different measure"
                    ),
                    note="target ratio < 1",
                )
            )
    rows.append(
        row(
            "item-item pearson top-20 (stored)",
            shape,
            t_pearson,
            "-",
            None,
            quality=f"{S_pearson.nnz} similarities kept",
        )
    )
    for r in rows:
        r["data_seed"] = seed
    X = S_pearson = S_cosine = fit_implicit = None  # free the data before the next seed
    for other in data_seeds[1:]:
        rows += _seed_rows((n_users, n_items, nnz), other, k, num_threads, repeat)
    return rows


if __name__ == "__main__":
    from . import format_table

    scale_arg = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    quick_arg = len(sys.argv) > 2 and sys.argv[2] == "quick"
    result = compare(scale=scale_arg, num_threads=2, quick=quick_arg)
    print(format_table(result))
