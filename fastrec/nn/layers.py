"""Layers with hand-written forward and backward passes (NumPy, BLAS matmuls).

Everything works on row-major batches: ``x`` is ``(batch, features)`` and a
dense layer computes ``x @ weight + bias`` with ``weight`` of shape
``(in_features, out_features)``. The backward functions take the gradient of
the loss with respect to a layer's output and write the gradients of its
parameters and of its input into caller-owned buffers, so a training loop can
allocate every buffer once per batch size and never again.

:class:`MLP` stacks dense layers with ReLU between them and one linear output
unit. Its parameters live in one flat vector (``params``) and its gradients in
another (``grads``), each layer's weight and bias being views into them, so an
optimiser updates the whole network with one compiled call.

:class:`Embedding` is a validated front end to the compiled gather and
scatter-add kernels of ``kernels/*/embedding``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _backend
from .._kernels import embedding as embedding_kernels
from .._validation import check_dtype_arg

__all__ = [
    "MLP",
    "Embedding",
    "MLPWorkspace",
    "dense_backward",
    "dense_forward",
    "relu_backward",
    "relu_forward",
]


def dense_forward(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """``out = x @ weight + bias``.

    Parameters
    ----------
    x : (batch, in_features)
    weight : (in_features, out_features)
    bias : (out_features,)
    out : (batch, out_features), optional; written and returned
    """
    out = np.matmul(x, weight, out=out)
    np.add(out, bias, out=out)
    return out


def dense_backward(
    x: np.ndarray,
    weight: np.ndarray,
    grad_out: np.ndarray,
    grad_weight: np.ndarray,
    grad_bias: np.ndarray,
    grad_x: np.ndarray | None = None,
) -> np.ndarray | None:
    """Gradients of a dense layer ``y = x @ weight + bias``.

    Writes ``grad_weight = x.T @ grad_out`` (in_features, out_features) and
    ``grad_bias = grad_out.sum(0)`` (out_features,); returns
    ``grad_x = grad_out @ weight.T`` (batch, in_features), written into
    ``grad_x`` when given and allocated otherwise.
    """
    np.matmul(x.T, grad_out, out=grad_weight)
    np.sum(grad_out, axis=0, out=grad_bias)
    return np.matmul(grad_out, weight.T, out=grad_x)


def relu_forward(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``max(z, 0)`` (``out`` may be ``z`` itself: in place)."""
    return np.maximum(z, 0, out=out)


def relu_backward(
    activation: np.ndarray,
    grad_out: np.ndarray,
    out: np.ndarray | None = None,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Gradient through a ReLU given its *output* ``activation``.

    ``out = grad_out * (activation > 0)``; the derivative at 0 is taken as 0.
    ``out`` may be ``grad_out`` (in place); ``mask`` is an optional boolean
    scratch buffer of ``activation``'s shape.
    """
    mask = np.greater(activation, 0, out=mask)
    return np.multiply(grad_out, mask, out=out)


class MLPWorkspace:
    """Preallocated activations and gradient buffers for one batch size.

    Each layer's input is stored *augmented* with a trailing column of ones,
    so that ``[a, 1] @ [[W], [b]]`` computes ``a @ W + b`` in one BLAS call and
    ``[a, 1].T @ grad`` yields the weight and the bias gradient together
    (this is why :class:`MLP` stores each layer's bias right after its weight).

    Attributes
    ----------
    inputs : list of (batch, sizes[l] + 1) arrays, the augmented input of layer ``l``
        (last column all ones). ``x = inputs[0][:, :-1]`` is the network input;
        the training loop gathers embeddings straight into ``inputs[0]``.
    hidden : list of (batch, sizes[l + 1]) views, the ReLU outputs of the hidden layers
        (``inputs[l + 1][:, :-1]``).
    grads : list of (batch, sizes[l + 1]) arrays, d loss / d pre-activation of layer ``l``.
    masks : boolean scratch of the hidden layers' shapes.
    output, grad_output : (batch,) views of the output unit and its gradient.
    grad_x : (batch, sizes[0]) d loss / d network input.
    scratch : (batch,) buffer for the loss.
    """

    def __init__(self, sizes: Sequence[int], batch: int, dtype: Any):
        self.batch = batch
        self.inputs = [np.ones((batch, s + 1), dtype=dtype) for s in sizes[:-1]]
        self.inputs[0][:, :-1] = 0
        self.x = self.inputs[0][:, :-1]
        self.hidden = [a[:, :-1] for a in self.inputs[1:]]
        self._out = np.zeros((batch, sizes[-1]), dtype=dtype)
        self.grads = [np.zeros((batch, s), dtype=dtype) for s in sizes[1:]]
        self.masks = [np.zeros((batch, s), dtype=bool) for s in sizes[1:-1]]
        self.grad_x = np.zeros((batch, sizes[0]), dtype=dtype)
        self.scratch = np.zeros(batch, dtype=dtype)
        self.output = self._out.reshape(batch)
        self.grad_output = self.grads[-1].reshape(batch)


class MLP:
    """Dense ReLU layers ending in one linear output unit.

    Parameters
    ----------
    in_features : int >= 1
    hidden : sequence of int >= 1 (at least one layer)
    dtype : float32 or float64

    Attributes
    ----------
    sizes : list of int, ``[in_features, *hidden, 1]``
    params, grads : (n_params,) arrays. Layer ``l`` occupies one block of
        ``(sizes[l] + 1) * sizes[l + 1]`` entries: its weight (sizes[l], sizes[l+1])
        row-major, then its bias (sizes[l+1],). ``weights[l]``, ``biases[l]``
        and ``augmented[l]`` (the block as (sizes[l] + 1, sizes[l + 1])) are
        views into ``params``; ``grad_weights``, ``grad_biases`` and
        ``grad_augmented`` the matching views into ``grads``.
    """

    def __init__(self, in_features: int, hidden: Sequence[int], dtype: Any = np.float32):
        self.dtype = check_dtype_arg(dtype)
        self.sizes = [int(in_features), *(int(h) for h in hidden), 1]
        if len(self.sizes) < 3 or min(self.sizes) < 1:
            raise ValueError(
                f"MLP needs at least one hidden layer and positive sizes: {self.sizes}"
            )
        self.n_params = self.count_params(self.sizes)
        self.params = np.zeros(self.n_params, dtype=self.dtype)
        self.grads = np.zeros(self.n_params, dtype=self.dtype)
        self.augmented, self.weights, self.biases = self._views(self.params)
        self.grad_augmented, self.grad_weights, self.grad_biases = self._views(self.grads)
        self._workspaces: dict[int, MLPWorkspace] = {}

    @staticmethod
    def count_params(sizes: Sequence[int]) -> int:
        return int(sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:])))

    def _views(self, flat: np.ndarray):
        augmented, weights, biases, pos = [], [], [], 0
        for a, b in zip(self.sizes[:-1], self.sizes[1:]):
            block = flat[pos : pos + (a + 1) * b].reshape(a + 1, b)
            pos += (a + 1) * b
            augmented.append(block)
            weights.append(block[:a])
            biases.append(block[a])
        return augmented, weights, biases

    def init(self, rng: np.random.Generator, output_bias: float = 0.0) -> None:
        """He-normal weights for the ReLU layers (He et al. 2015, section 2.2),
        LeCun-normal for the output unit, zero biases except ``output_bias``."""
        n_layers = len(self.weights)
        for l, (w, b) in enumerate(zip(self.weights, self.biases)):
            gain = 2.0 if l < n_layers - 1 else 1.0
            w[...] = rng.standard_normal(w.shape) * np.sqrt(gain / w.shape[0])
            b[...] = 0.0
        self.biases[-1][...] = output_bias

    def workspace(self, batch: int) -> MLPWorkspace:
        """The (cached) buffers for batches of ``batch`` rows."""
        ws = self._workspaces.get(batch)
        if ws is None:
            ws = self._workspaces[batch] = MLPWorkspace(self.sizes, batch, self.dtype)
        return ws

    def forward(self, ws: MLPWorkspace) -> np.ndarray:
        """Run the network on ``ws.x``; returns ``ws.output`` (batch,)."""
        for l in range(len(self.augmented) - 1):
            # hidden = relu([a, 1] @ [[W], [b]])
            out = ws.hidden[l]
            np.matmul(ws.inputs[l], self.augmented[l], out=out)
            np.maximum(out, 0, out=out)
        np.matmul(ws.inputs[-1], self.augmented[-1], out=ws._out)
        return ws.output

    def backward(self, ws: MLPWorkspace) -> np.ndarray:
        """Backpropagate ``ws.grad_output`` (d loss / d output, (batch,)).

        Writes every parameter gradient into ``self.grads`` (overwriting) and
        returns ``ws.grad_x`` = d loss / d input. Needs the activations of the
        last :meth:`forward` on the same workspace.
        """
        for l in range(len(self.augmented) - 1, -1, -1):
            grad_out = ws.grads[l]
            # [dW; db] = [a, 1].T @ grad_out
            np.matmul(ws.inputs[l].T, grad_out, out=self.grad_augmented[l])
            grad_in = ws.grads[l - 1] if l > 0 else ws.grad_x
            if grad_out.shape[1] == 1:  # outer product: cheaper than a k=1 matmul
                np.multiply(grad_out, self.weights[l].T, out=grad_in)
            else:
                np.matmul(grad_out, self.weights[l].T, out=grad_in)
            if l > 0:  # through the ReLU that produced this layer's input
                np.greater(ws.hidden[l - 1], 0, out=ws.masks[l - 1])
                np.multiply(grad_in, ws.masks[l - 1], out=grad_in)
        return ws.grad_x

    def predict(self, x: np.ndarray, block: int = 65536) -> np.ndarray:
        """Outputs for the rows of ``x`` (n, in_features), in blocks; allocates."""
        x = np.ascontiguousarray(x, dtype=self.dtype)
        out = np.empty(x.shape[0], dtype=self.dtype)
        for start in range(0, x.shape[0], block):
            a = x[start : start + block]
            for l, (w, b) in enumerate(zip(self.weights, self.biases)):
                a = a @ w
                a += b
                if l < len(self.weights) - 1:
                    np.maximum(a, 0, out=a)
            out[start : start + a.shape[0]] = a[:, 0]
        return out


class Embedding:
    """A ``(n_rows, dim)`` table with validated gather and scatter-add.

    Parameters
    ----------
    table : (n_rows, dim) float32/float64 array (used in place, C order)
    backend : {"auto", "numba", "cython"}
    """

    def __init__(self, table: np.ndarray, backend: str = "auto"):
        table = np.asarray(table)
        if table.ndim != 2 or table.dtype.type not in (np.float32, np.float64):
            raise ValueError(
                f"table must be a 2-D float32/float64 array, got {table.dtype} {table.shape}"
            )
        if not table.flags.c_contiguous:
            raise ValueError("table must be C-contiguous")
        self.table = table
        self.backend = _backend.resolve_backend(backend)
        self._gather = embedding_kernels.get(self.backend).embedding_gather
        self._scatter = embedding_kernels.get(self.backend).embedding_scatter_add

    def check_indices(self, idx: Any, name: str = "idx") -> np.ndarray:
        """``idx`` as int32, every entry in ``[0, n_rows)`` (else ValueError)."""
        idx = np.asarray(idx)
        if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
            raise ValueError(f"{name} must be a 1-D integer array, got {idx.dtype} {idx.shape}")
        if idx.size:
            bad = (idx < 0) | (idx >= self.table.shape[0])
            if bad.any():
                pos = int(np.argmax(bad))
                raise ValueError(
                    f"{name}[{pos}] = {idx[pos]} is out of range [0, {self.table.shape[0]})"
                )
        return np.ascontiguousarray(idx, dtype=np.int32)

    def gather(self, idx: Any, out: np.ndarray | None = None, col: int = 0) -> np.ndarray:
        """``out[:, col:col+dim] = table[idx]`` (``out`` allocated when None)."""
        idx = self.check_indices(idx)
        dim = self.table.shape[1]
        if out is None:
            out = np.empty((idx.shape[0], dim), dtype=self.table.dtype)
        _check_batch_matrix(out, idx.shape[0], col, dim, self.table.dtype, "out")
        self._gather(self.table, idx, out, col)
        return out

    def scatter_add(self, idx: Any, grad: np.ndarray, col: int = 0) -> None:
        """``np.add.at(table, idx, grad[:, col:col+dim])`` (repeated rows accumulate)."""
        idx = self.check_indices(idx)
        _check_batch_matrix(grad, idx.shape[0], col, self.table.shape[1], self.table.dtype, "grad")
        self._scatter(grad, col, idx, self.table)


def _check_batch_matrix(
    arr: np.ndarray, rows: int, col: int, dim: int, dtype: Any, name: str
) -> None:
    if not isinstance(arr, np.ndarray) or arr.ndim != 2 or arr.dtype != dtype:
        raise ValueError(f"{name} must be a 2-D {np.dtype(dtype).name} array")
    if not arr.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    if arr.shape[0] != rows or col < 0 or col + dim > arr.shape[1]:
        raise ValueError(
            f"{name} has shape {arr.shape}: need {rows} rows and columns {col}:{col + dim}"
        )
