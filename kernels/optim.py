"""Optimiser steps (dense Adam and SGD, and both fused with an embedding scatter); used by
``fastrec/nn/optim.py``.

Twins: ``kernels/numba/optim.py`` and ``kernels/cython/optim.pyx`` (same names and
signatures). ``get(backend)`` returns one of them.
"""

from __future__ import annotations

from types import ModuleType

from fastrec._backend import kernel_backend


def get(backend: str) -> ModuleType:
    """The optim kernels of ``backend`` ("auto", "numba" or "cython"; else ValueError)."""
    if kernel_backend(backend) == "cython":
        from .cython import optim as module
    else:
        from .numba import optim as module
    return module
