"""Flush subnormal floats to zero while training (x86 FTZ/DAZ).

Once weights and gradients get small (weight decay, saturated sigmoids in the
log loss), products in the backward pass underflow into subnormal numbers,
which x86 CPUs process through a slow microcode path: a whole epoch can take
ten times longer. Setting the FTZ ("flush to zero") and DAZ ("denormals are
zero") bits of the calling thread's MXCSR makes such values exactly 0, as
PyTorch's ``torch.set_flush_denormal(True)`` does; it changes results only in
values below the smallest normal float (1.2e-38 in float32). The mode is
per thread: it covers the training loop, its serial kernels and single-threaded
BLAS, and it is restored on exit. Elsewhere than x86 this is a no-op.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .._kernels import embedding as embedding_kernels

__all__ = ["flush_denormals"]


@contextmanager
def flush_denormals(backend: str = "auto") -> Iterator[bool]:
    """Context in which the calling thread flushes subnormals to zero.

    Yields whether the mode could be set (False on machines without MXCSR).
    """
    module = embedding_kernels.get(backend)
    if not module.HAVE_FP_STATE:
        yield False
        return
    old = int(module.get_fp_state())
    module.set_fp_state(old | module.FTZ_DAZ)
    try:
        yield True
    finally:
        module.set_fp_state(old)
