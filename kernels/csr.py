"""CSR structure scan and row relabelling; used by ``fastrec/_validation.py`` and
``fastrec/models/sgd.py``.

Twins: ``kernels/numba/csr.py`` and ``kernels/cython/csr.pyx`` (same names and
signatures). ``get(backend)`` returns one of them.
"""

from __future__ import annotations

from types import ModuleType

from fastrec._backend import kernel_backend


def get(backend: str) -> ModuleType:
    """The csr kernels of ``backend`` ("auto", "numba" or "cython"; else ValueError)."""
    if kernel_backend(backend) == "cython":
        from .cython import csr as module
    else:
        from .numba import csr as module
    return module
