"""Ctrl-C figures: the cost of slicing long kernel calls, and the time to stop.

    python bench/interrupt.py [--repeats 3] [--backends cython,numba]
        [--size 50000,10000,3000000] [--skip-ab] [--skip-stop]

Pearson user-user ``fr.similarity`` (k=20), on ``fr.datasets.synthetic`` of
``--size`` for the timing and of (50_000, 10_000, 3_000_000) for the stop:

- time sliced (the library's default) against one unsliced kernel call over
  every row (``_backend.slices`` replaced by a single range, which is the
  previous behaviour), in the same process, alternating, ``--repeats`` times;
- time from SIGINT to KeyboardInterrupt in a child process that runs the same
  call, the signal sent about 1 s after the call started (then the child runs
  a small call and checks its result, to show the process is still usable).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time

CHILD = r"""
import sys, time
import numpy as np
import fastrec as fr
backend = sys.argv[1]
X = fr.datasets.synthetic(50_000, 10_000, 3_000_000)
small = fr.datasets.synthetic(300, 100, 3000, seed=3)
ref = fr.similarity(small, kind="pearson", axis="users", k=10, backend=backend)
print("start", flush=True)
try:
    fr.similarity(X, kind="pearson", axis="users", k=20, backend=backend)
    print("finished", flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
again = fr.similarity(small, kind="pearson", axis="users", k=10, backend=backend)
ok = (again != ref).nnz == 0
print("usable" if ok else "WRONG", flush=True)
"""


def time_to_stop(backend: str, delay: float = 1.0) -> tuple[float, str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, backend], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "start"
    time.sleep(delay)
    sent = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    line = proc.stdout.readline().strip()
    stopped = time.perf_counter() - sent
    rest = proc.stdout.read().strip()
    proc.wait()
    return stopped, f"{line} {rest}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", default="cython,numba")
    parser.add_argument("--skip-ab", action="store_true")
    parser.add_argument("--skip-stop", action="store_true")
    parser.add_argument(
        "--size", default="50000,10000,3000000", help="n_users,n_items,nnz of the timing data"
    )
    args = parser.parse_args()
    import fastrec as fr
    from fastrec import _backend

    print(f"cores: {_backend.cpu_count()}  pid {os.getpid()}")
    n_users, n_items, nnz = (int(v) for v in args.size.split(","))
    X = fr.datasets.synthetic(n_users, n_items, nnz) if not args.skip_ab else None
    sliced_fn = _backend.slices

    def one_range(total, first=1, target=None, minimum=1):
        yield 0, total

    for backend in args.backends.split(","):
        if not args.skip_ab:
            warm = fr.datasets.synthetic(500, 100, 5000)
            fr.similarity(warm, kind="pearson", axis="users", backend=backend)  # compile / load
            times: dict[str, list[float]] = {"sliced": [], "unsliced": []}
            results = {}
            for _ in range(args.repeats):
                for name, fn in (("sliced", sliced_fn), ("unsliced", one_range)):
                    _backend.slices = fn
                    tic = time.perf_counter()
                    S = fr.similarity(X, kind="pearson", axis="users", k=20, backend=backend)
                    times[name].append(time.perf_counter() - tic)
                    results[name] = S
                    print(backend, name, f"{times[name][-1]:.2f} s", flush=True)
            _backend.slices = sliced_fn
            same = (results["sliced"] != results["unsliced"]).nnz == 0
            med = {k: statistics.median(v) for k, v in times.items()}
            print(
                f"{backend}: median sliced {med['sliced']:.2f} s, "
                f"unsliced {med['unsliced']:.2f} s, "
                f"ratio {med['sliced'] / med['unsliced']:.3f}, identical output: {same}"
            )
        for _ in range(0 if args.skip_stop else args.repeats):
            stopped, outcome = time_to_stop(backend)
            print(f"{backend}: SIGINT -> stopped in {stopped:.2f} s ({outcome})", flush=True)


if __name__ == "__main__":
    main()
