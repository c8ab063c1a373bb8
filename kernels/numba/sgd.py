"""Hogwild SGD for biased matrix factorisation (twin of ``cython/sgd.pyx``).

One call of :func:`sgd_epoch` is one pass over every training rating. The model
(Koren, Bell & Volinsky, "Matrix factorization techniques for recommender
systems", IEEE Computer 2009, eq. 5; Funk's SGD as in Surprise's ``SVD``) is

    r_hat(u, i) = mu + b_u + b_i + p_u . q_i

and each rating (u, i, r) takes one stochastic gradient step on
``(r - r_hat)^2 + reg * (|p_u|^2 + |q_i|^2 + b_u^2 + b_i^2)`` (constants of 2
folded into the learning rate), all factors updated from their old values:

    err  = r - r_hat
    b_u += lr * (err - reg * b_u)                 b_i += lr * (err - reg * b_i)
    p_u += lr * (err * q_i - reg * p_u)           q_i += lr * (err * p_u - reg * q_i)

computed as ``x += (step * y - shrink * x)`` with ``step = lr * err`` and
``shrink = lr * reg`` (the same numbers, rounded differently; this form
vectorises well, where the textbook form ran 3x slower in Numba).

Parallelism is Hogwild (Niu, Recht, Re & Wright, NIPS 2011): threads update the
shared item rows without locks. The schedule is a lock-free version of the
block schedules of DSGD (Gemulla et al., KDD 2011) and LIBMF (Chin et al., ACM
TIST 2015, section 4), chosen for the caches:

- the users are a permutation cut into contiguous chunks; a chunk is run by
  one thread, so a user row is written by one thread only;
- the items are cut into ``n_blocks`` blocks (the caller relabels the items at
  random and sorts every row by label, so a user's ratings of one block are a
  contiguous run of its row, between ``block_ptr[u, b]`` and
  ``block_ptr[u, b + 1]``); chunk ``c`` walks the blocks in the order
  ``block_order[(c + s) % n_blocks]``, s = 0, 1, ..., so the rows of one item
  block and of one user chunk are all it touches for a while (sized by the
  caller for the caches), and chunks running side by side mostly
  work in different item blocks;
- within (chunk, block), users are taken in pairs (order[p], order[p + 1]),
  ... and the ratings of a pair alternate a0, b0, a1, b1, ... until both runs
  are done (a last unpaired user runs alone): two independent dependency
  chains keep the core busy while one waits for its dot product.

Item rows and item biases are the only race (the one permitted in fastrec).
With one thread the result is a deterministic function of the inputs; with
more threads it is not.

The dot product is written with eight fixed partial sums (lane ``f % 8``),
combined as ``((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))``, in both
backends, so that both round identically and one-thread runs agree bit for bit
(the float64 NumPy oracle in ``tests/reference_sgd.py`` is compared within the
per-dtype tolerance: the kernels use fused multiply-adds).
"""

from __future__ import annotations

import numba
from numba import prange

from ._config import FASTMATH

# The project's flags minus "reassoc": without it LLVM keeps the written order
# of the eight-lane sums, so this kernel rounds exactly as the Cython twin (GCC
# does not reassociate without -ffast-math). The price: GCC vectorises the
# eight lanes, LLVM keeps them as eight scalar chains, so at small factor
# counts the Numba backend is slower than the Cython one (the default).
FASTMATH_ORDERED = FASTMATH - {"reassoc"}


def jit(func=None, *, parallel: bool = False):
    """``_config.jit`` with :data:`FASTMATH_ORDERED` (order-preserving arithmetic)."""
    deco = numba.njit(cache=True, nogil=True, fastmath=FASTMATH_ORDERED, parallel=parallel)
    if func is None:
        return deco
    return deco(func)


@jit
def dot8(P, u, Q, i, k, zero):
    """``P[u, :k] @ Q[i, :k]`` summed in eight lanes: lane j holds ``f % 8 == j``.

    NumPy equivalent: ``s = P[u, :k] * Q[i, :k]`` padded to a multiple of 8,
    reshaped to (-1, 8) and summed down the columns, then the eight lane sums
    added as ``((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))``. Rows are
    indexed in place (no views: a view costs a reference count per call).
    """
    s0 = zero
    s1 = zero
    s2 = zero
    s3 = zero
    s4 = zero
    s5 = zero
    s6 = zero
    s7 = zero
    k8 = k - k % 8
    for f in range(0, k8, 8):
        s0 += P[u, f] * Q[i, f]
        s1 += P[u, f + 1] * Q[i, f + 1]
        s2 += P[u, f + 2] * Q[i, f + 2]
        s3 += P[u, f + 3] * Q[i, f + 3]
        s4 += P[u, f + 4] * Q[i, f + 4]
        s5 += P[u, f + 5] * Q[i, f + 5]
        s6 += P[u, f + 6] * Q[i, f + 6]
        s7 += P[u, f + 7] * Q[i, f + 7]
    rest = k - k8
    if rest > 0:
        s0 += P[u, k8] * Q[i, k8]
    if rest > 1:
        s1 += P[u, k8 + 1] * Q[i, k8 + 1]
    if rest > 2:
        s2 += P[u, k8 + 2] * Q[i, k8 + 2]
    if rest > 3:
        s3 += P[u, k8 + 3] * Q[i, k8 + 3]
    if rest > 4:
        s4 += P[u, k8 + 4] * Q[i, k8 + 4]
    if rest > 5:
        s5 += P[u, k8 + 5] * Q[i, k8 + 5]
    if rest > 6:
        s6 += P[u, k8 + 6] * Q[i, k8 + 6]
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


@jit
def sgd_step(P, Q, user_bias, item_bias, u, i, rating, mu, lr, shrink, use_bias, k, zero):
    """One update for one rating of user ``u`` (row ``P[u]``) on item ``i`` (row ``Q[i]``).

    Returns the error ``r - r_hat`` taken before the update.
    """
    err = rating - (((mu + user_bias[u]) + item_bias[i]) + dot8(P, u, Q, i, k, zero))
    step = lr * err
    if use_bias:
        bu = user_bias[u]
        bi = item_bias[i]
        user_bias[u] = bu + (step - shrink * bu)
        item_bias[i] = bi + (step - shrink * bi)
    # p += lr (err q - reg p), q += lr (err p_old - reg q)
    for f in range(k):
        pf = P[u, f]
        qf = Q[i, f]
        P[u, f] = pf + (step * qf - shrink * pf)
        Q[i, f] = qf + (step * pf - shrink * qf)
    return err


@jit(parallel=True)
def sgd_epoch(
    block_ptr,
    indices,
    ratings,
    user_order,
    chunk_bounds,
    block_order,
    global_mean,
    learning_rate,
    regularization,
    use_bias,
    user_factors,
    item_factors,
    user_bias,
    item_bias,
    chunk_loss,
):
    """One Hogwild SGD pass over all ratings, updating the factors in place.

    Parameters
    ----------
    block_ptr : (n_users, n_blocks + 1) int64
        ``indices[block_ptr[u, b]:block_ptr[u, b + 1]]`` are the ratings of
        user ``u`` in item block ``b``, in visiting order; ``block_ptr[u, 0]``
        and ``block_ptr[u, n_blocks]`` are the CSR row bounds (with one block
        this is ``indptr[:-1]`` and ``indptr[1:]`` side by side).
    indices : (nnz,) int32
        Item of each rating.
    ratings : (nnz,) float32/float64 (the factors' dtype)
    user_order : (n_order,) int32
        Users in visiting order (normally a permutation of all users).
    chunk_bounds : (n_chunks + 1,) int64
        ``user_order[chunk_bounds[c]:chunk_bounds[c + 1]]`` is chunk ``c``, run
        by one thread; chunks run in parallel, in order when single-threaded.
    block_order : (n_blocks,) int32
        A permutation of the item blocks; chunk ``c`` visits
        ``block_order[(c + s) % n_blocks]`` for s = 0 .. n_blocks - 1.
    global_mean, learning_rate, regularization : scalar of the factors' dtype
        ``mu`` (0 for a model without biases), step size and L2 weight.
    use_bias : bool
        Update the biases; when False they are read (normally zeros) but not
        written.
    user_factors : (n_users, k) float32/float64, C order, updated
    item_factors : (n_items, k) same dtype, updated
    user_bias : (n_users,) same dtype, updated
    item_bias : (n_items,) same dtype, updated
    chunk_loss : (n_chunks,) float64, written
        Sum of squared errors of chunk ``c``, each error taken just before its
        update (the running training loss of the pass).

    Notes
    -----
    The visiting order is spelled out in the module docstring (and in
    ``tests/reference_sgd.visiting_order``). Lock-free: different threads may
    update the same item row at once (the Hogwild race); with more than one
    thread the result is not deterministic. A user with no ratings, or not in
    ``user_order``, is not touched. Non-finite values are not checked here;
    the caller inspects ``chunk_loss`` after the pass.
    """
    n_chunks = chunk_bounds.shape[0] - 1
    n_blocks = block_order.shape[0]
    k = user_factors.shape[1]
    zero = global_mean - global_mean
    lr = learning_rate
    shrink = learning_rate * regularization
    for c in prange(n_chunks):
        loss = 0.0
        end = chunk_bounds[c + 1]
        for s in range(n_blocks):
            blk = block_order[(c + s) % n_blocks]
            for pos in range(chunk_bounds[c], end, 2):
                a = user_order[pos]
                ea = block_ptr[a, blk]
                ea_end = block_ptr[a, blk + 1]
                b = a
                eb = 0
                eb_end = 0
                if pos + 1 < end:
                    b = user_order[pos + 1]
                    eb = block_ptr[b, blk]
                    eb_end = block_ptr[b, blk + 1]
                while ea < ea_end or eb < eb_end:
                    if ea < ea_end:
                        i = indices[ea]
                        err = sgd_step(
                            user_factors, item_factors, user_bias, item_bias, a, i,
                            ratings[ea], global_mean, lr, shrink, use_bias, k, zero,
                        )  # fmt: skip
                        loss += err * err
                        ea += 1
                    if eb < eb_end:
                        i = indices[eb]
                        err = sgd_step(
                            user_factors, item_factors, user_bias, item_bias, b, i,
                            ratings[eb], global_mean, lr, shrink, use_bias, k, zero,
                        )  # fmt: skip
                        loss += err * err
                        eb += 1
        chunk_loss[c] = loss
