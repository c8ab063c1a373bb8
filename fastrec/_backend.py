"""Backend choice and thread control.

``backend="auto"`` picks the Cython kernels when their extension modules were
compiled and import, and Numba otherwise: the Cython kernels are compiled ahead
of time, so they cost nothing on the first call, while Numba compiles each
kernel (once per dtype, then from its on-disk cache) the first time it runs.
``backend="cython"`` when the extension is missing raises ``ValueError``.

``num_threads=0`` means every core. Inside a kernel call, the BLAS libraries
are held to one thread (threadpoolctl) so that the library's own parallel
regions do not oversubscribe the machine; everything is restored afterwards,
exactly, however the calls of several Python threads interleave: Numba's and
OpenMP's counts are per thread, and the process-wide BLAS count is held by
one reference-counted hold (set by the first call to enter, restored by the
last to leave).
"""

from __future__ import annotations

import _thread
import importlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from types import ModuleType
from typing import Any

BACKENDS = ("numba", "cython")
_KERNEL_PACKAGE = "fastrec._kernels"


@cache
def _cython_error() -> str | None:
    """None when the Cython extension imports, else why it does not."""
    try:
        importlib.import_module(f"{_KERNEL_PACKAGE}.cython._openmp")
    except ImportError as exc:  # not built, or built for another interpreter
        return str(exc)
    return None


def cython_available() -> bool:
    return _cython_error() is None


@cache
def _numba_error() -> str | None:
    """None when the Numba kernel package imports, else why it does not."""
    try:
        importlib.import_module(f"{_KERNEL_PACKAGE}.numba")
        importlib.import_module("numba")
    except ImportError as exc:
        return str(exc)
    return None


def available_backends() -> list[str]:
    """The backends whose kernels import here (what ``show_config`` reports)."""
    return (["numba"] if _numba_error() is None else []) + (
        ["cython"] if cython_available() else []
    )


def resolve_backend(backend: str) -> str:
    """Validate ``backend`` and turn "auto" into a concrete backend name."""
    if not isinstance(backend, str) or backend not in ("auto",) + BACKENDS:
        raise ValueError(f"backend must be 'auto', 'numba' or 'cython', got {backend!r}")
    if backend == "auto":
        if cython_available():
            return "cython"
        if _numba_error() is not None:
            raise ValueError(f"no fastrec backend is usable: {_numba_error()}")
        return "numba"
    if backend == "cython" and not cython_available():
        raise ValueError(
            "backend='cython' is not available: the compiled extension did not import "
            f"({_cython_error()}). Reinstall fastrec from source with a C compiler, "
            "or pass backend='numba'."
        )
    return backend


@cache
def _import(backend: str, module: str) -> ModuleType:
    return importlib.import_module(f"{_KERNEL_PACKAGE}.{backend}.{module}")


def _module(backend: str, module: str) -> ModuleType:
    """The kernel module; fetching a Numba one starts Numba's thread pool."""
    if backend == "numba":
        _start_numba_pool()
    return _import(backend, module)


_requested = threading.local()  # stack of the thread counts of open threads() blocks


def _numba_pool_running() -> bool:
    from numba.np.ufunc import parallel

    return bool(parallel._is_initialized)


def _start_numba_pool() -> None:
    """Start Numba's thread pool, honouring an enclosing ``threads()`` block.

    The pool is started only when a Numba kernel is about to be used, never
    by the Cython path: with Numba's OpenMP threading layer, a running pool
    slows other OpenMP runtimes in the process (PyTorch's two-thread training
    ran about 6x slower here once it had started).
    """
    if _numba_pool_running():
        return
    import numba

    numba.get_num_threads()  # launches the pool
    stack = getattr(_requested, "stack", None)
    if stack:
        numba.set_num_threads(min(stack[-1], numba.config.NUMBA_NUM_THREADS))


def kernel_backend(backend: str) -> str:
    """``resolve_backend(backend)``, starting Numba's thread pool when it gives "numba".

    What each kernel family's ``get(backend)`` (``fastrec._kernels.<family>``)
    calls before it imports its Numba or its Cython module.
    """
    backend = resolve_backend(backend)
    if backend == "numba":
        _start_numba_pool()
    return backend


def get_kernel(module: str, name: str, backend: str) -> Any:
    """The kernel ``name`` of family ``module``: ``fastrec._kernels.<module>.get(backend).<name>``.

    Code in fastrec imports the family module instead, so that the imports show
    which kernels a module calls; this spelling stays for scripts.
    """
    family = importlib.import_module(f"{_KERNEL_PACKAGE}.{module}")
    return getattr(family.get(backend), name)


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def resolve_threads(num_threads: int) -> int:
    """Validate ``num_threads`` (0 = all cores, at most 4096) and return a positive count."""
    from ._validation import check_num_threads

    num_threads = check_num_threads(num_threads)
    return num_threads if num_threads > 0 else cpu_count()


@cache
def _blas_controller():
    """One threadpoolctl controller for the process.

    Building one scans every loaded library (milliseconds); limiting through it
    costs microseconds, which matters for small kernel calls. It knows the BLAS
    libraries of NumPy and SciPy; one loaded later by another package (e.g.
    PyTorch's) is not held to one thread inside fastrec's kernels.
    """
    import scipy.linalg  # noqa: F401  (loads SciPy's own BLAS, so the controller sees it)
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


class _BlasAgent:
    """One long-lived thread that makes every BLAS thread-count change of fastrec.

    OpenBLAS (0.3.30/0.3.31 as shipped with NumPy and SciPy) sometimes ignores
    ``openblas_set_num_threads`` called from a short-lived thread while the
    count set by another live thread is in force (measured: the call returns,
    and every thread still reads the old count). Changes made by one and the
    same thread always take effect, so they are all made here.
    """

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._job: Any = None
        self._done = False
        self._thread: threading.Thread | None = None

    def _loop(self) -> None:
        while True:
            with self._cv:
                while self._job is None:
                    self._cv.wait()
                job = self._job
            try:
                job[1] = (True, job[0]())
            except BaseException as exc:  # noqa: BLE001  (re-raised in the caller)
                job[1] = (False, exc)
            with self._cv:
                self._job = None
                self._done = True
                self._cv.notify_all()

    def run(self, fn: Any) -> Any:
        """Run ``fn()`` on the agent thread and return its result (callers hold _blas_lock)."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="fastrec-blas", daemon=True)
            self._thread.start()
        job = [fn, None]
        interrupted = False
        with self._cv:
            self._done = False
            self._job = job
            self._cv.notify_all()
            while not self._done:
                try:
                    self._cv.wait()
                except KeyboardInterrupt:
                    # the job takes microseconds: finish it, so that the hold
                    # count stays right, and deliver the interrupt just after
                    interrupted = True
        if interrupted:
            _thread.interrupt_main()
        ok, value = job[1]
        if not ok:
            raise value
        return value


_blas_agent = _BlasAgent()
_blas_lock = threading.Lock()
_blas_holders = 0  # threads() blocks open in the whole process
_blas_saved: list[tuple[Any, int]] = []  # (library controller, its thread count before)


def _blas_limit() -> list[tuple[Any, int]]:
    saved = [(lib, lib.num_threads) for lib in _blas_controller().lib_controllers]
    saved = [(lib, n) for lib, n in saved if lib.user_api == "blas"]
    for lib, n in saved:
        if n != 1:
            lib.set_num_threads(1)
    return saved


def _blas_restore(saved: list[tuple[Any, int]]) -> None:
    for lib, n in saved:
        if n != 1:
            lib.set_num_threads(n)


def _blas_hold() -> None:
    """Hold the BLAS libraries at one thread while any kernel call is running.

    The BLAS thread count is process-wide, so overlapping ``threads()`` blocks
    of several Python threads share one hold: the first to enter saves the
    counts and sets 1, the last to leave restores the saved counts. (Each
    block saving and restoring on its own, as a plain threadpoolctl limit
    does, leaves 1 behind when the blocks interleave.)
    """
    global _blas_holders
    with _blas_lock:
        if _blas_holders == 0:
            _blas_saved[:] = _blas_agent.run(_blas_limit)
        _blas_holders += 1


def _blas_release() -> None:
    global _blas_holders
    with _blas_lock:
        _blas_holders -= 1
        if _blas_holders == 0:
            saved = list(_blas_saved)
            _blas_saved.clear()
            _blas_agent.run(lambda: _blas_restore(saved))


@contextmanager
def threads(num_threads: int = 0) -> Iterator[int]:
    """Run the enclosed kernel calls on ``num_threads`` threads, BLAS on one.

    Sets Numba's and OpenMP's thread counts and restores both on exit. Numba
    cannot use more threads than it started with (``NUMBA_NUM_THREADS``, by
    default the number of cores), so its count is capped there. Numba's pool
    is not started here: if it is not running yet, the count is applied when
    a Numba kernel is first fetched inside the block.
    """
    import numba

    n = resolve_threads(num_threads)
    numba_was_running = _numba_pool_running()
    old_numba = numba.get_num_threads() if numba_was_running else None
    if numba_was_running:
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    stack = getattr(_requested, "stack", None)
    if stack is None:
        stack = _requested.stack = []
    stack.append(n)
    omp = _module("cython", "_openmp") if cython_available() else None
    old_omp = omp.get_max_threads() if omp is not None else None
    if omp is not None:
        omp.set_num_threads(n)
    try:
        _blas_hold()
        try:
            yield n
        finally:
            _blas_release()
    finally:
        stack.pop()
        if numba_was_running:
            numba.set_num_threads(old_numba)
        elif _numba_pool_running():  # started inside the block: back to its default
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        if omp is not None:
            omp.set_num_threads(old_omp)


# ------------------------------------------------------------------ slicing
#: Wall time aimed at for one slice of a long kernel call, in seconds. A
#: compiled kernel does not look at signals; Python raises KeyboardInterrupt
#: between two calls, so a Ctrl-C stops a sliced call within about a slice.
SLICE_SECONDS = 0.25

#: Largest slice, in work units (rows, epochs); None: no cap. For tests, to
#: force many slices on small data.
slice_cap: int | None = None


def slices(
    total: int, first: int = 1, target: float | None = None, minimum: int = 1
) -> Iterator[tuple[int, int]]:
    """Consecutive ranges ``(start, stop)`` covering ``range(total)``.

    The first range has ``first`` units; each next one is sized from the time
    the caller spent on the previous one, so that a range takes about
    ``target`` seconds (``SLICE_SECONDS``), growing at most 8x and shrinking
    at most 4x at a step, never below ``minimum`` units (enough to keep every
    thread of a parallel kernel busy). Slicing changes nothing but the granularity: the
    callers' kernels give the same result for any split of the work.
    """
    import time

    target = SLICE_SECONDS if target is None else target
    minimum = max(1, int(minimum))
    size = max(minimum, int(first))
    start = 0
    while start < total:
        if slice_cap is not None:
            size = min(size, max(1, slice_cap))
        stop = min(total, start + size)
        tic = time.perf_counter()
        yield start, stop
        elapsed = time.perf_counter() - tic
        done = stop - start
        start = stop
        if elapsed <= 0:
            size = done * 8
        else:
            size = int(done * min(8.0, max(0.25, target / elapsed)))
        size = max(minimum, size)
