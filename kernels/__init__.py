"""Compiled kernels of fastrec, installed as ``fastrec._kernels``.

Each algorithm exists twice, with the same module name, function names and
signatures: ``numba/<name>.py`` (Numba ``@njit``, ``prange``) and
``cython/<name>.pyx`` (``nogil``, OpenMP ``prange``). The functions here trust
their inputs completely; the public wrappers in ``fastrec`` validate first.
"""
