# cython: language_level=3
"""Floating-point mode of the calling thread (twin of ``kernels/numba/fpmode.py``).

``get_fp_state`` and ``set_fp_state`` read and load the x86 MXCSR register
(0 and a no-op elsewhere).
"""

cdef extern from *:
    """
    #if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
    #include <xmmintrin.h>
    static unsigned int fastrec_read_mxcsr(void) { return _mm_getcsr(); }
    static void fastrec_write_mxcsr(unsigned int v) { _mm_setcsr(v); }
    #define FASTREC_HAVE_MXCSR 1
    #else
    static unsigned int fastrec_read_mxcsr(void) { return 0; }
    static void fastrec_write_mxcsr(unsigned int v) { (void)v; }
    #define FASTREC_HAVE_MXCSR 0
    #endif
    """
    unsigned int fastrec_read_mxcsr() noexcept nogil
    void fastrec_write_mxcsr(unsigned int v) noexcept nogil
    int FASTREC_HAVE_MXCSR

#: MXCSR bits "flush to zero" and "denormals are zero" (see the Numba twin).
FTZ_DAZ = 0x8040
HAVE_FP_STATE = bool(FASTREC_HAVE_MXCSR)


def get_fp_state():
    """The calling thread's MXCSR (x86 floating-point control/status); 0 elsewhere."""
    return <long long>fastrec_read_mxcsr()


def set_fp_state(long long state):
    """Load ``state`` into MXCSR (no-op on machines without it)."""
    fastrec_write_mxcsr(<unsigned int>state)
