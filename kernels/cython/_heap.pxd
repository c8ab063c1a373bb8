# Bounded "keep the k best" heaps over two parallel arrays (twin of
# kernels/numba/_heap.py). The root holds the worst kept entry; higher score
# is better, and on equal scores the lower index is better.

from cython cimport floating


cdef inline bint is_worse(floating val_a, int idx_a, floating val_b, int idx_b) noexcept nogil:
    return val_a < val_b or (val_a == val_b and idx_a > idx_b)


cdef inline void sift_down(floating* vals, int* idxs, int pos, int size) noexcept nogil:
    cdef floating val = vals[pos]
    cdef int idx = idxs[pos]
    cdef int child, right
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


cdef inline void heap_push(floating* vals, int* idxs, int size, floating val, int idx) noexcept nogil:
    cdef int pos = size, parent
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


cdef inline int heap_offer(floating* vals, int* idxs, int size, int capacity,
                           floating val, int idx) noexcept nogil:
    if size < capacity:
        heap_push(vals, idxs, size, val, idx)
        return size + 1
    if is_worse(vals[0], idxs[0], val, idx):
        vals[0] = val
        idxs[0] = idx
        sift_down(vals, idxs, 0, size)
    return size


cdef inline void heap_sort(floating* vals, int* idxs, int size) noexcept nogil:
    cdef int end = size - 1, i
    cdef floating v
    while end > 0:
        v = vals[0]
        i = idxs[0]
        vals[0] = vals[end]
        idxs[0] = idxs[end]
        vals[end] = v
        idxs[end] = i
        sift_down(vals, idxs, 0, end)
        end -= 1
