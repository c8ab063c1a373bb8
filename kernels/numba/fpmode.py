"""Floating-point mode of the calling thread (twin of ``kernels/cython/fpmode.pyx``).

``get_fp_state`` and ``set_fp_state`` read and load the x86 MXCSR register;
``fastrec.nn.fpmode.flush_denormals`` sets its FTZ and DAZ bits while a model
trains.
"""

from __future__ import annotations

import platform

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._config import jit

#: MXCSR bits "flush to zero" (15) and "denormals are zero" (6) on x86.
FTZ_DAZ = 0x8040
HAVE_FP_STATE = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")


# The x86 MXCSR register holds the SSE/AVX floating-point mode of the calling
# thread. Training sets its FTZ and DAZ bits (fastrec.nn.fpmode): subnormal
# intermediates, which appear in the backward pass once weights and gradients
# get small (weight decay, saturated sigmoids), make x86 arithmetic and BLAS
# about ten times slower. On other machines the state is 0 and setting it is
# a no-op.


def _mxcsr_call(builder, name, ptr):
    i8p = ir.IntType(8).as_pointer()
    fnty = ir.FunctionType(ir.VoidType(), [i8p])
    fn = cgutils.get_or_insert_function(builder.module, fnty, name)
    builder.call(fn, [builder.bitcast(ptr, i8p)])


@intrinsic
def _read_mxcsr(typingctx):
    def codegen(context, builder, signature, args):
        ptr = cgutils.alloca_once(builder, ir.IntType(32))
        _mxcsr_call(builder, "llvm.x86.sse.stmxcsr", ptr)
        return builder.load(ptr)

    return types.uint32(), codegen


@intrinsic
def _write_mxcsr(typingctx, value):
    def codegen(context, builder, signature, args):
        ptr = cgutils.alloca_once(builder, ir.IntType(32))
        builder.store(args[0], ptr)
        _mxcsr_call(builder, "llvm.x86.sse.ldmxcsr", ptr)
        return context.get_dummy_value()

    return types.void(types.uint32), codegen


if HAVE_FP_STATE:

    @jit
    def get_fp_state():
        """The calling thread's MXCSR (x86 floating-point control/status)."""
        return np.int64(_read_mxcsr())

    @jit
    def set_fp_state(state):
        """Load ``state`` (from :func:`get_fp_state`, possibly | FTZ_DAZ) into MXCSR."""
        _write_mxcsr(np.uint32(state))

else:  # not x86: no MXCSR, nothing to do

    def get_fp_state():
        """0: this machine has no MXCSR."""
        return 0

    def set_fp_state(state):
        """No-op on machines without MXCSR."""
