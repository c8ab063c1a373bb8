"""fastrec: compiled-kernel recommender systems (Numba and Cython backends).

Public names (see the README): ``Interactions``, ``datasets``,
``split``, ``metrics``, ``evaluate``, ``similarity``, ``topk``, the models
``UserKNN``, ``ItemKNN``, ``SGDMF``, ``ALS``, ``MLPRecommender``, ``SVDpp``, ``load`` and
``show_config``. Submodules and models are imported on first use, so
``import fastrec`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__
from .data import Interactions
from .topk import topk

_LAZY = {
    "similarity": ("fastrec.neighbours", "similarity"),
    "UserKNN": ("fastrec.models.knn", "UserKNN"),
    "ItemKNN": ("fastrec.models.knn", "ItemKNN"),
    "SGDMF": ("fastrec.models.sgd", "SGDMF"),
    "ALS": ("fastrec.models.als", "ALS"),
    "MLPRecommender": ("fastrec.models.mlp", "MLPRecommender"),
    "Popularity": ("fastrec.models.baseline", "Popularity"),
    "SVDpp": ("fastrec.models.svdpp", "SVDpp"),
    "load": ("fastrec.models.base", "load"),
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
