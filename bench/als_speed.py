"""Implicit ALS seconds per iteration beside implicit's CG ALS, on the ML-20M shape.

The rows of ``fastrec bench --only als`` with fewer iterations:
``synthetic(138_000, 27_000, 20_000_000, seed)`` as implicit feedback, the
same initial factors, ``cg_steps=3``, 2 threads, BLAS on one thread; one
iteration of implicit's solver runs after each of fastrec's (interleaved, so
both see the same machine load); medians over the iterations, and the
training loss of both after the last one.

    python bench/als_speed.py --iterations 5 --factors 64 128 --seed 0
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from fastrec.benchmarks.als import _speed_rows, _synthetic, _warm_up  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--factors", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shape", type=int, nargs=3, default=[138_000, 27_000, 20_000_000])
    args = ap.parse_args()
    shape = tuple(args.shape)
    X = _synthetic(*shape) if args.seed == 0 else None
    if X is None:
        import fastrec as fr

        X = fr.datasets.synthetic(*shape, seed=args.seed)
    _warm_up(args.threads)
    rows = _speed_rows(X, tuple(args.factors), args.iterations, args.threads,
                       f"synthetic{shape} seed {args.seed}", alpha=1.0)  # fmt: skip
    for r in rows:
        print(
            f"{r['task']}: fastrec {r['fastrec_s']:.2f} s, implicit {r['peer_s']:.2f} s, "
            f"ratio {r['fastrec_s'] / r['peer_s']:.2f}; {r['quality']}; {r['note']}"
        )
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
