"""SGDMF on ml-latest-small, one thread pinned to each CPU in turn (Linux).

Usage: ``python bench/sgd_pinned.py [repeats=5] [fits=8]``

Shows whether the CPUs of the machine run the same single-threaded work at
the same speed. Each repeat fits SGDMF (ml-latest-small,
``random_split(test_size=0.2, seed=0)``, 100 factors, 20 epochs, one thread,
the automatic backend) ``fits`` times with the process pinned to each CPU
it may use (``os.sched_setaffinity``), alternating CPU by CPU, and prints the
median wall time per CPU and the slowest over the fastest. It then times
two-thread fits (all CPUs allowed again) back to back and after a pause of
0.45 s with one thread busy (as in ``fastrec bench``, where each fit follows
a single-threaded Surprise fit), ``fits`` of each, alternating.
"""

import os
import sys
import time

import numpy as np

import fastrec as fr
from fastrec.models.sgd import SGDMF
from fastrec.split import random_split


def count_arg(position: int, name: str, default: int) -> int:
    """The positive whole number given as argument ``position``, or ``default``."""
    if len(sys.argv) <= position:
        return default
    text = sys.argv[position]
    if not text.isdigit() or int(text) < 1:
        sys.exit(
            f"sgd_pinned.py: {name} (argument {position}) must be a whole number >= 1, got {text!r}"
        )
    return int(text)


REPEATS = count_arg(1, "repeats", 5)
FITS = count_arg(2, "fits", 8)

if not hasattr(os, "sched_setaffinity"):
    sys.exit("sgd_pinned.py needs os.sched_setaffinity (Linux)")

X = fr.datasets.movielens_small()
train, _ = random_split(X, test_size=0.2, seed=0)
params = dict(factors=100, epochs=20, learning_rate=0.005, regularization=0.02, random_state=0)
one = SGDMF(**params, num_threads=1)
two = SGDMF(**params, num_threads=2)
cpus = sorted(os.sched_getaffinity(0))


def timed(model) -> float:
    start = time.perf_counter()
    model.fit(train)
    return time.perf_counter() - start


def busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


one.fit(train)
two.fit(train)
print(f"CPUs {cpus}, load average {os.getloadavg()[0]:.2f}")
for rep in range(REPEATS):
    walls = {c: [] for c in cpus}
    for _ in range(FITS):
        for c in cpus:
            os.sched_setaffinity(0, {c})
            walls[c].append(timed(one))
    os.sched_setaffinity(0, set(cpus))
    med = {c: float(np.median(w)) * 1e3 for c, w in walls.items()}
    spread = max(med.values()) / min(med.values())
    line = " / ".join(f"CPU {c} {m:.1f}" for c, m in med.items())
    print(
        f"repeat {rep + 1}: one thread pinned, medians (ms): {line}; slowest/fastest {spread:.2f}"
    )

back, paused = [], []
for _ in range(FITS):
    back.append(timed(two))
    busy(0.45)
    paused.append(timed(two))


def q(walls: list[float]) -> np.ndarray:
    """Quartiles in ms."""
    return np.percentile(np.array(walls) * 1e3, [25, 50, 75]).round(1)


print(f"two threads, back to back: quartiles {q(back)} ms")
print(f"two threads, after 0.45 s of one busy thread: quartiles {q(paused)} ms")
print(f"load average after {os.getloadavg()[0]:.2f}")
