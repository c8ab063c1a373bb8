# The similarity formulas shared by knn.pyx and similarity.pyx (twin of
# kernels/numba/_simcore.py, where the rules are explained): one Pearson
# finishing formula, one zero-variance threshold, one shrinkage, one clip.

from libc.math cimport NAN, sqrt

cdef extern from *:
    """
    #define FR_ZERO_VARIANCE_RTOL 1e-12
    """
    # A centred sum of squares n*sxx - sx**2 at or below this fraction of
    # n*sxx is taken as zero (kernels/numba/_simcore.py: ZERO_VARIANCE_RTOL)
    const double ZERO_VARIANCE_RTOL "FR_ZERO_VARIANCE_RTOL"


cdef inline double pearson(double n, double sx, double sy, double sxx, double syy,
                           double sxy) noexcept nogil:
    # np.corrcoef(x, y)[0, 1] from the co-rated sums n, sum x, sum y, sum x*x,
    # sum y*y, sum x*y (not clipped); NaN when x or y has zero variance
    cdef double var_x = n * sxx - sx * sx
    cdef double var_y = n * syy - sy * sy
    if var_x <= ZERO_VARIANCE_RTOL * n * sxx or var_y <= ZERO_VARIANCE_RTOL * n * syy:
        return NAN
    return (n * sxy - sx * sy) / sqrt(var_x * var_y)


cdef inline double shrink(double sim, double n, double shrinkage) noexcept nogil:
    # sim * n / (n + shrinkage) for shrinkage > 0 (Koren's shrinkage by support)
    if shrinkage > 0.0:
        return sim * (n / (n + shrinkage))
    return sim


cdef inline double clip_unit(double sim) noexcept nogil:
    # np.clip(sim, -1, 1)
    if sim > 1.0:
        return 1.0
    if sim < -1.0:
        return -1.0
    return sim
