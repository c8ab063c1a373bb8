"""Maximal marginal relevance re-ranking; used by ``fastrec/rerank.py``.

Twins: ``kernels/numba/rerank.py`` and ``kernels/cython/rerank.pyx`` (same names and
signatures). ``get(backend)`` returns one of them.
"""

from __future__ import annotations

from types import ModuleType

from fastrec._backend import kernel_backend


def get(backend: str) -> ModuleType:
    """The rerank kernels of ``backend`` ("auto", "numba" or "cython"; else ValueError)."""
    if kernel_backend(backend) == "cython":
        from .cython import rerank as module
    else:
        from .numba import rerank as module
    return module
