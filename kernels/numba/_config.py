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

#: ``FASTMATH`` without "reassoc": LLVM then keeps the written order of sums,
#: so a kernel rounds exactly as its Cython twin (GCC does not reassociate
#: without -ffast-math). The SGD kernels compile with it.
FASTMATH_ORDERED = FASTMATH - {"reassoc"}


def jit(
    func=None,
    *,
    parallel: bool = False,
    error_model: str = "python",
    ordered: bool = False,
    inline: str = "never",
):
    """``numba.njit`` with the project's flags (cache, nogil, fastmath).

    ``error_model="numpy"`` drops the zero-division check on float division
    (IEEE results instead of ZeroDivisionError), which lets LLVM vectorise
    loops that divide; use it only where a divisor cannot be zero or an
    IEEE inf/NaN is caught afterwards. ``ordered=True`` compiles with
    :data:`FASTMATH_ORDERED`; ``inline="always"`` inlines the function into
    its callers in Numba's IR.
    """
    deco = numba.njit(
        cache=True,
        nogil=True,
        fastmath=FASTMATH_ORDERED if ordered else FASTMATH,
        parallel=parallel,
        error_model=error_model,
        inline=inline,
    )
    if func is None:
        return deco
    return deco(func)
