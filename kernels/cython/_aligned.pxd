# 64-byte aligned scratch memory, for per-thread buffers of the kernels: a
# buffer that starts on a cache line runs its vectorised loops the same in
# every thread. Used by als.pyx and similarity.pyx. (Numba kernels allocate
# with NumPy; they have no twin of this file.) max_threads() is the size of
# the team of the caller's next parallel region (1 without OpenMP).

cdef extern from *:
    """
    #include <stdlib.h>
    #if defined(_WIN32)
    #include <malloc.h>
    #endif
    #ifdef _OPENMP
    #include <omp.h>
    static int fr_max_threads(void) { return omp_get_max_threads(); }
    #else
    static int fr_max_threads(void) { return 1; }
    #endif
    /* at least `bytes` bytes (rounded up to whole 64-byte lines), 64-byte
       aligned, not initialised; NULL when the memory is not there */
    static void* fr_aligned_alloc(size_t bytes) {
        void* p;
        bytes = (bytes + 63) / 64 * 64;
        if (bytes == 0) bytes = 64;
    #if defined(_WIN32)
        p = _aligned_malloc(bytes, 64);
    #else
        if (posix_memalign(&p, 64, bytes) != 0) p = NULL;
    #endif
        return p;
    }
    /* frees what fr_aligned_alloc returned (NULL is fine) */
    static void fr_aligned_free(void* p) {
    #if defined(_WIN32)
        _aligned_free(p);
    #else
        free(p);
    #endif
    }
    """
    void* aligned_alloc "fr_aligned_alloc"(size_t bytes) noexcept nogil
    void aligned_free "fr_aligned_free"(void* p) noexcept nogil
    int max_threads "fr_max_threads"() noexcept nogil
