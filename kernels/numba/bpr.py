"""Bayesian personalised ranking by Hogwild SGD (twin of ``cython/bpr.pyx``).

BPR (Rendle, Freudenthaler, Gantner & Schmidt-Thieme, "BPR: Bayesian
personalized ranking from implicit feedback", UAI 2009, section 4 and
algorithm 1, LearnBPR) scores ``x_ui = p_u . q_i + b_i`` and, for a triple of
a user ``u``, an item ``i`` the user interacted with and an item ``j`` the
user did not, takes one stochastic gradient step on
``ln sigma(x_ui - x_uj) - reg (|p_u|^2 + |q_i|^2 + |q_j|^2 + b_i^2 + b_j^2)``
(ascent; constants of 2 folded into ``reg``). With ``x = x_ui - x_uj`` and
``z = 1 / (1 + exp(x)) = sigma(-x)``, every value updated from its old value:

    p_u += lr * (z * (q_i - q_j) - reg * p_u)
    q_i += lr * (z * p_u - reg * q_i)            b_i += lr * (z - reg * b_i)
    q_j += lr * (-z * p_u - reg * q_j)           b_j += lr * (-z - reg * b_j)

Sampling (bootstrap, as LearnBPR): sample ``s`` of epoch ``e`` draws its
random bits from a counter-based generator, so they depend on ``(seed, e, s)``
only, never on the thread that runs the sample:

    epoch_key  = mix64(seed + (e + 1) * G)              (SplitMix64, G the golden gamma)
    sample_key = mix64(epoch_key + (s + 1) * G)
    draw t     = mix64(sample_key + t * G),  t = 1, 2, ...

(``mix64`` is SplitMix64's output function, Steele, Lea & Flood, OOPSLA 2014.)
Draw 1 picks the positive: a stored position ``pos`` uniform over the ``nnz``
entries (so a user is picked in proportion to their interactions), ``(u, i)`` =
``(pairs[pos] >> 32, pairs[pos] & 0x7FFFFFFF)``. Draws 2, 3, ... pick the negative ``j``:
uniform over the items, or, with ``popular_negatives``, ``indices`` at a
uniform position (an item in proportion to its interactions). A ``j`` that the
user interacted with (binary search in the user's sorted row) is drawn again,
at most ``MAX_NEGATIVE_DRAWS`` times; then the sample is skipped (counted).
A draw becomes an index as ``min(floor((bits >> 11) * 2**-53 * n), n - 1)``.

Parallelism: the samples ``[0, n_samples)`` are cut into contiguous parts
(``part_bounds``) and each part is run in order by one thread. Threads update
the shared factors without locks (Hogwild: Niu, Recht, Re & Wright, NIPS
2011): a user or item row may be written by two threads at once. This is the
permitted race: with one part (or one thread) a seeded run is deterministic;
with several threads the same samples are drawn, but the order in which their
updates land on shared rows varies with the timing, so the result varies
from run to run (statistically the same).

The dot product and the updates run over the whole row width (the model pads
rows with zeros to whole cache lines; a zero column stays zero). The loop
prefetches the rows of the sample ``LOOKAHEAD`` ahead (and the stored entry
of the sample ``2 * LOOKAHEAD`` ahead): with random rows every sample would
otherwise wait for main memory several times. Prefetching changes no result.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.arrayobj import make_array

from ._config import jit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53

#: Draws of a negative item per sample before the sample is skipped.
MAX_NEGATIVE_DRAWS = 8
#: How many samples ahead the rows are prefetched.
LOOKAHEAD = 8


@intrinsic
def _prefetch(typingctx, array, offset):
    """Hint the cache line of ``array.flat[offset]`` into the caches (``llvm.prefetch``).

    A hint only: no fault for any address, no effect on results. ``offset``
    is an element offset into the array's data (no bounds check).
    """

    def codegen(context, builder, signature, args):
        arr, off = args
        data = make_array(signature.args[0])(context, builder, arr).data
        addr = builder.gep(data, [off])
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
            "llvm.prefetch.p0",
        )
        # write intent (1), keep in all levels (3), data cache (1)
        builder.call(fn, [builder.bitcast(addr, i8p), i32(1), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(array, offset), codegen


@jit
def _prefetch_row(array, start, length):
    """Prefetch every cache line of ``array.flat[start:start + length]``."""
    step = 64 // array.itemsize
    for off in range(0, length, step):
        _prefetch(array, start + off)


@jit
def _mix64(z):
    """SplitMix64's output function: 64 well-mixed bits from a counter value."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@jit
def _epoch_key(seed, epoch):
    """``mix64(seed + (epoch + 1) * G)``: the key of one epoch's samples."""
    return _mix64(np.uint64(seed) + np.uint64(epoch + 1) * _GOLDEN)


@jit
def _sample_key(key, s):
    """``mix64(epoch_key + (s + 1) * G)``: the key of sample ``s``."""
    return _mix64(key + np.uint64(s + 1) * _GOLDEN)


@jit
def _uniform_index(bits, n):
    """An index in ``[0, n)`` from 64 random bits (53 of them used)."""
    idx = np.int64(np.float64(bits >> np.uint64(11)) * _TO_UNIT * np.float64(n))
    return min(idx, n - 1)


@jit
def _draw(key, t):
    """Draw ``t`` (1, 2, ...) of a sample: ``mix64(sample_key + t * G)``."""
    return _mix64(key + np.uint64(t) * _GOLDEN)


@jit
def _has_item(indptr, indices, u, j):
    """Whether user ``u``'s sorted row holds item ``j`` (binary search)."""
    lo = indptr[u]
    hi = indptr[u + 1]
    while lo < hi:
        mid = (lo + hi) >> 1
        v = indices[mid]
        if v == j:
            return True
        if v < j:
            lo = mid + 1
        else:
            hi = mid
    return False


@jit
def _draw_triple(indptr, indices, pairs, n_items, popular_negatives, key):
    """``(u, i, j)`` of the sample with key ``key``; ``j = -1`` when skipped."""
    nnz = indices.shape[0]
    pos = _uniform_index(_draw(key, 1), nnz)
    u = np.int32(pairs[pos] >> 32)
    i = np.int32(pairs[pos] & 0x7FFFFFFF)
    for t in range(2, 2 + MAX_NEGATIVE_DRAWS):
        bits = _draw(key, t)
        if popular_negatives:
            j = indices[_uniform_index(bits, nnz)]
        else:
            j = np.int32(_uniform_index(bits, n_items))
        if not _has_item(indptr, indices, u, j):
            return u, i, j
    return u, i, np.int32(-1)


@jit
def _softplus(x):
    """``log(1 + exp(x))`` without overflow."""
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


@jit
def _bpr_step(P, Q, item_bias, u, i, j, lr, reg):
    """One update for the triple ``(u, i, j)``; returns ``x = x_ui - x_uj`` before it."""
    k = P.shape[1]
    x = item_bias[i] - item_bias[j]
    for f in range(k):  # x += p_u . (q_i - q_j)
        x += P[u, f] * (Q[i, f] - Q[j, f])
    z = 1.0 / (1.0 + math.exp(x))  # sigma(-x), in float64
    zc = P.dtype.type(z)
    for f in range(k):
        pf = P[u, f]
        qi = Q[i, f]
        qj = Q[j, f]
        P[u, f] = pf + lr * (zc * (qi - qj) - reg * pf)
        Q[i, f] = qi + lr * (zc * pf - reg * qi)
        Q[j, f] = qj + lr * (-zc * pf - reg * qj)
    bi = item_bias[i]
    bj = item_bias[j]
    item_bias[i] = bi + lr * (zc - reg * bi)
    item_bias[j] = bj + lr * (-zc - reg * bj)
    return x


@jit
def _run_part(
    indptr, indices, pairs, key, first, end, learning_rate, regularization,
    popular_negatives, user_factors, item_factors, item_bias,
):  # fmt: skip
    """Samples ``first .. end - 1`` in order; returns ``(loss sum, skipped)``."""
    n_items = item_factors.shape[0]
    nnz = indices.shape[0]
    k = user_factors.shape[1]
    lr = user_factors.dtype.type(learning_rate)
    reg = user_factors.dtype.type(regularization)
    loss = 0.0
    skipped = 0
    for s in range(first, end):
        ahead = s + 2 * LOOKAHEAD
        if ahead < end:  # the stored entry of a later sample
            pos = _uniform_index(_draw(_sample_key(key, ahead), 1), nnz)
            _prefetch(pairs, pos)
        ahead = s + LOOKAHEAD
        if ahead < end:  # the rows of a nearer one (its entry was prefetched before)
            akey = _sample_key(key, ahead)
            pos = _uniform_index(_draw(akey, 1), nnz)
            au = pairs[pos] >> 32
            _prefetch_row(user_factors, au * k, k)
            _prefetch_row(item_factors, (pairs[pos] & 0x7FFFFFFF) * k, k)
            bits = _draw(akey, 2)
            if popular_negatives:
                aj = indices[_uniform_index(bits, nnz)]
            else:
                aj = _uniform_index(bits, n_items)
            _prefetch_row(item_factors, aj * k, k)
            # the first probes of the binary search for the negative in the user's row
            lo = indptr[au]
            width = indptr[au + 1] - lo
            _prefetch(indices, lo + (width >> 1))
            _prefetch(indices, lo + (width >> 2))
            _prefetch(indices, lo + ((3 * width) >> 2))
        u, i, j = _draw_triple(
            indptr, indices, pairs, n_items, popular_negatives, _sample_key(key, s)
        )
        if j < 0:
            skipped += 1
            continue
        x = _bpr_step(user_factors, item_factors, item_bias, u, i, j, lr, reg)
        loss += _softplus(-np.float64(x))
    return loss, skipped


@jit(parallel=True)
def bpr_epoch(
    indptr,
    indices,
    pairs,
    seed,
    epoch,
    part_bounds,
    learning_rate,
    regularization,
    popular_negatives,
    user_factors,
    item_factors,
    item_bias,
    part_loss,
    part_skipped,
):
    """One epoch of BPR samples, updating the factors in place (Hogwild).

    Parameters
    ----------
    indptr : (n_users + 1,) int64
        CSR row pointer of the training interactions.
    indices : (nnz,) int32
        Item of every stored entry, each row sorted ascending, no repeats.
    pairs : (nnz,) int64
        ``(user << 32) | item`` of every stored entry (one load per positive).
    seed : uint64
        Key of the generator (see the module docstring).
    epoch : int64 >= 0
        Epoch number (keys this epoch's samples).
    part_bounds : (n_parts + 1,) int64, ascending, ``part_bounds[0] = 0``
        Part ``p`` is samples ``part_bounds[p] .. part_bounds[p + 1] - 1``, run
        in order by one thread; ``part_bounds[-1]`` samples in all.
    learning_rate, regularization : float
        Step size and L2 weight (rounded to the factors' dtype).
    popular_negatives : bool
        Negatives in proportion to their interactions instead of uniform.
    user_factors : (n_users, k) float32/float64, C order, updated
    item_factors : (n_items, k) same dtype, updated
    item_bias : (n_items,) same dtype, updated
    part_loss : (n_parts,) float64, written
        Sum over part ``p``'s samples of ``-ln sigma(x_ui - x_uj)``, each
        taken just before its update.
    part_skipped : (n_parts,) int64, written
        Samples of part ``p`` skipped for want of a negative item.

    Notes
    -----
    Empty data (``nnz == 0``) or no samples: nothing is done. Non-finite
    values are not checked here; the caller inspects ``part_loss``.
    The race between parts is the Hogwild race described in the module doc.
    """
    n_parts = part_bounds.shape[0] - 1
    key = _epoch_key(seed, epoch)
    for p in prange(n_parts):
        part_loss[p] = 0.0
        part_skipped[p] = 0
        if indices.shape[0] > 0:
            loss, skipped = _run_part(
                indptr, indices, pairs, key, part_bounds[p], part_bounds[p + 1], learning_rate,
                regularization, popular_negatives, user_factors, item_factors, item_bias,
            )  # fmt: skip
            part_loss[p] = loss
            part_skipped[p] = skipped


@jit(parallel=True)
def bpr_triples(indptr, indices, pairs, n_items, seed, epoch, first, popular_negatives, out):
    """The triples samples ``first .. first + len(out) - 1`` of an epoch draw.

    ``out`` (m, 3) int32 gets ``(u, i, j)`` per sample (``j = -1``: skipped),
    exactly as :func:`bpr_epoch` draws them. For tests and inspection.
    """
    key = _epoch_key(seed, epoch)
    for r in prange(out.shape[0]):
        u, i, j = _draw_triple(
            indptr, indices, pairs, n_items, popular_negatives, _sample_key(key, first + r)
        )
        out[r, 0] = u
        out[r, 1] = i
        out[r, 2] = j
