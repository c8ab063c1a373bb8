"""The one place where the Numba compilation flags of fastrec are set.

``FASTMATH`` lists the LLVM fast-math flags every kernel compiles with. It
leaves out ``nnan`` and ``ninf`` on purpose: kernels must be able to see NaN
and infinity (divergence checks, ``-inf`` padding in top-k). ``reassoc`` lets
LLVM vectorise reductions, so sums may differ in the last bits from a strictly
sequential loop (and from the Cython build).
"""

from __future__ import annotations

import numba

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


def jit(func=None, *, parallel: bool = False):
    """``numba.njit`` with the project's flags (cache, nogil, fastmath)."""
    deco = numba.njit(cache=True, nogil=True, fastmath=FASTMATH, parallel=parallel)
    if func is None:
        return deco
    return deco(func)
