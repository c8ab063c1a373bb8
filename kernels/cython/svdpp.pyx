# cython: language_level=3
"""SVD++ epochs by SGD, parallel over users (twin of ``kernels/numba/svdpp.py``).

See ``kernels/numba/svdpp.py`` for the model (Koren, KDD 2008), Surprise's
update rule, the incremental schedule of the implicit sum (``z_u`` kept up to
date rating by rating, the ``y_j`` written in one batch per user, exactly the
per-rating rule in exact arithmetic), the visiting order and the Hogwild race
on the item rows (``q_i``, ``b_i``, ``y_j``). Scratch memory is allocated
once per thread.
"""

from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport sqrt
from libc.stdlib cimport free, malloc
from libc.string cimport memset


cdef double _user_pass(int u, Py_ssize_t start, Py_ssize_t end, const int* items,
                       const floating* ratings, floating mu, floating lr, floating reg,
                       floating* P, floating* Q, floating* Yimp, floating* bu, floating* bi,
                       int k, floating* z, floating* G) noexcept nogil:
    """The ratings of user ``u`` (positions ``start:end``), then its y_j batch."""
    cdef Py_ssize_t pos
    cdef int f, i
    cdef floating inv_sqrt = 1 / <floating>sqrt(<floating>(end - start))
    cdef floating decay = 1 - lr * reg
    cdef floating decay_t = 1
    cdef floating dot, err, step, pf, qf, scale
    cdef floating* p = P + <Py_ssize_t>u * k
    cdef floating* q
    cdef floating* y
    cdef double loss = 0.0
    # z = |N(u)|^-1/2 * Yimp[N(u)].sum(axis=0)
    memset(z, 0, k * sizeof(floating))
    for pos in range(start, end):
        y = Yimp + <Py_ssize_t>items[pos] * k
        for f in range(k):
            z[f] = z[f] + y[f]
    for f in range(k):
        z[f] = z[f] * inv_sqrt
    memset(G, 0, k * sizeof(floating))
    for pos in range(start, end):
        i = items[pos]
        q = Q + <Py_ssize_t>i * k
        # dot = q_i @ (p_u + z_u)
        dot = 0
        for f in range(k):
            dot = dot + q[f] * (p[f] + z[f])
        err = ratings[pos] - (mu + bu[u] + bi[i] + dot)
        loss = loss + <double>err * <double>err
        bu[u] = bu[u] + lr * (err - reg * bu[u])
        bi[i] = bi[i] + lr * (err - reg * bi[i])
        step = lr * err
        for f in range(k):
            pf = p[f]
            qf = q[f]
            p[f] = pf + lr * (err * qf - reg * pf)
            q[f] = qf + lr * (err * (pf + z[f]) - reg * qf)
            G[f] = decay * G[f] + err * qf
            z[f] = decay * z[f] + step * qf
        decay_t = decay_t * decay
    # y_j = d^n y_j + lr / sqrt(n) * G for every j in N(u)
    scale = lr * inv_sqrt
    for pos in range(start, end):
        y = Yimp + <Py_ssize_t>items[pos] * k
        for f in range(k):
            y[f] = decay_t * y[f] + scale * G[f]
    return loss


def svdpp_epoch(const long long[::1] indptr, const int[::1] items,
                const floating[::1] ratings, const int[::1] user_order,
                const long long[::1] chunk_bounds, double intercept, double learning_rate,
                double regularization, floating[:, ::1] user_factors,
                floating[:, ::1] item_factors, floating[:, ::1] implicit_factors,
                floating[::1] user_bias, floating[::1] item_bias, double[::1] chunk_loss):
    """One SVD++ epoch in place.

    See ``kernels/numba/svdpp.py`` (``svdpp_epoch``) for the parameters.
    """
    cdef Py_ssize_t n_chunks = chunk_bounds.shape[0] - 1, c, t
    cdef int k = <int>user_factors.shape[1], u
    cdef floating mu = <floating>intercept
    cdef floating lr = <floating>learning_rate
    cdef floating reg = <floating>regularization
    cdef floating* scratch
    cdef double total
    if n_chunks <= 0 or items.shape[0] == 0:
        for c in range(n_chunks):
            chunk_loss[c] = 0.0
        return
    with nogil, parallel():
        scratch = <floating*>malloc(2 * (k + 1) * sizeof(floating))
        for c in prange(n_chunks, schedule="dynamic", chunksize=1):
            total = 0.0
            for t in range(chunk_bounds[c], chunk_bounds[c + 1]):
                u = user_order[t]
                if indptr[u] == indptr[u + 1]:
                    continue
                total = total + _user_pass(
                    u, indptr[u], indptr[u + 1], &items[0], &ratings[0], mu, lr, reg,
                    &user_factors[0, 0], &item_factors[0, 0], &implicit_factors[0, 0],
                    &user_bias[0], &item_bias[0], k, scratch, scratch + k)
            chunk_loss[c] = total
        free(scratch)
