"""Shared settings for the pytest-benchmark suites in bench/.

Run with ``python -m pytest bench --benchmark-only`` (after ``pip install -e
'.[test,bench]'``). Every suite compiles its kernels outside the timed
closure (a warm-up call) and times inside it; peers that are not installed
are skipped. Data shapes are small by default so the suites finish in
minutes; set ``FASTREC_BENCH_SCALE`` (1.0 = the ML-20M shape) for the full
figures that go into BENCHMARKS.md.
"""

from __future__ import annotations

import os

import pytest

SCALE = float(os.environ.get("FASTREC_BENCH_SCALE", "0.02"))
THREADS = int(os.environ.get("FASTREC_BENCH_THREADS", "2"))


@pytest.fixture(scope="package")
def bench_scale() -> float:
    return SCALE


@pytest.fixture(scope="package")
def bench_threads() -> int:
    return THREADS
