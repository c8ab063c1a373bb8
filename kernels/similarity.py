"""Sparse row similarity fused with top-k selection; used by ``fastrec/neighbours.py``.

Twins: ``kernels/numba/similarity.py`` and ``kernels/cython/similarity.pyx`` (same names and
signatures). ``get(backend)`` returns one of them.
"""

from __future__ import annotations

from types import ModuleType

from fastrec._backend import kernel_backend


def get(backend: str) -> ModuleType:
    """The similarity kernels of ``backend`` ("auto", "numba" or "cython"; else ValueError)."""
    if kernel_backend(backend) == "cython":
        from .cython import similarity as module
    else:
        from .numba import similarity as module
    return module
