# cython: language_level=3
"""Hogwild SGD for biased matrix factorisation (twin of ``numba/sgd.py``).

See ``kernels/numba/sgd.py`` for the model, the update rule, the schedule and
the (documented, permitted) Hogwild race on item rows. Both twins use the same
eight-lane dot product so that one-thread runs agree bit for bit.
"""

from cython cimport floating
from cython.parallel cimport prange

cdef extern from *:
    """
    /* 256-bit vectors for this module: with 512-bit stores in the update and
       256-bit loads in the next dot product, store forwarding fails and k=128
       ran 3x slower (measured with GCC 12 on a Sapphire Rapids core). */
    #if defined(__GNUC__) && !defined(__clang__) && defined(__AVX512F__)
    #pragma GCC target("prefer-vector-width=256")
    #endif
    """


cdef inline floating dot8(const floating* p, const floating* q, Py_ssize_t k) noexcept nogil:
    # s = p[:k] * q[:k] summed in lanes f % 8, lanes combined as a fixed tree
    cdef floating s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0
    cdef Py_ssize_t k8 = k - k % 8, f, rest
    for f in range(0, k8, 8):
        s0 = s0 + p[f] * q[f]
        s1 = s1 + p[f + 1] * q[f + 1]
        s2 = s2 + p[f + 2] * q[f + 2]
        s3 = s3 + p[f + 3] * q[f + 3]
        s4 = s4 + p[f + 4] * q[f + 4]
        s5 = s5 + p[f + 5] * q[f + 5]
        s6 = s6 + p[f + 6] * q[f + 6]
        s7 = s7 + p[f + 7] * q[f + 7]
    rest = k - k8
    if rest > 0:
        s0 = s0 + p[k8] * q[k8]
    if rest > 1:
        s1 = s1 + p[k8 + 1] * q[k8 + 1]
    if rest > 2:
        s2 = s2 + p[k8 + 2] * q[k8 + 2]
    if rest > 3:
        s3 = s3 + p[k8 + 3] * q[k8 + 3]
    if rest > 4:
        s4 = s4 + p[k8 + 4] * q[k8 + 4]
    if rest > 5:
        s5 = s5 + p[k8 + 5] * q[k8 + 5]
    if rest > 6:
        s6 = s6 + p[k8 + 6] * q[k8 + 6]
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


cdef inline floating sgd_step(floating* p, floating* q, floating* user_bias,
                              floating* item_bias, floating rating, floating mu, floating lr,
                              floating shrink, bint use_bias, Py_ssize_t k) noexcept nogil:
    # one update for one rating; returns its error (taken before the update)
    cdef floating err, step, bu, bi, pf, qf
    cdef Py_ssize_t f
    err = rating - (((mu + user_bias[0]) + item_bias[0]) + dot8(p, q, k))
    step = lr * err
    if use_bias:
        bu = user_bias[0]
        bi = item_bias[0]
        user_bias[0] = bu + (step - shrink * bu)
        item_bias[0] = bi + (step - shrink * bi)
    # p += lr (err q - reg p), q += lr (err p_old - reg q)
    for f in range(k):
        pf = p[f]
        qf = q[f]
        p[f] = pf + (step * qf - shrink * pf)
        q[f] = qf + (step * pf - shrink * qf)
    return err


def sgd_epoch(const long long[:, ::1] block_ptr, const int[::1] indices,
              const floating[::1] ratings, const int[::1] user_order,
              const long long[::1] chunk_bounds, const int[::1] block_order,
              double global_mean, double learning_rate, double regularization, bint use_bias,
              floating[:, ::1] user_factors, floating[:, ::1] item_factors,
              floating[::1] user_bias, floating[::1] item_bias, double[::1] chunk_loss):
    """One Hogwild SGD pass over all ratings, updating the factors in place.

    See ``kernels/numba/sgd.py`` for the parameters and the visiting order
    (user chunks x item blocks, users in pairs with their ratings interleaved).
    The scalars are rounded to the factors' dtype before use, as the Python
    wrapper does for Numba.
    """
    cdef Py_ssize_t n_chunks = chunk_bounds.shape[0] - 1
    cdef Py_ssize_t n_blocks = block_order.shape[0]
    cdef Py_ssize_t k = user_factors.shape[1]
    cdef Py_ssize_t c, s, blk, pos, end, ea, ea_end, eb, eb_end
    cdef int a, b, i
    cdef floating mu = <floating> global_mean
    cdef floating lr = <floating> learning_rate
    cdef floating reg = <floating> regularization
    cdef floating shrink = lr * reg
    cdef floating err
    cdef double loss
    with nogil:
        for c in prange(n_chunks, schedule="dynamic", chunksize=1):
            loss = 0.0
            end = chunk_bounds[c + 1]
            for s in range(n_blocks):
                blk = block_order[(c + s) % n_blocks]
                pos = chunk_bounds[c]
                while pos < end:
                    a = user_order[pos]
                    ea = block_ptr[a, blk]
                    ea_end = block_ptr[a, blk + 1]
                    if pos + 1 < end:
                        b = user_order[pos + 1]
                        eb = block_ptr[b, blk]
                        eb_end = block_ptr[b, blk + 1]
                    else:
                        b = a
                        eb = 0
                        eb_end = 0
                    while ea < ea_end or eb < eb_end:
                        if ea < ea_end:
                            i = indices[ea]
                            err = sgd_step(&user_factors[a, 0], &item_factors[i, 0],
                                           &user_bias[a], &item_bias[i], ratings[ea], mu, lr,
                                           shrink, use_bias, k)
                            loss = loss + err * err
                            ea = ea + 1
                        if eb < eb_end:
                            i = indices[eb]
                            err = sgd_step(&user_factors[b, 0], &item_factors[i, 0],
                                           &user_bias[b], &item_bias[i], ratings[eb], mu, lr,
                                           shrink, use_bias, k)
                            loss = loss + err * err
                            eb = eb + 1
                    pos = pos + 2
            chunk_loss[c] = loss
