# cython: language_level=3
"""Lock-free parallel SGD for biased matrix factorisation (twin of ``numba/sgd.py``).

See ``kernels/numba/sgd.py`` for the model, the update rule, the phased block
schedule, the lane order of the dot product and when the (documented,
permitted) Hogwild race on item rows can happen. Both twins round
identically, so they agree bit for bit wherever the result is deterministic.

The row arithmetic of one update (:c:func:`fr_step_f32` / ``fr_step_f64``) is
a small C helper below: Cython's C for the same lane loops was not vectorised
by GCC 12 (scalar ``vfmadd231ss``, measured), while the helper's GCC/Clang
vector types of the target's native width (64 bytes with AVX-512, 32 with
AVX/AVX2, 16 otherwise) hold the 2W lanes in 128 / width accumulators. Rows of
a whole number of native vectors (the models' padded rows) get an unrolled
version that keeps both rows in registers when they fit beside the
accumulators and reloads them from L1 for the update when they do not; other
lengths a loop. Other compilers get a plain C loop with the same lanes and
the same summation tree, hence the same numbers. The cell loop prefetches
item rows a few ratings ahead, and calls the helpers directly (always
inlined): through a ``cdef inline`` wrapper GCC left them as calls. The
threads take the cells of all the phases from one queue (see ``fr_schedule``).
"""

from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.stdlib cimport calloc, free

cdef extern from *:
    """
    #include <stddef.h>
    #include <string.h>
    /* The schedule of one kernel call, shared by the threads of its team.

       The cells of every phase of every epoch form one queue of tasks, task
       t = (phase p, cell c) with p = t / n_cells, c = t % n_cells, handed
       out in that order from one counter (`next`). A thread runs the task it
       claimed once every cell of phase p - 1 is done (`done[p - 1]` counts
       them), then counts it in `done[p]`. So a phase waits for the previous
       phase's cells, never for the threads: a thread that was descheduled
       (the machine is shared, or oversubscribed) holds nothing up unless it
       holds a claimed cell, and the threads that run take its share. A
       barrier that waits for every thread, as OpenMP's and this kernel's
       earlier one did, makes each phase wait until every thread has been
       scheduled again: on a loaded machine, a scheduler time slice or more
       per phase, 40 phases per fit on small data. One thread runs the tasks
       in order, so the result does not depend on the thread count (given
       the grid) or on the timing.

       Waiting: spin (PAUSE) for about FR_SPIN_NS, then sleep on the futex
       of done[p - 1] (Linux; other systems nap 50 us at a time), woken by
       the thread that completes the phase. A sleeping waiter leaves its CPU
       to the thread it waits for. Memory order: a cell's writes happen
       before its release increment of done[p]; a waiter's acquire load that
       sees the phase complete happens before its cell's reads. */
    #ifndef FR_SPIN_NS
    #define FR_SPIN_NS 50000
    #endif
    typedef struct { long long next; int sleepers; } fr_schedule;
    #if defined(__GNUC__) || defined(__clang__)
    #include <time.h>
    #if defined(__linux__)
    #include <limits.h>
    #include <unistd.h>
    #include <sys/syscall.h>
    #include <linux/futex.h>
    #endif
    static inline void fr_pause(void) {
    #if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
    #elif defined(__aarch64__)
        __asm__ __volatile__("yield");
    #endif
    }
    static inline long long fr_now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    }
    static inline long long fr_claim_task(fr_schedule* sched) {
        return __atomic_fetch_add(&sched->next, 1, __ATOMIC_RELAXED);
    }
    /* wait until *done == n_cells (the previous phase is complete) */
    static void fr_wait_phase(fr_schedule* sched, int* done, int n_cells) {
        long long start;
        int seen, i;
        if (__atomic_load_n(done, __ATOMIC_ACQUIRE) == n_cells) return;
        start = fr_now_ns();
        for (;;) {  /* spin, reading the clock every 64 pauses (vDSO: no system call) */
            for (i = 0; i < 64; i++) {
                fr_pause();
                if (__atomic_load_n(done, __ATOMIC_ACQUIRE) == n_cells) return;
            }
            if (fr_now_ns() - start > FR_SPIN_NS) break;
        }
        for (;;) {
            __atomic_add_fetch(&sched->sleepers, 1, __ATOMIC_SEQ_CST);
            seen = __atomic_load_n(done, __ATOMIC_SEQ_CST);
            if (seen != n_cells) {
    #if defined(__linux__)
                syscall(SYS_futex, done, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
    #else
                struct timespec nap = {0, 50000};
                nanosleep(&nap, NULL);
    #endif
            }
            __atomic_sub_fetch(&sched->sleepers, 1, __ATOMIC_SEQ_CST);
            if (__atomic_load_n(done, __ATOMIC_ACQUIRE) == n_cells) return;
        }
    }
    /* count a finished cell of a phase; the last one wakes the sleepers */
    static inline void fr_finish_cell(fr_schedule* sched, int* done, int n_cells) {
        if (__atomic_add_fetch(done, 1, __ATOMIC_SEQ_CST) == n_cells &&
            __atomic_load_n(&sched->sleepers, __ATOMIC_SEQ_CST) > 0) {
    #if defined(__linux__)
            syscall(SYS_futex, done, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
    #endif
        }
    }
    #else  /* other compilers: OpenMP atomics (3.1) and a spin */
    static inline long long fr_claim_task(fr_schedule* sched) {
        long long got;
    #ifdef _OPENMP
        _Pragma("omp atomic capture")
    #endif
        got = sched->next++;
        return got;
    }
    static void fr_wait_phase(fr_schedule* sched, int* done, int n_cells) {
        int seen;
        (void)sched;
        for (;;) {
    #ifdef _OPENMP
            _Pragma("omp atomic read")
    #endif
            seen = *done;
            if (seen == n_cells) break;
        }
    #ifdef _OPENMP
        _Pragma("omp flush")
    #endif
    }
    static inline void fr_finish_cell(fr_schedule* sched, int* done, int n_cells) {
        (void)sched; (void)n_cells;
    #ifdef _OPENMP
        _Pragma("omp flush")
        _Pragma("omp atomic")
    #endif
        (*done)++;
    }
    #endif
    #if defined(__GNUC__) || defined(__clang__)
    #define FR_SGD_PREFETCH(ptr) __builtin_prefetch((const void*)(ptr), 1, 3)
    #define FR_SGD_RESTRICT __restrict__
    #define FR_SGD_INLINE static inline __attribute__((always_inline))
    #else
    #define FR_SGD_PREFETCH(ptr) ((void)0)
    #define FR_SGD_RESTRICT
    #define FR_SGD_INLINE static inline
    #endif

    /* One SGD update of rows p (user) and q (item) of length k and their biases;
       returns err = rating - r_hat, taken before the update.

       dot = sum_f p[f] q[f] in 2W lanes (lane f % (2W), each lane summed in
       increasing f), lanes then folded as s[j] += s[j + h], h = W, W/2, ..., 1.
       W = 64 / sizeof(T): 16 floats or 8 doubles (one cache line).
       Update (NumPy): step = lr * err, keep = 1 - shrink;
       p, q = (p - shrink p) + step q, (q - shrink q) + step p: two fused multiply-adds
       each, and only one way to contract them (the same in GCC and LLVM). */
    #define FR_SGD_SCALAR_TAIL(T, W, s, f, k, p, q, dot)                           \\
        do {                                                                       \\
            ptrdiff_t j_, h_;                                                      \\
            for (; (f) < (k); (f)++) {                                             \\
                j_ = (f) % (2 * (W));                                              \\
                s[j_] = s[j_] + p[f] * q[f];                                       \\
            }                                                                      \\
            for (h_ = (W); h_ >= 1; h_ /= 2)                                       \\
                for (j_ = 0; j_ < h_; j_++) s[j_] = s[j_] + s[j_ + h_];            \\
            dot = s[0];                                                            \\
        } while (0)

    #define FR_SGD_UPDATE_TAIL(T, f, k, p, q, step, shrink)                        \\
        for (; (f) < (k); (f)++) {                                                 \\
            T pf_ = p[f], qf_ = q[f];                                              \\
            p[f] = (pf_ - shrink * pf_) + step * qf_;                              \\
            q[f] = (qf_ - shrink * qf_) + step * pf_;                              \\
        }

    #define FR_SGD_BIASES(T, err, step, shrink, bu, bi, rating, mu, lr, dot, use_bias) \\
        err = rating - (((mu + bu[0]) + bi[0]) + dot);                             \\
        step = lr * err;                                                           \\
        if (use_bias) {                                                            \\
            T bu_ = bu[0], bi_ = bi[0];                                            \\
            bu[0] = bu_ + (step - shrink * bu_);                                   \\
            bi[0] = bi_ + (step - shrink * bi_);                                   \\
        }

    #if !defined(FR_SGD_NO_VECTOR) && (defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12))
    /* Vectors of the target's native width (FR_VBYTES: 64 bytes with AVX-512,
       32 with AVX, 16 otherwise). The 2W lanes of the dot product (W = one
       cache line of elements) are FR_NACC = 128 / FR_VBYTES accumulators of
       one native vector each: native vector v of a row (elements v L .. v L
       + L - 1, L = FR_VBYTES / sizeof(T)) goes to accumulator v % FR_NACC,
       which holds exactly the lanes f % 2W of its elements. The fold s[j] +=
       s[j + h], h = W, W/2, ..., 1 is accumulator pairs while h >= L, then
       shuffles inside the last vector: the same lanes and the same tree on
       every target, hence the same numbers as the Numba twin. (An earlier
       version used 64-byte vectors on every target and kept both rows in
       registers between the dot product and the update: with AVX2's sixteen
       32-byte registers, rows of 100 float32 factors spilled to the stack,
       about 630 instructions an update where this version takes about 150.) */
    #if defined(__AVX512F__)
    #define FR_VBYTES 64
    #define FR_VREGS 32
    #elif defined(__AVX__)
    #define FR_VBYTES 32
    #define FR_VREGS 16
    #else
    #define FR_VBYTES 16
    #define FR_VREGS 16
    #endif
    #define FR_NACC (128 / FR_VBYTES)
    typedef float fr_sgd_nf __attribute__((vector_size(FR_VBYTES)));
    typedef double fr_sgd_nd __attribute__((vector_size(FR_VBYTES)));
    typedef float fr_sgd_vf8 __attribute__((vector_size(32)));
    typedef float fr_sgd_vf4 __attribute__((vector_size(16)));
    typedef float fr_sgd_vf2 __attribute__((vector_size(8)));
    typedef double fr_sgd_vd4 __attribute__((vector_size(32)));
    typedef double fr_sgd_vd2 __attribute__((vector_size(16)));

    /* s[j] += s[j + h] inside one native vector, h = L/2, ..., 1; returns s[0] */
    static inline float fr_sgd_fold_f(fr_sgd_nf v) {
    #if FR_VBYTES == 64
        fr_sgd_vf8 w = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7)
                     + __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    #else
        fr_sgd_nf w = v;
    #endif
    #if FR_VBYTES >= 32
        fr_sgd_vf4 g = __builtin_shufflevector(w, w, 0, 1, 2, 3)
                     + __builtin_shufflevector(w, w, 4, 5, 6, 7);
    #else
        fr_sgd_vf4 g = w;
    #endif
        fr_sgd_vf2 e = __builtin_shufflevector(g, g, 0, 1) + __builtin_shufflevector(g, g, 2, 3);
        return e[0] + e[1];
    }
    static inline double fr_sgd_fold_d(fr_sgd_nd v) {
    #if FR_VBYTES == 64
        fr_sgd_vd4 g = __builtin_shufflevector(v, v, 0, 1, 2, 3)
                     + __builtin_shufflevector(v, v, 4, 5, 6, 7);
    #elif FR_VBYTES == 32
        fr_sgd_vd4 g = v;
    #endif
    #if FR_VBYTES >= 32
        fr_sgd_vd2 e = __builtin_shufflevector(g, g, 0, 1) + __builtin_shufflevector(g, g, 2, 3);
    #else
        fr_sgd_vd2 e = v;
    #endif
        return e[0] + e[1];
    }

    /* the accumulators folded pairwise while h >= L: acc[i] += acc[i + h / L] */
    #define FR_SGD_FOLD_ACC(acc)                                                   \\
        do {                                                                       \\
            int h_, i_;                                                            \\
            for (h_ = FR_NACC / 2; h_ >= 1; h_ /= 2)                               \\
                for (i_ = 0; i_ < h_; i_++) acc[i_] += acc[i_ + h_];               \\
        } while (0)

    /* rows of any length k: native vectors, then one element at a time */
    #define FR_SGD_DEFINE_STEP(T, V, W, NAME, FOLD)                                \\
    FR_SGD_INLINE T NAME(T* FR_SGD_RESTRICT p, T* FR_SGD_RESTRICT q,               \\
                         T* FR_SGD_RESTRICT bu, T* FR_SGD_RESTRICT bi, T rating,   \\
                         T mu, T lr, T shrink, int use_bias, ptrdiff_t k) {        \\
        enum { L = FR_VBYTES / sizeof(T) };                                        \\
        T dot, err, step, s[2 * W];                                                \\
        ptrdiff_t f = 0, v, kn = k - k % L;                                        \\
        V acc[FR_NACC], x, y, vstep, vshrink, np_, nq_;                            \\
        int a;                                                                     \\
        for (a = 0; a < FR_NACC; a++) acc[a] = (V){0};                             \\
        for (v = 0; f < kn; f += L, v++) {                                         \\
            memcpy(&x, p + f, sizeof(V)); memcpy(&y, q + f, sizeof(V));            \\
            acc[v % FR_NACC] += x * y;                                             \\
        }                                                                          \\
        if (f == k) {                                                              \\
            FR_SGD_FOLD_ACC(acc);                                                  \\
            dot = FOLD(acc[0]);                                                    \\
        } else {                                                                   \\
            for (a = 0; a < FR_NACC; a++) memcpy(s + a * L, &acc[a], sizeof(V));   \\
            FR_SGD_SCALAR_TAIL(T, W, s, f, k, p, q, dot);                          \\
        }                                                                          \\
        FR_SGD_BIASES(T, err, step, shrink, bu, bi, rating, mu, lr, dot, use_bias) \\
        vstep = step - (V){0};                                                     \\
        vshrink = shrink - (V){0};                                                 \\
        for (f = 0; f < kn; f += L) {                                              \\
            memcpy(&x, p + f, sizeof(V)); memcpy(&y, q + f, sizeof(V));            \\
            np_ = (x - vshrink * x) + vstep * y;                                   \\
            nq_ = (y - vshrink * y) + vstep * x;                                   \\
            memcpy(p + f, &np_, sizeof(V)); memcpy(q + f, &nq_, sizeof(V));        \\
        }                                                                          \\
        FR_SGD_UPDATE_TAIL(T, f, k, p, q, step, shrink)                            \\
        return err;                                                                \\
    }
    FR_SGD_DEFINE_STEP(float, fr_sgd_nf, 16, fr_step_any_f32, fr_sgd_fold_f)
    FR_SGD_DEFINE_STEP(double, fr_sgd_nd, 8, fr_step_any_f64, fr_sgd_fold_d)

    /* The same update for rows of exactly NV native vectors: constant trip
       counts, so GCC unrolls the loops. When both rows fit in the vector
       registers beside the accumulators (AVX-512: up to 128 float32), they
       stay there between the dot product and the update; otherwise the empty
       asm (a compiler memory barrier, no instruction) makes the update load
       them again from L1 instead of spilling them to the stack. Same lanes,
       same fold, same update: the same numbers as fr_step_any_*. */
    #define FR_SGD_DEFINE_FIXED(T, V, NAME, FOLD, NV)                              \\
    FR_SGD_INLINE T NAME(T* FR_SGD_RESTRICT p, T* FR_SGD_RESTRICT q,               \\
                         T* FR_SGD_RESTRICT bu, T* FR_SGD_RESTRICT bi, T rating,   \\
                         T mu, T lr, T shrink, int use_bias) {                     \\
        enum { L = FR_VBYTES / sizeof(T) };                                        \\
        T dot, err, step;                                                          \\
        V acc[FR_NACC], x, y, vstep, vshrink, np_, nq_;                            \\
        int v, a;                                                                  \\
        for (a = 0; a < FR_NACC; a++) acc[a] = (V){0};                             \\
        for (v = 0; v < (NV); v++) {                                               \\
            memcpy(&x, p + v * L, sizeof(V)); memcpy(&y, q + v * L, sizeof(V));    \\
            acc[v % FR_NACC] += x * y;                                             \\
        }                                                                          \\
        FR_SGD_FOLD_ACC(acc);                                                      \\
        dot = FOLD(acc[0]);                                                        \\
        FR_SGD_BIASES(T, err, step, shrink, bu, bi, rating, mu, lr, dot, use_bias) \\
        if (2 * (NV) + FR_NACC + 4 > FR_VREGS) __asm__ __volatile__("" ::: "memory"); \\
        vstep = step - (V){0};                                                     \\
        vshrink = shrink - (V){0};                                                 \\
        for (v = 0; v < (NV); v++) {                                               \\
            memcpy(&x, p + v * L, sizeof(V)); memcpy(&y, q + v * L, sizeof(V));    \\
            np_ = (x - vshrink * x) + vstep * y;                                   \\
            nq_ = (y - vshrink * y) + vstep * x;                                   \\
            memcpy(p + v * L, &np_, sizeof(V));                                    \\
            memcpy(q + v * L, &nq_, sizeof(V));                                    \\
        }                                                                          \\
        return err;                                                                \\
    }
    #define FR_SGD_FIXED_SET(T, V, S, FOLD)                                        \\
    FR_SGD_DEFINE_FIXED(T, V, fr_step1_##S, FOLD, 1)                               \\
    FR_SGD_DEFINE_FIXED(T, V, fr_step2_##S, FOLD, 2)                               \\
    FR_SGD_DEFINE_FIXED(T, V, fr_step3_##S, FOLD, 3)                               \\
    FR_SGD_DEFINE_FIXED(T, V, fr_step4_##S, FOLD, 4)                               \\
    FR_SGD_DEFINE_FIXED(T, V, fr_step5_##S, FOLD, 5)                               \\
    FR_SGD_DEFINE_FIXED(T, V, fr_step6_##S, FOLD, 6)                               \\
    FR_SGD_DEFINE_FIXED(T, V, fr_step7_##S, FOLD, 7)                               \\
    FR_SGD_DEFINE_FIXED(T, V, fr_step8_##S, FOLD, 8)                               \\
    FR_SGD_DEFINE_FIXED(T, V, fr_step10_##S, FOLD, 10)                             \\
    FR_SGD_DEFINE_FIXED(T, V, fr_step12_##S, FOLD, 12)                             \\
    FR_SGD_DEFINE_FIXED(T, V, fr_step14_##S, FOLD, 14)                             \\
    FR_SGD_DEFINE_FIXED(T, V, fr_step16_##S, FOLD, 16)
    FR_SGD_FIXED_SET(float, fr_sgd_nf, f32, fr_sgd_fold_f)
    FR_SGD_FIXED_SET(double, fr_sgd_nd, f64, fr_sgd_fold_d)

    /* rows of a whole number of native vectors with an unrolled version (the
       model's padded rows: whole cache lines, up to 256 bytes with AVX-512,
       512 with AVX, 16 to 256 with SSE): that one; otherwise the loop */
    #define FR_SGD_DEFINE_DISPATCH(T, NAME, S)                                     \\
    FR_SGD_INLINE T NAME(T* p, T* q, T* bu, T* bi, T rating, T mu, T lr, T shrink, \\
                         int use_bias, ptrdiff_t k) {                              \\
        enum { L = FR_VBYTES / sizeof(T) };                                        \\
        if (k % L == 0) {                                                          \\
            switch (k / L) {                                                       \\
            case 1: return fr_step1_##S(p, q, bu, bi, rating, mu, lr, shrink, use_bias); \\
            case 2: return fr_step2_##S(p, q, bu, bi, rating, mu, lr, shrink, use_bias); \\
            case 3: return fr_step3_##S(p, q, bu, bi, rating, mu, lr, shrink, use_bias); \\
            case 4: return fr_step4_##S(p, q, bu, bi, rating, mu, lr, shrink, use_bias); \\
            case 5: return fr_step5_##S(p, q, bu, bi, rating, mu, lr, shrink, use_bias); \\
            case 6: return fr_step6_##S(p, q, bu, bi, rating, mu, lr, shrink, use_bias); \\
            case 7: return fr_step7_##S(p, q, bu, bi, rating, mu, lr, shrink, use_bias); \\
            case 8: return fr_step8_##S(p, q, bu, bi, rating, mu, lr, shrink, use_bias); \\
            case 10: return fr_step10_##S(p, q, bu, bi, rating, mu, lr, shrink, use_bias); \\
            case 12: return fr_step12_##S(p, q, bu, bi, rating, mu, lr, shrink, use_bias); \\
            case 14: return fr_step14_##S(p, q, bu, bi, rating, mu, lr, shrink, use_bias); \\
            case 16: return fr_step16_##S(p, q, bu, bi, rating, mu, lr, shrink, use_bias); \\
            default: break;                                                        \\
            }                                                                      \\
        }                                                                          \\
        return fr_step_any_##S(p, q, bu, bi, rating, mu, lr, shrink, use_bias, k); \\
    }
    FR_SGD_DEFINE_DISPATCH(float, fr_step_f32, f32)
    FR_SGD_DEFINE_DISPATCH(double, fr_step_f64, f64)


    #else  /* no vector extensions (or -DFR_SGD_NO_VECTOR): the same lanes and tree, one element at a time */
    #define FR_SGD_DEFINE_STEP(T, W, NAME)                                         \\
    FR_SGD_INLINE T NAME(T* FR_SGD_RESTRICT p, T* FR_SGD_RESTRICT q,               \\
                         T* FR_SGD_RESTRICT bu, T* FR_SGD_RESTRICT bi, T rating,   \\
                         T mu, T lr, T shrink, int use_bias, ptrdiff_t k) {        \\
        T dot, err, step, s[2 * W];                                                \\
        ptrdiff_t f = 0, j;                                                        \\
        for (j = 0; j < 2 * W; j++) s[j] = 0;                                      \\
        FR_SGD_SCALAR_TAIL(T, W, s, f, k, p, q, dot);                              \\
        FR_SGD_BIASES(T, err, step, shrink, bu, bi, rating, mu, lr, dot, use_bias) \\
        f = 0;                                                                     \\
        FR_SGD_UPDATE_TAIL(T, f, k, p, q, step, shrink)                            \\
        return err;                                                                \\
    }
    FR_SGD_DEFINE_STEP(float, 16, fr_step_f32)
    FR_SGD_DEFINE_STEP(double, 8, fr_step_f64)
    #endif
    """
    void prefetch "FR_SGD_PREFETCH"(const void* ptr) noexcept nogil
    ctypedef struct fr_schedule:
        long long next
        int sleepers
    long long fr_claim_task(fr_schedule* sched) noexcept nogil
    void fr_wait_phase(fr_schedule* sched, int* done, int n_cells) noexcept nogil
    void fr_finish_cell(fr_schedule* sched, int* done, int n_cells) noexcept nogil
    float fr_step_f32(float* p, float* q, float* bu, float* bi, float rating, float mu,
                      float lr, float shrink, int use_bias, Py_ssize_t k) noexcept nogil
    double fr_step_f64(double* p, double* q, double* bu, double* bi, double rating, double mu,
                       double lr, double shrink, int use_bias, Py_ssize_t k) noexcept nogil


# Ratings of the same user between a prefetch of an item row and its update
# (Numba has no prefetch; this changes no result).
DEF PREFETCH_AHEAD = 4


cdef inline void prefetch_row(const floating* row, Py_ssize_t k) noexcept nogil:
    # touch every cache line of row[:k] (a hint: no fault, no result)
    cdef Py_ssize_t off
    cdef const char* base = <const char*> row
    for off in range(0, k * <Py_ssize_t> sizeof(floating), 64):
        prefetch(base + off)


cdef inline Py_ssize_t take_run(const long long* block_ptr, Py_ssize_t width, Py_ssize_t blk,
                                const int* user_order, Py_ssize_t* nxt, Py_ssize_t end,
                                int* user, Py_ssize_t* run_end) noexcept nogil:
    # the next user of user_order[nxt[0]:end] with ratings in block blk: sets
    # user[0] and run_end[0], advances nxt[0] past it and returns the run's
    # start (== run_end[0] when no such user is left; user[0] is then unchanged)
    cdef Py_ssize_t start = run_end[0]
    cdef int u
    while start == run_end[0] and nxt[0] < end:
        u = user_order[nxt[0]]
        nxt[0] = nxt[0] + 1
        user[0] = u
        start = block_ptr[u * width + blk]
        run_end[0] = block_ptr[u * width + blk + 1]
    return start


cdef double run_cell(const long long* block_ptr, Py_ssize_t width, const int* indices,
                     const floating* ratings, const int* user_order, Py_ssize_t first,
                     Py_ssize_t end, Py_ssize_t blk, floating mu, floating lr,
                     floating shrink, bint use_bias, floating* user_factors,
                     floating* item_factors, Py_ssize_t k, floating* user_bias,
                     floating* item_bias) noexcept nogil:
    # the runs in item block blk of the users user_order[first:end], in two
    # lanes that each walk one user's run and take the next user when it is
    # done; returns the loss sum. A lane keeps its user's bias in a local
    # (written back when the run ends): the same numbers, and no cache line of
    # user_bias is written by two threads update after update.
    cdef Py_ssize_t nxt = first, ea = 0, ea_end = 0, eb = 0, eb_end = 0
    cdef int a = 0, b = 0, i
    cdef floating err, bias_a = 0, bias_b = 0
    cdef double loss = 0.0
    ea = take_run(block_ptr, width, blk, user_order, &nxt, end, &a, &ea_end)  # lane a
    eb = take_run(block_ptr, width, blk, user_order, &nxt, end, &b, &eb_end)  # lane b
    bias_a = user_bias[a]
    bias_b = user_bias[b]
    while ea < ea_end or eb < eb_end:
        if ea < ea_end:
            if ea + PREFETCH_AHEAD < ea_end:
                prefetch_row(&item_factors[indices[ea + PREFETCH_AHEAD] * k], k)
            i = indices[ea]
            if floating is float:  # (called directly: GCC inlines these, not a cdef wrapper)
                err = fr_step_f32(&user_factors[a * k], &item_factors[i * k], &bias_a,
                                  &item_bias[i], ratings[ea], mu, lr, shrink, use_bias, k)
            else:
                err = fr_step_f64(&user_factors[a * k], &item_factors[i * k], &bias_a,
                                  &item_bias[i], ratings[ea], mu, lr, shrink, use_bias, k)
            loss = loss + err * err
            ea = ea + 1
            if ea == ea_end:
                user_bias[a] = bias_a
                ea = take_run(block_ptr, width, blk, user_order, &nxt, end, &a, &ea_end)
                bias_a = user_bias[a]
        if eb < eb_end:
            if eb + PREFETCH_AHEAD < eb_end:
                prefetch_row(&item_factors[indices[eb + PREFETCH_AHEAD] * k], k)
            i = indices[eb]
            if floating is float:
                err = fr_step_f32(&user_factors[b * k], &item_factors[i * k], &bias_b,
                                  &item_bias[i], ratings[eb], mu, lr, shrink, use_bias, k)
            else:
                err = fr_step_f64(&user_factors[b * k], &item_factors[i * k], &bias_b,
                                  &item_bias[i], ratings[eb], mu, lr, shrink, use_bias, k)
            loss = loss + err * err
            eb = eb + 1
            if eb == eb_end:
                user_bias[b] = bias_b
                eb = take_run(block_ptr, width, blk, user_order, &nxt, end, &b, &eb_end)
                bias_b = user_bias[b]
    return loss


cdef void run_tasks(fr_schedule* sched, int* done, Py_ssize_t n_epochs, Py_ssize_t n_blocks,
                    Py_ssize_t n_chunks, const long long* block_ptr, const int* indices,
                    const floating* ratings, const int* user_orders, Py_ssize_t order_len,
                    const long long* chunk_bounds, const int* block_orders,
                    const floating* learning_rates, floating mu, floating reg, bint use_bias,
                    floating* user_factors, floating* item_factors, Py_ssize_t k,
                    floating* user_bias, floating* item_bias, double* chunk_loss) noexcept nogil:
    # run by every thread of the team: claim the next task (phase p, cell c)
    # of the queue, wait until phase p - 1 is complete, run the cell, count it
    cdef long long task, n_tasks = <long long> n_epochs * n_blocks * n_chunks
    cdef Py_ssize_t p, c, e, s
    cdef floating lr, shrink
    task = fr_claim_task(sched)
    while task < n_tasks:
        p = <Py_ssize_t> (task // n_chunks)
        c = <Py_ssize_t> (task % n_chunks)
        if p > 0:
            fr_wait_phase(sched, &done[p - 1], <int> n_chunks)
        e = p // n_blocks
        s = p % n_blocks
        lr = learning_rates[e]
        shrink = lr * reg
        chunk_loss[e * n_chunks + c] += run_cell(
            block_ptr, n_blocks + 1, indices, ratings, &user_orders[e * order_len],
            chunk_bounds[e * (n_chunks + 1) + c], chunk_bounds[e * (n_chunks + 1) + c + 1],
            block_orders[e * n_blocks + (c + s) % n_blocks], mu, lr, shrink, use_bias,
            user_factors, item_factors, k, user_bias, item_bias)
        fr_finish_cell(sched, &done[p], <int> n_chunks)
        task = fr_claim_task(sched)


def sgd_epoch(const long long[:, ::1] block_ptr, const int[::1] indices,
              const floating[::1] ratings, const int[::1] user_order,
              const long long[::1] chunk_bounds, const int[::1] block_order,
              double global_mean, double learning_rate, double regularization, bint use_bias,
              floating[:, ::1] user_factors, floating[:, ::1] item_factors,
              floating[::1] user_bias, floating[::1] item_bias, double[::1] chunk_loss):
    """One SGD pass over all ratings, updating the factors in place.

    See ``kernels/numba/sgd.py`` for the parameters and the visiting order
    (phases of (user chunk, item block) cells, two lanes of users with their
    ratings interleaved in a cell). The scalars are rounded to the factors'
    dtype before use, as the Python wrapper does for Numba. The threads run
    the cells as in ``sgd_epochs``.
    """
    cdef Py_ssize_t n_chunks = chunk_bounds.shape[0] - 1
    cdef Py_ssize_t n_blocks = block_order.shape[0]
    cdef Py_ssize_t k = user_factors.shape[1]
    cdef floating mu = <floating> global_mean
    cdef floating lr = <floating> learning_rate
    cdef floating reg = <floating> regularization
    cdef fr_schedule sched
    cdef int* done
    sched.next = 0
    sched.sleepers = 0
    chunk_loss[:] = 0.0
    if n_chunks <= 0 or n_blocks <= 0 or ratings.shape[0] == 0:
        return
    done = <int*> calloc(n_blocks, sizeof(int))  # cells completed, per phase
    if done == NULL:
        raise MemoryError()
    with nogil, parallel():
        run_tasks(&sched, done, 1, n_blocks, n_chunks, &block_ptr[0, 0], &indices[0],
                  &ratings[0], &user_order[0], 0, &chunk_bounds[0], &block_order[0], &lr, mu,
                  reg, use_bias, &user_factors[0, 0], &item_factors[0, 0], k, &user_bias[0],
                  &item_bias[0], &chunk_loss[0])
    free(done)


def sgd_epochs(const long long[:, ::1] block_ptr, const int[::1] indices,
               const floating[::1] ratings, const int[:, ::1] user_orders,
               const long long[:, ::1] chunk_bounds, const int[:, ::1] block_orders,
               double global_mean, const floating[::1] learning_rates, double regularization,
               bint use_bias, floating[:, ::1] user_factors, floating[:, ::1] item_factors,
               floating[::1] user_bias, floating[::1] item_bias, double[:, ::1] chunk_loss):
    """Several SGD passes in one call: epoch ``e`` is exactly ``sgd_epoch``
    with ``user_orders[e]``, ``chunk_bounds[e]``, ``block_orders[e]`` and
    ``learning_rates[e]``, its losses in ``chunk_loss[e]``.

    One OpenMP team runs every phase of every epoch from one queue of cells
    (``fr_claim_task``): a cell starts when every cell of the previous phase
    is done (``fr_wait_phase``: spin about 50 us, then sleep until the phase's
    last cell wakes it), so no phase waits for a thread that has no cell to
    run. See ``kernels/numba/sgd.py`` for the parameters.
    """
    cdef Py_ssize_t n_epochs = learning_rates.shape[0]
    cdef Py_ssize_t n_chunks = chunk_bounds.shape[1] - 1
    cdef Py_ssize_t n_blocks = block_orders.shape[1]
    cdef Py_ssize_t k = user_factors.shape[1]
    cdef floating mu = <floating> global_mean
    cdef floating reg = <floating> regularization
    cdef fr_schedule sched
    cdef int* done
    sched.next = 0
    sched.sleepers = 0
    chunk_loss[:, :] = 0.0
    if n_epochs <= 0 or n_chunks <= 0 or n_blocks <= 0 or ratings.shape[0] == 0:
        return
    done = <int*> calloc(n_epochs * n_blocks, sizeof(int))  # cells completed, per phase
    if done == NULL:
        raise MemoryError()
    with nogil, parallel():
        run_tasks(&sched, done, n_epochs, n_blocks, n_chunks, &block_ptr[0, 0], &indices[0],
                  &ratings[0], &user_orders[0, 0], user_orders.shape[1], &chunk_bounds[0, 0],
                  &block_orders[0, 0], &learning_rates[0], mu, reg, use_bias,
                  &user_factors[0, 0], &item_factors[0, 0], k, &user_bias[0], &item_bias[0],
                  &chunk_loss[0, 0])
    free(done)


# ---------------------------------------------------------------- initialisation
cdef extern from "<math.h>" nogil:
    double exp(double x)
    double log(double x)

cdef extern from *:
    """
    /* The fast test of 8 consecutive draws with AVX-512 (F and DQ: 64-bit
       multiplies and conversions, gathers for the two table lookups): the same
       arithmetic as fill_row's loop, lane by lane, hence the same numbers.
       Writes value[j] = x_j * (+-scale) and bits[j]; returns the mask of the
       lanes that missed (to be finished by slow_draw). */
    #if !defined(FR_SGD_NO_VECTOR) && defined(__AVX512F__) && defined(__AVX512DQ__) && \\
        (defined(__GNUC__) || defined(__clang__))
    #include <immintrin.h>
    #define FR_FILL_SIMD 1
    static inline unsigned fr_fast_draws8(unsigned long long start, const double* edges,
                                          const double* widths, double scale, double* value,
                                          unsigned long long* bits) {
        const __m512i golden = _mm512_set1_epi64((long long)0x9E3779B97F4A7C15ULL);
        const __m512i lane = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
        __m512i z = _mm512_add_epi64(_mm512_set1_epi64((long long)start),
                                     _mm512_mullo_epi64(lane, golden));
        __m512i layer;
        __m512d x, v;
        __mmask8 ok;
        z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 30)),
                               _mm512_set1_epi64((long long)0xBF58476D1CE4E5B9ULL));
        z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)),
                               _mm512_set1_epi64((long long)0x94D049BB133111EBULL));
        z = _mm512_xor_si512(z, _mm512_srli_epi64(z, 31));
        layer = _mm512_and_si512(z, _mm512_set1_epi64(255));
        x = _mm512_mul_pd(_mm512_cvtepi64_pd(_mm512_srli_epi64(z, 12)),
                          _mm512_i64gather_pd(layer, widths, 8));
        ok = _mm512_cmp_pd_mask(x, _mm512_i64gather_pd(
                 _mm512_add_epi64(layer, _mm512_set1_epi64(1)), edges, 8), _CMP_LT_OQ);
        v = _mm512_mul_pd(x, _mm512_set1_pd(scale));  /* x (-scale) == -(x scale) exactly */
        v = _mm512_castsi512_pd(_mm512_xor_si512(
                _mm512_castpd_si512(v), _mm512_slli_epi64(_mm512_srli_epi64(z, 8), 63)));
        _mm512_storeu_pd(value, v);
        _mm512_storeu_si512((void*)bits, z);
        return (unsigned)(~ok) & 0xFFu;
    }
    #else
    #define FR_FILL_SIMD 0
    static inline unsigned fr_fast_draws8(unsigned long long start, const double* edges,
                                          const double* widths, double scale, double* value,
                                          unsigned long long* bits) {
        (void)start; (void)edges; (void)widths; (void)scale; (void)value; (void)bits;
        return 0xFFu;  /* never called */
    }
    #endif
    """
    bint FR_FILL_SIMD
    unsigned fr_fast_draws8(unsigned long long start, const double* edges, const double* widths,
                            double scale, double* value, unsigned long long* bits) noexcept nogil


cdef inline unsigned long long mix64(unsigned long long z) noexcept nogil:
    # SplitMix64's output function (Steele, Lea & Flood, OOPSLA 2014); the
    # generator is: state += 0x9E3779B97F4A7C15, bits = mix64(state)
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL
    return z ^ (z >> 31)




cdef double slow_draw(unsigned long long first, const double* edges, const double* widths,
                      const double* heights) noexcept nogil:
    # the draw whose first 64 bits ``first`` missed the fast test: the wedge
    # test, the tail, or fresh candidates, from the private SplitMix64 stream
    # seeded by mix64(first ^ salt); returns |x| (the sign is first's)
    cdef unsigned long long golden = 0x9E3779B97F4A7C15ULL
    cdef unsigned long long salt = 0xD6E8FEB86659FD93ULL  # as _SLOW_SALT in the Numba twin
    cdef unsigned long long state = mix64(first ^ salt), bits = first, b1, b2
    cdef unsigned long long top = 1ULL << 53  # 1 - m 2**-53 = (2**53 - m) 2**-53, exact
    cdef double inv53 = 1.0 / 9007199254740992.0
    cdef double r = edges[1]
    cdef double inv_r = 1.0 / r  # as the Numba twin (whose 'arcp' flag rewrites x / r)
    cdef double x, a, b, u, y
    cdef Py_ssize_t layer
    while True:
        layer = <Py_ssize_t> (bits & 255)
        x = <double> <long long> (bits >> 12) * widths[layer]
        if x < edges[layer + 1]:
            return x
        if layer == 0:  # the tail beyond r
            while True:
                state = state + golden
                b1 = mix64(state)
                state = state + golden
                b2 = mix64(state)
                a = -log(<double> <long long> (top - (b1 >> 11)) * inv53) * inv_r
                b = -log(<double> <long long> (top - (b2 >> 11)) * inv53)
                if b + b > a * a:
                    return r + a
        state = state + golden
        b1 = mix64(state)
        u = <double> <long long> (b1 >> 11) * inv53
        y = heights[layer] + u * (heights[layer + 1] - heights[layer])
        if y < exp(-0.5 * x * x):
            return x
        state = state + golden
        bits = mix64(state)


cdef void fill_row(floating* out, Py_ssize_t k, unsigned long long base, double scale,
                   const double* edges, const double* widths,
                   const double* heights) noexcept nogil:
    # out[:k] from the draws with counters base + golden, base + 2 golden, ...
    cdef unsigned long long golden = 0x9E3779B97F4A7C15ULL
    cdef unsigned long long bits
    cdef Py_ssize_t f = 0, j, layer
    cdef double x
    cdef double signed_scale[2]
    cdef double value[8]
    cdef unsigned long long bits8[8]
    cdef unsigned missed
    signed_scale[0] = scale
    signed_scale[1] = -scale
    if FR_FILL_SIMD:  # 8 draws at a time, the misses finished one by one
        while f + 8 <= k:
            missed = fr_fast_draws8(base + <unsigned long long> (f + 1) * golden, edges, widths,
                                    scale, value, bits8)
            for j in range(8):
                if missed & (1u << j):
                    x = slow_draw(bits8[j], edges, widths, heights)
                    value[j] = x * signed_scale[(bits8[j] >> 8) & 1]
                out[f + j] = <floating> value[j]
            f = f + 8
    for f in range(f, k):
        bits = mix64(base + <unsigned long long> (f + 1) * golden)
        layer = <Py_ssize_t> (bits & 255)
        x = <double> <long long> (bits >> 12) * widths[layer]
        if not x < edges[layer + 1]:
            x = slow_draw(bits, edges, widths, heights)
        out[f] = <floating> (x * signed_scale[(bits >> 8) & 1])  # a lookup, not a branch


def normal_fill(floating[:, ::1] out, Py_ssize_t k, unsigned long long seed, double scale,
                const double[::1] edges, const double[::1] widths, const double[::1] heights):
    """``out[:, :k] = scale * N(0, 1)`` draws; columns ``k:`` untouched.

    Marsaglia & Tsang's 256-layer ziggurat on counter-based SplitMix64 bits;
    see ``kernels/numba/sgd.py`` for the tables, the bit layout and how each
    draw gets its bits. Every draw depends only on the seed and its position,
    so rows are filled in parallel; the same seed gives the same numbers in
    both backends, for any thread count. AVX-512 builds run the fast test of 8
    draws at a time with explicit gathers (``fr_fast_draws8``); a version left
    to GCC's vectoriser used scalar table lookups and ran 1.3x slower than the
    plain loop.
    """
    cdef unsigned long long golden = 0x9E3779B97F4A7C15ULL
    cdef Py_ssize_t row
    if out.shape[0] == 0 or k <= 0:
        return
    with nogil:
        for row in prange(out.shape[0], schedule="static"):
            # draw j = row k + f uses the counter j + 1: bits = mix64(seed + (j + 1) golden)
            fill_row(&out[row, 0], k, seed + <unsigned long long> (row * k) * golden, scale,
                     &edges[0], &widths[0], &heights[0])


# ------------------------------------------------------------ training layout
# Entries in a block of rows of relabel_rows (same as kernels/numba/sgd.py).
cdef enum:
    ROW_BLOCK_ENTRIES = 32768


cdef void _relabel(const long long[::1] indptr, const int[::1] indices,
                   const floating[::1] data, const int[::1] label,
                   const int[::1] block_of_label, int[::1] out_labels,
                   floating[::1] out_data, long long[:, ::1] block_ptr,
                   long long[::1] label_start, int[::1] scratch_rows,
                   floating[::1] scratch_data) noexcept nogil:
    cdef Py_ssize_t n_rows = indptr.shape[0] - 1, n_cols = label.shape[0]
    cdef Py_ssize_t n_blocks = block_ptr.shape[1] - 1
    cdef Py_ssize_t u, r0, r1, pos, q, dest, base, stop, start, end, b, bb, d
    cdef Py_ssize_t max_rows, n_lo, n_digits
    cdef long long lo_at, hi_at, count
    cdef int bits = 0, lo_bits, lo_mask, label_mask, lab, key
    while (<Py_ssize_t> 1 << bits) < n_cols:
        bits += 1
    label_mask = <int> ((1LL << bits) - 1)
    lo_bits = (bits + 1) // 2
    lo_mask = (1 << lo_bits) - 1
    n_lo = 1 << lo_bits
    n_digits = n_lo + (1 << (bits - lo_bits))  # <= n_cols + 1: both tables fit label_start
    max_rows = (<Py_ssize_t> 1) << (31 - bits)  # row_in_block << bits | label fits in int32
    r0 = 0
    while r0 < n_rows:
        base = indptr[r0]
        r1 = r0 + 1
        while (r1 < n_rows and r1 - r0 < max_rows
               and indptr[r1 + 1] - base <= ROW_BLOCK_ENTRIES):
            r1 += 1
        stop = indptr[r1]
        if stop > base:  # (n_cols == 0 leaves only empty rows: label_start unused)
            # 1. keys, and counts of the low (label_start[:n_lo]) and high digits
            for d in range(n_digits):
                label_start[d] = 0
            for u in range(r0, r1):
                key = <int> ((<long long> (u - r0)) << bits)
                for pos in range(indptr[u], indptr[u + 1]):
                    lab = label[indices[pos]]
                    scratch_rows[pos] = key | lab
                    label_start[lab & lo_mask] += 1
                    label_start[n_lo + (lab >> lo_bits)] += 1
            lo_at = base  # exclusive prefix sums: each digit's first slot
            hi_at = base
            for d in range(n_lo):
                count = label_start[d]
                label_start[d] = lo_at
                lo_at += count
            for d in range(n_lo, n_digits):
                count = label_start[d]
                label_start[d] = hi_at
                hi_at += count
            # 2. stable by low digit, then by high digit: label order
            for pos in range(base, stop):
                key = scratch_rows[pos]
                d = key & lo_mask
                q = label_start[d]
                label_start[d] = q + 1
                out_labels[q] = key
                out_data[q] = data[pos]
            for pos in range(base, stop):
                key = out_labels[pos]
                d = n_lo + ((key & label_mask) >> lo_bits)
                q = label_start[d]
                label_start[d] = q + 1
                scratch_rows[q] = key
                scratch_data[q] = out_data[pos]
            # 3. label order -> each row's next free slot
            for u in range(r0, r1):
                block_ptr[u, 0] = indptr[u]
            for q in range(base, stop):
                key = scratch_rows[q]
                u = r0 + (key >> bits)
                dest = block_ptr[u, 0]
                block_ptr[u, 0] = dest + 1
                out_labels[dest] = key & label_mask
                out_data[dest] = scratch_data[q]
        # 4. block boundaries of every (now sorted) row
        for u in range(r0, r1):
            start = indptr[u]
            end = indptr[u + 1]
            block_ptr[u, 0] = start
            b = 0
            if n_blocks > 1:
                for pos in range(start, end):
                    bb = block_of_label[out_labels[pos]]
                    while b < bb:  # blocks b..bb-1 end here
                        b += 1
                        block_ptr[u, b] = pos
            while b < n_blocks:
                b += 1
                block_ptr[u, b] = end
        r0 = r1

def relabel_rows(const long long[::1] indptr, const int[::1] indices,
                 const floating[::1] data, const int[::1] label,
                 const int[::1] block_of_label, int[::1] out_labels,
                 floating[::1] out_data, long long[:, ::1] block_ptr,
                 long long[::1] label_start, int[::1] scratch_rows,
                 floating[::1] scratch_data):
    """Relabel the columns of a CSR matrix, sort every row by new label, cut it into blocks.

    The SGD training layout: the entry ``(u, c)`` becomes ``(u, label[c])``,
    each row lists its entries by ascending new label, and the labels are cut
    into ``n_blocks`` contiguous ranges (``block_of_label``), so a row's
    entries of one block form a contiguous run.

    Serial (memory bound), without the GIL: O(nnz + n_rows * n_blocks), plus
    O(sqrt(n_cols)) per block of rows. The rows are taken in blocks of about
    ``ROW_BLOCK_ENTRIES`` entries (fewer rows where ``row_in_block << bits |
    label`` would not fit in int32, ``bits`` being the bit length of
    ``n_cols - 1``), and each block's entries are sorted by (row, label) with
    an LSD radix sort (the input is already in row order):

    1. write every entry's key to ``scratch_rows`` and count the low and the
       high digit of its label (``ceil(bits / 2)`` and ``floor(bits / 2)``
       bits, both tables in ``label_start``);
    2. stable counting sort by the low digit (into ``out_labels``/``out_data``),
       then by the high digit (back into ``scratch_rows``/``scratch_data``):
       the block's entries are now in label order;
    3. walk them in that order and append each to its row's next free slot
       (the cursors live in ``block_ptr[:, 0]`` meanwhile): rows come out
       sorted by label;
    4. walk every sorted row once and write its block boundaries.

    Parameters
    ----------
    indptr : (n_rows + 1,) int64, valid CSR row pointer (``indptr[0] == 0``,
        non-decreasing, ``indptr[-1] == nnz``)
    indices : (nnz,) int32, columns in ``[0, n_cols)``, sorted and unique within a row
    data : (nnz,) float32/float64
    label : (n_cols,) int32, a permutation of ``0..n_cols-1``: new label of every column
    block_of_label : (n_cols,) int32, non-decreasing, in ``[0, n_blocks)``
    out_labels : (nnz,) int32, written: the new labels, ascending within every row
    out_data : (nnz,) same dtype as ``data``, written: the matching values
    block_ptr : (n_rows, n_blocks + 1) int64, C order, ``n_blocks >= 1``, written:
        ``block_ptr[u, 0] = indptr[u]`` and ``block_ptr[u, b + 1] - block_ptr[u, b]``
        is the number of row ``u``'s entries whose label is in block ``b``
        (so ``block_ptr[u, n_blocks] = indptr[u + 1]``)
    label_start : (n_cols + 1,) int64, scratch (overwritten)
    scratch_rows : (nnz,) int32, scratch (overwritten)
    scratch_data : (nnz,) same dtype as ``data``, scratch (overwritten)

    Only the shapes are checked here (``ValueError``); the contents (a valid
    row pointer, columns in range, a permutation, blocks in range and
    non-decreasing) are the caller's to guarantee: bounds checks are off.

    Notes
    -----
    NumPy/SciPy equivalent::

        ordered = sp.csr_matrix((data, label[indices], indptr), (n_rows, n_cols)).tocsc().tocsr()
        out_labels, out_data = ordered.indices, ordered.data
        rows = np.repeat(np.arange(n_rows), np.diff(indptr))
        counts = np.bincount(rows * n_blocks + block_of_label[out_labels],
                             minlength=n_rows * n_blocks).reshape(n_rows, n_blocks)
        block_ptr[:, 0] = indptr[:-1]
        block_ptr[:, 1:] = indptr[:-1, None] + counts.cumsum(axis=1)

    Degenerate cases: an empty row gets ``block_ptr[u, :] = indptr[u]`` and
    writes nothing else; ``nnz == 0`` writes only ``block_ptr`` (every row
    empty); ``n_rows == 0`` writes nothing. Equal labels cannot occur (a
    permutation), so the order within a row is fully determined.
    """
    cdef Py_ssize_t n_rows = indptr.shape[0] - 1, n_cols = label.shape[0]
    cdef Py_ssize_t nnz = indices.shape[0]
    if (n_rows < 0 or block_ptr.shape[1] < 2 or block_ptr.shape[0] != n_rows
            or block_of_label.shape[0] != n_cols or label_start.shape[0] != n_cols + 1
            or data.shape[0] != nnz or out_labels.shape[0] != nnz
            or out_data.shape[0] != nnz or scratch_rows.shape[0] != nnz
            or scratch_data.shape[0] != nnz):
        raise ValueError("relabel_rows: array shapes do not agree")
    with nogil:
        _relabel(indptr, indices, data, label, block_of_label, out_labels, out_data,
                 block_ptr, label_start, scratch_rows, scratch_data)
