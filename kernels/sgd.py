"""Lock-free parallel SGD epochs for biased matrix factorisation, the normal fill of its
initial factors and its training layout (``relabel_rows``); used by ``fastrec/models/sgd.py``
and ``fastrec/models/_sgd_layout.py``.

Twins: ``kernels/numba/sgd.py`` and ``kernels/cython/sgd.pyx`` (same names and
signatures). ``get(backend)`` returns one of them.
"""

from __future__ import annotations

from types import ModuleType

from fastrec._backend import kernel_backend


def get(backend: str) -> ModuleType:
    """The sgd kernels of ``backend`` ("auto", "numba" or "cython"; else ValueError)."""
    if kernel_backend(backend) == "cython":
        from .cython import sgd as module
    else:
        from .numba import sgd as module
    return module
