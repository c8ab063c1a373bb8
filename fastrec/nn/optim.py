"""Optimisers: dense Adam / SGD on flat vectors, lazy row-wise ones on tables.

The dense optimisers update a flat parameter vector (all the layers of an
:class:`~fastrec.nn.layers.MLP` at once) with one compiled call per step.

The lazy optimisers update an embedding table from a batch's gradient rows
without ever forming a dense gradient of the whole table: the compiled kernel
sums the gradient rows of each distinct index of the batch (the scatter-add)
and applies the update to those rows only. **Lazy Adam** is therefore not
dense Adam: rows a batch does not touch keep their first and second moment
estimates unchanged instead of decaying them towards zero, and receive no
momentum step (as TensorFlow's ``LazyAdamOptimizer`` and PyTorch's
``SparseAdam``). Bias correction uses the global step count. Weight decay is
the L2 kind added to the gradient (``torch.optim.Adam(weight_decay=...)``),
and lazily applies to the touched rows only, which regularises frequent users
and items more, as per-example L2 in SGD matrix factorisation does.

References: Kingma and Ba, "Adam: A Method for Stochastic Optimization",
ICLR 2015, Algorithm 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _backend
from .._kernels import optim as optim_kernels
from .._validation import check_float

__all__ = ["SGD", "Adam", "LazyAdam", "LazySGD"]


def _check_flat(param: Any, name: str = "param") -> np.ndarray:
    if (
        not isinstance(param, np.ndarray)
        or param.ndim != 1
        or param.dtype.type not in (np.float32, np.float64)
        or not param.flags.c_contiguous
        or not param.flags.writeable
    ):
        raise ValueError(f"{name} must be a writeable, contiguous 1-D float32/float64 array")
    return param


def _check_table(table: Any) -> np.ndarray:
    if (
        not isinstance(table, np.ndarray)
        or table.ndim != 2
        or table.dtype.type not in (np.float32, np.float64)
        or not table.flags.c_contiguous
        or not table.flags.writeable
    ):
        raise ValueError("table must be a writeable, C-contiguous 2-D float32/float64 array")
    return table


def _check_adam_args(lr: float, betas: tuple[float, float], eps: float, weight_decay: float):
    lr = check_float(lr, "learning_rate", minimum=0.0, strict=True)
    if not isinstance(betas, tuple | list) or len(betas) != 2:
        raise ValueError(f"betas must be a pair of floats, got {betas!r}")
    b1 = check_float(betas[0], "betas[0]", minimum=0.0, maximum=1.0)
    b2 = check_float(betas[1], "betas[1]", minimum=0.0, maximum=1.0)
    if b1 >= 1.0 or b2 >= 1.0:
        raise ValueError(f"betas must be < 1, got {betas!r}")
    eps = check_float(eps, "eps", minimum=0.0, strict=True)
    weight_decay = check_float(weight_decay, "weight_decay", minimum=0.0)
    return lr, b1, b2, eps, weight_decay


class _DenseBase:
    """``step`` for the dense optimisers: validate ``grad``, then ``_step_trusted``."""

    def step(self, grad: np.ndarray) -> None:
        """One update with ``grad`` (same shape and dtype as ``param``)."""
        grad = _check_flat(np.ascontiguousarray(grad), "grad")
        if grad.shape != self.param.shape or grad.dtype != self.param.dtype:
            raise ValueError(
                f"grad must have shape {self.param.shape} and dtype {self.param.dtype}"
            )
        self._step_trusted(grad)


class Adam(_DenseBase):
    """Dense Adam on a flat vector, updated in place.

    Parameters
    ----------
    param : (n,) float32/float64, C-contiguous; the parameters (updated in place)
    lr : float > 0
    betas : (float, float) in [0, 1)
    eps : float > 0
    weight_decay : float >= 0, L2 penalty added to the gradient
    backend : {"auto", "numba", "cython"}
    """

    def __init__(
        self,
        param: np.ndarray,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        backend: str = "auto",
    ):
        self.param = _check_flat(param)
        self.lr, self.beta1, self.beta2, self.eps, self.weight_decay = _check_adam_args(
            lr, betas, eps, weight_decay
        )
        self.exp_avg = np.zeros_like(param)
        self.exp_avg_sq = np.zeros_like(param)
        self.step_count = 0
        self._kernel = optim_kernels.get(backend).adam_update

    def _step_trusted(self, grad: np.ndarray) -> None:
        self.step_count += 1
        t = self.step_count
        self._kernel(
            self.param, self.exp_avg, self.exp_avg_sq, grad, self.lr, self.beta1, self.beta2,
            self.eps, self.weight_decay, 1.0 - self.beta1**t, 1.0 - self.beta2**t,
        )  # fmt: skip


class SGD(_DenseBase):
    """Dense SGD: ``param -= lr * (grad + weight_decay * param)``.

    Same parameters as :class:`Adam` (without ``betas`` and ``eps``).
    """

    def __init__(
        self, param: np.ndarray, lr: float = 1e-2, weight_decay: float = 0.0, backend: str = "auto"
    ):
        self.param = _check_flat(param)
        self.lr = check_float(lr, "learning_rate", minimum=0.0, strict=True)
        self.weight_decay = check_float(weight_decay, "weight_decay", minimum=0.0)
        self.step_count = 0
        self._kernel = optim_kernels.get(backend).sgd_update

    def _step_trusted(self, grad: np.ndarray) -> None:
        self.step_count += 1
        self._kernel(self.param, grad, self.lr, self.weight_decay)


class _LazyBase:
    """Scratch shared by the lazy optimisers: ``slot`` (all -1 between calls)."""

    def __init__(self, table: np.ndarray, backend: str):
        self.table = _check_table(table)
        self.backend = _backend.resolve_backend(backend)
        self._slot = np.full(table.shape[0], -1, dtype=np.int32)
        self._rows = np.zeros(0, dtype=np.int32)
        self._acc = np.zeros((0, table.shape[1]), dtype=table.dtype)

    def reserve(self, batch: int) -> None:
        """Size the scratch for batches of up to ``batch`` rows (done once)."""
        if self._rows.shape[0] < batch:
            self._rows = np.zeros(batch, dtype=np.int32)
            self._acc = np.zeros((batch, self.table.shape[1]), dtype=self.table.dtype)

    def step(self, idx: Any, grad: np.ndarray, col: int = 0) -> int:
        """Update the rows in ``idx``; returns how many distinct rows changed."""
        return self._step_trusted(self._checked(idx, grad, col), grad, col)

    def _checked(self, idx: Any, grad: np.ndarray, col: int) -> np.ndarray:
        idx = np.asarray(idx)
        if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
            raise ValueError(f"idx must be a 1-D integer array, got {idx.dtype} {idx.shape}")
        n_rows, dim = self.table.shape
        if idx.size:
            bad = (idx < 0) | (idx >= n_rows)
            if bad.any():
                pos = int(np.argmax(bad))
                raise ValueError(f"idx[{pos}] = {idx[pos]} is out of range [0, {n_rows})")
        if (
            not isinstance(grad, np.ndarray)
            or grad.ndim != 2
            or grad.dtype != self.table.dtype
            or not grad.flags.c_contiguous
            or grad.shape[0] != idx.shape[0]
            or col < 0
            or col + dim > grad.shape[1]
        ):
            raise ValueError(
                f"grad must be a C-contiguous {self.table.dtype} array with {idx.shape[0]} rows "
                f"and columns {col}:{col + dim}"
            )
        self.reserve(idx.shape[0])
        return np.ascontiguousarray(idx, dtype=np.int32)


class LazyAdam(_LazyBase):
    """Lazy, row-wise Adam on an embedding table (see the module docstring).

    Parameters
    ----------
    table : (n_rows, dim) float32/float64, C order; updated in place
    lr, betas, eps, weight_decay, backend : as :class:`Adam`

    ``step(idx, grad, col)`` takes the batch's row indices ``idx`` (batch,)
    and the gradient with respect to the gathered rows, ``grad[:, col:col+dim]``
    (repeated indices accumulate), and updates only the rows in ``idx``.
    """

    def __init__(
        self,
        table: np.ndarray,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        backend: str = "auto",
    ):
        super().__init__(table, backend)
        self.lr, self.beta1, self.beta2, self.eps, self.weight_decay = _check_adam_args(
            lr, betas, eps, weight_decay
        )
        self.exp_avg = np.zeros_like(table)
        self.exp_avg_sq = np.zeros_like(table)
        self.step_count = 0
        self._kernel = optim_kernels.get(self.backend).embedding_adam

    def _step_trusted(self, idx: np.ndarray, grad: np.ndarray, col: int) -> int:
        # trusted: idx int32 in range, grad validated, reserve() done
        self.step_count += 1
        t = self.step_count
        return self._kernel(
            self.table, self.exp_avg, self.exp_avg_sq, idx, grad, col, self._slot, self._rows,
            self._acc, self.lr, self.beta1, self.beta2, self.eps, self.weight_decay,
            1.0 - self.beta1**t, 1.0 - self.beta2**t,
        )  # fmt: skip


class LazySGD(_LazyBase):
    """Lazy SGD on an embedding table: touched rows only, repeated rows summed."""

    def __init__(
        self, table: np.ndarray, lr: float = 1e-2, weight_decay: float = 0.0, backend: str = "auto"
    ):
        super().__init__(table, backend)
        self.lr = check_float(lr, "learning_rate", minimum=0.0, strict=True)
        self.weight_decay = check_float(weight_decay, "weight_decay", minimum=0.0)
        self.step_count = 0
        self._kernel = optim_kernels.get(self.backend).embedding_sgd

    def _step_trusted(self, idx: np.ndarray, grad: np.ndarray, col: int) -> int:
        self.step_count += 1
        return self._kernel(
            self.table, idx, grad, col, self._slot, self._rows, self._acc, self.lr,
            self.weight_decay,
        )  # fmt: skip
