"""The similarity formulas shared by ``knn.py`` and ``similarity.py`` (twin of
``kernels/cython/_simcore.pxd``).

Both kernel families accumulate, per pair of rows (x, y) over their co-rated
columns, the sums ``n, sum x, sum y, sum x*x, sum y*y, sum x*y`` and finish the
similarity here:

- :func:`pearson` is the correlation of x and y over the co-rated support
  (scikit-surprise's one-pass form). It is NaN, "no similarity", when x or y is
  constant on the support (which includes ``n == 1``): such a pair is never a
  neighbour, and ``fr.similarity`` does not store it. A centred sum of squares
  ``n * sxx - sx**2`` at or below ``ZERO_VARIANCE_RTOL * n * sxx`` counts as
  zero; exact data (ratings that are multiples of 0.5) give an exact 0 anyway,
  the threshold only absorbs the rounding of arbitrary floats.
- The value is not clipped here. ``fr.similarity`` clips every similarity it
  returns to [-1, 1] (:func:`clip_unit`); the k-NN models use the value as
  computed, as scikit-surprise does, which decides their neighbour order when
  rounding puts a perfect correlation a hair above 1.
- :func:`shrink` is Koren's shrinkage towards 0 by support.
"""

from __future__ import annotations

import numpy as np

from ._config import jit

ZERO_VARIANCE_RTOL = 1e-12


@jit
def pearson(n, sx, sy, sxx, syy, sxy):
    """``np.corrcoef(x, y)[0, 1]`` from the six co-rated sums; NaN for a zero variance.

    Symmetric in ``(x, y)``: the pairs (x, y) and (y, x) get the same bits.
    """
    var_x = n * sxx - sx * sx
    var_y = n * syy - sy * sy
    if var_x <= ZERO_VARIANCE_RTOL * n * sxx or var_y <= ZERO_VARIANCE_RTOL * n * syy:
        return np.nan
    return (n * sxy - sx * sy) / np.sqrt(var_x * var_y)


@jit
def shrink(sim, n, shrinkage):
    """``sim * n / (n + shrinkage)`` for ``shrinkage > 0``, else ``sim``."""
    if shrinkage > 0.0:
        return sim * (n / (n + shrinkage))
    return sim


@jit
def clip_unit(sim):
    """``np.clip(sim, -1.0, 1.0)``."""
    return min(1.0, max(-1.0, sim))
