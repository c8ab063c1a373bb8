"""How soon Ctrl-C stops the long kNN calls (SIGINT sent to a child process).

The child fits on ``synthetic(20000, 5000, 2000000)``, then runs UserKNN
``recommend`` for every user, or ItemKNN ``predict`` of 100,000 pairs and the
neighbour lists; the parent sends SIGINT 3 s into it and prints how long the
child took to raise KeyboardInterrupt.

    python bench/knn_interrupt.py
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

CHILD = r"""
import sys, time, numpy as np, fastrec as fr
be, what = sys.argv[1], sys.argv[2]
X = fr.datasets.synthetic(20000, 5000, 2_000_000)
cls = fr.UserKNN if what == "user" else fr.ItemKNN
m = cls(backend=be, num_threads=2).fit(X)
m.recommend(X.user_ids[:5], n=10)  # warm (compile)
print("ready", flush=True)
try:
    if what == "user":
        m.recommend(X.user_ids, n=10)
    else:
        m.predict(np.repeat(X.user_ids[:2000], 50), np.tile(X.item_ids[:50], 2000))
        _ = cls(backend=be, num_threads=2).fit(X).similarity_
    print("finished", flush=True)
except KeyboardInterrupt:
    print("interrupted", time.time(), flush=True)
"""


def main():
    for be in ("cython", "numba"):
        for what in ("user", "item"):
            p = subprocess.Popen(
                [sys.executable, "-c", CHILD, be, what], stdout=subprocess.PIPE, text=True
            )
            assert p.stdout.readline().strip() == "ready"
            time.sleep(3)
            t = time.time()
            p.send_signal(signal.SIGINT)
            out = p.stdout.read()
            p.wait()
            if "interrupted" in out:
                delay = float(out.split()[-1]) - t
                print(f"{be} {what}: KeyboardInterrupt {delay:.2f} s after SIGINT")
            else:
                print(f"{be} {what}: {out.strip()} (the call ended before the signal)")


if __name__ == "__main__":
    main()
