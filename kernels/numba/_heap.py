"""Bounded "keep the k best" heaps stored in two parallel arrays.

The root (position 0) holds the *worst* kept entry, so a candidate is compared
with one value before anything moves. Order: higher score is better; on equal
scores the lower index is better. ``heap_sort`` turns a heap into a list sorted
best first (descending score, ascending index).
"""

from __future__ import annotations

from ._config import jit


@jit
def is_worse(val_a, idx_a, val_b, idx_b):
    # a ranks after b
    return val_a < val_b or (val_a == val_b and idx_a > idx_b)


@jit
def sift_down(vals, idxs, pos, size):
    val = vals[pos]
    idx = idxs[pos]
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        right = child + 1
        if right < size and is_worse(vals[right], idxs[right], vals[child], idxs[child]):
            child = right
        if is_worse(vals[child], idxs[child], val, idx):
            vals[pos] = vals[child]
            idxs[pos] = idxs[child]
            pos = child
        else:
            break
    vals[pos] = val
    idxs[pos] = idx


@jit
def heap_push(vals, idxs, size, val, idx):
    """Insert into a heap holding ``size`` entries (capacity must allow it)."""
    pos = size
    while pos > 0:
        parent = (pos - 1) // 2
        if is_worse(val, idx, vals[parent], idxs[parent]):
            vals[pos] = vals[parent]
            idxs[pos] = idxs[parent]
            pos = parent
        else:
            break
    vals[pos] = val
    idxs[pos] = idx


@jit
def heap_offer(vals, idxs, size, capacity, val, idx):
    """Offer a candidate; returns the new size."""
    if size < capacity:
        heap_push(vals, idxs, size, val, idx)
        return size + 1
    if is_worse(vals[0], idxs[0], val, idx):
        vals[0] = val
        idxs[0] = idx
        sift_down(vals, idxs, 0, size)
    return size


@jit
def heap_sort(vals, idxs, size):
    """In place: heap of ``size`` entries -> sorted best first."""
    end = size - 1
    while end > 0:
        v = vals[0]
        i = idxs[0]
        vals[0] = vals[end]
        idxs[0] = idxs[end]
        vals[end] = v
        idxs[end] = i
        sift_down(vals, idxs, 0, end)
        end -= 1
