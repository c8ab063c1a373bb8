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


def jit(func=None, *, parallel: bool = False, error_model: str = "python"):
    """``numba.njit`` with the project's flags (cache, nogil, fastmath).

    ``error_model="numpy"`` drops the zero-division check on float division
    (IEEE results instead of ZeroDivisionError), which lets LLVM vectorise
    loops that divide; use it only where a divisor cannot be zero or an
    IEEE inf/NaN is caught afterwards.
    """
    deco = numba.njit(
        cache=True, nogil=True, fastmath=FASTMATH, parallel=parallel, error_model=error_model
    )
    if func is None:
        return deco
    return deco(func)
