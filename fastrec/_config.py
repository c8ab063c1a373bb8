"""``show_config``: what this installation of fastrec can do."""

from __future__ import annotations

import platform
import sys
from typing import Any

from . import _backend
from ._version import __version__


def _threading_layer() -> str:
    import numba

    try:
        return numba.threading_layer()
    except ValueError:  # chosen when the first parallel kernel runs
        return f"not chosen yet (setting: {numba.config.THREADING_LAYER})"


def config() -> dict[str, Any]:
    """The facts ``show_config`` prints, as a dict."""
    import numba
    import numpy
    import scipy
    from threadpoolctl import threadpool_info

    info: dict[str, Any] = {
        "fastrec": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "numba": numba.__version__,
        "backends": _backend.available_backends(),
        "auto_backend": _backend.resolve_backend("auto"),
        "cores": _backend.cpu_count(),
        "numba_threads": numba.config.NUMBA_NUM_THREADS,
        "numba_threading_layer": _threading_layer(),
    }
    if _backend.cython_available():
        omp = _backend._module("cython", "_openmp")
        info["cython_openmp"] = omp.openmp_enabled()
        info["cython_threads"] = omp.get_max_threads()
        info["cython_build_flags"] = omp.build_flags()
        if hasattr(omp, "build_tools"):  # an extension built before it was added has none
            info["cython_build_tools"] = omp.build_tools()
        info["cython_build_target"] = (
            "host CPU (-march=native)" if omp.build_native() else "portable"
        )
    else:
        info["cython_error"] = _backend._cython_error()
    info["blas"] = [
        f"{p.get('internal_api')} {p.get('version')} ({p.get('threading_layer', '?')}, "
        f"{p.get('num_threads')} threads, {p.get('architecture', '?')})"
        for p in threadpool_info()
        if p.get("user_api") == "blas"
    ]
    return info


def show_config(file: Any = None) -> dict[str, Any]:
    """Print the version, usable backends, OpenMP status, threads and BLAS.

    Returns the same facts as a dict.
    """
    info = config()
    out = file or sys.stdout
    width = max(len(k) for k in info)
    for key, value in info.items():
        if isinstance(value, list):
            value = ", ".join(map(str, value)) or "none"
        print(f"{key:<{width}}  {value}", file=out)
    return info
