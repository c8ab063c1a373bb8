"""Bayesian personalised ranking epochs (Hogwild SGD over sampled triples); used by
``fastrec/models/bpr.py``.

Twins: ``kernels/numba/bpr.py`` and ``kernels/cython/bpr.pyx`` (same names and
signatures). ``get(backend)`` returns one of them.
"""

from __future__ import annotations

from types import ModuleType

from fastrec._backend import kernel_backend


def get(backend: str) -> ModuleType:
    """The bpr kernels of ``backend`` ("auto", "numba" or "cython"; else ValueError)."""
    if kernel_backend(backend) == "cython":
        from .cython import bpr as module
    else:
        from .numba import bpr as module
    return module
