"""The foundation kernels (CSR scan, top-k) on both backends against references."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import fastrec as fr
from fastrec import _backend
from fastrec._kernels import csr as csr_kernels
from fastrec._kernels import sgd as sgd_kernels
from fastrec._kernels import topk as topk_kernels
from tests.reference_core import csr_check_reference, relabel_rows_reference, topk_reference

from .conftest import BACKENDS, DTYPES, tol


@st.composite
def score_blocks(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    n = draw(st.integers(0, 12))
    m = draw(st.integers(1, 30))
    k = draw(st.integers(1, 35))
    ties = draw(st.booleans())
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 4, (n, m)).astype(float) if ties else rng.normal(size=(n, m))
    if draw(st.booleans()) and n:
        scores[rng.random((n, m)) < 0.1] = -np.inf
    density = draw(st.sampled_from([0.0, 0.2, 0.9, 1.0]))
    mask = rng.random((n, m)) < density
    return scores, k, sp.csr_matrix(mask.astype(np.float32))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@given(block=score_blocks())
def test_topk_matches_reference(backend, dtype, block):
    _check_topk(backend, dtype, block)


def _check_topk(backend, dtype, block):
    scores, k, exclude = block
    scores = scores.astype(dtype)
    idx, val = fr.topk(scores, k, exclude=exclude, backend=backend)
    excl_rows = [
        exclude.indices[exclude.indptr[r] : exclude.indptr[r + 1]] for r in range(scores.shape[0])
    ]
    # fr.topk clamps k to the number of columns
    ref_idx, ref_val = topk_reference(scores, min(k, scores.shape[1]), excl_rows)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(val, ref_val.astype(dtype))
    assert idx.dtype == np.int32 and val.dtype == dtype


@st.composite
def wide_score_rows(draw):
    """Rows long enough for the kernels' chunked threshold scan (chunks of 64).

    Covers scores rising along the row (every chunk has a hit), falling (none
    after the first k), ties at the threshold across chunk borders, -inf runs,
    and exclusions that cut the row into short segments.
    """
    seed = draw(st.integers(0, 2**31 - 1))
    n = draw(st.integers(1, 6))
    m = draw(st.integers(60, 400))
    k = draw(st.integers(1, 70))
    shape = draw(st.sampled_from(["normal", "rising", "falling", "ties", "steps"]))
    rng = np.random.default_rng(seed)
    if shape == "normal":
        scores = rng.normal(size=(n, m))
    elif shape == "rising":
        scores = np.tile(np.arange(m, dtype=float), (n, 1)) + rng.normal(0, 0.5, (n, m))
    elif shape == "falling":
        scores = np.tile(-np.arange(m, dtype=float), (n, 1))
    elif shape == "ties":
        scores = rng.integers(0, 3, (n, m)).astype(float)
    else:  # constant runs whose length straddles the chunk borders
        scores = np.repeat(rng.integers(0, 5, (n, m // 37 + 1)), 37, axis=1)[:, :m].astype(float)
    if draw(st.booleans()):
        scores[rng.random((n, m)) < 0.2] = -np.inf
    density = draw(st.sampled_from([0.0, 0.05, 0.5, 0.97]))
    mask = rng.random((n, m)) < density
    return scores, k, sp.csr_matrix(mask.astype(np.float32))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@given(block=wide_score_rows())
def test_topk_wide_rows_match_reference(backend, dtype, block):
    _check_topk(backend, dtype, block)


def test_topk_exclusion_given_as_row_pointer_slice(backend):
    # recommend passes a slice of the full matrix's row pointer (absolute
    # positions into the whole indices array) for a run of consecutive users
    from fastrec.topk import topk_trusted

    rng = np.random.default_rng(7)
    scores = rng.normal(size=(40, 300)).astype(np.float32)
    full = sp.random(100, 300, density=0.3, format="csr", random_state=1)
    full.indices = full.indices.astype(np.int32)
    full.sort_indices()
    rows = slice(30, 70)
    expect = topk_trusted(scores, 12, full[rows], backend, 1)
    pair = (full.indptr[30:71].astype(np.int64), full.indices)
    got = topk_trusted(scores, 12, pair, backend, 1)
    np.testing.assert_array_equal(got[0], expect[0])
    np.testing.assert_array_equal(got[1], expect[1])
    ref_idx, _ = topk_reference(scores, 12, [full[r].indices for r in range(30, 70)])
    np.testing.assert_array_equal(got[0], ref_idx)


def test_topk_ties_break_by_ascending_index(backend):
    scores = np.array([[1.0, 3.0, 3.0, 1.0, 3.0]], dtype=np.float32)
    idx, val = fr.topk(scores, 4, backend=backend)
    assert idx.tolist() == [[1, 2, 4, 0]]
    assert val.tolist() == [[3.0, 3.0, 3.0, 1.0]]


def test_topk_k_larger_than_candidates_pads(backend):
    # k beyond the 3 columns is clamped to 3; the excluded entry leaves one padded slot
    scores = np.arange(3, dtype=np.float64)[None, :]
    exclude = sp.csr_matrix(np.array([[0, 1, 0]]))
    idx, val = fr.topk(scores, 4, exclude=exclude, backend=backend)
    assert idx.tolist() == [[2, 0, -1]]
    assert val[0, 2] == -np.inf


def test_topk_thread_invariance(backend):
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 50, (301, 257)).astype(np.float32)
    a = fr.topk(scores, 17, backend=backend, num_threads=1)
    b = fr.topk(scores, 17, backend=backend, num_threads=2)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_topk_backends_agree():
    rng = np.random.default_rng(4)
    scores = rng.normal(size=(50, 80))
    a = fr.topk(scores, 9, backend="numba")
    b = fr.topk(scores, 9, backend="cython")
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_topk_bad_input():
    with pytest.raises(ValueError, match=r"NaN.*\(1, 2\)"):
        s = np.zeros((2, 3))
        s[1, 2] = np.nan
        fr.topk(s, 2)
    with pytest.raises(ValueError, match="k must be >= 1"):
        fr.topk(np.zeros((2, 3)), 0)
    with pytest.raises(ValueError, match="2-dimensional"):
        fr.topk(np.zeros(3), 1)
    with pytest.raises(ValueError, match="exclude must have 3 columns"):
        fr.topk(np.zeros((2, 3)), 1, exclude=sp.csr_matrix((2, 4)))
    with pytest.raises(ValueError, match="numeric"):
        fr.topk(np.array([["a", "b"]]), 1)
    with pytest.raises(ValueError, match="backend"):
        fr.topk(np.zeros((2, 3)), 1, backend="fortran")
    with pytest.raises(ValueError, match="num_threads"):
        fr.topk(np.zeros((2, 3)), 1, num_threads=-1)


@st.composite
def csr_structures(draw):
    n_rows = draw(st.integers(0, 8))
    n_cols = draw(st.integers(1, 10))
    counts = draw(st.lists(st.integers(0, 5), min_size=n_rows, max_size=n_rows))
    indptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int32)
    indices = np.array(
        draw(
            st.lists(
                st.integers(-2, n_cols + 1), min_size=int(indptr[-1]), max_size=int(indptr[-1])
            )
        ),
        dtype=np.int32,
    )
    if draw(st.booleans()):  # mostly-valid structures too
        for r in range(n_rows):
            row = np.sort(np.unique(np.clip(indices[indptr[r] : indptr[r + 1]], 0, n_cols - 1)))
            indices[indptr[r] : indptr[r] + row.size] = row
            indices[indptr[r] + row.size : indptr[r + 1]] = n_cols  # any leftovers are faults
    if draw(st.booleans()) and n_rows:
        indptr[draw(st.integers(0, n_rows))] += draw(st.integers(-2, 2))
        indptr[-1] = indices.size
    return indptr, indices, n_cols


@pytest.mark.parametrize("backend", BACKENDS)
@given(structure=csr_structures())
def test_csr_check_matches_reference(backend, structure):
    indptr, indices, n_cols = structure
    kernel = csr_kernels.get(backend).check_csr
    code, pos = kernel(indptr, indices, n_cols)
    assert (int(code), int(pos)) == csr_check_reference(indptr, indices, n_cols)
    code64, pos64 = kernel(indptr.astype(np.int64), indices, n_cols)
    assert (int(code64), int(pos64)) == (int(code), int(pos))


def _relabel(backend, indptr, indices, data, label, block_of_label, n_blocks):
    """Call relabel_rows with outputs and scratch pre-filled with junk (all must be written)."""
    kernel = sgd_kernels.get(backend).relabel_rows
    nnz, n_rows, n_cols = indices.shape[0], indptr.shape[0] - 1, label.shape[0]
    out_labels = np.full(nnz, -7, dtype=np.int32)
    out_data = np.full(nnz, np.nan, dtype=data.dtype)
    block_ptr = np.full((n_rows, n_blocks + 1), -7, dtype=np.int64)
    label_start = np.full(n_cols + 1, 99, dtype=np.int64)
    scratch_rows = np.full(nnz, 12345, dtype=np.int32)
    scratch_data = np.full(nnz, np.inf, dtype=data.dtype)
    kernel(
        indptr, indices, data, label, block_of_label, out_labels, out_data, block_ptr,
        label_start, scratch_rows, scratch_data,
    )  # fmt: skip
    return out_labels, out_data, block_ptr


@st.composite
def relabel_problems(draw):
    """Random CSR (empty rows, no rows, no entries, one column), label permutation, blocks."""
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    n_rows = draw(st.integers(0, 25))
    n_cols = draw(st.sampled_from([1, 2, 3, 4, 5, 8, 9, 17, 64, 65]))  # digit widths
    density = draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    mask = rng.random((n_rows, n_cols)) < density
    if n_rows and draw(st.booleans()):
        mask[rng.random(n_rows) < 0.3] = False  # more empty rows
    matrix = sp.csr_matrix(np.where(mask, rng.normal(size=mask.shape), 0.0))
    indptr = matrix.indptr.astype(np.int64)
    indices = matrix.indices.astype(np.int32)
    data = matrix.data  # distinct values: a wrong permutation shows
    label = rng.permutation(n_cols).astype(np.int32)
    n_blocks = draw(st.integers(1, 5))
    block_of_label = np.sort(rng.integers(0, n_blocks, n_cols)).astype(np.int32)
    return indptr, indices, data, label, block_of_label, n_blocks


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@given(problem=relabel_problems())
@settings(max_examples=40, deadline=None)
def test_relabel_rows_matches_reference(backend, dtype, problem):
    indptr, indices, data, label, block_of_label, n_blocks = problem
    data = data.astype(dtype)
    got = _relabel(backend, indptr, indices, data, label, block_of_label, n_blocks)
    ref = relabel_rows_reference(indptr, indices, data, label, block_of_label, n_blocks)
    for g, r in zip(got, ref):
        assert g.dtype == r.dtype and g.shape == r.shape
        np.testing.assert_array_equal(g, r)
    # the SciPy path the kernel replaces gives the same rows
    n_rows, n_cols = indptr.shape[0] - 1, label.shape[0]
    relabelled = sp.csr_matrix((data, label[indices], indptr), shape=(n_rows, n_cols))
    ordered = relabelled.tocsc().tocsr()
    np.testing.assert_array_equal(got[0], ordered.indices)
    np.testing.assert_array_equal(got[1], ordered.data)


def test_relabel_rows_by_hand(backend, dtype):
    # row 0: columns 0, 2, 3; row 1 empty; row 2: columns 0, 1
    indptr = np.array([0, 3, 3, 5], dtype=np.int64)
    indices = np.array([0, 2, 3, 0, 1], dtype=np.int32)
    data = np.array([1.0, 2.0, 3.0, 4.0, 5.0], dtype=dtype)
    label = np.array([2, 0, 3, 1], dtype=np.int32)  # column c -> label[c]
    block_of_label = np.array([0, 0, 2, 2], dtype=np.int32)  # block 1 is empty
    out_labels, out_data, block_ptr = _relabel(
        backend, indptr, indices, data, label, block_of_label, 3
    )
    # row 0: labels 2, 3, 1 -> 1, 2, 3 (values 3, 1, 2); row 2: labels 2, 0 -> 0, 2 (values 5, 4)
    assert out_labels.tolist() == [1, 2, 3, 0, 2]
    assert out_data.tolist() == [3.0, 1.0, 2.0, 5.0, 4.0]
    assert block_ptr.tolist() == [[0, 1, 1, 3], [3, 3, 3, 3], [3, 4, 4, 5]]
    # one block: block_ptr is the row pointer's two columns
    _, _, one = _relabel(backend, indptr, indices, data, label, np.zeros(4, np.int32), 1)
    assert one.tolist() == [[0, 3], [3, 3], [3, 5]]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "n_rows, n_cols, density",
    [
        (120, 1000, 0.6),  # 72k entries: several blocks of rows (32768 entries each)
        (3000, 2**20 + 1, 1.5e-6),  # 21-bit labels: blocks of at most 1024 rows
        (2, 40000, 0.99),  # rows longer than a block
    ],
)
def test_relabel_rows_across_row_blocks(backend, n_rows, n_cols, density):
    rng = np.random.default_rng(n_rows)
    matrix = sp.random(n_rows, n_cols, density=density, format="csr", random_state=rng)
    matrix.data = rng.normal(size=matrix.nnz)
    indptr = matrix.indptr.astype(np.int64)
    indices = matrix.indices.astype(np.int32)
    label = rng.permutation(n_cols).astype(np.int32)
    block_of_label = (np.arange(n_cols) * 3 // n_cols).astype(np.int32)
    got = _relabel(backend, indptr, indices, matrix.data, label, block_of_label, 3)
    ref = relabel_rows_reference(indptr, indices, matrix.data, label, block_of_label, 3)
    for g, r in zip(got, ref):
        np.testing.assert_array_equal(g, r)


def test_relabel_rows_degenerate_and_bad_shapes(backend):
    # no rows, no entries
    empty = np.zeros(0, dtype=np.int32)
    got = _relabel(
        backend, np.zeros(1, np.int64), empty, np.zeros(0), np.arange(3, dtype=np.int32),
        np.zeros(3, np.int32), 2,
    )  # fmt: skip
    assert [g.shape for g in got] == [(0,), (0,), (0, 3)]
    # rows but no columns (so no entries)
    got = _relabel(
        backend, np.zeros(4, np.int64), empty, np.zeros(0, np.float32), empty, empty, 1
    )  # fmt: skip
    assert got[2].tolist() == [[0, 0]] * 3
    kernel = sgd_kernels.get(backend).relabel_rows
    indptr = np.array([0, 1], dtype=np.int64)
    one = np.zeros(1, dtype=np.int32)
    vals = np.ones(1)
    with pytest.raises(ValueError, match="shapes"):  # block_ptr has 2 rows for 1
        kernel(
            indptr, one, vals, one, one, one.copy(), vals.copy(), np.zeros((2, 2), np.int64),
            np.zeros(2, np.int64), one.copy(), vals.copy(),
        )  # fmt: skip
    with pytest.raises(ValueError, match="shapes"):  # no block at all
        kernel(
            indptr, one, vals, one, one, one.copy(), vals.copy(), np.zeros((1, 1), np.int64),
            np.zeros(2, np.int64), one.copy(), vals.copy(),
        )  # fmt: skip


def test_backend_resolution(monkeypatch):
    assert _backend.resolve_backend("numba") == "numba"
    assert _backend.resolve_backend("cython") == "cython"
    assert _backend.resolve_backend("auto") == "cython"
    with pytest.raises(ValueError, match="backend must be"):
        _backend.resolve_backend("gpu")
    # a missing extension: auto falls back to numba, explicit cython is a clear error
    monkeypatch.setattr(_backend, "_cython_error", lambda: "No module named _openmp")
    assert _backend.resolve_backend("auto") == "numba"
    with pytest.raises(ValueError, match="backend='cython' is not available"):
        _backend.resolve_backend("cython")
    assert _backend.available_backends() == ["numba"]


def test_thread_control_is_restored():
    import numba
    from threadpoolctl import threadpool_info

    omp = _backend._module("cython", "_openmp")
    topk_kernels.get("numba")  # Numba's pool is running from here
    before = (numba.get_num_threads(), omp.get_max_threads())
    with _backend.threads(1) as n:
        assert n == 1
        assert numba.get_num_threads() == 1
        assert omp.get_max_threads() == 1
        blas = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
        assert all(t == 1 for t in blas)
    assert (numba.get_num_threads(), omp.get_max_threads()) == before
    with pytest.raises(RuntimeError):
        with _backend.threads(1):
            raise RuntimeError("boom")
    assert (numba.get_num_threads(), omp.get_max_threads()) == before
    with _backend.threads(0) as n:
        assert n == _backend.cpu_count()


def test_cython_path_does_not_start_numbas_pool_and_late_start_honours_threads():
    """Regression: Numba's OpenMP pool, once started, slowed PyTorch's own OpenMP
    training about 6x in the same process; the Cython path must not start it.
    When a Numba kernel is first fetched inside threads(n), the pool uses n."""
    import subprocess
    import sys

    code = (
        "import numpy as np, numba, fastrec as fr, fastrec._kernels.topk\n"
        "from fastrec import _backend\n"
        "fr.topk(np.random.rand(20, 30), 3, backend='cython')\n"
        "assert not _backend._numba_pool_running(), 'cython path started numba'\n"
        "with _backend.threads(1):\n"
        "    k = fastrec._kernels.topk.get('numba').topk_dense\n"
        "    assert numba.get_num_threads() == 1\n"
        "assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_show_config_reports_backends(capsys):
    info = fr.show_config()
    out = capsys.readouterr().out
    assert "cython" in info["backends"] and "numba" in info["backends"]
    assert isinstance(info["cython_openmp"], bool)
    assert "fastrec" in out and info["cython_build_target"] in out


@st.composite
def factor_problems(draw):
    """Factor products crossing the fused kernel's tiles (64 rows x 2048 items)."""
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    n_vectors = draw(st.integers(1, 150))
    n_items = draw(st.sampled_from([1, 7, 300, 2048, 2049, 4500]))
    f = draw(st.integers(1, 9))
    m = draw(st.integers(0, 140))
    k = draw(st.integers(1, 25))
    integer = draw(st.booleans())  # integer factors: exact products, many ties
    if integer:
        U = rng.integers(-2, 3, (n_vectors, f)).astype(float)
        V = rng.integers(-2, 3, (n_items, f)).astype(float)
    else:
        U, V = rng.normal(size=(n_vectors, f)), rng.normal(size=(n_items, f))
    offset = rng.integers(-1, 2, n_items).astype(float) if draw(st.booleans()) else None
    density = draw(st.sampled_from([0.0, 0.01, 0.3, 0.99]))
    exclude = sp.csr_matrix((rng.random((n_vectors, n_items)) < density).astype(np.float32))
    exclude.indices = exclude.indices.astype(np.int32)
    rows = rng.integers(0, n_vectors, m).astype(np.int32)
    return U, V, offset, exclude, rows, k, integer


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@given(problem=factor_problems())
@settings(max_examples=25, deadline=None)
def test_factor_topk_matches_reference(backend, dtype, problem):
    from fastrec.topk import factor_topk_trusted

    U, V, offset, exclude, rows, k, integer = problem
    U, V = U.astype(dtype), V.astype(dtype)
    off = None if offset is None else offset.astype(dtype)
    idx, val = factor_topk_trusted(U, V, rows, k, off, exclude, backend, 2)
    scores = (U[rows] @ V.T + (0 if off is None else off)).astype(dtype)
    excl_rows = [exclude.indices[exclude.indptr[r] : exclude.indptr[r + 1]] for r in rows]
    ref_idx, ref_val = topk_reference(scores, k, excl_rows)
    assert idx.shape == (rows.shape[0], k) and val.dtype == dtype
    if integer:  # exact scores: the very same ranking, ties included
        np.testing.assert_array_equal(idx, ref_idx)
        np.testing.assert_array_equal(val, ref_val.astype(dtype))
    else:  # BLAS may sum in another order than NumPy's product: values to rounding
        np.testing.assert_array_equal(idx == -1, ref_idx == -1)
        np.testing.assert_allclose(val, ref_val.astype(dtype), **tol(dtype))
        # each returned index scores what the kernel says it scores, is not
        # excluded and is returned once
        got = np.take_along_axis(scores, np.maximum(idx, 0), axis=1)
        np.testing.assert_allclose(np.where(idx >= 0, got, -np.inf), val, **tol(dtype))
        for r, banned in enumerate(excl_rows):
            kept = idx[r][idx[r] >= 0]
            assert len(set(kept.tolist())) == kept.size
            assert not set(kept.tolist()) & set(banned.tolist())


def test_factor_topk_thread_invariance_and_backends_agree():
    from fastrec.topk import factor_topk_trusted

    rng = np.random.default_rng(5)
    U = rng.integers(-3, 4, (500, 6)).astype(np.float32)
    V = rng.integers(-3, 4, (5000, 6)).astype(np.float32)
    rows = np.arange(500, dtype=np.int32)
    ref = factor_topk_trusted(U, V, rows, 20, None, None, "numba", 1)
    for backend in BACKENDS:
        for threads in (1, 2):
            got = factor_topk_trusted(U, V, rows, 20, None, None, backend, threads)
            np.testing.assert_array_equal(got[0], ref[0])
            np.testing.assert_array_equal(got[1], ref[1])
