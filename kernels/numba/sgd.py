"""Lock-free parallel SGD for biased matrix factorisation (twin of ``cython/sgd.pyx``).

One call of :func:`sgd_epoch` is one pass over every training rating;
:func:`sgd_epochs` runs several passes in one call (the same arithmetic, pass by
pass, without returning to Python in between). The model
(Koren, Bell & Volinsky, "Matrix factorization techniques for recommender
systems", IEEE Computer 2009, eq. 5; Funk's SGD as in Surprise's ``SVD``) is

    r_hat(u, i) = mu + b_u + b_i + p_u . q_i

and each rating (u, i, r) takes one stochastic gradient step on
``(r - r_hat)^2 + reg * (|p_u|^2 + |q_i|^2 + b_u^2 + b_i^2)`` (constants of 2
folded into the learning rate), all factors updated from their old values:

    err  = r - r_hat
    b_u += lr * (err - reg * b_u)                 b_i += lr * (err - reg * b_i)
    p_u += lr * (err * q_i - reg * p_u)           q_i += lr * (err * p_u - reg * q_i)

computed as ``x_new = (x - shrink * x) + step * y`` with ``step = lr * err``
and ``shrink = lr * reg`` for the factors (two fused multiply-adds per element,
and only one way for a compiler to contract them, so GCC and LLVM round
alike; the old ``x + (step * y - shrink * x)`` took three operations) and
``b + (step - shrink * b)`` for the biases.

Parallelism: threads update the shared factors without locks (Hogwild: Niu,
Recht, Re & Wright, NIPS 2011), in the block schedule of DSGD (Gemulla et al.,
KDD 2011) and LIBMF (Chin et al., ACM TIST 2015, section 4):

- the users are a permutation cut into contiguous chunks; a chunk is run by
  one thread at a time, so a user row is written by one thread only;
- the items are cut into ``n_blocks`` blocks (the caller relabels the items at
  random, stores the item rows in label order and sorts every row by label
  with :func:`relabel_rows`, at the end of this module, so
  a user's ratings of one block are a contiguous run of its row, between
  ``block_ptr[u, b]`` and ``block_ptr[u, b + 1]``, and one block's item rows
  and biases are contiguous in memory);
- a pass is ``n_blocks`` phases; in phase ``s`` chunk ``c`` works in the cell
  (c, ``block_order[(c + s) % n_blocks]``), the chunks of a phase in parallel,
  and the next phase starts when every cell of this one is done. The cells of
  all the phases form one queue, handed out in order (phase by phase, chunk
  by chunk) from an atomic counter; a thread runs the cell it took once the
  previous phase's cells are all done (counted per phase), so a phase waits
  for cells, never for threads: a thread that is descheduled (a shared or
  oversubscribed machine) delays nothing unless it holds a cell, and the
  running threads take the rest. A waiting thread spins about 50 us, then
  sleeps on the phase's counter (a Linux futex; elsewhere it keeps spinning)
  until the phase's last cell wakes it. With ``n_chunks <= n_blocks`` the cells of a phase share
  no user and no item: no two threads ever write the same row or bias, and
  the result does not depend on the thread count or the timing (the model
  uses a square grid with several threads). With more chunks than blocks,
  two cells of a phase may share item rows: the Hogwild race, the only one
  permitted in fastrec, and then a multi-threaded result is not
  deterministic;
- within a cell, two lanes walk the users' runs: lane a takes the chunk's
  first user with ratings in the block, lane b the next one; then the lanes
  alternate one rating at a time (a, b, a, b, ...), and a lane whose run is
  done takes the chunk's next user with ratings in the block at once (right
  after its last rating, before the other lane's turn). Two independent
  dependency chains keep the core busy while one waits for its dot product,
  and on skewed data a long run is overlapped with many short ones. Only the
  last run of a cell may run alone. (Three and four lanes were measured in
  the Cython twin on ml-latest-small at 100 factors: no faster.)

The dot product is summed in ``2 W`` lanes, ``W = 64 / itemsize`` (one cache
line: 16 float32 or 8 float64): lane ``j`` holds the products of the factors
``f`` with ``f % (2 W) == j`` in increasing ``f``, and the lanes are folded as
``s[j] += s[j + h]`` for ``h = W, W / 2, ..., 1``. In both backends, so that both
round identically and one-thread runs agree bit for bit (the float64 NumPy
oracle in ``tests/reference_sgd.py`` is compared within the per-dtype
tolerance: the kernels use fused multiply-adds). The lanes are independent
chains, so both twins sum two full 64-byte vectors per step without
reassociating (Cython with GCC vector types, Numba with an ``llvm.fma``
intrinsic on a stack scratch of constant length that LLVM keeps in registers);
the caller pads each row with zeros to whole cache lines (exact zeros change no
lane sum).
"""

from __future__ import annotations

import functools
import math
import platform
import sys

import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array

from ._config import jit

# Without "reassoc" (_config.FASTMATH_ORDERED) LLVM keeps the written order of
# the lane sums, so these kernels round exactly as the Cython twin.
_jit = functools.partial(jit, ordered=True)


@intrinsic
def _lane_count(typingctx, rows):
    """``2 W`` as a compile-time ``uint64`` constant, ``W = 64 / itemsize`` of ``rows``."""
    lanes = 2 * (64 // (rows.dtype.bitwidth // 8))

    def codegen(context, builder, signature, args):
        return context.get_constant(types.uint64, lanes)

    return types.uint64(rows), codegen


@intrinsic
def _lane_scratch(typingctx, rows):
    """A stack array of ``2 W`` elements of ``rows``' dtype, ``W = 64 / itemsize``.

    No heap allocation and no reference count; valid while the calling function
    runs. Its length is a compile-time constant, so the lane loops over it
    have constant trip counts.
    """
    dtype = rows.dtype
    lanes = 2 * (64 // (dtype.bitwidth // 8))
    scratch_type = types.Array(dtype, 1, "C")

    def codegen(context, builder, signature, args):
        data = cgutils.alloca_once(builder, context.get_data_type(dtype), size=lanes)
        scratch = make_array(scratch_type)(context, builder)
        intp = context.get_value_type(types.intp)
        itemsize = context.get_abi_sizeof(context.get_data_type(dtype))
        populate_array(
            scratch,
            data=data,
            shape=[intp(lanes)],
            strides=[intp(itemsize)],
            itemsize=intp(itemsize),
            meminfo=None,
        )
        return scratch._getvalue()

    return scratch_type(rows), codegen


@intrinsic
def _lane_fma(typingctx, s, P, p_off, Q, q_off):
    """``s += P[p_off:p_off + L] * Q[q_off:q_off + L]``, ``L = 2 W``: one FMA per lane.

    One ``<L x T>`` ``llvm.fma`` vector operation (what the Cython twin writes
    with GCC vector types): Numba's own loop over the lanes was left as scalar
    code by LLVM (measured). ``s`` is a :func:`lane_scratch` array (LLVM then
    keeps it in registers); offsets are ``uint64``; no bounds check.
    """
    dtype = s.dtype
    itemsize = dtype.bitwidth // 8
    lanes = 2 * (64 // itemsize)

    def codegen(context, builder, signature, args):
        acc_arr, p_arr, p_at, q_arr, q_at = args
        vec = ir.VectorType(context.get_value_type(dtype), lanes)
        vec_ptr = vec.as_pointer()
        fma = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(vec, [vec, vec, vec]),
            f"llvm.fma.v{lanes}f{dtype.bitwidth}",
        )

        def lanes_at(array_type, array, offset):
            data = make_array(array_type)(context, builder, array).data
            return builder.bitcast(builder.gep(data, [offset], inbounds=True), vec_ptr)

        acc_ptr = lanes_at(signature.args[0], acc_arr, context.get_constant(types.intp, 0))
        x = builder.load(lanes_at(signature.args[1], p_arr, p_at), align=itemsize)
        y = builder.load(lanes_at(signature.args[3], q_arr, q_at), align=itemsize)
        acc = builder.load(acc_ptr, align=itemsize)
        builder.store(builder.call(fma, [x, y, acc]), acc_ptr, align=itemsize)
        return context.get_dummy_value()

    return types.void(s, P, p_off, Q, q_off), codegen


@_jit(inline="always")
def _sgd_step(P, Q, user_bias, item_bias, u, i, rating, mu, lr, shrink, use_bias, k):
    """One update for one rating of user ``u`` on item ``i``; returns ``r - r_hat`` before it.

    ``P`` and ``Q`` are the flat factor arrays (rows of ``k``, a ``uint64``):
    unsigned offsets need no negative-index fix-up, so LLVM vectorises the
    update loop. Inlined into :func:`run_cell` at the Numba level (no array
    reference counts per call: about 1.15x faster, measured). The dot product
    ``P[u k:u k + k] @ Q[i k:i k + k]`` is summed in ``L = 2 W`` lanes; NumPy
    equivalent: ``t = p * q`` zero-padded to a multiple of ``L``, ``s =
    t.reshape(-1, L).sum(0)`` summed down the columns in row order, then
    ``s[:h] += s[h:2 * h]`` for ``h = L / 2, L / 4, ..., 1``; ``dot = s[0]``.
    """
    one = np.uint64(1)
    lanes = _lane_count(P)
    s = _lane_scratch(P)
    pu = np.uint64(u) * k
    qi = np.uint64(i) * k
    for j in range(lanes):
        s[j] = 0
    kl = k - k % lanes
    for f in range(np.uint64(0), kl, lanes):
        _lane_fma(s, P, pu + f, Q, qi + f)  # s[j] += P[pu + f + j] * Q[qi + f + j]
    for j in range(k - kl):
        s[j] += P[pu + kl + j] * Q[qi + kl + j]
    h = lanes >> one
    while h >= one:
        for j in range(h):
            s[j] = s[j] + s[j + h]
        h >>= one
    err = rating - (((mu + user_bias[u]) + item_bias[i]) + s[0])
    step = lr * err
    if use_bias:
        bu = user_bias[u]
        bi = item_bias[i]
        user_bias[u] = bu + (step - shrink * bu)
        item_bias[i] = bi + (step - shrink * bi)
    # p += lr (err q - reg p), q += lr (err p_old - reg q); two fused multiply-adds
    # each, with only one way to contract them (as in the Cython twin)
    for f in range(k):
        pf = P[pu + f]
        qf = Q[qi + f]
        P[pu + f] = (pf - shrink * pf) + step * qf
        Q[qi + f] = (qf - shrink * qf) + step * pf
    return err


@_jit
def _run_cell(
    block_ptr, indices, ratings, user_order, first, end, blk,
    mu, lr, shrink, use_bias, user_factors, item_factors, user_bias, item_bias,
):  # fmt: skip
    """The runs in item block ``blk`` of users ``user_order[first:end]``; returns the loss sum.

    Two lanes each walk one user's run of the block and take the chunk's next
    user (skipping empty runs) as soon as theirs is done; the lanes alternate
    one rating at a time (see the module docstring).
    """
    k = np.uint64(user_factors.shape[1])
    P = user_factors.reshape(-1)
    Q = item_factors.reshape(-1)
    loss = 0.0
    nxt = first
    a = 0
    b = 0
    ea = 0
    ea_end = 0
    eb = 0
    eb_end = 0
    while ea == ea_end and nxt < end:  # lane a: the first user with ratings here
        a = user_order[nxt]
        nxt += 1
        ea = block_ptr[a, blk]
        ea_end = block_ptr[a, blk + 1]
    while eb == eb_end and nxt < end:  # lane b: the next one
        b = user_order[nxt]
        nxt += 1
        eb = block_ptr[b, blk]
        eb_end = block_ptr[b, blk + 1]
    while ea < ea_end or eb < eb_end:
        if ea < ea_end:
            err = _sgd_step(
                P, Q, user_bias, item_bias, a, indices[ea],
                ratings[ea], mu, lr, shrink, use_bias, k,
            )  # fmt: skip
            loss += err * err
            ea += 1
            while ea == ea_end and nxt < end:
                a = user_order[nxt]
                nxt += 1
                ea = block_ptr[a, blk]
                ea_end = block_ptr[a, blk + 1]
        if eb < eb_end:
            err = _sgd_step(
                P, Q, user_bias, item_bias, b, indices[eb],
                ratings[eb], mu, lr, shrink, use_bias, k,
            )  # fmt: skip
            loss += err * err
            eb += 1
            while eb == eb_end and nxt < end:
                b = user_order[nxt]
                nxt += 1
                eb = block_ptr[b, blk]
                eb_end = block_ptr[b, blk + 1]
    return loss


# ------------------------------------------------------------- the task queue
# Spin this long (ns) before sleeping while the previous phase is not done.
SPIN_NS = 50_000
_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")
# the futex system call's number (Linux); without it a waiting thread keeps spinning
_SYS_FUTEX = {"x86_64": 202, "amd64": 202, "aarch64": 98, "arm64": 98}.get(
    platform.machine().lower(), -1
)
_FUTEX = sys.platform.startswith("linux") and _SYS_FUTEX >= 0
_FUTEX_WAIT_PRIVATE = 128
_FUTEX_WAKE_PRIVATE = 129


def _element_pointer(context, builder, array_type, array, index):
    ary = make_array(array_type)(context, builder, array)
    return cgutils.get_item_pointer(context, builder, array_type, ary, [index])


@intrinsic
def _atomic_add(typingctx, array, index, value):
    """``old = array[index]; array[index] += value; return old``, atomically (sequentially
    consistent); ``array`` is an int32 or int64 array; no bounds check."""
    itype = array.dtype

    def codegen(context, builder, signature, args):
        ptr = _element_pointer(context, builder, signature.args[0], args[0], args[1])
        delta = context.cast(builder, args[2], signature.args[2], itype)
        return builder.atomic_rmw("add", ptr, delta, "seq_cst")

    return itype(array, types.intp, value), codegen


@intrinsic
def _atomic_load(typingctx, array, index):
    """``array[index]``, an acquire load (sequentially consistent); no bounds check."""
    itype = array.dtype

    def codegen(context, builder, signature, args):
        ptr = _element_pointer(context, builder, signature.args[0], args[0], args[1])
        return builder.load_atomic(ptr, "seq_cst", itype.bitwidth // 8)

    return itype(array, types.intp), codegen


@intrinsic
def _cpu_relax(typingctx):
    """The spin-wait hint (x86 PAUSE); nothing on other CPUs."""

    def codegen(context, builder, signature, args):
        if _X86:
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse2.pause"
            )
            builder.call(fn, [])
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic
def _monotonic_ns(typingctx):
    """``clock_gettime(CLOCK_MONOTONIC)`` in ns where threads sleep on a futex (Linux); else 0."""

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        if not _FUTEX:
            return i64(0)
        ts = cgutils.alloca_once(builder, ir.ArrayType(i64, 2))
        fn = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(ir.IntType(32), [ir.IntType(32), ir.PointerType(i64)]),
            "clock_gettime",
        )
        first = builder.gep(ts, [ir.IntType(32)(0), ir.IntType(32)(0)])
        builder.call(fn, [ir.IntType(32)(1), first])  # CLOCK_MONOTONIC
        sec = builder.load(first)
        nsec = builder.load(builder.gep(ts, [ir.IntType(32)(0), ir.IntType(32)(1)]))
        return builder.add(builder.mul(sec, i64(1_000_000_000)), nsec)

    return types.int64(), codegen


def _futex(context, builder, ptr, op, value):
    i64 = ir.IntType(64)
    fn = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(i64, [i64], var_arg=True), "syscall"
    )
    null = ir.Constant(ir.PointerType(ir.IntType(8)), None)
    return builder.call(
        fn, [i64(_SYS_FUTEX), builder.ptrtoint(ptr, i64), ir.IntType(32)(op), value, null, null,
             ir.IntType(32)(0)],
    )  # fmt: skip


@intrinsic
def _futex_wait(typingctx, array, index, seen):
    """Sleep while ``array[index] == seen`` (int32 array; Linux futex, woken by
    :func:`futex_wake`, or at once when the value differs); elsewhere nothing."""

    def codegen(context, builder, signature, args):
        if _FUTEX:
            ptr = _element_pointer(context, builder, signature.args[0], args[0], args[1])
            value = context.cast(builder, args[2], signature.args[2], types.int32)
            _futex(context, builder, ptr, _FUTEX_WAIT_PRIVATE, value)
        return context.get_dummy_value()

    return types.void(array, types.intp, seen), codegen


@intrinsic
def _futex_wake(typingctx, array, index):
    """Wake every thread sleeping in :func:`futex_wait` on ``array[index]``."""

    def codegen(context, builder, signature, args):
        if _FUTEX:
            ptr = _element_pointer(context, builder, signature.args[0], args[0], args[1])
            _futex(context, builder, ptr, _FUTEX_WAKE_PRIVATE, ir.IntType(32)(2**31 - 1))
        return context.get_dummy_value()

    return types.void(array, types.intp), codegen


@_jit
def _wait_phase(sleepers, done, phase, n_cells):
    """Return once ``done[phase] == n_cells``: spin ``SPIN_NS``, then sleep on it."""
    if _atomic_load(done, phase) == n_cells:
        return
    start = _monotonic_ns()
    while True:
        for _ in range(64):
            _cpu_relax()
            if _atomic_load(done, phase) == n_cells:
                return
        if _FUTEX and _monotonic_ns() - start > SPIN_NS:
            break
    while True:
        _atomic_add(sleepers, 0, 1)
        seen = _atomic_load(done, phase)
        if seen != n_cells:
            _futex_wait(done, phase, seen)
        _atomic_add(sleepers, 0, -1)
        if _atomic_load(done, phase) == n_cells:
            return


@_jit
def _finish_cell(sleepers, done, phase, n_cells):
    """Count a finished cell of ``phase``; the phase's last cell wakes the sleepers."""
    if _atomic_add(done, phase, 1) + 1 == n_cells and _atomic_load(sleepers, 0) > 0:
        _futex_wake(done, phase)


@_jit
def _run_tasks(
    queue, sleepers, done, block_ptr, indices, ratings, user_orders, chunk_bounds, block_orders,
    global_mean, learning_rates, regularization, use_bias, user_factors, item_factors,
    user_bias, item_bias, chunk_loss,
):  # fmt: skip
    """Run by every thread: take the next cell of the queue, wait for the previous
    phase, run the cell, count it; until the queue is empty."""
    n_chunks = chunk_bounds.shape[1] - 1
    n_blocks = block_orders.shape[1]
    n_tasks = learning_rates.shape[0] * n_blocks * n_chunks
    task = _atomic_add(queue, 0, 1)
    while task < n_tasks:
        p = task // n_chunks
        c = task % n_chunks
        if p > 0:
            _wait_phase(sleepers, done, p - 1, n_chunks)
        e = p // n_blocks
        s = p % n_blocks
        lr = learning_rates[e]
        shrink = lr * regularization
        chunk_loss[e, c] += _run_cell(
            block_ptr, indices, ratings, user_orders[e], chunk_bounds[e, c],
            chunk_bounds[e, c + 1], block_orders[e, (c + s) % n_blocks], global_mean, lr,
            shrink, use_bias, user_factors, item_factors, user_bias, item_bias,
        )  # fmt: skip
        _finish_cell(sleepers, done, p, n_chunks)
        task = _atomic_add(queue, 0, 1)


@_jit
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
    """One lock-free SGD pass over all ratings, updating the factors in place.

    Parameters
    ----------
    block_ptr : (n_users, n_blocks + 1) int64
        ``indices[block_ptr[u, b]:block_ptr[u, b + 1]]`` are the ratings of
        user ``u`` in item block ``b``, in visiting order; ``block_ptr[u, 0]``
        and ``block_ptr[u, n_blocks]`` are the CSR row bounds (with one block
        this is ``indptr[:-1]`` and ``indptr[1:]`` side by side).
    indices : (nnz,) int32
        Item row of each rating (the model passes item labels: its item rows
        are stored in label order).
    ratings : (nnz,) float32/float64 (the factors' dtype)
    user_order : (n_order,) int32
        Users in visiting order (normally a permutation of all users).
    chunk_bounds : (n_chunks + 1,) int64
        ``user_order[chunk_bounds[c]:chunk_bounds[c + 1]]`` is chunk ``c``.
    block_order : (n_blocks,) int32
        A permutation of the item blocks; in phase ``s`` (s = 0 .. n_blocks -
        1) chunk ``c`` works in block ``block_order[(c + s) % n_blocks]``; the
        chunks of a phase run in parallel (in order when single-threaded).
    global_mean, learning_rate, regularization : scalar of the factors' dtype
        ``mu`` (0 for a model without biases), step size and L2 weight.
    use_bias : bool
        Update the biases; when False they are read (normally zeros) but not
        written.
    user_factors : (n_users, k) float32/float64, C order, updated
        (the caller pads ``k`` with zero columns to whole cache lines; any
        ``k`` >= 1 is computed correctly)
    item_factors : (n_items, k) same dtype, updated
    user_bias : (n_users,) same dtype, updated
    item_bias : (n_items,) same dtype, updated
    chunk_loss : (n_chunks,) float64, written
        Sum of squared errors of chunk ``c``, each error taken just before its
        update (the running training loss of the pass).

    Notes
    -----
    The visiting order is spelled out in the module docstring (and in
    ``tests/reference_sgd.visiting_order``). Lock-free: with ``n_chunks <=
    n_blocks`` the cells of a phase share no row and the result is the same
    for any thread count; with more chunks than blocks, threads may update
    the same item row at once (the Hogwild race) and a multi-threaded result
    is not deterministic. A user with no ratings, or not in
    ``user_order``, is not touched. Non-finite values are not checked here;
    the caller inspects ``chunk_loss`` after the pass.
    """
    n_chunks = chunk_bounds.shape[0] - 1
    sgd_epochs(
        block_ptr, indices, ratings,
        np.ascontiguousarray(user_order).reshape((1, user_order.shape[0])),
        np.ascontiguousarray(chunk_bounds).reshape((1, n_chunks + 1)),
        np.ascontiguousarray(block_order).reshape((1, block_order.shape[0])),
        global_mean, np.full(1, learning_rate), regularization, use_bias,
        user_factors, item_factors, user_bias, item_bias, chunk_loss.reshape((1, n_chunks)),
    )  # fmt: skip


@_jit(parallel=True)
def sgd_epochs(
    block_ptr,
    indices,
    ratings,
    user_orders,
    chunk_bounds,
    block_orders,
    global_mean,
    learning_rates,
    regularization,
    use_bias,
    user_factors,
    item_factors,
    user_bias,
    item_bias,
    chunk_loss,
):
    """Several passes in one call: epoch ``e`` is :func:`sgd_epoch` with row ``e``.

    Parameters
    ----------
    block_ptr, indices, ratings, global_mean, regularization, use_bias,
    user_factors, item_factors, user_bias, item_bias
        As in :func:`sgd_epoch`.
    user_orders : (n_epochs, n_order) int32
    chunk_bounds : (n_epochs, n_chunks + 1) int64
    block_orders : (n_epochs, n_blocks) int32
        The schedule of each epoch (rows as in :func:`sgd_epoch`).
    learning_rates : (n_epochs,) the factors' dtype
        Step size of each epoch.
    chunk_loss : (n_epochs, n_chunks) float64, written

    Notes
    -----
    Epoch ``e + 1`` starts when every chunk of epoch ``e`` is done, so with one
    thread the result is exactly that of ``n_epochs`` calls of
    :func:`sgd_epoch`. No check between epochs: the caller inspects
    ``chunk_loss`` (and the factors) afterwards. ``n_epochs = 0`` does nothing.
    """
    chunk_loss[:, :] = 0.0
    n_chunks = chunk_bounds.shape[1] - 1
    n_phases = learning_rates.shape[0] * block_orders.shape[1]
    if n_chunks <= 0 or n_phases <= 0 or ratings.shape[0] == 0:
        return
    queue = np.zeros(1, dtype=np.int64)  # the next task to hand out
    sleepers = np.zeros(1, dtype=np.int32)
    done = np.zeros(n_phases, dtype=np.int32)  # cells done, per phase (futex words)
    # one worker per cell of a phase (at most that many can run at once), spread
    # over the threads; a worker takes cells from the queue until it is empty,
    # so a thread's later workers find it empty (numba.get_num_threads() here
    # would keep the function out of Numba's cache)
    for _ in prange(n_chunks):
        _run_tasks(
            queue, sleepers, done, block_ptr, indices, ratings, user_orders, chunk_bounds,
            block_orders, global_mean, learning_rates, regularization, use_bias,
            user_factors, item_factors, user_bias, item_bias, chunk_loss,
        )  # fmt: skip


# ---------------------------------------------------------------- initialisation
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@_jit
def _splitmix64(state):
    """SplitMix64 (Steele, Lea & Flood, OOPSLA 2014): returns (new state, 64 random bits)."""
    state = state + _GOLDEN
    z = state
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return state, z ^ (z >> np.uint64(31))


_SLOW_SALT = np.uint64(0xD6E8FEB86659FD93)


@_jit
def _mix64(z):
    """SplitMix64's output function: 64 well-mixed bits from a counter value."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@_jit
def _slow_draw(first, edges, widths, heights):
    """|x| of a draw whose first 64 bits ``first`` missed the fast test.

    The wedge test, the tail, or fresh candidates, with bits from a private
    SplitMix64 stream seeded by ``mix64(first ^ SLOW_SALT)``.
    """
    state = _mix64(first ^ _SLOW_SALT)
    bits = first
    inv53 = 1.0 / 9007199254740992.0
    top = np.uint64(1) << np.uint64(53)  # 1 - m 2**-53 = (2**53 - m) 2**-53, exact
    r = edges[1]
    inv_r = 1.0 / r  # multiply, never divide: fastmath 'arcp' would round x / r differently
    while True:
        layer = np.int64(bits & np.uint64(255))
        x = np.float64(bits >> np.uint64(12)) * widths[layer]
        if x < edges[layer + 1]:
            return x
        if layer == 0:  # the tail beyond r
            while True:
                state, b1 = _splitmix64(state)
                state, b2 = _splitmix64(state)
                a = -math.log(np.float64(top - (b1 >> np.uint64(11))) * inv53) * inv_r
                b = -math.log(np.float64(top - (b2 >> np.uint64(11))) * inv53)
                if b + b > a * a:
                    return r + a
        state, b1 = _splitmix64(state)
        u = np.float64(b1 >> np.uint64(11)) * inv53
        y = heights[layer] + u * (heights[layer + 1] - heights[layer])
        if y < math.exp(-0.5 * x * x):
            return x
        state, bits = _splitmix64(state)


@_jit(parallel=True)
def normal_fill(out, k, seed, scale, edges, widths, heights):
    """``out[:, :k] = scale * N(0, 1)`` draws; columns ``k:`` untouched.

    Marsaglia & Tsang's ziggurat ("The ziggurat method for generating random
    variables", J. Stat. Softw. 5(8), 2000) with 256 layers, on SplitMix64
    bits used as a counter-based generator. The tables come from
    ``fastrec.models.sgd.ziggurat_tables``: ``edges[i]`` is the right edge of
    layer ``i`` (``edges[0]`` the base strip's width ``v / f(r)``, ``edges[1] = r``,
    ``edges[256] = 0``), ``widths[i] = edges[i] * 2**-52`` and ``heights[i] =
    exp(-edges[i]**2 / 2)``.

    Draw ``j = row * k + f`` starts from ``bits = mix64(seed + (j + 1) *
    golden)`` (the SplitMix64 output number ``j + 1`` from state ``seed``):
    the layer (low 8 bits), the sign (bit 8) and a 52-bit uniform (bits
    12-63) give ``x``, accepted at once when ``x < edges[layer + 1]`` (about
    99% of draws). Otherwise :func:`slow_draw` finishes it (wedge test, tail,
    or new candidates) from a private stream seeded by those bits; the sign
    stays bit 8 of the first bits. Every draw depends only on the seed and its
    position, so rows are filled in parallel. Every value is computed in float64 and
    rounded once to ``out``'s dtype; the same seed gives the same numbers in
    both backends, for any thread count.
    """
    base = np.uint64(seed)
    one = np.uint64(1)
    signed_scale = np.array((scale, -scale))
    for row in prange(out.shape[0]):  # draws depend on their position only
        for f in range(k):
            bits = _mix64(base + np.uint64(row * k + f + 1) * _GOLDEN)
            layer = np.int64(bits & np.uint64(255))
            x = np.float64(bits >> np.uint64(12)) * widths[layer]
            if not x < edges[layer + 1]:
                x = _slow_draw(bits, edges, widths, heights)
            negative = np.int64((bits >> np.uint64(8)) & one)
            out[row, f] = x * signed_scale[negative]  # a lookup, not a branch


# ------------------------------------------------------------ training layout
# relabel_rows works on blocks of consecutive rows holding about this many
# entries: a block's slices of the outputs and scratch (16 bytes an entry with
# float32 values) and its digit counts stay in the core's cache. One pass over
# the whole matrix would scatter into n_cols and then n_rows places at once
# (cache and TLB misses on every entry: 2x slower on 20M entries).
ROW_BLOCK_ENTRIES = 32768


@jit
def relabel_rows(
    indptr,
    indices,
    data,
    label,
    block_of_label,
    out_labels,
    out_data,
    block_ptr,
    label_start,
    scratch_rows,
    scratch_data,
):
    """Relabel the columns of a CSR matrix, sort every row by new label, cut it into blocks.

    The SGD training layout: the entry ``(u, c)`` becomes ``(u, label[c])``,
    each row lists its entries by ascending new label, and the labels are cut
    into ``n_blocks`` contiguous ranges (``block_of_label``), so a row's
    entries of one block form a contiguous run.

    Serial (memory bound): O(nnz + n_rows * n_blocks), plus
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
    non-decreasing) are the caller's to guarantee.

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
    n_rows = indptr.shape[0] - 1
    n_cols = label.shape[0]
    nnz = indices.shape[0]
    n_blocks = block_ptr.shape[1] - 1
    if (
        n_rows < 0
        or n_blocks < 1
        or block_ptr.shape[0] != n_rows
        or block_of_label.shape[0] != n_cols
        or label_start.shape[0] != n_cols + 1
        or data.shape[0] != nnz
        or out_labels.shape[0] != nnz
        or out_data.shape[0] != nnz
        or scratch_rows.shape[0] != nnz
        or scratch_data.shape[0] != nnz
    ):
        raise ValueError("relabel_rows: array shapes do not agree")
    bits = 0
    while (1 << bits) < n_cols:
        bits += 1
    label_mask = (1 << bits) - 1
    lo_bits = (bits + 1) // 2
    lo_mask = (1 << lo_bits) - 1
    n_lo = 1 << lo_bits
    n_digits = n_lo + (1 << (bits - lo_bits))  # <= n_cols + 1: both tables fit label_start
    max_rows = 1 << (31 - bits)  # row_in_block << bits | label fits in int32
    r0 = 0
    while r0 < n_rows:
        base = indptr[r0]
        r1 = r0 + 1
        while r1 < n_rows and r1 - r0 < max_rows and indptr[r1 + 1] - base <= ROW_BLOCK_ENTRIES:
            r1 += 1
        stop = indptr[r1]
        if stop > base:  # (n_cols == 0 leaves only empty rows: label_start unused)
            # 1. keys, and counts of the low (label_start[:n_lo]) and high digits
            for d in range(n_digits):
                label_start[d] = 0
            for u in range(r0, r1):
                key = (u - r0) << bits
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
