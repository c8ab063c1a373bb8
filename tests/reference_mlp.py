"""Naive, obviously-correct NumPy references for the MLP family (float64 loops)."""

from __future__ import annotations

import numpy as np


def gather_ref(table: np.ndarray, idx: np.ndarray) -> np.ndarray:
    out = np.zeros((idx.shape[0], table.shape[1]))
    for b, row in enumerate(idx):
        out[b] = table[row]
    return out


def scatter_add_ref(table: np.ndarray, idx: np.ndarray, grad: np.ndarray) -> np.ndarray:
    out = table.astype(np.float64).copy()
    np.add.at(out, idx, grad.astype(np.float64))
    return out


def summed_rows(n_rows: int, idx: np.ndarray, grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense gradient of the table (np.add.at) and the distinct rows touched."""
    dense = np.zeros((n_rows, grad.shape[1]))
    np.add.at(dense, idx, grad.astype(np.float64))
    return dense, np.unique(idx)


def lazy_adam_ref(table, exp_avg, exp_avg_sq, idx, grad, lr, beta1, beta2, eps, weight_decay, step):
    """Adam (Kingma and Ba 2015, Alg. 1) applied to the rows in ``idx`` only."""
    table = table.astype(np.float64).copy()
    exp_avg = exp_avg.astype(np.float64).copy()
    exp_avg_sq = exp_avg_sq.astype(np.float64).copy()
    dense, rows = summed_rows(table.shape[0], idx, grad)
    for r in rows:
        g = dense[r] + weight_decay * table[r]
        exp_avg[r] = beta1 * exp_avg[r] + (1 - beta1) * g
        exp_avg_sq[r] = beta2 * exp_avg_sq[r] + (1 - beta2) * g * g
        m_hat = exp_avg[r] / (1 - beta1**step)
        v_hat = exp_avg_sq[r] / (1 - beta2**step)
        table[r] = table[r] - lr * m_hat / (np.sqrt(v_hat) + eps)
    return table, exp_avg, exp_avg_sq


def lazy_sgd_ref(table, idx, grad, lr, weight_decay):
    table = table.astype(np.float64).copy()
    dense, rows = summed_rows(table.shape[0], idx, grad)
    for r in rows:
        table[r] = table[r] - lr * (dense[r] + weight_decay * table[r])
    return table


def adam_ref(param, exp_avg, exp_avg_sq, grad, lr, beta1, beta2, eps, weight_decay, step):
    t, m, v = lazy_adam_ref(
        param[None, :], exp_avg[None, :], exp_avg_sq[None, :], np.zeros(1, dtype=np.int64),
        grad[None, :], lr, beta1, beta2, eps, weight_decay, step,
    )  # fmt: skip
    return t[0], m[0], v[0]


def mlp_forward_ref(x: np.ndarray, weights: list, biases: list) -> np.ndarray:
    """Dense ReLU layers then a linear output, element by element."""
    a = x.astype(np.float64)
    for l, (w, b) in enumerate(zip(weights, biases)):
        z = np.zeros((a.shape[0], w.shape[1]))
        for n in range(a.shape[0]):
            for j in range(w.shape[1]):
                z[n, j] = sum(a[n, k] * w[k, j] for k in range(w.shape[0])) + b[j]
        a = np.maximum(z, 0.0) if l < len(weights) - 1 else z
    return a[:, 0]


def loss_ref(out: np.ndarray, y: np.ndarray, loss: str) -> float:
    out = out.astype(np.float64)
    y = y.astype(np.float64)
    if loss == "mse":
        return float(np.mean((out - y) ** 2))
    # log loss of sigmoid(out): -y log p - (1 - y) log(1 - p)
    p = 1.0 / (1.0 + np.exp(-out))
    return float(np.mean(-y * np.log(p) - (1 - y) * np.log1p(-p)))


def numeric_grad(f, arr: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central finite differences of the scalar ``f()`` w.r.t. ``arr`` (in place)."""
    grad = np.zeros(arr.shape)
    flat = arr.reshape(-1)
    g = grad.reshape(-1)
    for k in range(flat.shape[0]):
        old = flat[k]
        flat[k] = old + eps
        up = f()
        flat[k] = old - eps
        down = f()
        flat[k] = old
        g[k] = (up - down) / (2 * eps)
    return grad
