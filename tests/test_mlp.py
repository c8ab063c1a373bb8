"""MLP family: embedding kernels, hand-written gradients, optimisers, MLPRecommender."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastrec as fr
from fastrec._kernels import embedding as embedding_kernels
from fastrec._kernels import fpmode as fpmode_kernels
from fastrec._kernels import optim as optim_kernels
from fastrec.models.base import DivergenceError
from fastrec.models.mlp import MLPRecommender, sample_negatives
from fastrec.nn import (
    MLP,
    SGD,
    Adam,
    Embedding,
    LazyAdam,
    LazySGD,
    bce_with_logits_loss,
    dense_backward,
    dense_forward,
    mse_loss,
    relu_backward,
    relu_forward,
)
from tests.reference_mlp import (
    adam_ref,
    gather_ref,
    lazy_adam_ref,
    lazy_sgd_ref,
    loss_ref,
    mlp_forward_ref,
    numeric_grad,
    scatter_add_ref,
)

from .conftest import BACKENDS, DTYPES, tol

# ---------------------------------------------------------------- strategies


@st.composite
def batches(draw):
    """A table, a batch of indices with repeats, and a wider gradient matrix."""
    n_rows = draw(st.integers(1, 12))
    dim = draw(st.integers(1, 9))
    batch = draw(st.integers(0, 40))
    col = draw(st.integers(0, 3))
    extra = draw(st.integers(0, 3))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    # few rows, many draws: repeated indices are the rule, not the exception
    idx = rng.integers(0, n_rows, size=batch).astype(np.int32)
    table = rng.standard_normal((n_rows, dim))
    grad = rng.standard_normal((batch, col + dim + extra))
    return table, idx, grad, col, rng


def _kernel(name, backend):
    """The kernel ``name`` of the embedding, optim or fpmode family."""
    for family in (embedding_kernels, optim_kernels, fpmode_kernels):
        module = family.get(backend)
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(name)


# ------------------------------------------------------------ gather/scatter


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@given(data=batches())
def test_gather_matches_reference(backend, dtype, data):
    table, idx, grad, col, _ = data
    table = table.astype(dtype)
    out = np.full(grad.shape, 7.0, dtype=dtype)
    _kernel("embedding_gather", backend)(table, idx, out, col)
    dim = table.shape[1]
    np.testing.assert_array_equal(out[:, col : col + dim], gather_ref(table, idx).astype(dtype))
    # columns outside col:col+dim are untouched
    assert np.all(out[:, :col] == 7.0) and np.all(out[:, col + dim :] == 7.0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@given(data=batches())
def test_scatter_add_matches_np_add_at(backend, dtype, data):
    table, idx, grad, col, _ = data
    table = table.astype(dtype)
    grad = grad.astype(dtype)
    dim = table.shape[1]
    expected = scatter_add_ref(table, idx, grad[:, col : col + dim])
    _kernel("embedding_scatter_add", backend)(grad, col, idx, table)
    np.testing.assert_allclose(table, expected, **tol(dtype))


def test_scatter_add_repeated_index_accumulates(backend, dtype):
    table = np.zeros((3, 2), dtype=dtype)
    grad = np.array([[1, 2], [10, 20], [100, 200], [5, 5]], dtype=dtype)
    idx = np.array([1, 1, 1, 0], dtype=np.int32)
    _kernel("embedding_scatter_add", backend)(grad, 0, idx, table)
    np.testing.assert_array_equal(table, [[5, 5], [111, 222], [0, 0]])


def test_embedding_wrapper_validates(backend):
    emb = Embedding(np.zeros((4, 3), dtype=np.float32), backend=backend)
    with pytest.raises(ValueError, match=r"idx\[1\] = 4 is out of range"):
        emb.gather([0, 4])
    with pytest.raises(ValueError, match=r"idx\[0\] = -1"):
        emb.scatter_add([-1], np.zeros((1, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="grad"):
        emb.scatter_add([0], np.zeros((1, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="float32"):
        emb.scatter_add([0], np.zeros((1, 3), dtype=np.float64))
    out = emb.gather(np.array([3, 3], dtype=np.int64))
    assert out.shape == (2, 3) and out.dtype == np.float32


# ------------------------------------------------------------------ optimisers


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@given(data=batches(), step=st.integers(1, 50), weight_decay=st.sampled_from([0.0, 0.1]))
def test_lazy_adam_matches_reference(backend, dtype, data, step, weight_decay):
    table, idx, grad, col, rng = data
    n_rows, dim = table.shape
    exp_avg = rng.standard_normal(table.shape) * 0.1
    exp_avg_sq = rng.uniform(0.0, 0.5, table.shape)
    args = (0.01, 0.9, 0.999, 1e-8, weight_decay)
    exp = lazy_adam_ref(table, exp_avg, exp_avg_sq, idx, grad[:, col : col + dim], *args, step)
    t, m, v, g = (a.astype(dtype) for a in (table, exp_avg, exp_avg_sq, grad))
    slot = np.full(n_rows, -1, dtype=np.int32)
    rows = np.zeros(max(idx.shape[0], 1), dtype=np.int32)
    acc = np.zeros((max(idx.shape[0], 1), dim), dtype=dtype)
    n_unique = _kernel("embedding_adam", backend)(
        t, m, v, idx, g, col, slot, rows, acc, *args, 1 - 0.9**step, 1 - 0.999**step
    )
    assert n_unique == np.unique(idx).size
    assert np.all(slot == -1), "slot must be restored to -1"
    # the reference works from the rounded inputs' exact values
    rtol = {"rtol": 2e-3, "atol": 2e-4} if dtype == np.float32 else tol(dtype)
    for got, want in zip((t, m, v), exp):
        np.testing.assert_allclose(got, want, **rtol)
    untouched = np.setdiff1d(np.arange(n_rows), idx)
    np.testing.assert_array_equal(t[untouched], table[untouched].astype(dtype))
    np.testing.assert_array_equal(m[untouched], exp_avg[untouched].astype(dtype))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@given(data=batches(), weight_decay=st.sampled_from([0.0, 0.05]))
def test_lazy_sgd_matches_reference(backend, dtype, data, weight_decay):
    table, idx, grad, col, _ = data
    n_rows, dim = table.shape
    expected = lazy_sgd_ref(table, idx, grad[:, col : col + dim], 0.1, weight_decay)
    t, g = table.astype(dtype), grad.astype(dtype)
    slot = np.full(n_rows, -1, dtype=np.int32)
    rows = np.zeros(max(idx.shape[0], 1), dtype=np.int32)
    acc = np.zeros((max(idx.shape[0], 1), dim), dtype=dtype)
    n_unique = _kernel("embedding_sgd", backend)(t, idx, g, col, slot, rows, acc, 0.1, weight_decay)
    assert n_unique == np.unique(idx).size and np.all(slot == -1)
    np.testing.assert_allclose(t, expected, **tol(dtype))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@given(n=st.integers(0, 50), step=st.integers(1, 20), seed=st.integers(0, 2**31 - 1))
def test_dense_adam_and_sgd_match_reference(backend, dtype, n, step, seed):
    rng = np.random.default_rng(seed)
    p, g = rng.standard_normal(n), rng.standard_normal(n)
    m, v = rng.standard_normal(n) * 0.1, rng.uniform(0, 0.3, n)
    want = adam_ref(p, m, v, g, 0.01, 0.8, 0.99, 1e-7, 0.01, step)
    got = [a.astype(dtype) for a in (p, m, v)]
    _kernel("adam_update", backend)(
        *got, g.astype(dtype), 0.01, 0.8, 0.99, 1e-7, 0.01, 1 - 0.8**step, 1 - 0.99**step
    )
    rtol = {"rtol": 2e-3, "atol": 2e-4} if dtype == np.float32 else tol(dtype)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, **rtol)
    q = p.astype(dtype)
    _kernel("sgd_update", backend)(q, g.astype(dtype), 0.1, 0.01)
    np.testing.assert_allclose(q, p - 0.1 * (g + 0.01 * p), **tol(dtype))


def test_lazy_optimizer_wrappers(backend):
    table = np.ones((5, 2))
    opt = LazyAdam(table, lr=0.1, backend=backend)
    grad = np.ones((3, 4))
    assert opt.step([4, 4, 1], grad, col=2) == 2
    assert opt.step_count == 1
    # untouched rows and their moments are exactly unchanged (lazy)
    np.testing.assert_array_equal(table[[0, 2, 3]], 1.0)
    np.testing.assert_array_equal(opt.exp_avg[[0, 2, 3]], 0.0)
    # first Adam step moves each touched coordinate by lr (sign of gradient)
    np.testing.assert_allclose(table[[1, 4]], 1.0 - 0.1, rtol=1e-6)
    with pytest.raises(ValueError, match=r"idx\[0\] = 5 is out of range"):
        opt.step([5], np.ones((1, 2)))
    with pytest.raises(ValueError, match="grad"):
        opt.step([0], np.ones((1, 2)), col=1)
    with pytest.raises(ValueError, match="learning_rate"):
        LazySGD(table, lr=0.0)
    with pytest.raises(ValueError, match="table"):
        LazyAdam(np.ones(3))
    sgd = LazySGD(table, lr=0.5, backend=backend)
    sgd.step(np.array([0, 0]), np.ones((2, 2)))
    np.testing.assert_allclose(table[0], 0.0)  # 1 - 0.5 * (1 + 1)
    dense = np.zeros(3, dtype=np.float32)
    Adam(dense, lr=0.1, backend=backend).step(np.array([1, -1, 0], dtype=np.float32))
    np.testing.assert_allclose(dense, [-0.1, 0.1, 0.0], rtol=1e-5)
    SGD(dense, lr=1.0, backend=backend).step(np.ones(3, dtype=np.float32))
    np.testing.assert_allclose(dense, [-1.1, -0.9, -1.0], rtol=1e-5)
    with pytest.raises(ValueError, match="grad"):
        Adam(dense).step(np.ones(2, dtype=np.float32))


# --------------------------------------------------- finite-difference checks


def test_dense_layer_gradients():
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((5, 4)), rng.standard_normal((4, 3)), rng.standard_normal(3)
    upstream = rng.standard_normal((5, 3))

    def f():  # scalar whose gradient w.r.t. the output is `upstream`
        return float(np.sum(dense_forward(x, w, b) * upstream))

    gw, gb = np.zeros_like(w), np.zeros_like(b)
    gx = dense_backward(x, w, upstream, gw, gb)
    np.testing.assert_allclose(gw, numeric_grad(f, w), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gb, numeric_grad(f, b), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gx, numeric_grad(f, x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dense_forward(x, w, b), x @ w + b)


def test_relu_gradients():
    rng = np.random.default_rng(2)
    # keep inputs away from the kink at 0, where the derivative is undefined
    z = rng.uniform(0.1, 1.0, (6, 4)) * rng.choice([-1.0, 1.0], (6, 4))
    upstream = rng.standard_normal((6, 4))

    def f():
        return float(np.sum(relu_forward(z) * upstream))

    a = relu_forward(z)
    assert np.all(a >= 0) and np.all((a == 0) == (z < 0))
    got = relu_backward(a, upstream)
    np.testing.assert_allclose(got, numeric_grad(f, z), rtol=1e-6, atol=1e-8)
    # derivative at exactly 0 is taken as 0
    assert relu_backward(np.zeros(2), np.ones(2)).tolist() == [0.0, 0.0]


@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_loss_gradients(loss):
    rng = np.random.default_rng(3)
    out = rng.standard_normal(7) * 3
    y = rng.integers(0, 2, 7).astype(float) if loss == "bce" else rng.uniform(1, 5, 7)
    fn = mse_loss if loss == "mse" else bce_with_logits_loss
    grad = np.zeros(7)
    value = fn(out, y, grad)
    assert value == pytest.approx(loss_ref(out, y, loss), rel=1e-12)
    np.testing.assert_allclose(grad, numeric_grad(lambda: fn(out, y), out), rtol=1e-6, atol=1e-9)


def test_bce_is_stable_for_large_logits():
    z = np.array([800.0, -800.0])
    y = np.array([1.0, 0.0])
    grad = np.zeros(2)
    assert bce_with_logits_loss(z, y, grad) == pytest.approx(0.0, abs=1e-12)
    assert np.all(np.isfinite(grad))
    assert bce_with_logits_loss(z, 1 - y) == pytest.approx(800.0)


def _random_mlp(rng, sizes=(6, 5, 4), dtype=np.float64):
    mlp = MLP(sizes[0], sizes[1:], dtype)
    mlp.init(rng, output_bias=0.3)
    # non-zero biases: with zero ones, a sample whose previous layer is all
    # dead sits exactly on a ReLU kink and finite differences are meaningless
    for b in mlp.biases:
        b[...] = rng.standard_normal(b.shape) * 0.1
    return mlp


def test_mlp_forward_matches_reference():
    rng = np.random.default_rng(4)
    mlp = _random_mlp(rng)
    ws = mlp.workspace(9)
    ws.x[...] = rng.standard_normal(ws.x.shape)
    want = mlp_forward_ref(ws.x, mlp.weights, mlp.biases)
    np.testing.assert_allclose(mlp.forward(ws), want, rtol=1e-10)
    np.testing.assert_allclose(mlp.predict(ws.x.copy(), block=4), want, rtol=1e-10)
    assert mlp.n_params == sum(w.size + b.size for w, b in zip(mlp.weights, mlp.biases))


def test_mlp_backward_matches_finite_differences():
    rng = np.random.default_rng(5)
    mlp = _random_mlp(rng, sizes=(4, 6, 5, 3))
    ws = mlp.workspace(8)
    ws.x[...] = rng.standard_normal(ws.x.shape)
    upstream = rng.standard_normal(8)

    def f():
        return float(np.dot(mlp.forward(ws), upstream))

    f()
    ws.grad_output[...] = upstream
    grad_x = mlp.backward(ws).copy()
    analytic = mlp.grads.copy()
    np.testing.assert_allclose(analytic, numeric_grad(f, mlp.params), rtol=1e-5, atol=1e-8)
    x = ws.x.copy()

    def fx():
        ws.x[...] = x
        return f()

    np.testing.assert_allclose(grad_x, numeric_grad(fx, x), rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_whole_network_gradients(loss, backend):
    """Embeddings + MLP + loss: the training step's gradients vs finite differences."""
    rng = np.random.default_rng(6)
    n_users, n_items, d, batch = 5, 4, 3, 11
    U = rng.standard_normal((n_users, d))
    V = rng.standard_normal((n_items, d))
    mlp = _random_mlp(rng, sizes=(2 * d, 7, 4))
    users = rng.integers(0, n_users, batch).astype(np.int32)
    items = rng.integers(0, n_items, batch).astype(np.int32)
    y = rng.integers(0, 2, batch).astype(float) if loss == "bce" else rng.uniform(1, 5, batch)
    fn = mse_loss if loss == "mse" else bce_with_logits_loss
    gather = _kernel("embedding_gather", backend)
    ws = mlp.workspace(batch)

    def f():
        gather(U, users, ws.inputs[0], 0)
        gather(V, items, ws.inputs[0], d)
        return fn(mlp.forward(ws), y)

    value = f()
    assert value == pytest.approx(
        loss_ref(mlp_forward_ref(np.hstack([U[users], V[items]]), mlp.weights, mlp.biases), y, loss)
    )
    fn(ws.output, y, ws.grad_output)
    grad_x = mlp.backward(ws)
    grad_params = mlp.grads.copy()
    scatter = _kernel("embedding_scatter_add", backend)
    grad_U, grad_V = np.zeros_like(U), np.zeros_like(V)
    scatter(grad_x, 0, users, grad_U)
    scatter(grad_x, d, items, grad_V)
    fd = dict(rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(grad_params, numeric_grad(f, mlp.params), **fd)
    np.testing.assert_allclose(grad_U, numeric_grad(f, U), **fd)
    np.testing.assert_allclose(grad_V, numeric_grad(f, V), **fd)


# ------------------------------------------------------------------- the model


def _signal_data(n_users=60, n_items=40, density=0.5, seed=0, implicit=False):
    """Ratings from a rank-2 model plus noise: learnable structure."""
    rng = np.random.default_rng(seed)
    P, Q = rng.standard_normal((n_users, 2)), rng.standard_normal((n_items, 2))
    mask = rng.random((n_users, n_items)) < density
    u, i = np.nonzero(mask)
    if implicit:  # each user interacts with the items of highest affinity
        score = P @ Q.T
        top = np.argsort(-score, axis=1)[:, : n_items // 4]
        u = np.repeat(np.arange(n_users), top.shape[1])
        i = top.ravel()
        return fr.Interactions.from_arrays(u, i)
    r = np.clip(np.round(3 + 0.8 * (P[u] * Q[i]).sum(1) + 0.2 * rng.standard_normal(u.size)), 1, 5)
    return fr.Interactions.from_arrays(u, i, r)


def _small(**kw):
    params = dict(embedding_dim=8, hidden=(16, 8), epochs=6, batch_size=64, random_state=0)
    params.update(kw)
    return MLPRecommender(**params)


def test_training_reduces_validation_loss_mse(backend):
    X = _signal_data()
    model = _small(epochs=40, learning_rate=5e-3, patience=40, backend=backend).fit(X)
    vals = [h["val_loss"] for h in model.history_]
    assert len(vals) == 40
    assert min(vals) < 0.5 * vals[0]
    # and beats predicting the global mean on the held-out part
    assert min(vals) < 0.5 * np.var(X.matrix.data)


def test_training_reduces_validation_loss_bce(backend):
    X = _signal_data(implicit=True)
    model = _small(loss="bce", epochs=25, learning_rate=5e-3, patience=25, backend=backend)
    model.fit(X)
    vals = [h["val_loss"] for h in model.history_]
    assert min(vals) < 0.8 * vals[0]
    # ranking learned: held-out-style check on training positives vs others
    scores = model._score_users(np.arange(X.n_users, dtype=np.int32))
    pos = X.matrix.toarray() > 0
    assert scores[pos].mean() > scores[~pos].mean() + 1.0


def test_same_seed_same_weights(backend):
    X = _signal_data(seed=3)
    a = _small(backend=backend).fit(X)
    b = _small(backend=backend).fit(X)
    np.testing.assert_array_equal(a.user_embeddings_, b.user_embeddings_)
    np.testing.assert_array_equal(a.item_embeddings_, b.item_embeddings_)
    np.testing.assert_array_equal(a._mlp.params, b._mlp.params)
    c = _small(backend=backend, random_state=1).fit(X)
    assert not np.array_equal(a._mlp.params, c._mlp.params)


def test_backends_agree():
    X = _signal_data(seed=4)
    a = _small(backend="numba", dtype="float64", epochs=2).fit(X)
    b = _small(backend="cython", dtype="float64", epochs=2).fit(X)
    np.testing.assert_allclose(a._mlp.params, b._mlp.params, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("loss", ["mse", "bce"])
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_fit_predict_recommend_save_load(tmp_path, loss, optimizer):
    X = _signal_data(seed=5, implicit=loss == "bce")
    model = _small(loss=loss, optimizer=optimizer, weight_decay=1e-4, epochs=3,
                   learning_rate=0.05 if optimizer == "sgd" else 1e-3)  # fmt: skip
    seen = []
    model.fit(X, callback=lambda epoch, info: seen.append((epoch, info["train_loss"])))
    assert [e for e, _ in seen] == list(range(1, model.n_epochs_ + 1))
    users, items = X.user_ids[:7], X.item_ids[3:10]
    pred = model.predict(users, items)
    if loss == "mse":
        assert np.all((pred >= X.matrix.data.min()) & (pred <= X.matrix.data.max()))
    else:
        assert np.all((pred > 0) & (pred < 1))
    # recommend's scoring (split first layer) agrees with the pairwise network
    uidx = np.arange(4, dtype=np.int32)
    scores = model._score_users(uidx)
    ii = np.tile(np.arange(X.n_items, dtype=np.int32), 4)
    direct = model._raw_output(np.repeat(uidx, X.n_items), ii).reshape(4, X.n_items)
    np.testing.assert_allclose(scores, direct, rtol=1e-4, atol=1e-5)
    ids, top = model.recommend(X.user_ids[:4], n=5)
    seen_items = X.matrix[:4].toarray() > 0
    for row in range(4):
        assert not seen_items[row, X.item_index(ids[row])].any()
        assert np.all(np.diff(top[row]) <= 0)
    path = tmp_path / "mlp.npz"
    model.save(path)
    loaded = fr.load(path)
    assert isinstance(loaded, MLPRecommender) and loaded.hidden == (16, 8)
    np.testing.assert_array_equal(loaded.predict(users, items), pred)
    ids2, top2 = loaded.recommend(X.user_ids[:4], n=5)
    np.testing.assert_array_equal(ids2, ids)
    np.testing.assert_array_equal(top2, top)


def test_unknown_ids_fall_back():
    X = _signal_data(seed=6)
    model = _small(epochs=1).fit(X)
    pred = model.predict([10_000, X.user_ids[0]], [X.item_ids[0], 10_000])
    assert pred[0] == pytest.approx(model.item_mean_[0])
    assert pred[1] == pytest.approx(model.user_mean_[0])
    ids, _ = model.recommend([10_000], n=3)
    assert list(ids[0]) == list(X.item_ids[np.argsort(-model.item_count_, kind="stable")[:3]])


def test_load_rejects_tampered_shapes(tmp_path):
    X = _signal_data(seed=7)
    model = _small(epochs=1).fit(X)
    path = tmp_path / "m.npz"
    model.save(path)
    arrays = dict(np.load(path))
    arrays["model.dense_params"] = arrays["model.dense_params"][:-1]
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    with pytest.raises(ValueError, match="dense_params"):
        fr.load(path)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(hidden=()), "hidden"),
        (dict(hidden=(8, 0)), r"hidden\[1\]"),
        (dict(hidden=8), "hidden"),
        (dict(embedding_dim=0), "embedding_dim"),
        (dict(batch_size=0), "batch_size"),
        (dict(epochs=0), "epochs"),
        (dict(loss="hinge"), "loss"),
        (dict(loss="bce", negatives=0), "negatives"),
        (dict(optimizer="rmsprop"), "optimizer"),
        (dict(learning_rate=0.0), "learning_rate"),
        (dict(weight_decay=-1.0), "weight_decay"),
        (dict(validation_fraction=1.0), "validation_fraction"),
        (dict(patience=0), "patience"),
        (dict(dtype="int32"), "dtype"),
        (dict(random_state=-1), "random_state"),
        (dict(backend="cuda"), "backend"),
    ],
)
def test_bad_parameters_raise_before_work(params, match):
    X = _signal_data(seed=8)
    model = _small(**params)
    with pytest.raises(ValueError, match=match):
        model.fit(X)
    assert not hasattr(model, "user_embeddings_")


def test_mse_ignores_negatives_and_no_validation():
    X = _signal_data(seed=9)
    model = _small(negatives=0, validation_fraction=0.0, epochs=3).fit(X)
    assert model.n_epochs_ == 3 and "val_loss" not in model.history_[-1]


def test_divergence_raises_clear_error():
    X = _signal_data(seed=10)
    model = _small(optimizer="sgd", learning_rate=1e30, epochs=3)
    with pytest.raises(DivergenceError, match="diverged"):
        model.fit(X)
    with pytest.raises(ValueError, match="not fitted"):
        model.predict([0], [0])


def test_early_stopping_keeps_best_epoch():
    X = _signal_data(seed=11, density=0.2)
    # a large learning rate overfits quickly, so validation loss turns up
    model = _small(epochs=60, learning_rate=0.05, patience=2).fit(X)
    vals = [h["val_loss"] for h in model.history_]
    assert model.n_epochs_ < 60
    assert model.best_epoch_ == int(np.argmin(vals)) + 1
    assert model.n_epochs_ == model.best_epoch_ + 2


def test_sample_negatives_never_returns_positives():
    rng = np.random.default_rng(0)
    X = _signal_data(seed=12, implicit=True)
    m = X.matrix
    users = np.repeat(np.arange(X.n_users, dtype=np.int32), np.diff(m.indptr))
    keys = users.astype(np.int64) * X.n_items + m.indices
    items, ok = sample_negatives(rng, np.repeat(users, 3), keys, X.n_items)
    assert ok.all()
    dense = m.toarray() > 0
    assert not dense[np.repeat(users, 3), items].any()
    # a user who interacted with every item has no negatives
    full = np.arange(5, dtype=np.int64)
    items, ok = sample_negatives(rng, np.zeros(4, dtype=np.int32), full, 5)
    assert not ok.any()


# ------------------------------------------------------------ subnormal floats


def test_optimizer_kernels_flush_subnormals(backend, dtype):
    tiny = np.finfo(dtype).tiny
    p = np.array([tiny / 4, 1.0, -tiny / 8], dtype=dtype)
    _kernel("sgd_update", backend)(p, np.zeros(3, dtype=dtype), 0.1, 0.0)
    assert p.tolist() == [0.0, 1.0, 0.0]
    table = np.array([[tiny / 4, 2.0]], dtype=dtype)
    m, v = np.zeros_like(table), np.zeros_like(table)
    grad = np.zeros((1, 2), dtype=dtype)
    slot = np.full(1, -1, dtype=np.int32)
    rows, acc = np.zeros(1, dtype=np.int32), np.zeros((1, 2), dtype=dtype)
    _kernel("embedding_adam", backend)(
        table, m, v, np.zeros(1, dtype=np.int32), grad, 0, slot, rows, acc,
        0.1, 0.9, 0.999, 1e-8, 0.0, 0.1, 0.001,
    )  # fmt: skip
    assert table[0, 0] == 0.0 and table[0, 1] == 2.0


def test_flush_denormals_mode_is_set_and_restored(backend):
    from fastrec.nn.fpmode import flush_denormals

    get = _kernel("get_fp_state", backend)
    module = fpmode_kernels.get(backend)
    before = get()
    with flush_denormals(backend) as active:
        if active:
            assert get() & module.FTZ_DAZ == module.FTZ_DAZ
            # a product that underflows into the subnormal range becomes exactly 0
            assert np.float32(1e-30) * np.float32(1e-15) == 0.0
    assert get() == before
    if module.HAVE_FP_STATE:
        assert np.float32(1e-30) * np.float32(1e-15) > 0.0
    _small(epochs=1, backend=backend).fit(_signal_data(seed=13))
    assert get() == before, "fit must restore the floating-point mode"
