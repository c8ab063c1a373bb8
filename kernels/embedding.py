"""Embedding-table gather, scatter and fused optimiser steps for the MLP; used by ``fastrec/nn``
and ``fastrec/models/mlp.py``.

Twins: ``kernels/numba/embedding.py`` and ``kernels/cython/embedding.pyx`` (same names and
signatures). ``get(backend)`` returns one of them.
"""

from __future__ import annotations

from types import ModuleType

from fastrec._backend import kernel_backend


def get(backend: str) -> ModuleType:
    """The embedding kernels of ``backend`` ("auto", "numba" or "cython"; else ValueError)."""
    if kernel_backend(backend) == "cython":
        from .cython import embedding as module
    else:
        from .numba import embedding as module
    return module
