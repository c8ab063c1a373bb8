# cython: language_level=3
"""OpenMP thread control and build facts for the Cython backend."""

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define FR_HAVE_OPENMP 1
    #else
    #define FR_HAVE_OPENMP 0
    static int omp_get_max_threads(void) { return 1; }
    static void omp_set_num_threads(int n) { (void)n; }
    #endif
    #ifndef FASTREC_BUILD_FLAGS
    #define FASTREC_BUILD_FLAGS "unknown"
    #endif
    #ifndef FASTREC_BUILD_NATIVE
    #define FASTREC_BUILD_NATIVE 0
    #endif
    #ifndef FASTREC_BUILD_TOOLS
    #define FASTREC_BUILD_TOOLS "unknown"
    #endif
    """
    int FR_HAVE_OPENMP
    int FASTREC_BUILD_NATIVE
    const char* FASTREC_BUILD_FLAGS
    const char* FASTREC_BUILD_TOOLS
    int omp_get_max_threads() nogil
    void omp_set_num_threads(int) nogil


def openmp_enabled():
    """True when the extension was compiled with OpenMP."""
    return bool(FR_HAVE_OPENMP)


def get_max_threads():
    return omp_get_max_threads()


def set_num_threads(int n):
    omp_set_num_threads(n)


def build_flags():
    """Compiler flags the Cython kernels were built with."""
    return FASTREC_BUILD_FLAGS.decode()


def build_native():
    """True when built for the host CPU (-march=native)."""
    return bool(FASTREC_BUILD_NATIVE)


def build_tools():
    """The Cython and NumPy versions the extension was built with."""
    return FASTREC_BUILD_TOOLS.decode()
