"""The calling thread's floating-point mode (x86 MXCSR: flush subnormals to zero); used by
``fastrec/nn/fpmode.py``.

Twins: ``kernels/numba/fpmode.py`` and ``kernels/cython/fpmode.pyx`` (same names and
signatures). ``get(backend)`` returns one of them.
"""

from __future__ import annotations

from types import ModuleType

from fastrec._backend import kernel_backend


def get(backend: str) -> ModuleType:
    """The fpmode kernels of ``backend`` ("auto", "numba" or "cython"; else ValueError)."""
    if kernel_backend(backend) == "cython":
        from .cython import fpmode as module
    else:
        from .numba import fpmode as module
    return module
