"""CSR kernels: structure scan, relabel-and-sort rows (twin of ``kernels/cython/csr.pyx``)."""

from __future__ import annotations

import numpy as np

from ._config import jit

# Codes returned by check_csr; fastrec/_validation.py turns them into messages.
CSR_OK = 0
CSR_INDPTR_START = 1  # indptr[0] != 0
CSR_INDPTR_DECREASING = 2  # indptr[pos + 1] < indptr[pos]
CSR_INDEX_NEGATIVE = 3  # indices[pos] < 0
CSR_INDEX_TOO_LARGE = 4  # indices[pos] >= n_cols
CSR_INDEX_UNSORTED = 5  # indices[pos] <= indices[pos - 1] within a row (unsorted or duplicate)


@jit
def check_csr(indptr, indices, n_cols):
    """Scan a CSR structure; return ``(code, position)`` of the first fault.

    ``indptr`` has ``n_rows + 1`` entries and ``indptr[-1] == len(indices)``
    (the caller checks both first). Position is into ``indptr`` for codes 1-2
    and into ``indices`` otherwise; ``(0, -1)`` means the structure is valid.
    """
    if indptr[0] != 0:
        return CSR_INDPTR_START, 0
    n_rows = indptr.shape[0] - 1
    for row in range(n_rows):
        if indptr[row + 1] < indptr[row]:
            return CSR_INDPTR_DECREASING, row + 1
    for row in range(n_rows):
        start = indptr[row]
        end = indptr[row + 1]
        for pos in range(start, end):
            col = indices[pos]
            if col < 0:
                return CSR_INDEX_NEGATIVE, pos
            if col >= n_cols:
                return CSR_INDEX_TOO_LARGE, pos
            if pos > start and col <= indices[pos - 1]:
                return CSR_INDEX_UNSORTED, pos
    return CSR_OK, np.int64(-1)


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
