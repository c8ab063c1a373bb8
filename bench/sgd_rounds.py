"""SGDMF on ml-latest-small against Surprise SVD, in interleaved rounds, with /proc facts.

Usage: ``python bench/sgd_rounds.py [rounds=5] [backend=auto]``

Each round fits SGDMF on 1 thread, SGDMF on 2 threads and Surprise ``SVD``
(ml-latest-small, ``random_split(test_size=0.2, seed=0)``, 100 factors, 20
epochs, learning rate 0.005, regularisation 0.02), after one untimed fit of
each SGDMF. Besides the wall time it records, per fit, the process CPU time
and from ``/proc/self/task/*`` (Linux) the time on a CPU, the time waiting
for one, the time slices and the voluntary / involuntary context switches,
summed over the threads; prints the medians, the load average before and
after, and Surprise's wall time over fastrec's per round (and their median).
"""

import os
import sys
import time

import numpy as np
import pandas as pd
from surprise import SVD, Dataset, Reader

import fastrec as fr
from fastrec.models.sgd import SGDMF
from fastrec.split import random_split

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
BACKEND = sys.argv[2] if len(sys.argv) > 2 else "auto"


def sched():
    tot = np.zeros(3)
    vol = invol = 0
    for t in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{t}/schedstat") as fh:
                tot += np.array([int(x) for x in fh.read().split()])
            with open(f"/proc/self/task/{t}/status") as fh:
                for line in fh:
                    if line.startswith("voluntary_ctxt_switches"):
                        vol += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches"):
                        invol += int(line.split()[1])
        except FileNotFoundError:  # a thread that ended
            pass
    return tot, vol, invol


def measure(fn):
    s0, v0, i0 = sched()
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    t1, c1 = time.perf_counter(), time.process_time()
    s1, v1, i1 = sched()
    d = s1 - s0
    return {
        "wall": t1 - t0, "cpu": c1 - c0, "oncpu": d[0] / 1e9, "rqwait": d[1] / 1e9,
        "slices": int(d[2]), "vcs": v1 - v0, "ivcs": i1 - i0,
    }  # fmt: skip


X = fr.datasets.movielens_small()
train, test = random_split(X, test_size=0.2, seed=0)
params = dict(factors=100, epochs=20, learning_rate=0.005, regularization=0.02)
m1 = SGDMF(**params, random_state=0, num_threads=1, backend=BACKEND)
m2 = SGDMF(**params, random_state=0, num_threads=2, backend=BACKEND)
m1.fit(train)
m2.fit(train)
tcoo = train.matrix.tocoo()
frame = pd.DataFrame(
    {
        "user": train.user_ids[tcoo.row],
        "item": train.item_ids[tcoo.col],
        "rating": tcoo.data.astype(np.float64),
    }
)
trainset = Dataset.load_from_df(frame, Reader(rating_scale=(0.5, 5.0))).build_full_trainset()
algo = SVD(n_factors=100, n_epochs=20, lr_all=0.005, reg_all=0.02, random_state=0)
res = {"f1": [], "f2": [], "sv": []}
la0 = os.getloadavg()
for _ in range(ROUNDS):
    res["f1"].append(measure(lambda: m1.fit(train)))
    res["f2"].append(measure(lambda: m2.fit(train)))
    res["sv"].append(measure(lambda: algo.fit(trainset)))
la1 = os.getloadavg()
print(
    f"load before {la0[0]:.2f} after {la1[0]:.2f}; threads used m2 "
    f"{m2.history_[0]['threads']}; grid {m2.n_chunks_}x{m2.n_blocks_}"
)
ms = ("wall", "cpu", "oncpu", "rqwait")
for k, v in res.items():
    med = {f: float(np.median([x[f] for x in v])) for f in v[0]}
    print(k, " ".join(f"{f}={med[f] * 1e3:.1f}ms" if f in ms else f"{f}={med[f]:.0f}" for f in med))
w = {k: np.array([x["wall"] for x in v]) for k, v in res.items()}
print(
    "ratios per round sv/f1:",
    np.round(w["sv"] / w["f1"], 1),
    "sv/f2:",
    np.round(w["sv"] / w["f2"], 1),
)
r1, r2 = np.median(w["sv"] / w["f1"]), np.median(w["sv"] / w["f2"])
print(f"median ratio sv/f1 {r1:.1f}  sv/f2 {r2:.1f}")
