"""Compiled kernels of fastrec, installed as ``fastrec._kernels``.

Each algorithm exists twice, with the same module name, function names and
signatures: ``numba/<name>.py`` (Numba ``@njit``, ``prange``) and
``cython/<name>.pyx`` (``nogil``, OpenMP ``prange``). The functions here trust
their inputs completely; the public wrappers in ``fastrec`` validate first.

Beside the two folders, ``<name>.py`` (``als.py``, ``knn.py``, ...) holds one
function, ``get(backend)``, that resolves the backend and returns that
family's Numba or Cython module. The Python modules of fastrec import the
family they call (``from fastrec._kernels import als as als_kernels``, then
``als_kernels.get(backend).cg_implicit``), so the imports lead from any model
to its kernels. Modules whose name starts with ``_`` are shared within one
backend (``_config``, ``_heap``, ``_simcore``; ``_aligned.pxd``, ``_openmp``).
"""
