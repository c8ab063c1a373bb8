"""SVD++ epochs by SGD; used by ``fastrec/models/svdpp.py``.

Twins: ``kernels/numba/svdpp.py`` and ``kernels/cython/svdpp.pyx`` (same names and
signatures). ``get(backend)`` returns one of them.
"""

from __future__ import annotations

from types import ModuleType

from fastrec._backend import kernel_backend


def get(backend: str) -> ModuleType:
    """The svdpp kernels of ``backend`` ("auto", "numba" or "cython"; else ValueError)."""
    if kernel_backend(backend) == "cython":
        from .cython import svdpp as module
    else:
        from .numba import svdpp as module
    return module
