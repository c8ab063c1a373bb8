"""Top-k of dense score rows and of factor products; used by ``fastrec/topk.py``.

Twins: ``kernels/numba/topk.py`` and ``kernels/cython/topk.pyx`` (same names and
signatures). ``get(backend)`` returns one of them.
"""

from __future__ import annotations

from types import ModuleType

from fastrec._backend import kernel_backend


def get(backend: str) -> ModuleType:
    """The topk kernels of ``backend`` ("auto", "numba" or "cython"; else ValueError)."""
    if kernel_backend(backend) == "cython":
        from .cython import topk as module
    else:
        from .numba import topk as module
    return module
