"""fastrec: compiled-kernel recommender systems (Numba and Cython backends).

Public names (see the README): ``Interactions``, ``datasets``,
``split``, ``metrics``, ``evaluate``, ``similarity``, ``topk``, the models
``UserKNN``, ``ItemKNN``, ``SGDMF``, ``ALS``, ``MLPRecommender``, ``SVDpp``, ``load``,
``show_config`` and ``DivergenceError`` (what every model raises when a fit
blows up). Submodules and models are imported on first use, so ``import
fastrec`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__


def _check_kernels() -> None:
    """Fail at import, in one line, when the compiled kernels cannot be found.

    The usual cause: Python was started in fastrec's source folder after a
    plain ``pip install .``, so the local ``fastrec/`` folder (which has no
    ``_kernels``: they live in ``kernels/`` and are mapped there on install)
    hides the installed package.
    """
    import importlib.util
    import os

    if importlib.util.find_spec("fastrec._kernels") is not None:
        return
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    if os.path.isfile(os.path.join(root, "setup.py")) and os.path.isdir(
        os.path.join(root, "kernels")
    ):
        raise ImportError(
            f"fastrec was imported from its source tree ({here}), which hides the installed "
            "package and has no compiled kernels (fastrec._kernels): run Python from another "
            "folder, or install in development mode with `pip install -e .` in that folder"
        )
    raise ImportError(
        f"fastrec's kernels (fastrec._kernels) are missing from this installation ({here}): "
        "reinstall fastrec (`pip install --force-reinstall fastrec`)"
    )


_check_kernels()

from .data import Interactions  # noqa: E402
from .topk import topk  # noqa: E402

_LAZY = {
    "similarity": ("fastrec.neighbours", "similarity"),
    "UserKNN": ("fastrec.models.knn", "UserKNN"),
    "ItemKNN": ("fastrec.models.knn", "ItemKNN"),
    "SGDMF": ("fastrec.models.sgd", "SGDMF"),
    "ALS": ("fastrec.models.als", "ALS"),
    "MLPRecommender": ("fastrec.models.mlp", "MLPRecommender"),
    "Popularity": ("fastrec.models.baseline", "Popularity"),
    "BPR": ("fastrec.models.bpr", "BPR"),
    "EASE": ("fastrec.models.ease", "EASE"),
    "SVDpp": ("fastrec.models.svdpp", "SVDpp"),
    "load": ("fastrec.models.base", "load"),
    "DivergenceError": ("fastrec.models.base", "DivergenceError"),
    "evaluate": ("fastrec.evaluation", "evaluate"),
    "show_config": ("fastrec._config", "show_config"),
    "datasets": ("fastrec.datasets", None),
    "split": ("fastrec.split", None),
    "metrics": ("fastrec.metrics", None),
    "rerank": ("fastrec.rerank", None),
}

__all__ = ["__version__", "Interactions", "topk", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module_name, attr = _LAZY[name]
        module = importlib.import_module(module_name)
        if attr is None:
            return module
        value = getattr(module, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fastrec' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
