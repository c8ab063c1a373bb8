"""Neighbourhood (k-NN) prediction and scoring; used by ``fastrec/models/knn.py``.

Twins: ``kernels/numba/knn.py`` and ``kernels/cython/knn.pyx`` (same names and
signatures). ``get(backend)`` returns one of them.
"""

from __future__ import annotations

from types import ModuleType

from fastrec._backend import kernel_backend


def get(backend: str) -> ModuleType:
    """The knn kernels of ``backend`` ("auto", "numba" or "cython"; else ValueError)."""
    if kernel_backend(backend) == "cython":
        from .cython import knn as module
    else:
        from .numba import knn as module
    return module
