"""Alternating least squares half-sweeps (conjugate gradient and Cholesky row solves) and the loss;
used by ``fastrec/models/als.py`` and ``fastrec/distributed``.

Twins: ``kernels/numba/als.py`` and ``kernels/cython/als.pyx`` (same names and
signatures). ``get(backend)`` returns one of them.
"""

from __future__ import annotations

from types import ModuleType

from fastrec._backend import kernel_backend


def get(backend: str) -> ModuleType:
    """The als kernels of ``backend`` ("auto", "numba" or "cython"; else ValueError)."""
    if kernel_backend(backend) == "cython":
        from .cython import als as module
    else:
        from .numba import als as module
    return module
