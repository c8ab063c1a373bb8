"""The kernel families: each Numba module and its Cython twin export the same
kernels, and each family's ``get(backend)`` returns the right one of the two."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import fastrec._kernels as kernel_package
import fastrec._kernels.cython as cython_package
import fastrec._kernels.numba as numba_package
from fastrec import _backend


def _public_modules(package) -> set[str]:
    modules = pkgutil.iter_modules(package.__path__)
    return {m.name for m in modules if not m.ispkg and not m.name.startswith("_")}


FAMILIES = sorted(_public_modules(kernel_package))


def test_every_twin_pair_has_a_family_module():
    numba_modules = _public_modules(numba_package)
    cython_modules = _public_modules(cython_package)
    assert numba_modules == cython_modules, "a kernel module without its twin"
    assert numba_modules == set(FAMILIES), "a twin pair without its kernels/<family>.py"
    assert len(FAMILIES) >= 10


def _kernels_defined_in(module) -> set[str]:
    """Public callables defined in ``module`` itself (imported helpers left out)."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and callable(value)
        and getattr(value, "__module__", None) == module.__name__
    }


@pytest.mark.parametrize("family", FAMILIES)
def test_twins_export_the_same_kernels(family):
    numba_module = importlib.import_module(f"fastrec._kernels.numba.{family}")
    cython_module = importlib.import_module(f"fastrec._kernels.cython.{family}")
    numba_names = _kernels_defined_in(numba_module)
    cython_names = _kernels_defined_in(cython_module)
    assert numba_names, f"no kernels found in {numba_module.__name__}"
    assert numba_names == cython_names, (
        f"only in numba/{family}: {sorted(numba_names - cython_names)}; "
        f"only in cython/{family}: {sorted(cython_names - numba_names)}"
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_get_returns_the_backends_module(family):
    dispatch = importlib.import_module(f"fastrec._kernels.{family}")
    for backend in ("numba", "cython"):
        module = dispatch.get(backend)
        assert module.__name__ == f"fastrec._kernels.{backend}.{family}"
    auto = _backend.resolve_backend("auto")
    assert dispatch.get("auto").__name__ == f"fastrec._kernels.{auto}.{family}"
    for bad in ("Numba", "torch", "", None, 1):
        with pytest.raises(ValueError, match="backend must be 'auto', 'numba' or 'cython'"):
            dispatch.get(bad)


def test_get_without_the_cython_build(monkeypatch):
    """Without the compiled extension, "cython" is refused with the reason and "auto" is Numba."""
    from fastrec._kernels import topk

    monkeypatch.setattr(_backend, "cython_available", lambda: False)
    monkeypatch.setattr(_backend, "_cython_error", lambda: "No module named 'x'")
    with pytest.raises(ValueError, match=r"backend='cython' is not available.*No module named"):
        topk.get("cython")
    assert topk.get("auto").__name__ == "fastrec._kernels.numba.topk"
